// Support: a small DNS hierarchy for the recursion tests — a root, two TLDs and zones below
// them, each zone on its own authoritative server at 127.R.S.x port 53 (R.S random per
// hierarchy, so tests can run side by side). The same zones are served either by in-process
// FakeDNSServers (with misbehaviour: a lame server, an upward referral, a poisoning attempt) or
// by real NSD processes for interoperability.
//
//   .            root (1)      test. → ns1.test (2), lab. → ns1.lab (3)
//   test.        (2)           inb.test. → ns1.inb.test (4, glue)
//                              outb.test. → x1/x2.hosts.lab (5, out of bailiwick: no glue)
//                              lame.test. → ns1 (7: REFUSED), ns2 (8: upward referral), ns3 (9: good)
//                              fast.test. → ns1/ns2/ns3.fast.test (10, 11, 12: delays set by tests)
//                              loop1.test. → ns.loop2.test, loop2.test. → ns.loop1.test (no glue)
//   lab.         (3)           hosts.lab. → ns1.hosts.lab (6)
//   inb.test.    (4)           www A; start CNAME mid.hosts.lab; d DNAME hosts.lab; a.b.c.deep A;
//                              every answer carries a forged `www.hosts.lab. A 6.6.6.6` (fakes only)
//   hosts.lab.   (6)           www A; mid CNAME end.outb.test; x1, x2 A → 5
//   outb.test.   (5)           www A; end A

import FakeDNS
import Foundation
import Resolver
import Testing

/// One authoritative server of the hierarchy.
struct HierarchyServer {
    /// The last octet of its address.
    let host: Int
    let records: [String]
    var behavior = FakeBehavior()
}

/// The hierarchy's addresses and zones.
struct HierarchyLayout {
    /// `127.R.S.`
    let prefix: String

    init() {
        prefix = "127.\(Int.random(in: 100...199)).\(Int.random(in: 0...255))."
    }

    func address(_ host: Int) -> String { prefix + String(host) }

    /// The forged record the inb.test. server slips into every answer.
    static let poison = "www.hosts.lab. 86400 IN A 6.6.6.6"

    func soa(_ zone: String, minimum: Int = 300) -> String {
        "\(zone) 3600 IN SOA \(zone == "." ? "a.root-servers.test." : "ns1.\(zone)") nobody.invalid. 1 3600 1200 604800 \(minimum)"
    }

    var servers: [HierarchyServer] {
        let a = address
        var lame = FakeBehavior()
        lame.rcode = .refused
        var upward = FakeBehavior()
        upward.upwardReferral = true
        var poisoning = FakeBehavior()
        poisoning.extraAnswers = [(try? DNSCodec.record(fromPresentation: Self.poison))].compactMap { $0 }
        var wildcard = FakeBehavior()
        wildcard.wildcardA = [192, 0, 2, 66]
        let lameZone = [
            soa("lame.test."), "lame.test. 3600 IN NS ns3.lame.test.", "ns3.lame.test. 3600 IN A \(a(9))",
            "www.lame.test. 300 IN A 192.0.2.5",
        ]
        let fastZone = [soa("fast.test.")] + (1...3).flatMap {
            ["fast.test. 3600 IN NS ns\($0).fast.test.", "ns\($0).fast.test. 3600 IN A \(a(9 + $0))"]
        }
        return [
            HierarchyServer(host: 1, records: [
                soa("."), ". 86400 IN NS a.root-servers.test.", "a.root-servers.test. 86400 IN A \(a(1))",
                "test. 86400 IN NS ns1.test.", "ns1.test. 86400 IN A \(a(2))",
                "lab. 86400 IN NS ns1.lab.", "ns1.lab. 86400 IN A \(a(3))",
            ]),
            HierarchyServer(host: 2, records: [
                soa("test."), "test. 86400 IN NS ns1.test.", "ns1.test. 86400 IN A \(a(2))",
                "a.root-servers.test. 86400 IN A \(a(1))",
                "inb.test. 86400 IN NS ns1.inb.test.", "ns1.inb.test. 86400 IN A \(a(4))",
                "outb.test. 86400 IN NS x1.hosts.lab.", "outb.test. 86400 IN NS x2.hosts.lab.",
                "lame.test. 86400 IN NS ns1.lame.test.", "lame.test. 86400 IN NS ns2.lame.test.",
                "lame.test. 86400 IN NS ns3.lame.test.", "ns1.lame.test. 86400 IN A \(a(7))",
                "ns2.lame.test. 86400 IN A \(a(8))", "ns3.lame.test. 86400 IN A \(a(9))",
                "loop1.test. 86400 IN NS ns.loop2.test.", "loop2.test. 86400 IN NS ns.loop1.test.",
            ] + (1...3).flatMap {
                ["fast.test. 86400 IN NS ns\($0).fast.test.", "ns\($0).fast.test. 86400 IN A \(a(9 + $0))"]
            }),
            HierarchyServer(host: 3, records: [
                soa("lab."), "lab. 86400 IN NS ns1.lab.", "ns1.lab. 86400 IN A \(a(3))",
                "hosts.lab. 86400 IN NS ns1.hosts.lab.", "ns1.hosts.lab. 86400 IN A \(a(6))",
            ]),
            HierarchyServer(host: 4, records: [
                soa("inb.test."), "inb.test. 3600 IN NS ns1.inb.test.", "ns1.inb.test. 3600 IN A \(a(4))",
                "www.inb.test. 300 IN A 192.0.2.1", "start.inb.test. 300 IN CNAME mid.hosts.lab.",
                "d.inb.test. 300 IN DNAME hosts.lab.", "a.b.c.deep.inb.test. 300 IN A 192.0.2.9",
            ], behavior: poisoning),
            HierarchyServer(host: 5, records: [
                soa("outb.test."), "outb.test. 3600 IN NS x1.hosts.lab.", "outb.test. 3600 IN NS x2.hosts.lab.",
                "www.outb.test. 300 IN A 192.0.2.3", "end.outb.test. 300 IN A 192.0.2.4",
            ]),
            HierarchyServer(host: 6, records: [
                soa("hosts.lab."), "hosts.lab. 3600 IN NS ns1.hosts.lab.", "ns1.hosts.lab. 3600 IN A \(a(6))",
                "www.hosts.lab. 300 IN A 192.0.2.2", "mid.hosts.lab. 300 IN CNAME end.outb.test.",
                "x1.hosts.lab. 3600 IN A \(a(5))", "x2.hosts.lab. 3600 IN A \(a(5))",
            ]),
            HierarchyServer(host: 7, records: lameZone, behavior: lame),
            HierarchyServer(host: 8, records: lameZone, behavior: upward),
            HierarchyServer(host: 9, records: lameZone),
            HierarchyServer(host: 10, records: fastZone, behavior: wildcard),
            HierarchyServer(host: 11, records: fastZone, behavior: wildcard),
            HierarchyServer(host: 12, records: fastZone, behavior: wildcard),
        ]
    }

    /// A delegation of `zone` (under test.) to `count` nameservers `ns1.zone.`… with glue at
    /// hosts `firstHost`… of this hierarchy: records for test.'s server (host 2).
    func wideDelegation(_ zone: String, count: Int, firstHost: Int) -> [String] {
        (1...count).flatMap { ["\(zone) 86400 IN NS ns\($0).\(zone)", "ns\($0).\(zone) 86400 IN A \(address(firstHost + $0 - 1))"] }
    }

    /// A resolverd config resolving from this hierarchy's root.
    func config(qnameMinimisation: Bool = true, timeoutMs: Int = 1000, queryLoopback: Bool = true, extra: String = "") -> String {
        """
        [server]
        listen = ["127.0.0.1:0"]

        [resolver]
        mode = "recursive"
        root_hints = ["\(address(1))"]
        qname_minimisation = \(qnameMinimisation)
        query_loopback = \(queryLoopback)
        timeout_ms = \(timeoutMs)

        [api]
        listen = "127.0.0.1:0"

        [log]
        level = "debug"
        \(extra)
        """
    }
}

/// The hierarchy served by FakeDNSServers in this process.
final class FakeHierarchy: @unchecked Sendable {
    let layout = HierarchyLayout()
    private(set) var servers: [Int: FakeDNSServer] = [:]

    /// Starts every server of the layout, `extra` records added to the hosts they are keyed by.
    static func start(extra: (HierarchyLayout) -> [Int: [String]] = { _ in [:] }) async throws -> FakeHierarchy {
        let hierarchy = FakeHierarchy()
        let added = extra(hierarchy.layout)
        do {
            for server in hierarchy.layout.servers {
                let fake = try FakeDNSServer(zone: server.records + (added[server.host] ?? []), behavior: server.behavior)
                hierarchy.servers[server.host] = fake
                _ = try await fake.start(host: hierarchy.layout.address(server.host), port: 53)
            }
        } catch {
            await hierarchy.stop()
            throw error
        }
        return hierarchy
    }

    subscript(host: Int) -> FakeDNSServer {
        guard let server = servers[host] else { preconditionFailure("no server \(host)") }
        return server
    }

    /// Queries received by every server, by host.
    var queryCounts: [Int: Int] { servers.mapValues(\.queryCount) }

    func stop() async {
        for server in servers.values { await server.stop() }
    }
}
