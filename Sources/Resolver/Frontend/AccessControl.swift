// Frontend/: who may ask. Clients outside the allow list get REFUSED, so resolverd is never an
// open resolver by default (RFC 5358). Checked for every packet, so the networks are kept as
// integer masks and the check neither allocates nor formats anything.

import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// The networks allowed to query.
public struct AccessControl: Sendable {
    public let allowed: [IPNetwork]
    private let v4: [(network: UInt32, mask: UInt32)]
    private let v6: [(network: (UInt64, UInt64), mask: (UInt64, UInt64))]

    public init(allowed: [IPNetwork]) {
        self.allowed = allowed
        var v4: [(UInt32, UInt32)] = []
        var v6: [((UInt64, UInt64), (UInt64, UInt64))] = []
        for network in allowed {
            switch network.address {
            case .v4(let value):
                let mask: UInt32 = network.prefixLength == 0 ? 0 : ~0 << (32 - UInt32(network.prefixLength))
                v4.append((value & mask, mask))
            case .v6(let bytes):
                let (high, low) = Self.halves(bytes)
                let length = network.prefixLength
                let maskHigh: UInt64 = length == 0 ? 0 : length >= 64 ? ~0 : ~0 << (64 - UInt64(length))
                let maskLow: UInt64 = length <= 64 ? 0 : length == 128 ? ~0 : ~0 << (128 - UInt64(length))
                v6.append(((high & maskHigh, low & maskLow), (maskHigh, maskLow)))
            }
        }
        self.v4 = v4
        self.v6 = v6
    }

    public func permits(_ client: SocketAddress) -> Bool {
        switch client {
        case .v4(let address):
            return permits(v4: UInt32(bigEndian: address.address.sin_addr.s_addr))
        case .v6(let address):
            var raw = address.address.sin6_addr
            return withUnsafeBytes(of: &raw) { permits(v6: $0) }
        default:
            return false
        }
    }

    /// An IPv4 client, address in host byte order.
    public func permits(v4 address: UInt32) -> Bool {
        for entry in v4 where address & entry.mask == entry.network { return true }
        return false
    }

    /// An IPv6 client (16 bytes, network order). IPv4-mapped addresses are checked as IPv4.
    public func permits(v6 bytes: UnsafeRawBufferPointer) -> Bool {
        let high = UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: 0, as: UInt64.self))
        let low = UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
        if high == 0, low >> 32 == 0xFFFF { return permits(v4: UInt32(truncatingIfNeeded: low)) }
        for entry in v6 where high & entry.mask.0 == entry.network.0 && low & entry.mask.1 == entry.network.1 {
            return true
        }
        return false
    }

    private static func halves(_ bytes: [UInt8]) -> (UInt64, UInt64) {
        var high: UInt64 = 0
        var low: UInt64 = 0
        for index in 0..<8 { high = high << 8 | UInt64(bytes[index]) }
        for index in 8..<16 { low = low << 8 | UInt64(bytes[index]) }
        return (high, low)
    }
}
