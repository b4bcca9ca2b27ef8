// Recursion reads time from one injected ResolverClock: moved by hand here, the TTLs a client
// is served count down, a negative answer's SOA and proof records with it, and nothing else
// (no wall clock, no NIODeadline.now()) decides. No packet is sent: every answer is in the cache.

import Logging
import NIOCore
import NIOPosix
import Synchronization
import Testing

@testable import Resolver

/// A clock that moves only when told.
final class MovableClock: Sendable {
    private let instant = Mutex(NIODeadline.uptimeNanoseconds(5_000_000_000_000))
    private let wall = Mutex<Int64>(1_800_000_000)

    var now: NIODeadline { instant.withLock { $0 } }

    var clock: ResolverClock {
        ResolverClock(now: { self.instant.withLock { $0 } }, wallSeconds: { self.wall.withLock { $0 } })
    }

    func advance(_ amount: TimeAmount) {
        instant.withLock { $0 = $0 + amount }
        wall.withLock { $0 += amount.nanoseconds / 1_000_000_000 }
    }
}

@Suite("Recursion on an injected clock")
struct RecursionClockTests {
    let soa = "inb.test. 3600 IN SOA ns1.inb.test. nobody.invalid. 1 3600 1200 604800 60"

    func resolve(_ resolver: RecursiveResolver, _ text: String, _ type: RecordType = .a, dnssecOK: Bool = false) async throws
        -> DNSMessage
    {
        let query = UpstreamQuery(question: Question(name: try name(text), type: type), dnssecOK: dnssecOK)
        guard case .answer(let message) = await resolver.resolve(query) else {
            Issue.record("no answer for \(text)")
            throw CancellationError()
        }
        return message
    }

    @Test func ttlsAndNegativeAnswersCountDownOnTheInjectedClock() async throws {
        let manual = MovableClock()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let logger = Logger(label: "test")
        let client = UpstreamClient(group: group, timeout: .seconds(1), logger: logger)
        let transactions = UpstreamTransactions(
            client: client, selector: AdaptiveSelector(policy: SelectionPolicy()), logger: logger, clock: manual.clock)
        let records = RecordCache(maxBytes: 1 << 20, maxTTL: 86_400, maxNegativeTTL: 3_600, shardCount: 1)
        // The deadline's timer runs on real time: an hour, so a loaded machine never fails a
        // question answered from the cache.
        var settings = RecursionSettings()
        settings.deadline = .hours(1)
        let resolver = RecursiveResolver(
            transactions: transactions, records: records, settings: settings, logger: logger, clock: manual.clock)

        records.insert([try rr("www.inb.test. 300 IN A 192.0.2.1")], credibility: .answer, now: manual.now)
        let nsec = try rr("nope.inb.test. 600 IN NSEC x.inb.test. A RRSIG NSEC")
        records.insertNXDomain(try name("nope.inb.test."), authority: [try rr(soa), nsec], now: manual.now)
        #expect(try await resolve(resolver, "www.inb.test.").answers.map(\.ttl) == [300])

        manual.advance(.seconds(20))
        #expect(try await resolve(resolver, "www.inb.test.").answers.map(\.ttl) == [280])
        // NXDOMAIN for min(SOA TTL, MINIMUM) = 60 s, 20 s of it gone; RFC 8020 below it too. The
        // NSEC goes to clients that set DO only.
        let plain = try await resolve(resolver, "a.nope.inb.test.")
        #expect(plain.rcode == .nxDomain)
        #expect(plain.authorities.map(\.type) == [.soa])
        #expect(plain.authorities.map(\.ttl) == [40])
        let signed = try await resolve(resolver, "nope.inb.test.", dnssecOK: true)
        #expect(signed.authorities.map(\.type) == [.soa, .nsec])
        #expect(signed.authorities.map(\.ttl) == [40, 40])

        manual.advance(.seconds(279))
        #expect(try await resolve(resolver, "www.inb.test.").answers.map(\.ttl) == [1])

        await client.shutdown()
        try await group.shutdownGracefully()
    }
}
