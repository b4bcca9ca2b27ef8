// Recursion's limits per client query, attacked end to end: the real resolverd in recursive mode
// against the fake hierarchy (Support/Hierarchy.swift), with test. delegating zones to hundreds of
// nameservers, each with glue, all on loopback (hosts 20… of the hierarchy's 127.R.S.0/24, port
// 53, served by one FakeDNSServer listening on every address). Every fake server counts what it
// receives, so the packets one client query caused are counted where they arrive.

import FakeDNS
import Foundation
import Resolver
import Testing

@Suite("RecursionLimits", .timeLimit(.minutes(3)))
struct RecursionLimitsTests {
    /// One query, its blocking wait on a thread of its own; answered or nil after `timeoutMs`.
    func ask(_ daemon: Daemon, _ name: String, timeoutMs: Int = 11_000) async throws -> DNSMessage? {
        let client = try RawUDPClient(server: daemon.address, receiveTimeoutMs: timeoutMs)
        let question = try query(name)
        return try await offPool { try client.ask(question) }
    }

    /// `count()` once it has not moved for half a second (packets still in flight have landed);
    /// at most 5 s.
    func settled(_ count: () -> Int) async throws -> Int {
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(5)
        var last = count()
        var stableSince = clock.now
        while clock.now < deadline {
            try await Task.sleep(for: .milliseconds(50))
            let now = count()
            if now != last {
                last = now
                stableSince = clock.now
            } else if clock.now - stableSince >= .milliseconds(500) {
                break
            }
        }
        return last
    }

    @Test("a referral to 200 nameservers with glue: one client query sends at most 64 packets")
    func wideReferral() async throws {
        let hierarchy = try await FakeHierarchy.start { [2: $0.wideDelegation("wide.test.", count: 200, firstHost: 20)] }
        // Every one of the 200 refuses at once: nothing slows the fan-out down but the limits.
        var refusing = FakeBehavior()
        refusing.rcode = .refused
        let wide = FakeDNSServer(records: [], behavior: refusing)
        try await wide.listen(on: (20..<220).map(hierarchy.layout.address), port: 53)
        let daemon = try await Daemon(config: hierarchy.layout.config())
        // The root and test. are known first, so what follows is one client query's work.
        #expect(addresses(in: try await ask(daemon, "www.inb.test")) == ["192.0.2.1"])
        let total = { hierarchy.queryCounts.values.reduce(0, +) + wide.queryCount }
        let before = try await settled(total)

        let reply = try await ask(daemon, "www.wide.test")
        #expect(reply?.rcode == .servFail)
        let sent = try await settled(total) - before
        print("wide referral: \(sent) packets for one client query (\(wide.queryCount) to the 200 servers)")
        #expect(sent <= 64, "\(sent) upstream packets for one client query")
        // The cut's servers are capped: at most 4 of its first 13 nameservers are asked.
        #expect(wide.queryCount <= 4, "\(wide.queryCount) packets to wide.test.'s servers")

        try await daemon.stop()
        await wide.stop()
        await hierarchy.stop()
    }

    @Test("40 silent nameservers with glue: SERVFAIL within the 10 s deadline, even while servers are awaited")
    func silentNameservers() async throws {
        let hierarchy = try await FakeHierarchy.start { [2: $0.wideDelegation("quiet.test.", count: 40, firstHost: 20)] }
        var silent = FakeBehavior()
        silent.silent = true
        let quiet = FakeDNSServer(records: [], behavior: silent)
        try await quiet.listen(on: (20..<60).map(hierarchy.layout.address), port: 53)
        let clock = ContinuousClock()

        // The default timeout (3 s): the cut's servers are given up on long before the deadline.
        let daemon = try await Daemon(config: hierarchy.layout.config(timeoutMs: 3000))
        #expect(addresses(in: try await ask(daemon, "www.inb.test")) == ["192.0.2.1"])
        var start = clock.now
        let reply = try await ask(daemon, "www.quiet.test", timeoutMs: 30_000)
        let elapsed = clock.now - start
        print("40 silent nameservers, timeout_ms 3000: SERVFAIL after \(elapsed)")
        #expect(reply?.rcode == .servFail)
        #expect(elapsed < .milliseconds(10_500), "answered after \(elapsed)")
        try await daemon.stop()

        // A timeout past the deadline: the client still has its SERVFAIL at 10 s, with the
        // servers' queries still in flight.
        let patient = try await Daemon(config: hierarchy.layout.config(timeoutMs: 20_000))
        #expect(addresses(in: try await ask(patient, "www.inb.test")) == ["192.0.2.1"])
        start = clock.now
        let late = try await ask(patient, "www.quiet.test", timeoutMs: 30_000)
        let waited = clock.now - start
        print("40 silent nameservers, timeout_ms 20000: SERVFAIL after \(waited)")
        #expect(late?.rcode == .servFail)
        #expect(waited < .milliseconds(10_500), "answered after \(waited)")
        #expect(waited > .seconds(9), "SERVFAIL before the deadline (\(waited)): the servers were not awaited")
        try await patient.stop()
        await quiet.stop()
        await hierarchy.stop()
    }
}
