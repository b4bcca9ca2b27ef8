// Cache/: coalescing of identical misses. The first query for a key resolves it; every query
// for the same key arriving meanwhile waits for that result instead of asking upstream again.

import Synchronization

/// Runs at most one piece of work per key at a time and shares its result with late comers.
public final class Coalescer<Key: Hashable & Sendable, Value: Sendable>: Sendable {
    private let waiting = Mutex<[Key: [CheckedContinuation<Value?, Never>]]>([:])

    public init() {}

    /// The result of `work` for `key`: computed here if no other caller is computing it, else
    /// the other caller's result.
    public func run(_ key: Key, _ work: () async -> Value) async -> Value {
        // One critical section decides: join a computation in flight, or become its leader.
        let joined: Value? = await withCheckedContinuation { continuation in
            let leader = waiting.withLock { table -> Bool in
                if table[key] != nil {
                    table[key, default: []].append(continuation)
                    return false
                }
                table[key] = []
                return true
            }
            if leader { continuation.resume(returning: nil) }
        }
        if let joined { return joined }
        let value = await work()
        let waiters = waiting.withLock { $0.removeValue(forKey: key) ?? [] }
        for waiter in waiters { waiter.resume(returning: value) }
        return value
    }

    /// Keys being computed now.
    public var inFlight: Int { waiting.withLock { $0.count } }

    /// Callers waiting on `key`'s computation (not counting the one computing it).
    public func waiterCount(_ key: Key) -> Int { waiting.withLock { $0[key]?.count ?? 0 } }
}
