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
        if reply.count >= DNSHeader.length {
            metadata["rcode"] = "\(ResponseCode(rawValue: UInt16(reply[3] & 0x0F)))"
            if reply[4] != 0 || reply[5] != 0, let name = try? WireNames.read(reply, at: DNSHeader.length),
                let end = try? WireNames.skip(reply, at: DNSHeader.length), end + 2 <= reply.count
            {
                metadata["name"] = "\(name)"
                metadata["type"] = "\(RecordType(rawValue: UInt16(reply[end]) << 8 | UInt16(reply[end + 1])))"
            }
        }
        if let latency { metadata["latency_us"] = "\(latency.nanoseconds / 1000)" }
        if skipped > 0 { metadata["skipped"] = "\(skipped)" }
        logger.info("query", metadata: metadata)
    }
}
