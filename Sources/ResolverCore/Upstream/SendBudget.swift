// Upstream/: what one client query may still send. Recursion gives each client query one budget
// (RecursiveResolver's ResolutionBudget) shared by everything the query causes, so every packet —
// a first send, a hedge, a probe, a failover, a TCP retry after truncation, an EDNS-less retry —
// asks it first, and no transaction waits past its deadline.

import NIOCore

/// Upstream packets one client query may still send, and until when.
public protocol SendBudget: Sendable {
    /// Takes one packet from the budget; false when it is spent or the deadline has passed.
    func spend() -> Bool
    /// No packet leaves and no answer is waited for past this.
    var deadline: NIODeadline { get }
    /// Why no packet may leave any more, or nil while one may.
    func exhausted(now: NIODeadline) -> ResolutionFailure?
}
