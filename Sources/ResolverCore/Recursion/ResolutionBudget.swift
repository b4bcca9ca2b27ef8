// Recursion/: what one client query may still send — every upstream packet it causes, nested
// lookups included — and until when.

import NIOCore
import Synchronization

/// What one client query may still spend, shared by the nested lookups it causes: every upstream
/// packet is taken from it, and nothing leaves past its deadline.
package final class ResolutionBudget: SendBudget {
    private let count = Mutex(0)
    private let maxQueries: Int
    private let clock: ResolverClock
    /// No upstream query leaves after this, and the client gets SERVFAIL then at the latest.
    package let deadline: NIODeadline

    package init(settings: RecursionSettings, now: NIODeadline, clock: ResolverClock = .system) {
        maxQueries = settings.maxUpstreamQueries
        deadline = now + settings.deadline
        self.clock = clock
    }

    /// Takes one packet; false when the budget is spent or the deadline has passed.
    package func spend() -> Bool { spend(now: clock.now()) }

    package func spend(now: NIODeadline) -> Bool {
        guard now < deadline else { return false }
        return count.withLock { sent in
            guard sent < maxQueries else { return false }
            sent += 1
            return true
        }
    }

    /// Packets taken so far.
    package var sent: Int { count.withLock { $0 } }

    /// Why no packet may leave any more, or nil while one may.
    package func exhausted(now: NIODeadline) -> ResolutionFailure? {
        guard now < deadline else { return .deadlinePassed }
        return count.withLock { $0 < maxQueries } ? nil : .budgetSpent(maxQueries: maxQueries)
    }
}
