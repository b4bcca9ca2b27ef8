// Cache/: coalescing of identical misses. The first query for a key resolves it; every query
// for the same key arriving meanwhile waits for that result instead of asking upstream again.

import Synchronization

/// Runs at most one piece of work per key at a time and shares its result with late comers.
public final class Coalescer<Key: Hashable & Sendable, Value: Sendable>: Sendable {
    /// Keys being computed, each with the callers waiting for its result.
    private let waiting = Mutex<[Key: [@Sendable (Value) -> Void]]>([:])

    public init() {}

    /// The result of `work` for `key`: computed here if no other caller is computing it, else
    /// the other caller's result.
    public func run(_ key: Key, _ work: () async -> Value) async -> Value {
        let joined: Value? = await withCheckedContinuation { continuation in
            if lead(key, orWait: { continuation.resume(returning: $0) }) { continuation.resume(returning: nil) }
        }
        if let joined { return joined }
        let value = await work()
        finish(key, value)
        return value
    }

    /// The same with callbacks: `completion` gets the result of `work` for `key` — started here
    /// (and handed the callback that ends it) if no other caller is computing it — on the thread
    /// that finished the work. No task and no suspension: the forwarding miss path.
    public func run(
        _ key: Key, work: (@escaping @Sendable (Value) -> Void) -> Void, completion: @escaping @Sendable (Value) -> Void
    ) {
        guard lead(key, orWait: completion) else { return }
        work { [self] value in
            finish(key, value)
            completion(value)
        }
    }

    /// One critical section decides: true when the caller is to compute `key` (nobody is), else
    /// `waiter` joins the computation in flight and gets its result.
    private func lead(_ key: Key, orWait waiter: @escaping @Sendable (Value) -> Void) -> Bool {
        waiting.withLock { table in
            if table[key] != nil {
                table[key, default: []].append(waiter)
                return false
            }
            table[key] = []
            return true
        }
    }

    /// Hands `value` to everyone who joined `key`'s computation, and ends it.
    private func finish(_ key: Key, _ value: Value) {
        let waiters = waiting.withLock { $0.removeValue(forKey: key) ?? [] }
        for waiter in waiters { waiter(value) }
    }

    /// Keys being computed now.
    public var inFlight: Int { waiting.withLock { $0.count } }

    /// Callers waiting on `key`'s computation (not counting the one computing it).
    public func waiterCount(_ key: Key) -> Int { waiting.withLock { $0[key]?.count ?? 0 } }
}
