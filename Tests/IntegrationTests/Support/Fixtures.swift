// Support: the test zone and helpers to start fake upstream servers on loopback addresses.

import FakeDNS
import Resolver
import Testing

enum Fixtures {
    /// A zone that only the fake upstream servers know.
    static let zone: [String] = [
        "example.test. 300 IN SOA ns.example.test. admin.example.test. 1 3600 600 86400 60",
        "www.example.test. 300 IN A 192.0.2.10",
        "www.example.test. 300 IN AAAA 2001:db8::10",
        "alias.example.test. 300 IN CNAME www.example.test.",
        "mail.example.test. 300 IN MX 10 www.example.test.",
    ] + (1...30).map { "big.example.test. 300 IN TXT \"record \($0) \(String(repeating: "x", count: 60))\"" }

    /// A second zone, for forward-zone routing.
    static let corpZone: [String] = [
        "corp.test. 300 IN SOA ns.corp.test. admin.corp.test. 1 3600 600 86400 60",
        "db.corp.test. 300 IN A 198.51.100.7",
    ]

    /// Starts a fake server on its own 127.0.0.x address (x from 2 to 254, random) with `zone`.
    static func upstream(_ zone: [String] = Fixtures.zone, behavior: FakeBehavior = FakeBehavior()) async throws
        -> (FakeDNSServer, ServerAddress)
    {
        let server = try FakeDNSServer(zone: zone, behavior: behavior)
        let host = "127.0.\(Int.random(in: 1...254)).\(Int.random(in: 2...254))"
        return (server, try await server.start(host: host))
    }

    static func behavior(_ configure: (inout FakeBehavior) -> Void) -> FakeBehavior {
        var behavior = FakeBehavior()
        configure(&behavior)
        return behavior
    }
}

/// The A records' addresses in `message`'s answer section, as text.
func addresses(in message: DNSMessage?) -> [String] {
    (message?.answers ?? []).filter { $0.type == .a || $0.type == .aaaa }.map(DNSCodec.rdataPresentation(of:))
}

/// A query for `name`/`type` with a random ID.
func query(_ name: String, _ type: RecordType = .a, edns: Bool = true) throws -> DNSMessage {
    DNSMessage.query(
        Question(name: try #require(DomainName(name)), type: type), id: UInt16.random(in: 0...UInt16.max), edns: edns)
}
