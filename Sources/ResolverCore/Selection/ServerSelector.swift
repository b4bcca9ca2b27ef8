// Selection/: which of a zone's servers gets a query, in what order the others follow, and how
// long to wait before asking the next one. Pure policy: no sockets, and time comes in as an
// argument. Upstream/ executes a plan and reports every outcome back through `record`.

import NIOCore

/// What happened when a server was asked (Knot Resolver's typed feedback, lib/selection.h).
public enum ServerFeedback: Sendable, Equatable {
    /// A valid answer after `rtt`.
    case answered(rtt: TimeAmount)
    /// Silent until the timeout.
    case timeout
    /// Answered REFUSED (a lame or unwilling server).
    case refused
    /// Answered SERVFAIL, or another rcode that says it could not resolve.
    case servFail
    /// Answers that did not match the query (wrong ID, source or question).
    case mismatched
    /// An answer that could not be parsed.
    case malformed
    /// A network error (ICMP unreachable, connection refused or reset).
    case unreachable
    /// No answer yet after `after`, so the next server was asked too (a hedge). Not a failure:
    /// the answer may still come, but the server looks slower than its estimate.
    case late(after: TimeAmount)
}

/// One query's plan: who is asked first, who follows, and when.
public struct SelectionPlan: Sendable, Equatable {
    /// Servers in the order they are to be asked; the first at once.
    public var order: [ServerAddress]
    /// A server asked in parallel with the first to refresh its statistics, or nil.
    public var probe: ServerAddress?
    /// How long to wait on `order[i]` before asking the next server too (hedging) — which one is
    /// decided then (`ServerSelector.next`). A value at or above the timeout means plain failover.
    public var hedgeDelays: [TimeAmount]

    public init(order: [ServerAddress], probe: ServerAddress? = nil, hedgeDelays: [TimeAmount]) {
        self.order = order
        self.probe = probe
        self.hedgeDelays = hedgeDelays
    }
}

/// The next server for a question already sent elsewhere, and how long to wait on it.
public struct Hedge: Sendable, Equatable {
    public var server: ServerAddress
    /// Its retransmit time: when the server after it is asked too if it stays silent.
    public var delay: TimeAmount

    public init(server: ServerAddress, delay: TimeAmount) {
        self.server = server
        self.delay = delay
    }
}

/// A registration for news of one server going down; cancelled when the question is done.
public protocol DownWatch: Sendable {
    func cancel()
}

/// The interface between the sending side and selection policy.
public protocol ServerSelector: Sendable {
    /// Plans one query to `zone`, whose servers are `servers`.
    func plan(zone: DomainName, servers: [ServerAddress], now: NIODeadline) -> SelectionPlan
    /// The best server not in `asked` by expected answer time now, for a hedge or a failover.
    func next(zone: DomainName, servers: [ServerAddress], excluding asked: Set<ServerAddress>, now: NIODeadline) -> Hedge?
    /// Reports the outcome of one attempt.
    func record(_ feedback: ServerFeedback, server: ServerAddress, zone: DomainName, now: NIODeadline)
    /// Counts an answer the client got from a server asked as a hedge or failover.
    func recordHedgeWin(server: ServerAddress, zone: DomainName)
    /// Calls `action` (once, on the reporting thread) if `server` goes down for `zone` before the
    /// watch is cancelled.
    func watchDown(server: ServerAddress, zone: DomainName, _ action: @escaping @Sendable () -> Void) -> any DownWatch
}
