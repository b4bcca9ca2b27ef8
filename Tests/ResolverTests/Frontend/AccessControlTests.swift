// Frontend/AccessControl: the allow list, as integer masks, for IPv4, IPv6 and IPv4-mapped clients.

import NIOCore
import Testing

@testable import Resolver

@Suite("AccessControl")
struct AccessControlTests {
    static func control(_ networks: [String]) -> AccessControl {
        AccessControl(allowed: networks.compactMap(IPNetwork.init))
    }

    static func permits(_ control: AccessControl, _ ip: String) throws -> Bool {
        control.permits(try SocketAddress(ipAddress: ip, port: 5353))
    }

    @Test(
        "the default allows loopback only",
        arguments: [
            ("127.0.0.1", true), ("127.255.255.254", true), ("::1", true), ("::ffff:127.0.0.9", true),
            ("128.0.0.1", false), ("10.0.0.1", false), ("::2", false), ("2001:db8::1", false), ("::ffff:10.0.0.1", false),
        ])
    func defaults(ip: String, allowed: Bool) throws {
        #expect(try Self.permits(Self.control(["127.0.0.0/8", "::1/128"]), ip) == allowed)
    }

    @Test(
        "prefixes of every length are honoured",
        arguments: [
            ("10.1.2.3", true), ("10.255.0.0", true), ("11.0.0.0", false), ("192.168.7.200", true), ("192.168.6.200", false),
            ("203.0.113.9", true), ("203.0.113.10", false), ("2001:db8:1::5", true), ("2001:db9::5", false),
            ("fd00::1:8000:0:0:1", true), ("fd00:0:0:1:7fff::1", false), ("fe80::1", false),
        ])
    func prefixes(ip: String, allowed: Bool) throws {
        let control = Self.control(["10.0.0.0/8", "192.168.7.0/24", "203.0.113.9", "2001:db8::/32", "fd00:0:0:1:8000::/65"])
        #expect(try Self.permits(control, ip) == allowed)
    }

    @Test("/0 allows everyone of its family; an empty list allows nobody")
    func extremes() throws {
        #expect(try Self.permits(Self.control(["0.0.0.0/0"]), "198.51.100.1"))
        #expect(try !Self.permits(Self.control(["0.0.0.0/0"]), "2001:db8::1"))
        #expect(try Self.permits(Self.control(["::/0"]), "2001:db8::1"))
        #expect(try !Self.permits(Self.control([]), "127.0.0.1"))
    }
}
