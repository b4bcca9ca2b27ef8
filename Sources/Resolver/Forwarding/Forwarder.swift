// Forwarding/: resolving a question by asking its forward zone's servers. The zone is the longest
// match; the servers' order, hedging and probes come from Selection/ through Upstream/.

import Logging
import NIOCore

/// The outcome of resolving one question upstream (forwarded or recursive).
public enum Resolution: Sendable {
    /// A usable answer (NOERROR or NXDOMAIN, possibly empty).
    case answer(DNSMessage)
    /// Every server failed or refused; the client gets SERVFAIL.
    case failure(ResolutionFailure)
    /// No forward zone covers the name.
    case noZone
}

/// Forwards questions to the servers of their forward zone (the zones come with each question:
/// a reload replaces them).
public struct Forwarder: Sendable {
    let transactions: UpstreamTransactions

    public init(transactions: UpstreamTransactions) {
        self.transactions = transactions
    }

    public func resolve(_ query: UpstreamQuery, zones: ForwardZones) async -> Resolution {
        await withCheckedContinuation { continuation in
            resolve(query, zones: zones) { continuation.resume(returning: $0) }
        }
    }

    /// The same with a callback, called once on the thread that decided the outcome (at once for
    /// `.noZone`).
    public func resolve(_ query: UpstreamQuery, zones: ForwardZones, completion: @escaping @Sendable (Resolution) -> Void) {
        guard let (zone, servers) = zones.zone(for: query.question.name), !servers.isEmpty else { return completion(.noZone) }
        transactions.resolve(query, zone: zone, servers: servers) { outcome in
            switch outcome {
            case .answer(let answer): completion(.answer(answer.message))
            case .failure(let reason): completion(.failure(reason))
            }
        }
    }
}
