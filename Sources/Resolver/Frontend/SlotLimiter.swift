// Frontend/: caps on what clients hold open at once — TCP connections (all clients together and
// each client network) and queries waiting on upstream servers (each client network) — so one
// client cannot take everything. A client is its network (ClientPrefixes: the address for IPv4,
// its /64 for IPv6 by default), so an IPv6 host cannot multiply its share by changing addresses.

import Synchronization

/// Counts things held open — TCP connections, queries waiting on upstream servers — against two
/// caps: all clients together (fixed), and each client network (given with each request, so a
/// reload can change it).
final class SlotLimiter: Sendable {
    let limit: Int
    let prefixes: ClientPrefixes
    private let open = Atomic<Int>(0)
    private let byClient = Mutex<[ClientNetwork: Int]>([:])

    init(limit: Int, prefixes: ClientPrefixes = ClientPrefixes()) {
        self.limit = limit
        self.prefixes = prefixes
    }

    /// Takes a slot for `client`; false when the total or the client network's `perClient` is
    /// reached.
    func tryAcquire(client: IPAddress?, perClient: Int) -> Bool {
        let now = open.wrappingAdd(1, ordering: .relaxed).newValue
        guard now <= limit else {
            open.wrappingSubtract(1, ordering: .relaxed)
            return false
        }
        guard let client else { return true }
        let network = prefixes.network(of: client)
        let admitted = byClient.withLock { table in
            let count = table[network, default: 0]
            guard count < perClient else { return false }
            table[network] = count + 1
            return true
        }
        if !admitted { open.wrappingSubtract(1, ordering: .relaxed) }
        return admitted
    }

    func release(client: IPAddress?) {
        open.wrappingSubtract(1, ordering: .relaxed)
        guard let client else { return }
        let network = prefixes.network(of: client)
        byClient.withLock { table in
            let count = table[network, default: 1] - 1
            table[network] = count > 0 ? count : nil
        }
    }

    /// Client networks holding at least one slot (the table's size).
    var clientCount: Int { byClient.withLock { $0.count } }
}
