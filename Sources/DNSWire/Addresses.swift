// Config/: IP addresses, server addresses (IP and port) and networks (CIDR), as plain values
// that the config, the access list and server selection share. Parsing goes through inet_pton.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An IPv4 or IPv6 address.
public enum IPAddress: Hashable, Sendable, CustomStringConvertible {
    case v4(UInt32)
    case v6([UInt8])  // 16 bytes

    /// Parses dotted-quad IPv4 or RFC 4291 IPv6 text.
    public init?(_ text: String) {
        // inet_pton reads a C string: text after a NUL would be ignored (fuzzing finding F5).
        guard !text.utf8.contains(0) else { return nil }
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            self = .v4(UInt32(bigEndian: v4.s_addr))
            return
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 {
            self = .v6(withUnsafeBytes(of: &v6) { Array($0) })
            return
        }
        return nil
    }

    /// The address in network byte order.
    public var bytes: [UInt8] {
        switch self {
        case .v4(let value): [UInt8(value >> 24), UInt8((value >> 16) & 0xFF), UInt8((value >> 8) & 0xFF), UInt8(value & 0xFF)]
        case .v6(let bytes): bytes
        }
    }

    public var isLoopback: Bool {
        switch self {
        case .v4(let value): value >> 24 == 127
        case .v6(let bytes): bytes == [UInt8](repeating: 0, count: 15) + [1]
        }
    }

    public var isV6: Bool {
        if case .v6 = self { true } else { false }
    }

    /// `0.0.0.0` or `::`: every address of the host.
    public var isUnspecified: Bool { bytes.allSatisfy { $0 == 0 } }

    /// An address that reaches this host itself: loopback or unspecified, also as an IPv4-mapped
    /// IPv6 address (::ffff:127.0.0.1).
    public var isThisHost: Bool {
        if isLoopback || isUnspecified { return true }
        guard case .v6(let bytes) = self, bytes.prefix(12).elementsEqual([UInt8](repeating: 0, count: 10) + [0xFF, 0xFF])
        else { return false }
        return bytes[12] == 127 || bytes.suffix(4).allSatisfy { $0 == 0 }
    }

    public var description: String {
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
        switch self {
        case .v4(let value):
            var address = in_addr(s_addr: value.bigEndian)
            _ = inet_ntop(AF_INET, &address, &buffer, socklen_t(buffer.count))
        case .v6(let bytes):
            var address = in6_addr()
            withUnsafeMutableBytes(of: &address) { $0.copyBytes(from: bytes) }
            _ = inet_ntop(AF_INET6, &address, &buffer, socklen_t(buffer.count))
        }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// An IP address and port: where a DNS server listens.
public struct ServerAddress: Hashable, Sendable, CustomStringConvertible {
    public var ip: IPAddress
    public var port: UInt16

    public init(ip: IPAddress, port: UInt16) {
        self.ip = ip
        self.port = port
    }

    /// Parses `192.0.2.1`, `192.0.2.1:5353`, `2001:db8::1`, `[2001:db8::1]:5353`.
    public init?(_ text: String, defaultPort: UInt16 = 53) {
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"), let ip = IPAddress(String(text[text.index(after: text.startIndex)..<close]))
            else { return nil }
            let rest = text[text.index(after: close)...]
            if rest.isEmpty {
                self.init(ip: ip, port: defaultPort)
            } else {
                guard rest.hasPrefix(":"), let port = UInt16(rest.dropFirst()) else { return nil }
                self.init(ip: ip, port: port)
            }
            return
        }
        if let ip = IPAddress(text) {  // bare IPv4 or IPv6
            self.init(ip: ip, port: defaultPort)
            return
        }
        guard let colon = text.lastIndex(of: ":"), let ip = IPAddress(String(text[..<colon])), case .v4 = ip,
            let port = UInt16(text[text.index(after: colon)...])
        else { return nil }
        self.init(ip: ip, port: port)
    }

    /// `192.0.2.1:53` or `[2001:db8::1]:53`.
    public var description: String {
        switch ip {
        case .v4: "\(ip):\(port)"
        case .v6: "[\(ip)]:\(port)"
        }
    }
}

/// An IP network in CIDR notation (`10.0.0.0/8`, `::1/128`; a bare address is a host route).
public struct IPNetwork: Hashable, Sendable, CustomStringConvertible {
    public let address: IPAddress
    public let prefixLength: Int

    public init?(_ text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count <= 2, let address = IPAddress(String(parts[0])) else { return nil }
        let maxLength = address.bytes.count * 8
        if parts.count == 2 {
            guard let length = Int(parts[1]), (0...maxLength).contains(length) else { return nil }
            prefixLength = length
        } else {
            prefixLength = maxLength
        }
        self.address = address
    }

    /// True when `ip` is inside the network. IPv4-mapped IPv6 addresses match IPv4 networks.
    public func contains(_ ip: IPAddress) -> Bool {
        var candidate = ip.bytes
        let network = address.bytes
        if candidate.count == 16, network.count == 4, candidate.prefix(12) == [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF] {
            candidate = Array(candidate.suffix(4))
        }
        guard candidate.count == network.count else { return false }
        var bits = prefixLength
        for index in 0..<network.count where bits > 0 {
            let take = min(8, bits)
            let mask = UInt8(truncatingIfNeeded: 0xFF << (8 - take))
            if candidate[index] & mask != network[index] & mask { return false }
            bits -= take
        }
        return true
    }

    public var description: String { "\(address)/\(prefixLength)" }
}
