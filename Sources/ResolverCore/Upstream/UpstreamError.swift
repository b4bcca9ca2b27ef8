// Upstream/: sending queries to servers. This file owns the error type of the module line.

/// Why a query to one upstream server produced no usable answer.
public enum UpstreamError: Error, Sendable, Equatable, CustomStringConvertible {
    case timeout
    /// ICMP unreachable, connection refused or reset, or a socket that could not be opened.
    case unreachable(String)
    /// The answer could not be parsed.
    case malformed(String)
    /// The query could not be encoded.
    case badQuery(String)
    /// An answer the zone's servers may not give (recursion: not authoritative, an upward
    /// referral): a lame server.
    case lame
    /// Not sent: the client query's budget of upstream packets is spent, or its deadline passed.
    case overBudget

    public var description: String {
        switch self {
        case .timeout: "timeout"
        case .unreachable(let why): "unreachable: \(why)"
        case .malformed(let why): "malformed answer: \(why)"
        case .badQuery(let why): "query could not be built: \(why)"
        case .lame: "lame answer (not authoritative for the zone)"
        case .overBudget: "not sent: the client query's upstream budget is spent"
        }
    }

    /// The feedback this error means for server selection; nil when the server was not asked.
    package var feedback: ServerFeedback? {
        switch self {
        case .timeout: .timeout
        case .unreachable, .badQuery: .unreachable
        case .malformed: .malformed
        case .lame: .refused
        case .overBudget: nil
        }
    }
}
