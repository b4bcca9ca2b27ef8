// Start here. `ResolverApplication` turns a validated `Config` into running parts: the event
// loops, the forwarder (and in recursive mode the recursive resolver) and its server selection, the service registry and its health checker,
// the query pipeline, the DNS listeners and the HTTP API. What runs for the process's life —
// per role (single process, supervisor, worker) — is listed by `roleServices` (RoleServices.swift).
// The daemon's main file only reads the config and runs this as a swift-service-lifecycle
// `Service`.

import AsyncHTTPClient
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import ServiceLifecycle
import Synchronization
import UnixSignals

#if canImport(Glibc)
import Glibc
#endif

/// resolverd's version, as `version.bind` and `--version` report it.
public let resolverdVersion = "0.1.0"

/// What this process is: the whole daemon, or (with `server.workers`) the supervisor or one of
/// its workers (Workers/).
public enum ProcessRole: Sendable {
    /// DNS, registry, checks and API in one process.
    case single
    /// Registry, checks and the API; DNS is answered by worker processes it starts.
    case supervisor(WorkerLaunch)
    /// DNS only, its registry a mirror fed through the control channel on `controlDescriptor`.
    case worker(index: Int, controlDescriptor: Int32)
}

/// The whole resolver, wired from a config.
public final class ResolverApplication: Service {
    let role: ProcessRole
    /// The supervisor's workers; nil in the other roles.
    let pool: WorkerPool?
    /// With `registry.backend = "etcd"`: the store, the health-check election and their HTTP client.
    let shared: SharedRegistry?
    public let config: Config
    let logger: Logger
    let group: MultiThreadedEventLoopGroup
    let pipeline: QueryPipeline
    /// Server selection for every zone, shared by all queries.
    public let selector: AdaptiveSelector
    /// Service group registrations; loaded from the store when `run` starts.
    public let registry: ServiceRegistry
    /// Resolution from the root (recursive mode); nil when forwarding.
    let recursor: RecursiveResolver?
    /// Upstream queries (its UDP thread is stopped at shutdown).
    let client: UpstreamClient
    /// What GET /metrics reports.
    public let metrics = ResolverMetrics()
    /// Reads the config again for a reload (the file and the command line's overrides).
    let reloadConfig: @Sendable () throws(ConfigError) -> Config
    /// The config in effect: the one started with, and the reloaded keys of later reloads.
    let running: Mutex<Config>
    /// `cluster.check_concurrency`, which a reload changes.
    let checkConcurrency: Atomic<Int>
    /// Where members may be (`registry.allowed_networks`, or this host's interfaces' networks).
    let memberNetworks: MemberNetworks
    /// Why the SQLite store could not be opened (the registry then starts degraded).
    let storeFailure: RegistryError?

    /// Opens the registry store (a bad `registry.path` fails here) and wires the rest.
    /// `reloadConfig` reads the config again for SIGHUP and POST /v1/reload.
    public init(
        config: Config, logger: Logger,
        reloadConfig: @escaping @Sendable () throws(ConfigError) -> Config = { () throws(ConfigError) -> Config in
            throw ConfigError(key: nil, line: nil, message: "no config file to reload")
        },
        role: ProcessRole = .single
    ) throws(RegistryError) {
        self.role = role
        self.config = config
        self.logger = logger
        self.reloadConfig = reloadConfig
        running = Mutex(config)
        checkConcurrency = Atomic(config.cluster.checkConcurrency)
        let threads = config.server.threads > 0 ? config.server.threads : System.coreCount
        let clock = ResolverClock.system
        group = MultiThreadedEventLoopGroup(numberOfThreads: threads)

        var policy = config.resolver.selectionPolicy
        // The server tables (and their metric series) take a sixteenth of the cache's budget, beside it.
        policy.maxTableBytes = max(SelectionPolicy.minimumTableBytes, config.cache.maxBytes / 16)
        selector = AdaptiveSelector(policy: policy)
        client = UpstreamClient(group: group, timeout: policy.timeout, logger: logger)
        let transactions = UpstreamTransactions(
            client: client, selector: selector, logger: logger, clock: clock, observer: metrics)
        let forwarder = Forwarder(transactions: transactions)
        if config.resolver.mode == .recursive {
            // Recursion's records share the cache's TTL clamps and take an eighth of its budget
            // in bytes, beside it.
            let records = RecordCache(
                maxBytes: config.cache.maxBytes / 8, maxTTL: config.cache.maxTTL,
                maxNegativeTTL: config.cache.maxNegativeTTL, shardCount: 4 * threads)
            recursor = RecursiveResolver(
                transactions: transactions, records: records, settings: config.resolver.recursion, logger: logger,
                clock: clock)
        } else {
            recursor = nil
        }
        let store: any RegistryStore
        memberNetworks = MemberNetworks(config.registry)
        var storeFailure: RegistryError? = nil
        var resettablePath: String? = nil
        if case .worker = role {
            store = MirrorStore()
            shared = nil
        } else if config.registry.backend == .etcd {
            let etcd = try SharedRegistry(config, group: group, identity: "\(Self.hostname()) pid \(getpid())")
            store = AdmittingStore(store: etcd.store, networks: memberNetworks, logger: logger)
            shared = etcd
        } else {
            // A damaged or unusable file must not keep DNS down: the registry starts degraded.
            resettablePath = config.registry.path
            do {
                store = AdmittingStore(
                    store: try SQLiteRegistryStore(path: config.registry.path), networks: memberNetworks, logger: logger)
            } catch {
                store = UnavailableStore()
                storeFailure = error
            }
            shared = nil
        }
        self.storeFailure = storeFailure
        registry = ServiceRegistry(store: store, policy: config.cluster.policy)
        if let path = resettablePath {
            registry.allowReset { [memberNetworks, logger] () throws(RegistryError) -> (store: any RegistryStore, setAside: String) in
                let aside = try SQLiteRegistryStore.setAside(path: path, now: WallClock.system.now())
                let fresh = AdmittingStore(store: try SQLiteRegistryStore(path: path), networks: memberNetworks, logger: logger)
                return (fresh, aside)
            }
        }
        if case .supervisor(let launch) = role {
            pool = WorkerPool(count: config.server.workers, launch: launch, registry: registry, logger: logger)
        } else {
            pool = nil
        }
        pipeline = QueryPipeline(
            policy: Self.runtimePolicy(config), forwarder: forwarder, recursor: recursor,
            local: LocalAnswers(version: "resolverd \(resolverdVersion)", identity: Self.hostname()),
            cluster: ClusterAnswers(domain: config.cluster.domain, registry: registry),
            cache: AnswerCache(settings: config.cache, shardCount: 4 * threads), metrics: metrics,
            maxPending: config.server.maxPending, clientPrefixes: config.server.clientPrefixes, logger: logger,
            clock: clock)
    }

    /// Where GET /metrics pulls its figures from.
    var metricSources: MetricSources {
        let pipeline = self.pipeline
        let election = shared?.election
        return MetricSources(
            cache: pipeline.cache, records: recursor?.records, selector: selector, registry: registry,
            inFlight: { pipeline.inFlight.inFlight }, registryBackend: config.registry.backend.rawValue,
            runsChecks: { election?.isLeader ?? true })
    }

    /// The configured forward zones, with `"system"` expanded to /etc/resolv.conf's servers.
    static func forwardZones(_ config: Config) -> ForwardZones {
        let system = SystemResolvers.parse(readTextFile("/etc/resolv.conf") ?? "", excluding: config.server.listen)
        return ForwardZones(config.forwards.map { ($0.zone, $0.servers + ($0.usesSystemResolvers ? system : [])) })
    }

    public func run() async throws {
        do {
            try await runParts()
        } catch {
            // A start that failed early (the registry, a port) still releases the etcd client.
            try? await shared?.http.shutdown()
            throw error
        }
    }

    private func runParts() async throws {
        var link: WorkerLink? = nil
        var sharedToLoad = false
        switch role {
        case .single, .supervisor:
            sharedToLoad = await loadRegistry()
        case .worker(_, let descriptor):
            // The registry comes from the supervisor, before the DNS sockets open; when the
            // supervisor is gone, this worker stops.
            let worker = WorkerLink(descriptor: descriptor, logger: logger)
            try await worker.follow(registry) { kill(getpid(), SIGTERM) }
            link = worker
        }
        // The API's settings first: nothing is bound (and no client made) when they fail.
        let guardian = try apiGuard()
        let apiServer: HTTPServerBuilder = config.api.usesTLS ? try .tls(.http1(), tlsConfiguration: try apiTLS()) : .http1()
        // The supervisor answers no DNS: its workers do.
        let listeners =
            pool == nil ? try await DNSListeners.bind(config.server, pipeline: pipeline, group: group, logger: logger) : nil
        var httpConfiguration = HTTPClient.Configuration(redirectConfiguration: .disallow)
        httpConfiguration.connectionPool.idleTimeout = .seconds(1)
        let http = HTTPClient(eventLoopGroupProvider: .shared(group), configuration: httpConfiguration)
        // Health checks run where the registry is stored: not in a worker.
        let checker =
            link != nil
            ? nil
            : HealthChecker(
                registry: registry, probe: NetworkHealthProbe(group: group, http: http), networks: memberNetworks,
                concurrency: { [self] in checkConcurrency.load(ordering: .relaxed) }, logger: logger,
                metrics: metrics, active: { [election = shared?.election] in election?.isLeader ?? true })
        let (apiBound, apiAddress) = AsyncStream<String>.makeStream()
        let api = Hummingbird.Application(
            router: AdminAPI(
                selector: selector, cache: pipeline.cache, records: recursor?.records, registry: registry,
                guardian: guardian, memberNetworks: memberNetworks, metrics: (metrics, metricSources),
                reload: { [self] in reload() },
                workers: pool.map { WorkerAdmin(pool: $0, http: http, token: $0.launch.adminToken) }, groups: link == nil
            ).router(),
            server: apiServer,
            configuration: .init(address: .hostname(config.api.listen.ip.description, port: Int(config.api.listen.port))),
            onServerRunning: { channel in
                if let port = channel.localAddress?.port { guardian.bound(port: port) }
                apiAddress.yield(channel.localAddress.flatMap(ServerAddress.init).map(\.description) ?? "?")
                apiAddress.finish()
            },
            eventLoopGroupProvider: .shared(group), logger: logger)

        func closeAll() async {
            await listeners?.close()
            await pool?.stop()
            try? await shared?.http.shutdown()
            await client.shutdown()
            try? await http.shutdown()
            try? await group.shutdownGracefully()
        }
        do {
            try await serve(
                roleServices(api: api, checker: checker, sharedToLoad: sharedToLoad), listeners: listeners,
                pool: pool, link: link, bound: apiBound)
        } catch {
            await closeAll()
            throw error
        }
        await closeAll()
    }

    /// The API's guard: the admin token (configured; else read from or made in the token file; a
    /// worker's is its supervisor's per-run token), the group tokens and the names it answers to.
    private func apiGuard() throws -> APIGuard {
        var token = config.api.token
        if case .worker = role {
            guard !token.isEmpty else { throw APITokenError(path: "-", message: "a worker needs its supervisor's token") }
        } else if token.isEmpty {
            let path = config.apiTokenFile
            do {
                let (kept, created) = try APIToken.loadOrCreate(path: path)
                token = kept
                logger.info("api token", metadata: ["file": "\(path)", "created": "\(created)"])
                if APIToken.isExposed(path) {
                    logger.warning("api token file readable by others; chmod 600 it", metadata: ["file": "\(path)"])
                }
            } catch {
                // DNS must come up whatever the data folder's state: the API is locked instead
                // (a token nobody knows) until api.token is set or the file can be written.
                token = APIToken.random()
                logger.critical(
                    "api token file unusable: the API refuses every request; set api.token or fix the file",
                    metadata: ["file": "\(path)", "error": "\(error)"])
            }
        }
        if case .worker = role {
            return APIGuard(adminToken: token, listen: config.api.listen)
        }
        logger.info(
            "member networks",
            metadata: [
                "allowed": "\(memberNetworks)",
                "source": "\(memberNetworks.configured ? "registry.allowed_networks" : "interfaces")",
            ])
        return APIGuard(
            adminToken: token, groupTokens: config.api.groupTokens, allowedHosts: config.api.allowedHosts,
            listen: config.api.listen, tls: config.api.usesTLS)
    }

    /// The API's HTTPS settings from `api.tls_certificate` and `api.tls_key`.
    private func apiTLS() throws(ConfigError) -> TLSConfiguration {
        let certificates: [NIOSSLCertificate]
        do {
            certificates = try NIOSSLCertificate.fromPEMFile(config.api.tlsCertificate)
        } catch {
            throw ConfigError(key: "api.tls_certificate", line: nil, message: "'\(config.api.tlsCertificate)': \(error)")
        }
        let key: NIOSSLPrivateKey
        do {
            key = try NIOSSLPrivateKey(file: config.api.tlsKey, format: .pem)
        } catch {
            throw ConfigError(key: "api.tls_key", line: nil, message: "'\(config.api.tlsKey)': \(error)")
        }
        return TLSConfiguration.makeServerConfiguration(
            certificateChain: certificates.map { NIOSSLCertificateSource.certificate($0) },
            privateKey: NIOSSLPrivateKeySource.privateKey(key))
    }

    /// Loads the registry. Whatever fails, DNS comes up: a SQLite file that cannot be opened or
    /// read leaves the registry degraded until an admin resets it (the file is kept as found); a
    /// shared store (etcd) not reachable within `sharedStartWindow` leaves it degraded while
    /// `loadShared` keeps trying in the background. Returns whether that is still to do.
    private func loadRegistry() async -> Bool {
        if let storeFailure {
            degradeSQLite(storeFailure)
            return false
        }
        let clock = ContinuousClock()
        let deadline = clock.now + (shared == nil ? .zero : Self.sharedStartWindow)
        var pause: Duration = .milliseconds(250)
        while true {
            do {
                logDamaged(try await registry.load())
                return false
            } catch {
                if shared == nil {
                    degradeSQLite(error)
                    return false
                }
                guard error.unreachable, clock.now + pause < deadline else {
                    registry.degrade("the shared registry (etcd) cannot be read; retrying")
                    logger.critical(
                        "registry degraded: etcd cannot be read; DNS answers, cluster names SERVFAIL until it can",
                        metadata: ["error": "\(error)"])
                    return true
                }
                logger.warning("registry not reachable yet; trying again", metadata: ["error": "\(error)"])
                try? await Task.sleep(for: pause)
                pause = min(pause * 2, .seconds(4))
            }
        }
    }

    /// How long the start waits for etcd before DNS comes up with the registry degraded (etcd
    /// starting with the host is usually there by then).
    static let sharedStartWindow: Duration = .seconds(5)

    /// Keeps reading the shared store until it answers (back-off up to 5 s; 30 s after a refusal,
    /// such as a wrong password); then the registry is ready and the watch starts.
    func loadShared() async {
        var pause: Duration = .milliseconds(500)
        while !Task.isCancelled {
            try? await Task.sleep(for: pause)
            do {
                logDamaged(try await registry.load())
                logger.notice("registry ready: etcd answers again")
                return
            } catch {
                pause = min(pause * 2, error.unreachable ? .seconds(5) : .seconds(30))
                logger.warning("registry degraded: etcd still cannot be read", metadata: ["error": "\(error)"])
            }
        }
    }

    private func degradeSQLite(_ error: RegistryError) {
        registry.degrade(
            "the registry store could not be opened or read; POST /v1/registry/reset sets it aside and starts an empty one",
            replacing: UnavailableStore())
        logger.critical(
            """
            registry degraded: the SQLite store cannot be used; DNS answers, cluster names SERVFAIL; \
            the file is kept as it is until `dig-lite registry-reset`
            """,
            metadata: ["error": "\(error)"])
    }

    private func logDamaged(_ damaged: [RegistryError]) {
        StoredMembers.log(damaged, logger: logger)
    }

    /// Runs the API beside the bound DNS listeners until graceful shutdown.
    /// Runs `services` (the role's, from `roleServices`) until graceful shutdown; meanwhile
    /// announces readiness once the API is bound: a worker to its supervisor, a supervisor after
    /// starting its workers, and either of the others to the log and systemd.
    private func serve(
        _ services: [any Service], listeners: DNSListeners?, pool: WorkerPool?, link: WorkerLink?,
        bound apiBound: AsyncStream<String>
    ) async throws {
        try await withThrowingDiscardingTaskGroup { tasks in
            // Each stops by itself on graceful shutdown; an error (the API's port in use) ends all.
            for service in services { tasks.addTask { try await service.run() } }
            var bound = "?"
            for await address in apiBound { bound = address }
            if let link, let listeners {
                link.ready(api: bound, dns: listeners.addresses)
                logger.info("worker answering", metadata: ["dns": "\(listeners.addresses.map(\.description).joined(separator: ","))"])
                try? await gracefulShutdown()
                return
            }
            if let pool { try await pool.start() }
            let dns = listeners?.addresses.map(\.description) ?? pool?.dnsAddresses ?? []
            logger.info(
                "listening",
                metadata: [
                    "dns": "\(dns.joined(separator: ","))", "api": "\(bound)", "version": "\(resolverdVersion)",
                    "workers": "\(pool?.count ?? 0)",
                ])
            let members = registry.snapshot().reduce(0) { $0 + $1.members.count }
            logger.info(
                "service groups",
                metadata: [
                    "zone": "\(config.cluster.domain)", "members": "\(members)",
                    "registry": "\(config.registry.backend == .etcd ? "etcd \(config.registry.endpoints.joined(separator: ","))" : config.registry.path)",
                ])
            if let recursor {
                logger.info(
                    "recursive",
                    metadata: [
                        "root_hints": "\(recursor.settings.rootHints.count) servers",
                        "qname_minimisation": "\(recursor.settings.qnameMinimisation)",
                    ])
            }
            SystemdNotify.send("READY=1\nSTATUS=answering on \(dns.joined(separator: " "))")
            for zone in pipeline.policy.current.forwardZones.all {
                logger.info("forward zone", metadata: ["zone": "\(zone.zone)", "servers": "\(zone.servers.map(\.description))"])
            }
            // Runs until SIGTERM/SIGINT (the ServiceGroup's graceful shutdown) or cancellation.
            try? await gracefulShutdown()
            SystemdNotify.send("STOPPING=1")
            logger.info("shutting down")
        }
    }

    static func hostname() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count) == 0 else { return "resolverd" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// Reads a small text file whole, or nil when it cannot be opened.
public func readTextFile(_ path: String) -> String? {
    guard let file = fopen(path, "r") else { return nil }
    defer { fclose(file) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 4096)
    while true {
        let count = fread(&chunk, 1, chunk.count, file)
        if count <= 0 { break }
        bytes += chunk[0..<count]
    }
    return String(decoding: bytes, as: UTF8.self)
}

/// Blocks the signals that swift-service-lifecycle handles (SIGTERM, SIGINT, SIGHUP) in the
/// calling thread, and so in every thread it creates afterwards. Call first thing in `main`.
public func blockLifecycleSignals() {
    var signals = sigset_t()
    sigemptyset(&signals)
    for signal in [SIGTERM, SIGINT, SIGHUP] { sigaddset(&signals, signal) }
    pthread_sigmask(SIG_BLOCK, &signals, nil)
}
