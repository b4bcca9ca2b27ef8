// Start here. `ResolverApplication` turns a validated `Config` into running parts: the event
// loops, the forwarder and its server selection, the query pipeline and the DNS listeners.
// The daemon's main file only reads the config and runs this as a swift-service-lifecycle
// `Service`.

import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle

#if canImport(Glibc)
import Glibc
#endif

/// resolverd's version, as `version.bind` and `--version` report it.
public let resolverdVersion = "0.1.0"

/// The whole resolver, wired from a config.
public final class ResolverApplication: Service {
    public let config: Config
    let logger: Logger
    let group: MultiThreadedEventLoopGroup
    let pipeline: QueryPipeline
    /// Called once the listeners are bound, with their real addresses.
    let onReady: @Sendable ([ServerAddress]) -> Void

    public init(config: Config, logger: Logger, onReady: @escaping @Sendable ([ServerAddress]) -> Void = { _ in }) {
        self.config = config
        self.logger = logger
        self.onReady = onReady
        let threads = config.server.threads > 0 ? config.server.threads : System.coreCount
        group = MultiThreadedEventLoopGroup(numberOfThreads: threads)

        let timeout = TimeAmount.milliseconds(Int64(config.resolver.timeoutMs))
        let client = UpstreamClient(group: group, timeout: timeout, logger: logger)
        let forwarder = Forwarder(
            zones: Self.forwardZones(config), selector: ConfiguredOrderSelector(timeout: timeout), client: client,
            logger: logger)
        pipeline = QueryPipeline(
            access: AccessControl(allowed: config.server.allow), forwarder: forwarder,
            local: LocalAnswers(version: "resolverd \(resolverdVersion)", identity: Self.hostname()), logger: logger)
    }

    /// The configured forward zones, with `"system"` expanded to /etc/resolv.conf's servers.
    static func forwardZones(_ config: Config) -> ForwardZones {
        let system = SystemResolvers.parse(readTextFile("/etc/resolv.conf") ?? "", excluding: config.server.listen)
        return ForwardZones(config.forwards.map { ($0.zone, $0.servers + ($0.usesSystemResolvers ? system : [])) })
    }

    public func run() async throws {
        let listeners = try await DNSListeners.bind(config.server, pipeline: pipeline, group: group, logger: logger)
        logger.info(
            "listening",
            metadata: [
                "dns": "\(listeners.addresses.map(\.description).joined(separator: ","))",
                "version": "\(resolverdVersion)",
            ])
        for zone in pipeline.forwarder.zones.all {
            logger.info("forward zone", metadata: ["zone": "\(zone.zone)", "servers": "\(zone.servers.map(\.description))"])
        }
        onReady(listeners.addresses)
        // Runs until SIGTERM/SIGINT (the ServiceGroup's graceful shutdown) or cancellation.
        try? await gracefulShutdown()
        logger.info("shutting down")
        for channel in listeners.channels {
            try? await channel.close()
        }
        try? await group.shutdownGracefully()
    }

    private static func hostname() -> String {
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
