// The long-running parts of one process, each a swift-service-lifecycle `Service` with one
// `run()` that ends on graceful shutdown, and the one factory that lists them per role:
//   single      API, health checker, shared-registry follower and election (etcd), priming
//               (recursive), SIGHUP reload, heartbeat (query-rate samples, systemd watchdog)
//   supervisor  the same without priming (its workers resolve, and prime their own)
//   worker      API (private), priming, SIGHUP reload, heartbeat without the watchdog
// ResolverApplication runs the list beside its start-up announcement (Application.swift).

import Logging
import ServiceLifecycle
import UnixSignals

extension ResolverApplication {
    /// The services this process runs beside its API, for its role.
    func roleServices(api: any Service, checker: HealthChecker?, sharedToLoad: Bool) -> [any Service] {
        let priming = recursor.map { Priming(recursor: $0) }
        let watchdog: Duration?
        switch role {
        case .worker: watchdog = nil
        case .single, .supervisor: watchdog = SystemdNotify.watchdogInterval
        }
        var services: [any Service] = [
            api,
            ReloadOnHangup(reload: { [self] in _ = reload() }),
            Heartbeat(metrics: metrics, watchdog: watchdog, pool: pool, logger: logger),
        ]
        switch role {
        case .single, .supervisor:
            if let checker { services.append(checker) }
            if let shared {
                services.append(SharedRegistryFollower(application: self, shared: shared, loadFirst: sharedToLoad))
                services.append(CheckElection(shared: shared, logger: logger))
            }
            if case .single = role, let priming { services.append(priming) }
        case .worker:
            if let priming { services.append(priming) }
        }
        return services
    }
}

/// Reloads the config on every SIGHUP (a supervisor's workers reload theirs).
struct ReloadOnHangup: Service {
    let reload: @Sendable () -> Void

    func run() async {
        await cancelWhenGracefulShutdown {
            for await _ in await UnixSignalsSequence(trapping: .sighup) { reload() }
        }
    }
}

/// The query rate of GET /v1/stats, a sample a second; and systemd's watchdog, when the unit has
/// one, fed at half its interval — but not while every worker is crash-looping.
struct Heartbeat: Service {
    let metrics: ResolverMetrics
    let watchdog: Duration?
    let pool: WorkerPool?
    let logger: Logger

    func run() async {
        await cancelWhenGracefulShutdown {
            let clock = ContinuousClock()
            var nextPing = clock.now
            var looping = false
            while !Task.isCancelled {
                metrics.sample()
                if let watchdog, clock.now >= nextPing {
                    // Every worker crash-looping for long: no DNS is answered, so the watchdog
                    // must not be told all is well.
                    if let since = pool?.allCrashLoopingSince(), clock.now - since > WorkerPool.crashLoopLimit {
                        if !looping {
                            logger.critical("every worker keeps crashing; no longer feeding the systemd watchdog")
                            let limit = WorkerPool.crashLoopLimit
                            SystemdNotify.send("STATUS=every worker has been crash-looping for over \(limit)")
                        }
                        looping = true
                    } else {
                        if looping { SystemdNotify.send("STATUS=answering again") }
                        looping = false
                        SystemdNotify.send("WATCHDOG=1")
                    }
                    nextPing = clock.now + watchdog
                }
                try? await Task.sleep(for: min(.seconds(1), watchdog ?? .seconds(1)))
            }
        }
    }
}

/// A shared registry (etcd): loaded in the background when the start could not, then the other
/// instances' changes followed.
struct SharedRegistryFollower: Service {
    let application: ResolverApplication
    let shared: SharedRegistry
    let loadFirst: Bool

    func run() async {
        await cancelWhenGracefulShutdown {
            if loadFirst { await application.loadShared() }
            await shared.store.follow(
                application.registry, networks: application.memberNetworks, logger: application.logger)
        }
    }
}

/// Campaigns, with the other instances on the shared registry, to be the one running checks.
struct CheckElection: Service {
    let shared: SharedRegistry
    let logger: Logger

    func run() async {
        await cancelWhenGracefulShutdown { await shared.election.run(logger: logger) }
    }
}

/// Keeps the root primed (recursive mode): at start, before the root's NS set expires, and
/// with back-off after a failure. No query waits for it, and shutdown does not either: a priming
/// query in flight is abandoned.
struct Priming: Service {
    let recursor: RecursiveResolver

    func run() async {
        let priming = Task { await recursor.keepPrimed() }
        try? await gracefulShutdown()
        priming.cancel()
    }
}
