// Frontend/: which clients count as one. One host with IPv6 usually holds a whole /64 (privacy
// addresses, SLAAC), so a cap keyed by the single address is a cap an attacker can multiply by
// 2^64; caps and rate limits count a client's network instead: a prefix of the address.

/// A client's network: its family and the prefix bits (an IPv6 prefix is at most 64 bits).
struct ClientNetwork: Hashable, Sendable {
    let isIPv6: Bool
    let bits: UInt64
}

/// How many leading bits of a client's address make its network.
public struct ClientPrefixes: Sendable, Equatable {
    /// Bits of an IPv4 address (8–32).
    public var ipv4: Int
    /// Bits of an IPv6 address (16–64; the interface identifier never counts).
    public var ipv6: Int

    public init(ipv4: Int = 32, ipv6: Int = 64) {
        self.ipv4 = ipv4
        self.ipv6 = ipv6
    }

    /// The network `address` belongs to.
    func network(of address: IPAddress) -> ClientNetwork {
        switch address {
        case .v4(let value):
            let bits = max(0, min(32, ipv4))
            let mask: UInt32 = bits == 0 ? 0 : ~UInt32(0) << (32 - bits)
            return ClientNetwork(isIPv6: false, bits: UInt64(value & mask))
        case .v6(let bytes):
            let bits = max(0, min(64, ipv6))
            let high = bytes.prefix(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            let mask: UInt64 = bits == 0 ? 0 : ~UInt64(0) << (64 - bits)
            return ClientNetwork(isIPv6: true, bits: high & mask)
        }
    }
}
