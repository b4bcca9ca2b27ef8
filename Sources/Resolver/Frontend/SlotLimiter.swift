// Frontend/: caps on what clients hold open at once — TCP connections (all clients together and
// each address) and queries waiting on upstream servers (each address) — so one client cannot
// take everything.

import Synchronization

/// Counts things held open — TCP connections, queries waiting on upstream servers — against two
/// caps: all clients together (fixed), and each client address (given with each request, so a
/// reload can change it).
final class SlotLimiter: Sendable {
    let limit: Int
    private let open = Atomic<Int>(0)
    private let byClient = Mutex<[IPAddress: Int]>([:])

    init(limit: Int) {
        self.limit = limit
    }

    /// Takes a slot for `client`; false when the total or the client's `perClient` is reached.
    func tryAcquire(client: IPAddress?, perClient: Int) -> Bool {
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
}
