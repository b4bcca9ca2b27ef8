// Selection/: the thread-safe face of SelectionState for production: one short Mutex section per
// plan or outcome, the system clock's `now`, and the system CSPRNG.

import NIOCore
import Synchronization

/// Adaptive selection shared by all event loops.
public final class AdaptiveSelector: ServerSelector {
    private let state: Mutex<SelectionState>
    public let policy: SelectionPolicy

    public init(policy: SelectionPolicy) {
        self.policy = policy
        state = Mutex(SelectionState(policy: policy))
    }

    public func plan(zone: DomainName, servers: [ServerAddress], now: NIODeadline) -> SelectionPlan {
        var random = SystemRandomNumberGenerator()
        return state.withLock { $0.plan(zone: zone, servers: servers, now: now, random: &random) }
    }

    public func record(_ feedback: ServerFeedback, server: ServerAddress, zone: DomainName, now: NIODeadline) {
        state.withLock { $0.record(feedback, server: server, zone: zone, now: now) }
    }

    /// The server tables' estimated memory.
    public var estimatedBytes: Int { state.withLock { $0.estimatedBytes } }

    /// Every zone's servers in selection order with their figures.
    public func report(now: NIODeadline = .now()) -> [(zone: DomainName, servers: [ServerReport])] {
        state.withLock { $0.report(now: now) }
    }
}
