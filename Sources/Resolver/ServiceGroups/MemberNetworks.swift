// ServiceGroups/: where members may be (`registry.allowed_networks`). Health checks connect to a
// member's address, so whoever may register could otherwise aim resolverd's probes anywhere:
// at a cloud metadata service (169.254.169.254), at loopback-only daemons, at multicast groups.
// Registrations outside the allowed networks are refused (400, field `address`) before any check
// can run, stored members outside them are skipped at load, and the checker never probes one.
// By default the allowed networks are those of the host's own non-loopback interfaces. Loopback,
// link-local, multicast, broadcast and unspecified addresses are never allowed by default, and a
// configured network admits them only when it lies inside their range (`127.0.0.0/8` admits
// 127.0.0.1; `0.0.0.0/0` does not).

import Logging

#if canImport(Glibc)
import Glibc
#endif

/// The networks members may be registered in.
public struct MemberNetworks: Sendable, Equatable, CustomStringConvertible {
    public let networks: [IPNetwork]
    /// Configured (`registry.allowed_networks`) rather than read from the interfaces.
    public let configured: Bool

    /// Ranges that need a configured network inside them, with what they are called.
    static let special: [(network: IPNetwork, name: String)] = [
        ("127.0.0.0/8", "loopback"), ("169.254.0.0/16", "link-local"), ("224.0.0.0/4", "multicast"),
        ("0.0.0.0/8", "unspecified"), ("255.255.255.255/32", "broadcast"), ("::1/128", "loopback"),
        ("fe80::/10", "link-local"), ("ff00::/8", "multicast"), ("::/128", "unspecified"),
    ].compactMap { text, name in IPNetwork(text).map { ($0, name) } }

    public init(networks: [IPNetwork], configured: Bool) {
        self.networks = networks
        self.configured = configured
    }

    /// `registry.allowed_networks` when set, else the host's interfaces' networks.
    public init(_ settings: Config.Registry) {
        if let networks = settings.allowedNetworks {
            self.init(networks: networks, configured: true)
        } else {
            self.init(networks: Self.interfaceNetworks(), configured: false)
        }
    }

    /// Why `ip` may not be a member, or nil when it may.
    public func refusal(_ ip: IPAddress) -> String? {
        let address = Self.unmapped(ip)
        if let special = Self.special.first(where: { $0.network.contains(address) }) {
            let admitted =
                configured
                && networks.contains {
                    $0.contains(address) && $0.prefixLength >= special.network.prefixLength
                        && special.network.contains($0.address)
                }
            return admitted
                ? nil
                : "\(ip) is a \(special.name) address; registry.allowed_networks must list its range (like \(special.network)) to allow it"
        }
        guard networks.contains(where: { $0.contains(address) }) else {
            return "\(ip) is outside registry.allowed_networks"
                + (configured ? "" : " (by default the networks of this host's interfaces)")
        }
        return nil
    }

    /// Whether `ip` may be a member.
    public func admits(_ ip: IPAddress) -> Bool { refusal(ip) == nil }

    public var description: String { networks.map(\.description).joined(separator: ",") }

    /// An IPv4-mapped IPv6 address (`::ffff:169.254.169.254`) as the IPv4 address it reaches.
    static func unmapped(_ ip: IPAddress) -> IPAddress {
        guard case .v6(let bytes) = ip, bytes.count == 16, bytes.prefix(12) == [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF]
        else { return ip }
        return .v4(bytes.suffix(4).reduce(UInt32(0)) { $0 << 8 | UInt32($1) })
    }

    /// The networks of this host's interfaces that are up and not loopback (getifaddrs).
    static func interfaceNetworks() -> [IPNetwork] {
        var list: UnsafeMutablePointer<ifaddrs>? = nil
        guard getifaddrs(&list) == 0 else { return [] }
        defer { freeifaddrs(list) }
        var networks: [IPNetwork] = []
        var cursor = list
        while let entry = cursor?.pointee {
            cursor = entry.ifa_next
            guard entry.ifa_flags & UInt32(IFF_UP) != 0, entry.ifa_flags & UInt32(IFF_LOOPBACK) == 0,
                let address = entry.ifa_addr.flatMap(Self.bytes), let mask = entry.ifa_netmask.flatMap(Self.bytes),
                address.count == mask.count
            else { continue }
            let prefix = mask.reduce(0) { $0 + $1.nonzeroBitCount }
            let ip: IPAddress =
                address.count == 4 ? .v4(address.reduce(UInt32(0)) { $0 << 8 | UInt32($1) }) : .v6(address)
            if let network = IPNetwork("\(ip)/\(prefix)"), !networks.contains(network) { networks.append(network) }
        }
        return networks
    }

    /// The address bytes of an AF_INET or AF_INET6 socket address.
    private static func bytes(_ pointer: UnsafeMutablePointer<sockaddr>) -> [UInt8]? {
        switch Int32(pointer.pointee.sa_family) {
        case AF_INET:
            return pointer.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { inet in
                withUnsafeBytes(of: inet.pointee.sin_addr) { Array($0) }
            }
        case AF_INET6:
            return pointer.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { inet6 in
                withUnsafeBytes(of: inet6.pointee.sin6_addr) { Array($0) }
            }
        default:
            return nil
        }
    }
}

/// A store whose stored members outside the allowed networks are skipped at load (and logged):
/// they stay on disk, are not answered and never checked. Saves pass through.
struct AdmittingStore: RegistryStore {
    let store: any RegistryStore
    let networks: MemberNetworks
    let logger: Logger

    func loadAll() async throws(RegistryError) -> StoredMembers {
        var stored = try await store.loadAll()
        stored.members = stored.members.filter { Self.admits($0, networks: networks, logger: logger) }
        return stored
    }

    /// Whether a stored member lies in `networks`; one that does not is logged as skipped.
    static func admits(_ member: Member, networks: MemberNetworks, logger: Logger) -> Bool {
        guard let refusal = networks.refusal(member.address) else { return true }
        logger.warning(
            "stored member skipped", metadata: ["group": "\(member.group)", "id": "\(member.id)", "reason": "\(refusal)"])
        return false
    }

    func save(_ changes: [RegistryChange]) async throws(RegistryError) { try await store.save(changes) }
}
