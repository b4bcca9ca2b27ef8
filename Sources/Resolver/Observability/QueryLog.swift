// Observability/: the query log (`log.queries = true`): one line per answered query — client,
// name, type, rcode, latency, and whether it was answered at once (cache or local) or upstream —
// at most `log.queries_per_second` lines a second, so a flood cannot flood the disk; the lines
// skipped are counted in the next one. Off, it costs one branch per query.

import Logging
import NIOCore
import Synchronization

/// Writes query lines through its own logger (level info whatever `log.level` says).
public final class QueryLog: Sendable {
    private let logger: Logger
    private let limiter: Mutex<LogRateLimiter>

    public init(perSecond: Int) {
        var logger = Logger(label: "query")
        logger.logLevel = .info
        self.logger = logger
        limiter = Mutex(LogRateLimiter(perSecond: perSecond))
    }

    /// Logs one reply, when the rate allows. `client` is formatted only then.
    func record(
        reply: UnsafeRawBufferPointer, client: () -> String, transport: Transport, latency: TimeAmount?, upstream: Bool
    ) {
        let skipped: Int? = limiter.withLock { limiter in
            guard limiter.allow(nowNanoseconds: NIODeadline.now().uptimeNanoseconds) else { return nil }
            defer { limiter.resetSuppressed() }
            return limiter.suppressed
        }
        guard let skipped else { return }
        var metadata: Logger.Metadata = [
            "client": "\(client())", "transport": "\(transport.rawValue)", "source": upstream ? "upstream" : "immediate",
        ]
        if let (rcode, type) = WireNames.rcodeAndType(reply) {
            metadata["rcode"] = "\(rcode)"
            if let type, let name = try? WireNames.read(reply, at: DNSHeader.length) {
                metadata["name"] = "\(name)"
                metadata["type"] = "\(type)"
            }
        }
        if let latency { metadata["latency_us"] = "\(latency.nanoseconds / 1000)" }
        if skipped > 0 { metadata["skipped"] = "\(skipped)" }
        logger.info("query", metadata: metadata)
    }
}
