// Frontend/: caps on what clients hold open at once — TCP connections (all clients together and
// each address) and queries waiting on upstream servers (each address) — so one client cannot
// take everything.

import Synchronization

/// Counts things held open — TCP connections, queries waiting on upstream servers — against two
/// caps: all clients together, and each client address.
final class SlotLimiter: Sendable {
    let limit: Int
    let perClient: Int
    private let open = Atomic<Int>(0)
    private let byClient = Mutex<[IPAddress: Int]>([:])

    init(limit: Int, perClient: Int) {
        self.limit = limit
        self.perClient = perClient
    }

    /// Takes a slot for `client`; false when either cap is reached (`perClient` overrides the
    /// limiter's own, for caps a reload changes).
    func tryAcquire(client: IPAddress?, perClient override: Int? = nil) -> Bool {
        let perClient = override ?? self.perClient
        let now = open.wrappingAdd(1, ordering: .relaxed).newValue
        guard now <= limit else {
            open.wrappingSubtract(1, ordering: .relaxed)
            return false
        }
        guard let client else { return true }
        let admitted = byClient.withLock { table in
            let count = table[client, default: 0]
            guard count < perClient else { return false }
            table[client] = count + 1
            return true
        }
        if !admitted { open.wrappingSubtract(1, ordering: .relaxed) }
        return admitted
    }

    func release(client: IPAddress?) {
        open.wrappingSubtract(1, ordering: .relaxed)
        guard let client else { return }
        byClient.withLock { table in
            let count = table[client, default: 1] - 1
            table[client] = count > 0 ? count : nil
        }
    }

    var current: Int { open.load(ordering: .relaxed) }
}
