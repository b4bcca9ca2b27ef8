// Forwarding end to end: the real resolverd binary on loopback, fake upstream servers that are
// normal, slow, silent or forging, and checks of what the client gets.

import FakeDNS
import Foundation
import Resolver
import Testing

@Suite("Forwarding", .timeLimit(.minutes(2)))
struct ForwardingTests {
    @Test("a normal upstream's answer reaches the client, with the client's ID and letter case")
    func normalUpstream() async throws {
        let (fake, upstream) = try await Fixtures.upstream()
        let daemon = try await Daemon(config: forwardingConfig([(".", [upstream])]))
        let client = try RawUDPClient(server: daemon.address)
        var question = try query("WwW.ExAmPlE.TeSt")
        question.id = 0xBEEF
        let reply = try #require(try client.ask(question))
        #expect(reply.id == 0xBEEF)
        #expect(reply.rcode == .noError)
        #expect(reply.flags.isSuperset(of: [.qr, .rd, .ra]))
        #expect(!reply.flags.contains(.aa))
        #expect(reply.questions.first?.name.description == "WwW.ExAmPlE.TeSt.")
        #expect(addresses(in: reply) == ["192.0.2.10"])
        #expect(reply.edns?.udpPayloadSize == 1232)
        #expect(fake.queryCount == 1)
        try await daemon.stop()
        await fake.stop()
    }

    @Test("hostile upstreams: garbage is never accepted or cached; a TCP server that never answers times out")
    func hostileUpstreams() async throws {
        let (garbage, garbageAddress) = try await Fixtures.upstream(behavior: Fixtures.behavior { $0.garbage = true })
        let (mute, muteAddress) = try await Fixtures.upstream(
            behavior: Fixtures.behavior {
                $0.truncateUDPAbove = 0  // every UDP answer truncated: the retry must go over TCP…
                $0.tcpSilent = true  // …where the server accepts and never answers
            })
        let daemon = try await Daemon(
            config: forwardingConfig([("junk.test.", [garbageAddress]), ("example.test.", [muteAddress])], timeoutMs: 500))
        let client = try RawUDPClient(server: daemon.address, receiveTimeoutMs: 5000)
        let clock = ContinuousClock()
        for _ in 0..<3 {
            let reply = try #require(try client.ask(query("www.junk.test")))
            #expect(reply.rcode == .servFail && reply.answers.isEmpty)
        }
        // Failures are cached briefly (RFC 9520), garbage never: the server saw one query only.
        #expect(garbage.queryCount == 1)
        let start = clock.now
        let muted = try #require(try client.ask(query("www.example.test")))
        #expect(muted.rcode == .servFail)
        #expect(clock.now - start < .seconds(3), "waited \(clock.now - start)")
        #expect(mute.tcpQueryCount == 1)
        // The daemon is fine: local answers still come.
        #expect(try client.ask(query("localhost"))?.rcode == .noError)
        try await daemon.stop()
        await garbage.stop()
        await mute.stop()
    }

    @Test("a server without EDNS (FORMERR to OPT) is asked again without it")
    func serverWithoutEDNS() async throws {
        let (fake, upstream) = try await Fixtures.upstream(behavior: Fixtures.behavior { $0.noEDNS = true })
        let daemon = try await Daemon(config: forwardingConfig([(".", [upstream])]))
        let reply = try #require(try RawUDPClient(server: daemon.address).ask(query("www.example.test")))
        #expect(reply.rcode == .noError)
        #expect(addresses(in: reply) == ["192.0.2.10"])
        #expect(fake.queryCount == 2)
        try await daemon.stop()
        await fake.stop()
    }

    @Test("NXDOMAIN and NODATA come back with the zone's SOA")
    func negativeAnswers() async throws {
        let (fake, upstream) = try await Fixtures.upstream()
        let daemon = try await Daemon(config: forwardingConfig([(".", [upstream])]))
        let client = try RawUDPClient(server: daemon.address)
        let nx = try #require(try client.ask(query("nope.example.test")))
        #expect(nx.rcode == .nxDomain)
        #expect(nx.authorities.map(\.type) == [.soa])
        let nodata = try #require(try client.ask(query("www.example.test", .txt)))
        #expect(nodata.rcode == .noError)
        #expect(nodata.answers.isEmpty)
        #expect(nodata.authorities.map(\.type) == [.soa])
        try await daemon.stop()
        await fake.stop()
    }

    @Test("a slow upstream still answers within the timeout")
    func slowUpstream() async throws {
        let (fake, upstream) = try await Fixtures.upstream(behavior: Fixtures.behavior { $0.delay = .milliseconds(300) })
        let daemon = try await Daemon(config: forwardingConfig([(".", [upstream])], timeoutMs: 2000))
        let result = try runCommand(["dig", "@127.0.0.1", "-p", "\(daemon.port)", "www.example.test", "+short", "+tries=1", "+time=5"])
        #expect(result.stdout == "192.0.2.10\n")
        #expect(result.elapsed >= .milliseconds(290))
        try await daemon.stop()
        await fake.stop()
    }

    @Test("a silent server does not keep the client waiting, and is marked down after timeout_ms")
    func silentServer() async throws {
        let (silent, silentAddress) = try await Fixtures.upstream(behavior: Fixtures.behavior { $0.silent = true })
        let (normal, normalAddress) = try await Fixtures.upstream()
        let daemon = try await Daemon(config: forwardingConfig([(".", [silentAddress, normalAddress])], timeoutMs: 500))
        let result = try runCommand(["dig", "@127.0.0.1", "-p", "\(daemon.port)", "www.example.test", "+short", "+tries=1", "+time=5"])
        #expect(result.stdout == "192.0.2.10\n")
        // Both servers are new, so the second is asked in parallel (or after the 400 ms hedge
        // delay at the latest): the client never waits for the 500 ms timeout.
        #expect(result.elapsed < .milliseconds(450))
        #expect(silent.queryCount == 1)
        #expect(normal.queryCount == 1)
        try await waitUntil("the silent server to be marked down") {
            let servers = try runCommand([Binaries.path("dig-lite"), "servers", "--api", daemon.apiURL, "--token-file", daemon.tokenFile ?? "", "--json"])
            let report = try JSONDecoder().decode(ServersResponse.self, from: Data(servers.stdout.utf8))
            let line = report.zones.first?.servers.first { $0.address == silentAddress.description }
            return line?.state == .down && line?.timeouts == 1
        }
        try await daemon.stop()
        await silent.stop()
        await normal.stop()
    }

    @Test("every server failing gives SERVFAIL")
    func allFail() async throws {
        let (silent, silentAddress) = try await Fixtures.upstream(behavior: Fixtures.behavior { $0.silent = true })
        let (refusing, refusingAddress) = try await Fixtures.upstream(behavior: Fixtures.behavior { $0.rcode = .refused })
        let daemon = try await Daemon(config: forwardingConfig([(".", [refusingAddress, silentAddress])], timeoutMs: 300))
        let client = try RawUDPClient(server: daemon.address, receiveTimeoutMs: 3000)
        let reply = try #require(try client.ask(query("www.example.test")))
        #expect(reply.rcode == .servFail)
        #expect(refusing.queryCount == 1)
        #expect(silent.queryCount == 1)
        try await daemon.stop()
        await silent.stop()
        await refusing.stop()
    }

    @Test(
        "forged answers (wrong ID, wrong source port, wrong source address) are never accepted",
        arguments: ["wrong ID", "wrong port", "wrong address"])
    func forgedAnswers(_ label: String) async throws {
        // The forger sends its forgery before the real answer: the real one must win.
        let (forger, forgerAddress) = try await Fixtures.upstream(
            behavior: Fixtures.behavior {
                $0.forgeWrongID = label == "wrong ID"
                $0.forgeWrongPort = label == "wrong port"
                $0.forgeWrongAddress = label == "wrong address"
            })
        let daemon = try await Daemon(config: forwardingConfig([(".", [forgerAddress])], timeoutMs: 500))
        let client = try RawUDPClient(server: daemon.address, receiveTimeoutMs: 3000)
        let reply = try #require(try client.ask(query("www.example.test")))
        #expect(addresses(in: reply) == ["192.0.2.10"], "\(label)")

        // Only forgeries: nothing is accepted, the client gets SERVFAIL after the timeout.
        var onlyForged = forger.behavior
        onlyForged.onlyForged = true
        forger.behavior = onlyForged
        let second = try #require(try client.ask(query("www.example.test", .aaaa)))
        #expect(second.rcode == .servFail, "\(label)")
        #expect(addresses(in: second).isEmpty)
        // Nothing forged was cached: the A answer is still the real one.
        #expect(addresses(in: try client.ask(query("www.example.test"))) == ["192.0.2.10"], "\(label)")
        try await daemon.stop()
        await forger.stop()
    }

    @Test("hostile upstreams: a TCP server trickling its answer a byte at a time costs one timeout, not the trickle")
    func tricklingTCP() async throws {
        let (trickler, tricklerAddress) = try await Fixtures.upstream(
            behavior: Fixtures.behavior {
                $0.truncateUDPAbove = 0  // every UDP answer truncated: the answer must come over TCP…
                $0.tcpTrickle = .milliseconds(100)  // …where ~60 bytes take 6 s
            })
        let daemon = try await Daemon(config: forwardingConfig([(".", [tricklerAddress])], timeoutMs: 500))
        let client = try RawUDPClient(server: daemon.address, receiveTimeoutMs: 5000)
        // Timed on the asking thread: getting back onto a busy cooperative pool is not resolverd's time.
        let (reply, waited) = try await offPool { () throws -> (DNSMessage?, Duration) in
            let clock = ContinuousClock()
            let start = clock.now
            let reply = try client.ask(query("www.example.test"))
            return (reply, clock.now - start)
        }
        #expect(try #require(reply).rcode == .servFail)
        #expect(waited < .seconds(3), "waited \(waited)")
        #expect(trickler.tcpQueryCount == 1)
        #expect(try client.ask(query("localhost"))?.rcode == .noError)
        try await daemon.stop()
        await trickler.stop()
    }

    @Test("hostile upstreams: huge answers (4,000 records over TCP; 48 KB in one UDP datagram) are bounded and never crash")
    func hugeAnswers() async throws {
        let (huge, hugeAddress) = try await Fixtures.upstream(behavior: Fixtures.behavior { $0.hugeAnswer = 4000 })
        let (oversize, oversizeAddress) = try await Fixtures.upstream(
            behavior: Fixtures.behavior {
                $0.hugeAnswer = 3000
                $0.oversizeUDP = true  // ignores the EDNS size resolverd advertised
            })
        let daemon = try await Daemon(
            config: forwardingConfig([("huge.test.", [hugeAddress]), ("oversize.test.", [oversizeAddress])], timeoutMs: 1000))
        // Over UDP the client gets what fits its buffer, with TC; over TCP all 4,000 records.
        let client = try RawUDPClient(server: daemon.address, receiveTimeoutMs: 5000)
        let udp = try #require(try await offPool { try client.ask(query("a.huge.test")) })
        #expect(udp.rcode == .noError && udp.flags.contains(.tc))
        let tcp = try runCommand(["dig", "@127.0.0.1", "-p", "\(daemon.port)", "a.huge.test", "A", "+tcp", "+tries=1"])
        #expect(tcp.stdout.contains("ANSWER: 4000"), "\(tcp.stdout.prefix(400))")
        #expect(huge.tcpQueryCount == 1)
        // A datagram far over the advertised size: taken whole or refused, never a crash.
        let over = try #require(try await offPool { try client.ask(query("b.oversize.test")) })
        #expect(over.rcode == .noError || over.rcode == .servFail)
        #expect(try client.ask(query("localhost"))?.rcode == .noError)
        try await daemon.stop()
        await huge.stop()
        await oversize.stop()
    }

    @Test("the longest matching forward zone wins")
    func longestMatch() async throws {
        let (general, generalAddress) = try await Fixtures.upstream()
        let (corp, corpAddress) = try await Fixtures.upstream(Fixtures.corpZone)
        let daemon = try await Daemon(config: forwardingConfig([(".", [generalAddress]), ("corp.test", [corpAddress])]))
        let client = try RawUDPClient(server: daemon.address)
        #expect(addresses(in: try client.ask(query("db.corp.test"))) == ["198.51.100.7"])
        #expect(addresses(in: try client.ask(query("www.example.test"))) == ["192.0.2.10"])
        #expect(corp.questions.map(\.name.description) == ["db.corp.test."])
        #expect(general.questions.map(\.name.description) == ["www.example.test."])
        try await daemon.stop()
        await general.stop()
        await corp.stop()
    }

    @Test("a truncated upstream answer is fetched again over TCP")
    func upstreamTruncation() async throws {
        let (fake, upstream) = try await Fixtures.upstream(behavior: Fixtures.behavior { $0.truncateUDPAbove = 512 })
        let daemon = try await Daemon(config: forwardingConfig([(".", [upstream])]))
        let result = try runCommand(["dig", "@127.0.0.1", "-p", "\(daemon.port)", "big.example.test", "TXT", "+tcp", "+tries=1"])
        #expect(result.stdout.contains("ANSWER: 30"))
        #expect(fake.tcpQueryCount == 1)
        try await daemon.stop()
        await fake.stop()
    }
}
