// Recursive resolution end to end: the real resolverd in recursive mode against a fake DNS
// hierarchy on loopback (Support/Hierarchy.swift), asked with dig, drill and raw queries. What
// each fake server received shows what resolverd asked: delegations cached, minimised names,
// nothing believed from out of bailiwick.

import FakeDNS
import Foundation
import Resolver
import Testing

@Suite("Recursion", .timeLimit(.minutes(3)))
struct RecursionTests {
    /// The addresses in the answer section of `dig +short`-style output lines that are addresses.
    func digShort(_ daemon: Daemon, _ name: String, _ type: String = "A") throws -> [String] {
        let result = try runCommand(["dig", "@127.0.0.1", "-p", "\(daemon.port)", name, type, "+short", "+tries=1", "+time=5"])
        return result.stdout.split(separator: "\n").map(String.init)
    }

    /// One query, its blocking wait on a thread of its own (a silent root keeps it seconds).
    func ask(_ daemon: Daemon, _ name: String, _ type: RecordType = .a) async throws -> DNSMessage {
        let client = try RawUDPClient(server: daemon.address, receiveTimeoutMs: 11_000)
        let question = try query(name, type)
        let reply = try await offPool { try client.ask(question) }
        return try #require(reply, "no answer for \(name)")
    }

    @Test("referrals, glue, out-of-bailiwick nameservers, CNAME and DNAME across zones; delegations cached")
    func resolvesThroughTheHierarchy() async throws {
        let hierarchy = try await FakeHierarchy.start()
        let daemon = try await Daemon(config: hierarchy.layout.config())

        #expect(try digShort(daemon, "www.inb.test") == ["192.0.2.1"])
        // outb.test.'s nameservers have no glue: their addresses are looked up under lab.
        #expect(try digShort(daemon, "www.outb.test") == ["192.0.2.3"], "\(daemon.log)")
        // A chain through three zones on three servers.
        #expect(try digShort(daemon, "start.inb.test") == ["mid.hosts.lab.", "end.outb.test.", "192.0.2.4"])
        // DNAME: d.inb.test. → hosts.lab.; the CNAME is synthesised by resolverd.
        let dname = try await ask(daemon, "www.d.inb.test")
        #expect(dname.rcode == .noError)
        #expect(dname.answers.map(\.type) == [.dname, .cname, .a])
        #expect(addresses(in: dname) == ["192.0.2.2"])
        // inb.test.'s server slipped `www.hosts.lab. A 6.6.6.6` into every answer: never believed.
        #expect(try digShort(daemon, "www.hosts.lab") == ["192.0.2.2"])
        let drill = try runCommand(["drill", "-p", "\(daemon.port)", "www.hosts.lab", "@127.0.0.1"])
        #expect(drill.stdout.contains("192.0.2.2") && !drill.stdout.contains("6.6.6.6"))

        // The delegations are cached: a new name in inb.test. goes straight to its server.
        let before = hierarchy.queryCounts
        let nx = try await ask(daemon, "nope.inb.test")
        #expect(nx.rcode == .nxDomain)
        #expect(nx.authorities.first?.type == .soa)
        let after = hierarchy.queryCounts
        #expect(after[1] == before[1] && after[2] == before[2], "root and test. asked again")
        #expect(after[4] == (before[4] ?? 0) + 1)
        // RFC 8020: nothing exists below an NXDOMAIN; answered without asking.
        let below = try await ask(daemon, "a.b.nope.inb.test")
        #expect(below.rcode == .nxDomain)
        #expect(hierarchy.queryCounts[4] == after[4])
        // NODATA with the SOA, cached for the SOA's MINIMUM (300 s).
        let nodata = try await ask(daemon, "www.inb.test", .aaaa)
        #expect(nodata.rcode == .noError && nodata.answers.isEmpty)
        #expect(nodata.authorities.first?.type == .soa)
        #expect((nodata.authorities.first?.ttl ?? 0) <= 300)

        // inb.test.'s server falls silent: the cached delegation is forgotten and test. asked
        // again (the zone may have moved) before the client gets SERVFAIL.
        hierarchy[4].behavior.silent = true
        let tldBefore = hierarchy[2].queryCount
        #expect(try await ask(daemon, "new.inb.test").rcode == .servFail)
        #expect(hierarchy[2].queryCount == tldBefore + 1)

        try await daemon.stop()
        await hierarchy.stop()
    }

    @Test("lame servers are skipped; a glueless NS loop and a silent root end in SERVFAIL, soon")
    func lameServersAndLoops() async throws {
        let hierarchy = try await FakeHierarchy.start()
        let daemon = try await Daemon(config: hierarchy.layout.config())
        // ns1 answers REFUSED, ns2 an upward referral: every query still gets ns3's answer.
        for index in 0..<6 {
            let reply = try await ask(daemon, "www.lame.test")
            #expect(addresses(in: reply) == ["192.0.2.5"], "query \(index)")
            try await daemon.flush(name: "www.lame.test.")
        }
        #expect(hierarchy[9].queryCount >= 6)
        // Untried servers are probed, so the lame ones were asked too, and failed over from.
        #expect(hierarchy[7].queryCount + hierarchy[8].queryCount > 0)

        // loop1.test. is served by ns.loop2.test. and loop2.test. by ns.loop1.test., no glue.
        let clock = ContinuousClock()
        let start = clock.now
        let loop = try await ask(daemon, "www.loop1.test")
        #expect(loop.rcode == .servFail)
        #expect(clock.now - start < .seconds(3))
        try await daemon.stop()

        // A root that never answers: SERVFAIL after the servers' timeouts, within the deadline.
        hierarchy[1].behavior.silent = true
        let silent = try await Daemon(config: hierarchy.layout.config(timeoutMs: 500))
        let silentStart = clock.now
        #expect(try await ask(silent, "www.inb.test").rcode == .servFail)
        #expect(clock.now - silentStart < .seconds(10))
        try await silent.stop()
        await hierarchy.stop()
    }

    @Test("QNAME minimisation: each server sees only the next label; off, the full name")
    func qnameMinimisation() async throws {
        let hierarchy = try await FakeHierarchy.start()
        let minimising = try await Daemon(config: hierarchy.layout.config(qnameMinimisation: true))
        // Empty non-terminals (deep, c.deep, b.c.deep) exist without records: NODATA, go on.
        let deep = try await ask(minimising, "a.b.c.deep.inb.test")
        #expect(addresses(in: deep) == ["192.0.2.9"])
        let rootNames = Set(hierarchy[1].questions.map(\.name.description))
        let tldNames = Set(hierarchy[2].questions.map(\.name.description))
        #expect(rootNames.isSubset(of: [".", "test."]), "root saw \(rootNames)")
        #expect(tldNames == ["inb.test."], "test. saw \(tldNames)")
        #expect(hierarchy[4].questions.map(\.name.description).contains("deep.inb.test."))
        // What the walk learned is kept: a sibling below the same empty non-terminals costs one query.
        let walked = hierarchy[4].queryCount
        #expect(try await ask(minimising, "x.b.c.deep.inb.test").rcode == .nxDomain)
        #expect(hierarchy[4].queryCount == walked + 1)
        try await minimising.stop()

        let full = try await Daemon(config: hierarchy.layout.config(qnameMinimisation: false))
        #expect(addresses(in: try await ask(full, "www.inb.test")) == ["192.0.2.1"])
        #expect(hierarchy[1].questions.map(\.name.description).contains("www.inb.test."))
        try await full.stop()
        await hierarchy.stop()
    }

    @Test("forward zones win over recursion; RFC 6303 zones and localhost are answered locally")
    func forwardZonesAndLocalZones() async throws {
        let hierarchy = try await FakeHierarchy.start()
        let (corp, corpAddress) = try await Fixtures.upstream(Fixtures.corpZone)
        let daemon = try await Daemon(
            config: hierarchy.layout.config(extra: "[[forward]]\nzone = \"corp.test.\"\nservers = [\"\(corpAddress)\"]\n"))
        #expect(try digShort(daemon, "db.corp.test") == ["198.51.100.7"])
        #expect(corp.queryCount == 1)
        #expect(try digShort(daemon, "www.inb.test") == ["192.0.2.1"])

        let before = hierarchy.queryCounts.values.reduce(0, +)
        let private10 = try runCommand(["dig", "@127.0.0.1", "-p", "\(daemon.port)", "-x", "10.1.2.3"])
        #expect(private10.stdout.contains("status: NXDOMAIN"))
        #expect(try digShort(daemon, "1.0.0.127.in-addr.arpa", "PTR") == ["localhost."])
        #expect(try digShort(daemon, "localhost") == ["127.0.0.1"])
        #expect(hierarchy.queryCounts.values.reduce(0, +) == before, "local names went upstream")
        try await daemon.stop()
        await corp.stop()
        await hierarchy.stop()
    }

    @Test("a zone's three servers: selection converges on the fastest, per zone, and /v1/servers shows it")
    func perZoneSelection() async throws {
        let hierarchy = try await FakeHierarchy.start()
        for (host, delay) in [(10, 150), (11, 40), (12, 5)] {
            hierarchy[host].behavior.delay = .milliseconds(delay)
        }
        let daemon = try await Daemon(config: hierarchy.layout.config(timeoutMs: 3000))
        // Warm-up: each server is tried and measured.
        for index in 0..<15 { _ = try await ask(daemon, "w\(index).fast.test") }
        let before = (10...12).map { hierarchy[$0].queryCount }
        let total = 40
        for index in 0..<total { _ = try await ask(daemon, "n\(index).fast.test") }
        let received = (10...12).map { hierarchy[$0].queryCount - before[$0 - 10] }
        // Every query reaches the fastest; probes (5 %) and hedges are the only others.
        #expect(received[2] == total, "fastest got \(received[2]) of \(total): \(received)")
        #expect(received[0] + received[1] <= total / 4, "\(received)")

        let servers = try await daemon.api.send("GET", "/v1/servers")
        let zones = try JSONDecoder().decode(ServersResponse.self, from: servers.body).zones
        let fast = try #require(zones.first { $0.zone == "fast.test." }, "zones: \(zones.map(\.zone))")
        #expect(fast.servers.first?.address == "\(hierarchy.layout.address(12)):53")
        #expect(fast.servers.count == 3)
        try await daemon.stop()
        await hierarchy.stop()
    }
}

extension Daemon {
    /// Flushes `name` from resolverd's caches through the API.
    func flush(name: String) async throws {
        let response = try await api.send("POST", "/v1/cache/flush", body: "{\"name\": \"\(name)\"}")
        #expect(response.status == 200)
    }
}
