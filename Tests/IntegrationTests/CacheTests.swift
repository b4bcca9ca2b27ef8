// The cache end to end: the real resolverd on loopback, fake upstreams that count what they are
// asked, and real clients. Waits are on conditions with deadlines; TTLs are short where time
// must pass.

import FakeDNS
import Foundation
import Resolver
import Testing

@Suite("Cache", .timeLimit(.minutes(2)))
struct CacheIntegrationTests {
    @Test("a repeated question is answered from the cache, TTL counting down, with the client's ID and case")
    func hits() async throws {
        let (fake, upstream) = try await Fixtures.upstream()
        let daemon = try await Daemon(config: forwardingConfig([(".", [upstream])]))
        let client = try RawUDPClient(server: daemon.address)
        let first = try #require(try client.ask(query("www.example.test")))
        #expect(first.answers.first?.ttl == 300)
        var lastTTL: UInt32 = 300
        try await waitUntil("the cached TTL to count down") {
            var question = try query("WWW.example.TEST")
            question.id = 0x1234
            let reply = try #require(try client.ask(question))
            #expect(reply.id == 0x1234)
            #expect(reply.questions.first?.name.description == "WWW.example.TEST.")
            #expect(addresses(in: reply) == ["192.0.2.10"])
            lastTTL = reply.answers.first?.ttl ?? 0
            return lastTTL < 300
        }
        // One second gone (more if this machine was busy between two polls).
        #expect((290...299).contains(lastTTL))
        #expect(fake.queryCount == 1)
        // Through dig too.
        let dig = try runCommand(["dig", "@127.0.0.1", "-p", "\(daemon.port)", "www.example.test", "+short"])
        #expect(dig.stdout == "192.0.2.10\n")
        #expect(fake.queryCount == 1)
        try await daemon.stop()
        await fake.stop()
    }

    @Test("NXDOMAIN and NODATA are cached with the SOA in authority")
    func negative() async throws {
        let (fake, upstream) = try await Fixtures.upstream()
        let daemon = try await Daemon(config: forwardingConfig([(".", [upstream])]))
        let client = try RawUDPClient(server: daemon.address)
        for _ in 0..<3 {
            let nx = try #require(try client.ask(query("nope.example.test")))
            #expect(nx.rcode == .nxDomain)
            #expect(nx.authorities.map(\.type) == [.soa])
            // min(SOA TTL 300, MINIMUM 60)
            #expect((nx.authorities.first?.ttl ?? 0) <= 60)
            let nodata = try #require(try client.ask(query("www.example.test", .txt)))
            #expect(nodata.rcode == .noError && nodata.answers.isEmpty)
            #expect(nodata.authorities.map(\.type) == [.soa])
        }
        #expect(fake.queryCount == 2)
        try await daemon.stop()
        await fake.stop()
    }

    @Test("50 concurrent identical misses cause one upstream query")
    func coalescing() async throws {
        let (fake, upstream) = try await Fixtures.upstream(behavior: Fixtures.behavior { $0.delay = .milliseconds(200) })
        let daemon = try await Daemon(config: forwardingConfig([(".", [upstream])]))
        let client = try RawUDPClient(server: daemon.address, receiveTimeoutMs: 3000)
        var ids = Set<UInt16>()
        for index in 0..<50 {
            var question = try query("www.example.test")
            question.id = UInt16(1000 + index)
            ids.insert(question.id)
            client.send(try DNSCodec.encode(question))
        }
        var answered = Set<UInt16>()
        for _ in 0..<50 {
            guard let bytes = client.receive() else { break }
            let reply = try DNSCodec.decode(bytes)
            #expect(addresses(in: reply) == ["192.0.2.10"])
            answered.insert(reply.id)
        }
        #expect(answered == ids)
        #expect(fake.queryCount == 1)
        try await daemon.stop()
        await fake.stop()
    }

    @Test("a cached answer larger than the client's UDP size is truncated with TC; the TCP retry gets it whole")
    func truncation() async throws {
        let (fake, upstream) = try await Fixtures.upstream()
        let daemon = try await Daemon(config: forwardingConfig([(".", [upstream])]))
        // Fill the cache over TCP, then ask over UDP without EDNS (512 bytes).
        let whole = try runCommand(["dig", "@127.0.0.1", "-p", "\(daemon.port)", "big.example.test", "TXT", "+tcp", "+short"])
        #expect(whole.stdout.split(separator: "\n").count == 30)
        // resolverd's own upstream query was truncated too: UDP, then TCP.
        let asked = fake.queryCount
        let client = try RawUDPClient(server: daemon.address)
        let small = try #require(try client.ask(query("big.example.test", .txt, edns: false)))
        #expect(small.flags.contains(.tc))
        #expect(small.answers.isEmpty)
        let retried = try runCommand(["dig", "@127.0.0.1", "-p", "\(daemon.port)", "big.example.test", "TXT", "+noedns", "+short"])
        #expect(retried.stdout.split(separator: "\n").count == 30, "dig retries over TCP after TC")
        #expect(fake.queryCount == asked)
        try await daemon.stop()
        await fake.stop()
    }

    @Test("an answer asked for in the last tenth of its TTL is refreshed in the background")
    func prefetch() async throws {
        let zone = ["short.test. 10 IN A 192.0.2.20", "short.test. 300 IN SOA ns.short.test. admin.short.test. 1 3600 600 86400 60"]
        let (fake, upstream) = try await Fixtures.upstream(zone)
        let daemon = try await Daemon(config: forwardingConfig([(".", [upstream])]))
        let client = try RawUDPClient(server: daemon.address)
        #expect(try client.ask(query("short.test"))?.answers.first?.ttl == 10)
        var ttls: [UInt32] = []
        try await waitUntil("a background refresh", timeout: .seconds(15), interval: .milliseconds(100)) {
            let reply = try #require(try client.ask(query("short.test")))
            ttls.append(reply.answers.first?.ttl ?? 0)
            return fake.queryCount == 2
        }
        // Every client answer came from the cache while the refresh ran: none waited, none
        // expired (TTL 0 would mean the entry ran out before the refresh).
        #expect(ttls.allSatisfy { $0 >= 1 && $0 <= 10 })
        #expect(ttls.contains(1), "the refresh started in the last second (10 % of 10 s)")
        try await waitUntil("the refreshed entry to be served") {
            try client.ask(query("short.test"))?.answers.first?.ttl ?? 0 >= 9
        }
        #expect(fake.queryCount == 2)
        try await daemon.stop()
        await fake.stop()
    }

    @Test("serve-stale on: with every upstream silent, an expired answer comes back with TTL 30")
    func serveStaleOn() async throws {
        let zone = ["stale.test. 1 IN A 192.0.2.30"]
        let (fake, upstream) = try await Fixtures.upstream(zone)
        let daemon = try await Daemon(config: forwardingConfig(
            [(".", [upstream])], timeoutMs: 300, cache: "serve_stale = true\nprefetch = false"))
        let client = try RawUDPClient(server: daemon.address, receiveTimeoutMs: 3000)
        #expect(try client.ask(query("stale.test"))?.answers.first?.ttl == 1)
        fake.behavior.silent = true
        var stale: DNSMessage?
        try await waitUntil("a stale answer", timeout: .seconds(10), interval: .milliseconds(100)) {
            let reply = try #require(try client.ask(query("stale.test")))
            #expect(reply.rcode == .noError)
            if reply.answers.first?.ttl == 30 { stale = reply }
            return stale != nil
        }
        #expect(addresses(in: stale) == ["192.0.2.30"])
        // Within the recheck period the stale answer is served without asking again.
        let asked = fake.queryCount
        #expect(try client.ask(query("stale.test"))?.answers.first?.ttl == 30)
        #expect(fake.queryCount == asked)
        try await daemon.stop()
        await fake.stop()
    }

    @Test("serve-stale off (the default): with every upstream silent, an expired answer gives SERVFAIL, then a cached failure")
    func serveStaleOff() async throws {
        let zone = ["stale.test. 1 IN A 192.0.2.30"]
        let (fake, upstream) = try await Fixtures.upstream(zone)
        let daemon = try await Daemon(config: forwardingConfig([(".", [upstream])], timeoutMs: 300))
        let client = try RawUDPClient(server: daemon.address, receiveTimeoutMs: 3000)
        #expect(try client.ask(query("stale.test"))?.answers.first?.ttl == 1)
        fake.behavior.silent = true
        try await waitUntil("SERVFAIL after expiry", timeout: .seconds(10), interval: .milliseconds(100)) {
            try client.ask(query("stale.test"))?.rcode == .servFail
        }
        // RFC 9520: the failure is remembered; the next question does not go upstream.
        let asked = fake.queryCount
        let again = try #require(try client.ask(query("stale.test")))
        #expect(again.rcode == .servFail)
        #expect(fake.queryCount == asked)
        try await daemon.stop()
        await fake.stop()
    }

    @Test("dig-lite flush removes a name, a subtree or everything; dig-lite cache shows the figures")
    func flush() async throws {
        let (fake, upstream) = try await Fixtures.upstream()
        let daemon = try await Daemon(config: forwardingConfig([(".", [upstream])]))
        let client = try RawUDPClient(server: daemon.address)
        func fill() throws {
            for name in ["www.example.test", "mail.example.test"] { _ = try client.ask(query(name)) }
        }
        try fill()
        #expect(fake.queryCount == 2)
        let digLite = Binaries.path("dig-lite")
        let one = try runCommand([digLite, "flush", "WWW.example.test", "--api", daemon.apiURL, "--token-file", daemon.tokenFile ?? ""])
        #expect(one.stdout == "flushed 1 entry\n")
        try fill()
        #expect(fake.queryCount == 3)
        let subtree = try runCommand([digLite, "flush", "example.test", "--subtree", "--api", daemon.apiURL, "--token-file", daemon.tokenFile ?? ""])
        #expect(subtree.stdout == "flushed 2 entries\n")
        try fill()
        let all = try runCommand([digLite, "flush", "--api", daemon.apiURL, "--token-file", daemon.tokenFile ?? ""])
        #expect(all.stdout == "flushed 2 entries\n")
        let stats = try runCommand([digLite, "cache", "--json", "--api", daemon.apiURL, "--token-file", daemon.tokenFile ?? ""])
        let figures = try JSONDecoder().decode(CacheStatistics.self, from: Data(stats.stdout.utf8))
        #expect(figures.entries == 0)
        #expect(figures.inserts == 5, "2, then www again, then both")
        let table = try runCommand([digLite, "cache", "--api", daemon.apiURL, "--token-file", daemon.tokenFile ?? ""])
        #expect(table.stdout.contains("entries     0"))
        let bad = try runCommand([digLite, "flush", "bad..name", "--api", daemon.apiURL, "--token-file", daemon.tokenFile ?? ""])
        #expect(bad.status == 1)
        #expect(bad.stderr.contains("name: 'bad..name' is not a domain name"))
        try await daemon.stop()
        await fake.stop()
    }

    @Test("both UDP paths (batched, and NIO's with udp_batch = false) answer hits, truncate, reject and refuse alike",
          arguments: [true, false])
    func udpPaths(batched: Bool) async throws {
        let (fake, upstream) = try await Fixtures.upstream()
        let daemon = try await Daemon(config: forwardingConfig([(".", [upstream])], server: "udp_batch = \(batched)"))
        let client = try RawUDPClient(server: daemon.address)
        for id in [UInt16(1), 2, 3] {
            var question = try query("Www.Example.Test")
            question.id = id
            let reply = try #require(try client.ask(question))
            #expect(reply.id == id)
            #expect(reply.questions.first?.name.description == "Www.Example.Test.")
            #expect(addresses(in: reply) == ["192.0.2.10"])
        }
        _ = try runCommand(["dig", "@127.0.0.1", "-p", "\(daemon.port)", "big.example.test", "TXT", "+tcp"])
        #expect(try client.ask(query("big.example.test", .txt, edns: false))?.flags.contains(.tc) == true)
        // A header with QDCOUNT 2: FORMERR with the ID echoed.
        client.send([0xAB, 0xCD, 0x01, 0x00, 0x00, 0x02, 0, 0, 0, 0, 0, 0])
        let formErr = try DNSCodec.decode(try #require(client.receive()))
        #expect(formErr.id == 0xABCD && formErr.rcode == .formErr)
        #expect(fake.queryCount == 3, "www once; big over UDP, then TCP")
        try await daemon.stop()
        await fake.stop()

        // Outside server.allow: REFUSED, also on a would-be cache hit.
        let (fake2, upstream2) = try await Fixtures.upstream()
        let closed = try await Daemon(config: forwardingConfig(
            [(".", [upstream2])], server: "udp_batch = \(batched)\nallow = [\"10.0.0.0/8\"]"))
        let outsider = try RawUDPClient(server: closed.address)
        #expect(try outsider.ask(query("www.example.test"))?.rcode == .refused)
        #expect(fake2.queryCount == 0)
        try await closed.stop()
        await fake2.stop()
    }

    @Test("a burst of 500 queries for a cached name is answered whole (the socket's receive buffer holds it)")
    func burst() async throws {
        let (fake, upstream) = try await Fixtures.upstream()
        let daemon = try await Daemon(config: forwardingConfig([(".", [upstream])], server: "threads = 1"))
        let client = try RawUDPClient(server: daemon.address, receiveTimeoutMs: 2000)
        _ = try client.ask(query("www.example.test"))
        // Send all 500 before reading any reply.
        for index in 0..<500 {
            var question = try query("www.example.test")
            question.id = UInt16(index)
            client.send(try DNSCodec.encode(question))
        }
        var answered = Set<UInt16>()
        while answered.count < 500, let bytes = client.receive() {
            answered.insert(try DNSCodec.decode(bytes).id)
        }
        #expect(answered.count == 500)
        #expect(fake.queryCount == 1)
        try await daemon.stop()
        await fake.stop()
    }
}
