// Forwarding/: which upstream servers serve which domain. The longest matching zone wins, so
// `corp.example.` can go to internal servers while `.` goes elsewhere.

/// The forward zones, looked up by name.
public struct ForwardZones: Sendable {
    private var servers: [DomainName: [ServerAddress]] = [:]

    public init(_ zones: [(zone: DomainName, servers: [ServerAddress])]) {
        for entry in zones { servers[entry.zone.lowercased] = entry.servers }
    }

    /// The closest enclosing forward zone of `name` and its servers, or nil when none covers it.
    public func zone(for name: DomainName) -> (zone: DomainName, servers: [ServerAddress])? {
        var candidate: DomainName? = name.lowercased
        while let current = candidate {
            if let found = servers[current] { return (current, found) }
            candidate = current.parent
        }
        return nil
    }

    public var isEmpty: Bool { servers.isEmpty }

    /// Every zone and its servers, in canonical order.
    public var all: [(zone: DomainName, servers: [ServerAddress])] {
        servers.keys.sorted().compactMap { zone in servers[zone].map { (zone, $0) } }
    }
}

/// Reads `nameserver` lines from a resolv.conf (for `servers = ["system"]`).
public enum SystemResolvers {
    /// The nameservers in `text`, minus `excluding` (our own listen addresses, to avoid a loop).
    /// A wildcard listen address (`0.0.0.0`, `::`) also excludes loopback nameservers on its port.
    public static func parse(_ text: String, excluding: [ServerAddress]) -> [ServerAddress] {
        text.split(separator: "\n").compactMap { line -> ServerAddress? in
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard fields.count >= 2, fields[0] == "nameserver",
                let ip = IPAddress(String(fields[1]).split(separator: "%").first.map(String.init) ?? "")
            else { return nil }
            let address = ServerAddress(ip: ip, port: 53)
            let isOwn = excluding.contains {
                $0 == address || ($0.port == address.port && $0.ip.isUnspecified && address.ip.isLoopback)
            }
            return isOwn ? nil : address
        }
    }
}
