// Reloading the config (SIGHUP, POST /v1/reload, `dig-lite reload`) while queries flow: the new
// file is read and validated; if it is bad, the running config stays and the error (key and
// line) is logged and returned. Otherwise the keys the key table (Config/ConfigSchema.swift)
// marks reloadable — server.allow, [[forward]] zones, [rate_limit], the [cluster] timings, … —
// take effect at once, without touching the cache, the registry or open connections. Every
// other key needs a restart; a reload that changes one says which and leaves it as it was.

import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// What a reload did.
public struct ReloadResponse: Codable, Sendable, Equatable {
    /// True when the new file was valid and its reloadable keys are in effect.
    public var reloaded: Bool
    /// Keys that changed but only take effect after a restart.
    public var restartNeeded: [String]
    /// Why the file was refused (reloaded = false).
    public var error: String?

    enum CodingKeys: String, CodingKey {
        case reloaded, error
        case restartNeeded = "restart_needed"
    }
}

extension ResolverApplication {
    /// The reloadable settings of `config`; the rate limiter and query log of `previous` are kept
    /// when their settings did not change (their state — buckets, counts — carries over).
    static func runtimePolicy(_ config: Config, previous: (RuntimePolicy, Config)? = nil) -> RuntimePolicy {
        var rateLimiter: ResponseRateLimiter? = nil
        if config.rateLimit.responsesPerSecond > 0 {
            if let (policy, old) = previous, old.rateLimit == config.rateLimit {
                rateLimiter = policy.rateLimiter
            } else {
                rateLimiter = ResponseRateLimiter(settings: config.rateLimit)
            }
        }
        var queryLog: QueryLog? = nil
        if config.log.queries {
            if let (policy, old) = previous, old.log.queries, old.log.queriesPerSecond == config.log.queriesPerSecond {
                queryLog = policy.queryLog
            } else {
                queryLog = QueryLog(perSecond: config.log.queriesPerSecond)
            }
        }
        return RuntimePolicy(
            access: AccessControl(allowed: config.server.allow), forwardZones: forwardZones(config),
            recursive: config.resolver.mode == .recursive, rateLimiter: rateLimiter,
            maxPendingPerClient: config.server.maxPendingPerClient, queryLog: queryLog)
    }

    /// Reads the config again and applies what can change while running. Reloads run one at a
    /// time (SIGHUP and the API may ask at once).
    public func reload() -> ReloadResponse {
        running.withLock { running in
            let fresh: Config
            do {
                fresh = try reloadConfig()
            } catch {
                logger.error("reload refused, the running config stays", metadata: ["error": "\(error)"])
                return ReloadResponse(reloaded: false, restartNeeded: [], error: "\(error)")
            }
            // What runs from now on: the running config with the new file's reloadable keys (the
            // restart-only ones stay as they run).
            let restartNeeded = ConfigSchema.restartNeeded(running: running, fresh: fresh)
            let applied = ConfigSchema.applyingReloadableKeys(of: fresh, to: running)
            pipeline.replacePolicy(Self.runtimePolicy(applied, previous: (pipeline.policy.current, running)))
            LineLogHandler.setSharedLevel(Logger.Level(rawValue: applied.log.level) ?? .info)
            registry.replacePolicy(applied.cluster.policy)
            shared?.store.replacePolicy(applied.cluster.policy)
            checkConcurrency.store(applied.cluster.checkConcurrency, ordering: .relaxed)
            running = applied
            // Workers read the same file and apply the same keys.
            pool?.signalAll(SIGHUP)
            logger.info(
                "reloaded",
                metadata: [
                    "forward_zones": "\(applied.forwards.count)", "allow": "\(applied.server.allow.count) networks",
                    "restart_needed": "\(restartNeeded.joined(separator: ","))",
                ])
            return ReloadResponse(reloaded: true, restartNeeded: restartNeeded, error: nil)
        }
    }
}
