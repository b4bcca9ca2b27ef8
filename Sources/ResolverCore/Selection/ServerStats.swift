// Selection/: what is known about one server of one zone. State is an enum, not magic numbers:
// never measured, alive with an RTT estimate, or down until a time.

import NIOCore

/// A server's health as selection sees it.
public enum ServerHealth: Sendable, Equatable {
    /// No measurement yet (or forgotten after `expiry`).
    case unknown
    /// Answering; ordered by its estimate.
    case alive(RTTEstimate)
    /// Failed; only probes reach it until `until`, and it keeps its penalised estimate.
    case down(until: NIODeadline, estimate: RTTEstimate?)
}

/// Typed error counters (Knot Resolver's feedback kinds).
public struct ServerErrors: Sendable, Equatable {
    public var timeouts = 0
    public var refused = 0
    public var servFail = 0
    public var mismatched = 0
    public var malformed = 0
    public var unreachable = 0

    public var total: Int { timeouts + refused + servFail + mismatched + malformed + unreachable }
}

/// How often a server took part in hedging.
public struct HedgeCounts: Sendable, Equatable {
    /// Times it stayed silent past its retransmit time, so another server was asked too.
    public var late = 0
    /// Times it was asked after another server of the question was late, failed or went down.
    public var asked = 0
    /// Times it was asked that way and its answer was the one the client got.
    public var won = 0

    public init() {}
}

/// Statistics of one server within one zone.
public struct ServerStats: Sendable, Equatable {
    public var health: ServerHealth = .unknown
    /// When the server was last asked (or answered).
    public var lastUsed: NIODeadline
    /// Queries sent (first sends, hedges and probes).
    public var queries = 0
    /// Failures since the last good answer; sets the back-off.
    public var consecutiveFailures = 0
    /// Timeouts of queries sent before this are old news: the server has answered a later
    /// query (it is not dead, that one was lost), or it was already marked down (the failure is
    /// known; only a probe sent since may double the back-off).
    public var newsSince: NIODeadline?
    /// When a probe went to this server that has not been heard back from yet: no second probe
    /// of the same kind goes out while it is outstanding (up to the timeout).
    public var probeSent: NIODeadline?
    /// When the oldest query that went past this server's retransmit time without an answer was
    /// sent (a hedge went to another server then); cleared by its next answer. While set, the
    /// server is ranked as if it answered no sooner than twice the time since (see
    /// `SelectionState.expectedAnswerTime`), without touching its RTT estimate: lateness moves it
    /// down the order quickly but does not stretch its retransmit time.
    public var lateSince: NIODeadline?
    public var errors = ServerErrors()
    /// Hedge decisions involving this server, for `dig-lite servers` and /metrics.
    public var hedging = HedgeCounts()

    public init(now: NIODeadline) { lastUsed = now }

    /// The estimate, whatever the health.
    public var estimate: RTTEstimate? {
        switch health {
        case .unknown: nil
        case .alive(let estimate): estimate
        case .down(_, let estimate): estimate
        }
    }

    /// Whether a probe to it is still outstanding.
    public func isProbed(at now: NIODeadline, timeout: TimeAmount) -> Bool {
        probeSent.map { now - $0 < timeout } ?? false
    }

    public func isDown(at now: NIODeadline) -> Bool {
        if case .down(let until, _) = health { return now < until }
        return false
    }
}
