// Config/Addresses: IP addresses, server addresses with ports, and networks with `contains`.

import Testing

@testable import Resolver

@Suite("IPAddress")
struct IPAddressTests {
    @Test func parsesIPv4() throws {
        let address = try #require(IPAddress("192.0.2.1"))
        #expect(address == .v4(0xC000_0201))
        #expect(address.bytes == [192, 0, 2, 1])
        #expect(address.description == "192.0.2.1")
        #expect(!address.isLoopback)
    }

    @Test func parsesIPv6() throws {
        let address = try #require(IPAddress("2001:DB8::1"))
        #expect(address.bytes == [0x20, 0x01, 0x0D, 0xB8] + [UInt8](repeating: 0, count: 11) + [1])
        #expect(address.description == "2001:db8::1")
        #expect(address == IPAddress("2001:0db8:0000:0000:0000:0000:0000:0001"))
    }

    @Test func parsesIPv4MappedIPv6() throws {
        let address = try #require(IPAddress("::ffff:192.0.2.1"))
        #expect(address.bytes == [UInt8](repeating: 0, count: 10) + [0xFF, 0xFF, 192, 0, 2, 1])
        #expect(address.description == "::ffff:192.0.2.1")
        #expect(address != IPAddress("192.0.2.1"))
    }

    @Test(
        "loopback",
        arguments: [
            ("127.0.0.1", true), ("127.255.0.9", true), ("::1", true), ("128.0.0.1", false),
            ("::", false), ("::2", false), ("0.0.0.0", false), ("10.0.0.1", false),
        ])
    func knowsLoopback(text: String, loopback: Bool) throws {
        #expect(try #require(IPAddress(text)).isLoopback == loopback)
    }

    @Test(
        "descriptions round-trip",
        arguments: [
            "0.0.0.0", "255.255.255.255", "10.1.2.3", "::", "::1", "fe80::1",
            "2001:db8:1:2:3:4:5:6",
        ])
    func roundTripsDescriptions(text: String) throws {
        let address = try #require(IPAddress(text))
        #expect(address.description == text)
        #expect(IPAddress(address.description) == address)
    }

    @Test(
        "not addresses",
        arguments: [
            "", "1.2.3", "1.2.3.4.5", "256.1.1.1", "1.2.3.-4", "example.com", "1.2.3.4 ",
            " 1.2.3.4", "::g", "1:2:3:4:5:6:7:8:9", "1::2::3", "[::1]", "1.2.3.4/32",
        ])
    func rejectsNonAddresses(text: String) {
        #expect(IPAddress(text) == nil)
    }
}

@Suite("ServerAddress")
struct ServerAddressTests {
    @Test(
        "valid",
        arguments: [
            ("1.2.3.4", "1.2.3.4", 53), ("1.2.3.4:5353", "1.2.3.4", 5353), ("1.2.3.4:0", "1.2.3.4", 0),
            ("1.2.3.4:65535", "1.2.3.4", 65535), ("::1", "::1", 53), ("[::1]:53", "::1", 53), ("[::1]", "::1", 53),
            ("[2001:db8::1]:5353", "2001:db8::1", 5353), ("2001:db8::1", "2001:db8::1", 53),
            // A bare IPv6 address may end in a group that looks like a port: it is the address.
            ("::1:53", "::1:53", 53),
        ] as [(String, String, UInt16)])
    func parses(text: String, ip: String, port: UInt16) throws {
        let address = try #require(ServerAddress(text))
        #expect(address.ip == IPAddress(ip))
        #expect(address.port == port)
    }

    @Test func usesTheDefaultPort() throws {
        #expect(ServerAddress("192.0.2.1", defaultPort: 853)?.port == 853)
        #expect(ServerAddress("[::1]", defaultPort: 853)?.port == 853)
        #expect(ServerAddress("::1", defaultPort: 853)?.port == 853)
        #expect(ServerAddress("192.0.2.1:53", defaultPort: 853)?.port == 53)
    }

    @Test(
        "invalid",
        arguments: [
            "", ":53", "1.2.3.4:", "1.2.3.4:65536", "1.2.3.4:99999", "1.2.3.4:-1", "1.2.3.4:abc", "1.2.3.4:53:53",
            "localhost", "localhost:53", "[::1", "[::1]:", "[::1]x", "[::1]53", "[::1]:70000", "[]:53", "[nonsense]:53",
            "1.2.3:53", "300.1.1.1", "example.com:53",
        ])
    func rejects(text: String) {
        #expect(ServerAddress(text) == nil)
    }

    @Test(
        "description and round trip",
        arguments: [
            ("192.0.2.1", "192.0.2.1:53"), ("192.0.2.1:5353", "192.0.2.1:5353"), ("::1", "[::1]:53"),
            ("[2001:DB8::1]:853", "[2001:db8::1]:853"),
        ])
    func describes(text: String, description: String) throws {
        let address = try #require(ServerAddress(text))
        #expect(address.description == description)
        #expect(ServerAddress(address.description) == address)
    }
}

@Suite("IPNetwork")
struct IPNetworkTests {
    private func ip(_ text: String) throws -> IPAddress { try #require(IPAddress(text)) }

    @Test(
        "membership",
        arguments: [
            ("10.0.0.0/8", "10.1.2.3", true), ("10.0.0.0/8", "10.255.255.255", true), ("10.0.0.0/8", "11.0.0.0", false),
            ("10.0.0.0/8", "9.255.255.255", false),
            ("192.168.1.0/24", "192.168.1.0", true), ("192.168.1.0/24", "192.168.1.255", true),
            ("192.168.1.0/24", "192.168.2.0", false),
            ("192.0.2.128/25", "192.0.2.127", false), ("192.0.2.128/25", "192.0.2.128", true),
            ("172.16.0.0/12", "172.31.255.255", true), ("172.16.0.0/12", "172.32.0.0", false),
            ("172.16.0.0/12", "172.15.255.255", false),
            ("192.0.2.1", "192.0.2.1", true), ("192.0.2.1", "192.0.2.2", false), ("192.0.2.1/32", "192.0.2.1", true),
            ("10.1.2.3/8", "10.9.9.9", true),  // host bits in the network are ignored
            ("0.0.0.0/0", "1.2.3.4", true), ("0.0.0.0/0", "255.255.255.255", true), ("0.0.0.0/0", "::1", false),
            ("::/0", "::1", true), ("::/0", "2001:db8::1", true), ("::/0", "1.2.3.4", false),
            ("::1/128", "::1", true), ("::1/128", "::2", false), ("::1", "::1", true),
            ("2001:db8::/32", "2001:db8:ffff::1", true), ("2001:db8::/32", "2001:db9::", false),
            ("2001:db8::/33", "2001:db8:7fff::", true), ("2001:db8::/33", "2001:db8:8000::", false),
            ("fe80::/10", "febf::1", true), ("fe80::/10", "fec0::1", false),
            // IPv4-mapped IPv6 clients (a dual-stack socket) match IPv4 networks.
            ("127.0.0.0/8", "::ffff:127.0.0.1", true), ("127.0.0.0/8", "::ffff:10.0.0.1", false),
            ("0.0.0.0/0", "::ffff:1.2.3.4", true), ("192.0.2.0/24", "::ffff:192.0.2.77", true),
            // …but IPv4-compatible (deprecated) and other IPv6 addresses do not.
            ("127.0.0.0/8", "::127.0.0.1", false), ("127.0.0.0/8", "64:ff9b::127.0.0.1", false),
            // An IPv4 client never matches an IPv6 network.
            ("::ffff:0:0/96", "127.0.0.1", false),
        ])
    func containment(network: String, address: String, expected: Bool) throws {
        let network = try #require(IPNetwork(network))
        #expect(network.contains(try ip(address)) == expected)
    }

    @Test func parsesPrefixes() throws {
        let v4 = try #require(IPNetwork("10.0.0.0/8"))
        #expect(v4.address == (try ip("10.0.0.0")))
        #expect(v4.prefixLength == 8)
        #expect(v4.description == "10.0.0.0/8")
        #expect(IPNetwork("192.0.2.1")?.prefixLength == 32)
        #expect(IPNetwork("::1")?.prefixLength == 128)
        #expect(IPNetwork("::/0")?.prefixLength == 0)
        #expect(IPNetwork("2001:DB8::/32")?.description == "2001:db8::/32")
    }

    @Test(
        "invalid networks",
        arguments: [
            "", "/8", "10.0.0.0/", "10.0.0.0/33", "10.0.0.0/-1", "10.0.0.0/a", "10.0.0.0/8/8", "::/129", "10/8", "any",
            "10.0.0.0 /8", "[::1]/128",
        ])
    func rejects(text: String) {
        #expect(IPNetwork(text) == nil)
    }
}
