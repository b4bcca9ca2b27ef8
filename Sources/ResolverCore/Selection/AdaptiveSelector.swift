// Selection/: the thread-safe face of SelectionState for production: one short Mutex section per
// plan or outcome, the system clock's `now`, and the system CSPRNG; and the watches through which
// questions waiting on a server hear that it went down (called outside the state's lock).

import NIOCore
import Synchronization

/// Adaptive selection shared by all event loops.
public final class AdaptiveSelector: ServerSelector {
    private let state: Mutex<SelectionState>
    public let policy: SelectionPolicy
    /// Questions waiting on a server, by zone and server: at most one entry per outstanding
    /// attempt (removed when its question ends), so bounded by the queries in flight.
    private let watches = Mutex(Watches())

    struct Watches {
        var next: UInt64 = 0
        var byServer: [WatchKey: [UInt64: @Sendable () -> Void]] = [:]
    }

    struct WatchKey: Hashable {
        let zone: DomainName
        let server: ServerAddress
    }

    public init(policy: SelectionPolicy) {
        self.policy = policy
        state = Mutex(SelectionState(policy: policy))
    }

    public func plan(zone: DomainName, servers: [ServerAddress], now: NIODeadline) -> SelectionPlan {
        var random = SystemRandomNumberGenerator()
        return state.withLock { $0.plan(zone: zone, servers: servers, now: now, random: &random) }
    }

    public func next(zone: DomainName, servers: [ServerAddress], excluding asked: Set<ServerAddress>, now: NIODeadline) -> Hedge? {
        var random = SystemRandomNumberGenerator()
        return state.withLock { $0.next(zone: zone, servers: servers, excluding: asked, now: now, random: &random) }
    }

    public func record(_ feedback: ServerFeedback, server: ServerAddress, zone: DomainName, now: NIODeadline) {
        guard state.withLock({ $0.record(feedback, server: server, zone: zone, now: now) }) else { return }
        let waiting = watches.withLock { $0.byServer.removeValue(forKey: WatchKey(zone: zone, server: server)) }
        waiting?.values.forEach { $0() }
    }

    public func recordHedgeWin(server: ServerAddress, zone: DomainName) {
        state.withLock { $0.recordHedgeWin(server: server, zone: zone) }
    }

    public func watchDown(server: ServerAddress, zone: DomainName, _ action: @escaping @Sendable () -> Void) -> any DownWatch {
        let key = WatchKey(zone: zone, server: server)
        let id = watches.withLock { watches in
            watches.next &+= 1
            watches.byServer[key, default: [:]][watches.next] = action
            return watches.next
        }
        return Watch(selector: self, key: key, id: id)
    }

    /// Watches registered and not yet cancelled or fired (for tests of their bound).
    package var watchCount: Int { watches.withLock { $0.byServer.values.reduce(0) { $0 + $1.count } } }

    private func cancel(_ key: WatchKey, _ id: UInt64) {
        watches.withLock { watches in
            watches.byServer[key]?[id] = nil
            if watches.byServer[key]?.isEmpty == true { watches.byServer[key] = nil }
        }
    }

    private struct Watch: DownWatch {
        let selector: AdaptiveSelector
        let key: WatchKey
        let id: UInt64

        func cancel() { selector.cancel(key, id) }
    }

    /// The server tables' estimated memory.
    public var estimatedBytes: Int { state.withLock { $0.estimatedBytes } }

    /// Every zone's servers in selection order with their figures.
    public func report(now: NIODeadline = .now()) -> [(zone: DomainName, servers: [ServerReport])] {
        state.withLock { $0.report(now: now) }
    }
}
