// Cache/: stored answers, their rendering on a hit, the TTL rules, the sharded store with its
// eviction, flush, prefetch and serve-stale, and coalescing. Time is a number the test moves.

import NIOCore
import Synchronization
import Testing

@testable import Resolver
import WireTestSupport

/// Builds upstream answers and client queries for the cache tests.
enum CacheFixture {
    static let question = Question(name: DomainName("www.example.com") ?? .root, type: .a)

    static func record(_ text: String) -> ResourceRecord {
        (try? DNSCodec.record(fromPresentation: text)) ?? ResourceRecord(name: .root, type: .a, ttl: 0, rdata: [])
    }

    static let soa = "example.com. 900 IN SOA ns.example.com. admin.example.com. 1 3600 600 86400 120"

    static func answer(
        _ rcode: ResponseCode = .noError, answers: [String] = ["www.example.com. 300 IN A 192.0.2.1"],
        authorities: [String] = [], additionals: [String] = []
    ) -> DNSMessage {
        DNSMessage(
            id: 77, flags: [.qr, .rd, .ra], rcode: rcode, questions: [question], answers: answers.map(record),
            authorities: authorities.map(record), additionals: additionals.map(record))
    }

    static func stored(_ message: DNSMessage = answer(), settings: CacheSettings = CacheSettings()) throws -> CachedAnswer {
        try CachedAnswer.make(answer: message, question: question, authenticated: false, settings: settings)
    }

    /// A client query's bytes (through ldns, as a stub would build it).
    static func query(
        _ name: String = "WwW.ExAmple.COM", type: RecordType = .a, id: UInt16 = 0x4242, edns: Bool = true,
        udpSize: UInt16 = 1232, dnssecOK: Bool = false, recursionDesired: Bool = true, checkingDisabled: Bool = false
    ) throws -> [UInt8] {
        var message = DNSMessage.query(
            Question(name: try #require(DomainName(name)), type: type), id: id, recursionDesired: recursionDesired,
            dnssecOK: dnssecOK, checkingDisabled: checkingDisabled, edns: edns)
        if edns { message.edns?.udpPayloadSize = udpSize }
        return try DNSCodec.encode(message)
    }

    static func view(_ bytes: [UInt8]) throws -> QueryView { try readQuery(bytes).get() }

    static func render(
        _ answer: CachedAnswer, query bytes: [UInt8], age: UInt32 = 0, stale: UInt32? = nil, transport: Transport = .udp
    ) throws -> DNSMessage {
        let view = try view(bytes)
        let buffer = bytes.withUnsafeBytes {
            answer.render(query: $0, view: view, age: age, staleTTL: stale, transport: transport, allocator: ByteBufferAllocator())
        }
        return try DNSCodec.decode(Array(buffer.readableBytesView))
    }
}

@Suite("CachedAnswer")
struct CachedAnswerTests {
    @Test("a hit carries the client's ID, letter case, RD and CD bits, and an OPT record when asked with one")
    func patches() throws {
        let stored = try CacheFixture.stored()
        let reply = try CacheFixture.render(stored, query: try CacheFixture.query(id: 0xBEEF, checkingDisabled: true))
        #expect(reply.id == 0xBEEF)
        #expect(reply.questions.first?.name.description == "WwW.ExAmple.COM.")
        #expect(reply.flags.isSuperset(of: [.qr, .ra, .rd, .cd]))
        #expect(!reply.flags.contains(.aa))
        #expect(reply.edns?.udpPayloadSize == EDNS.advertisedPayloadSize)
        #expect(reply.answers.map(\.ttl) == [300])

        let plain = try CacheFixture.render(
            stored, query: try CacheFixture.query("www.example.com", id: 7, edns: false, recursionDesired: false))
        #expect(plain.id == 7)
        #expect(!plain.flags.contains(.rd) && !plain.flags.contains(.cd))
        #expect(plain.edns == nil)
        #expect(plain.additionals.isEmpty)
    }

    @Test("TTLs count down by the entry's age, in every section")
    func countdown() throws {
        let stored = try CacheFixture.stored(CacheFixture.answer(
            answers: ["www.example.com. 300 IN A 192.0.2.1", "www.example.com. 300 IN A 192.0.2.2"],
            authorities: ["example.com. 3600 IN NS ns.example.com."], additionals: ["ns.example.com. 600 IN A 192.0.2.53"]))
        #expect(stored.ttl == 300)
        let reply = try CacheFixture.render(stored, query: try CacheFixture.query(), age: 120)
        #expect(reply.answers.map(\.ttl) == [180, 180])
        #expect(reply.authorities.map(\.ttl) == [3480])
        #expect(reply.additionals.map(\.ttl) == [480])
        let stale = try CacheFixture.render(stored, query: try CacheFixture.query(), age: 400, stale: 30)
        #expect((stale.answers + stale.authorities + stale.additionals).allSatisfy { $0.ttl == 30 })
    }

    @Test("an answer larger than the client's UDP size goes out truncated with TC; over TCP it is whole")
    func truncation() throws {
        let texts = (1...20).map { "www.example.com. 300 IN TXT \"record \($0) \(String(repeating: "x", count: 60))\"" }
        let stored = try CacheFixture.stored(CacheFixture.answer(answers: texts))
        #expect(stored.count > 1232)
        let small = try CacheFixture.render(stored, query: try CacheFixture.query(type: .txt, udpSize: 512))
        #expect(small.flags.contains(.tc))
        #expect(small.answers.isEmpty)
        #expect(small.questions.first?.name.description == "WwW.ExAmple.COM.")
        let noEDNS = try CacheFixture.render(stored, query: try CacheFixture.query(type: .txt, edns: false))
        #expect(noEDNS.flags.contains(.tc))
        let tcp = try CacheFixture.render(stored, query: try CacheFixture.query(type: .txt, udpSize: 512), transport: .tcp)
        #expect(!tcp.flags.contains(.tc))
        #expect(tcp.answers.count == 20)
    }

    @Test("a question with different letters is not rewritten into another name's reply")
    func caseCopyOnlyForTheSameName() throws {
        let stored = try CacheFixture.stored()
        let reply = try CacheFixture.render(stored, query: try CacheFixture.query("www.examplE.org"))
        #expect(reply.questions.first?.name.description == "www.example.com.")
    }

    @Test("a failure entry is SERVFAIL with the question")
    func failure() throws {
        let stored = CachedAnswer.failure(question: CacheFixture.question, ttl: 5)
        #expect(stored.kind == .failure && stored.ttl == 5)
        let reply = try CacheFixture.render(stored, query: try CacheFixture.query(id: 9))
        #expect(reply.rcode == .servFail)
        #expect(reply.id == 9)
        #expect(reply.questions.first?.name.description == "WwW.ExAmple.COM.")
        #expect(reply.answers.isEmpty)
    }
}

@Suite("Cache TTL rules")
struct CacheTTLTests {
    @Test("a positive answer lives as long as its shortest TTL (RFC 2181 §5.2)")
    func positive() throws {
        let stored = try CacheFixture.stored(CacheFixture.answer(
            answers: ["www.example.com. 300 IN CNAME web.example.com.", "web.example.com. 60 IN A 192.0.2.1"],
            authorities: ["example.com. 3600 IN NS ns.example.com."]))
        #expect(stored.kind == .positive)
        #expect(stored.ttl == 60)
    }

    @Test("min_ttl raises and max_ttl lowers every TTL")
    func clamps() throws {
        var settings = CacheSettings()
        settings.minTTL = 30
        settings.maxTTL = 600
        let stored = try CacheFixture.stored(
            CacheFixture.answer(
                answers: ["www.example.com. 5 IN A 192.0.2.1"], authorities: ["example.com. 86400 IN NS ns.example.com."]),
            settings: settings)
        #expect(stored.ttl == 30)
        let reply = try CacheFixture.render(stored, query: try CacheFixture.query())
        #expect(reply.answers.map(\.ttl) == [30])
        #expect(reply.authorities.map(\.ttl) == [600])
    }

    @Test("NXDOMAIN and NODATA live min(SOA TTL, SOA MINIMUM), capped by max_negative_ttl (RFC 2308 §5)")
    func negative() throws {
        let nx = try CacheFixture.stored(CacheFixture.answer(.nxDomain, answers: [], authorities: [CacheFixture.soa]))
        #expect(nx.kind == .negative)
        #expect(nx.ttl == 120)
        let reply = try CacheFixture.render(nx, query: try CacheFixture.query(), age: 20)
        #expect(reply.rcode == .nxDomain)
        #expect(reply.authorities.map(\.type) == [.soa])
        #expect(reply.authorities.map(\.ttl) == [100], "the SOA's TTL is the negative TTL, counting down")

        let nodata = try CacheFixture.stored(CacheFixture.answer(answers: [], authorities: [CacheFixture.soa]))
        #expect(nodata.kind == .negative && nodata.ttl == 120)

        var settings = CacheSettings()
        settings.maxNegativeTTL = 30
        let capped = try CacheFixture.stored(
            CacheFixture.answer(.nxDomain, answers: [], authorities: [CacheFixture.soa]), settings: settings)
        #expect(capped.ttl == 30)
    }

    @Test("negative answers without an SOA, referrals and other rcodes are not stored")
    func notStored() throws {
        #expect(try CacheFixture.stored(CacheFixture.answer(.nxDomain, answers: [])).ttl == 0)
        let referral = CacheFixture.answer(answers: [], authorities: ["example.com. 3600 IN NS ns.example.com."])
        #expect(try CacheFixture.stored(referral).ttl == 0)
        #expect(try CacheFixture.stored(CacheFixture.answer(.notImp, answers: [])).ttl == 0)
        #expect(try CacheFixture.stored(CacheFixture.answer(answers: ["www.example.com. 0 IN A 192.0.2.1"])).ttl == 0)
    }
}

@Suite("AnswerCache")
struct AnswerCacheTests {
    static let start = NIODeadline.uptimeNanoseconds(5_000_000_000)
    static let key = CacheKey(question: CacheFixture.question, dnssecOK: false, checkingDisabled: false)

    /// Looks `bytes` up through the hit path.
    static func lookup(_ cache: AnswerCache, _ bytes: [UInt8], at now: NIODeadline) throws -> (DNSMessage, Bool)? {
        let view = try CacheFixture.view(bytes)
        guard let hit = bytes.withUnsafeBytes({
            cache.answer(query: $0, view: view, transport: .udp, now: now, allocator: ByteBufferAllocator())
        }) else { return nil }
        return (try DNSCodec.decode(Array(hit.reply.readableBytesView)), hit.refresh)
    }

    static func key(_ name: String, _ type: RecordType = .a, dnssecOK: Bool = false) -> CacheKey {
        CacheKey(question: Question(name: DomainName(name) ?? .root, type: type), dnssecOK: dnssecOK, checkingDisabled: false)
    }

    static func entry(_ name: String, ttl: UInt32 = 300) throws -> CachedAnswer {
        let question = Question(name: try #require(DomainName(name)), type: .a)
        var message = CacheFixture.answer(answers: ["\(name). \(ttl) IN A 192.0.2.1"])
        message.questions = [question]
        return try CachedAnswer.make(answer: message, question: question, authenticated: false, settings: CacheSettings())
    }

    @Test("hits count down and end at expiry; the key ignores letter case but not the DO bit")
    func expiry() throws {
        let cache = AnswerCache(settings: CacheSettings())
        #expect(try Self.lookup(cache, CacheFixture.query(), at: Self.start) == nil)
        cache.insert(try CacheFixture.stored(), key: Self.key, now: Self.start)
        let first = try #require(try Self.lookup(cache, CacheFixture.query(), at: Self.start + .milliseconds(1500)))
        #expect(first.0.answers.map(\.ttl) == [299])
        #expect(try Self.lookup(cache, CacheFixture.query("WWW.EXAMPLE.COM"), at: Self.start + .seconds(100))?.0.answers.first?.ttl == 200)
        #expect(try Self.lookup(cache, CacheFixture.query(dnssecOK: true), at: Self.start) == nil)
        #expect(try Self.lookup(cache, CacheFixture.query(type: .aaaa), at: Self.start) == nil)
        #expect(try Self.lookup(cache, CacheFixture.query(), at: Self.start + .seconds(299))?.0.answers.first?.ttl == 1)
        #expect(try Self.lookup(cache, CacheFixture.query(), at: Self.start + .seconds(300)) == nil)
        let stats = cache.statistics()
        #expect(stats.hits == 3)
        #expect(stats.misses == 4)
        #expect(stats.entries == 0, "an expired entry without serve-stale is dropped when found")
    }

    @Test("memory stays under max_bytes; CLOCK keeps entries that are being asked for")
    func eviction() throws {
        var settings = CacheSettings()
        settings.maxBytes = 20_000
        let cache = AnswerCache(settings: settings, shardCount: 1)
        let hot = try Self.entry("hot.example.com")
        cache.insert(hot, key: Self.key("hot.example.com"), now: Self.start)
        for index in 0..<1_000 {
            cache.insert(try Self.entry("n\(index).example.com"), key: Self.key("n\(index).example.com"), now: Self.start)
            _ = try Self.lookup(cache, CacheFixture.query("hot.example.com"), at: Self.start)
            #expect(cache.statistics().bytes <= settings.maxBytes)
        }
        let stats = cache.statistics()
        #expect(stats.evictions > 800)
        #expect(stats.entries > 50, "the shard is filled, not emptied: \(stats.entries)")
        // Each entry is charged its bytes and its overhead (names differ in length by a few bytes).
        #expect(stats.bytes >= stats.entries * (hot.storedBytes - 16 + AnswerCache.entryOverhead))
        #expect(stats.bytes <= stats.entries * (hot.storedBytes + 16 + AnswerCache.entryOverhead))
        #expect(try Self.lookup(cache, CacheFixture.query("hot.example.com"), at: Self.start) != nil)
        #expect(try Self.lookup(cache, CacheFixture.query("n999.example.com"), at: Self.start) != nil)
        #expect(try Self.lookup(cache, CacheFixture.query("n0.example.com"), at: Self.start) == nil)
    }

    @Test("an entry larger than the cache is not stored; max_bytes 0 turns the cache off")
    func tooLarge() throws {
        var settings = CacheSettings()
        settings.maxBytes = 64
        let small = AnswerCache(settings: settings, shardCount: 1)
        small.insert(try CacheFixture.stored(), key: Self.key, now: Self.start)
        #expect(small.statistics().entries == 0)
        settings.maxBytes = 0
        let off = AnswerCache(settings: settings)
        off.insert(try CacheFixture.stored(), key: Self.key, now: Self.start)
        #expect(try Self.lookup(off, CacheFixture.query(), at: Self.start) == nil)
    }

    @Test("flush removes all entries, one name's, or a subtree's")
    func flush() throws {
        let cache = AnswerCache(settings: CacheSettings())
        let names = ["example.com", "www.example.com", "a.b.example.com", "example.org", "notexample.com"]
        func fill() throws {
            for name in names { cache.insert(try Self.entry(name), key: Self.key(name), now: Self.start) }
        }
        try fill()
        #expect(cache.flush(.name(try #require(DomainName("WWW.example.com")))) == 1)
        #expect(cache.statistics().entries == 4)
        try fill()
        #expect(cache.flush(.subtree(try #require(DomainName("example.com")))) == 3)
        #expect(try Self.lookup(cache, CacheFixture.query("notexample.com"), at: Self.start) != nil)
        #expect(try Self.lookup(cache, CacheFixture.query("example.org"), at: Self.start) != nil)
        #expect(cache.flush(.all) == 2)
        #expect(cache.statistics().entries == 0 && cache.statistics().bytes == 0)
    }

    @Test("a hit in the last tenth of the TTL asks for one refresh")
    func prefetch() throws {
        let cache = AnswerCache(settings: CacheSettings())
        cache.insert(try CacheFixture.stored(), key: Self.key, now: Self.start)
        #expect(try Self.lookup(cache, CacheFixture.query(), at: Self.start + .seconds(269))?.1 == false)
        #expect(try Self.lookup(cache, CacheFixture.query(), at: Self.start + .seconds(271))?.1 == true)
        #expect(try Self.lookup(cache, CacheFixture.query(), at: Self.start + .seconds(280))?.1 == false, "only once")
        // The refresh's answer replaces the entry, and a later hit may prefetch again.
        cache.insert(try CacheFixture.stored(), key: Self.key, now: Self.start + .seconds(281))
        #expect(try Self.lookup(cache, CacheFixture.query(), at: Self.start + .seconds(290))?.0.answers.first?.ttl == 291)

        var off = CacheSettings()
        off.prefetch = false
        let quiet = AnswerCache(settings: off)
        quiet.insert(try CacheFixture.stored(), key: Self.key, now: Self.start)
        #expect(try Self.lookup(quiet, CacheFixture.query(), at: Self.start + .seconds(295))?.1 == false)
    }

    @Test("serve-stale: off, an expired entry is gone; on, it answers with TTL 30 after a failure, then without asking")
    func serveStale() throws {
        let bytes = try CacheFixture.query()
        let view = try CacheFixture.view(bytes)
        func stale(_ cache: AnswerCache, at now: NIODeadline) throws -> DNSMessage? {
            let reply = bytes.withUnsafeBytes {
                cache.staleAnswer(key: Self.key, query: $0, view: view, transport: .udp, now: now, allocator: ByteBufferAllocator())
            }
            return try reply.map { try DNSCodec.decode(Array($0.readableBytesView)) }
        }
        let off = AnswerCache(settings: CacheSettings())
        off.insert(try CacheFixture.stored(), key: Self.key, now: Self.start)
        #expect(try stale(off, at: Self.start + .seconds(400)) == nil)

        var settings = CacheSettings()
        settings.serveStale = true
        settings.staleMaxSeconds = 3_600
        let cache = AnswerCache(settings: settings)
        cache.insert(try CacheFixture.stored(), key: Self.key, now: Self.start)
        #expect(try stale(cache, at: Self.start + .seconds(100)) == nil, "fresh entries are not stale")
        // Expired: a miss, so the resolver asks upstream.
        #expect(try Self.lookup(cache, bytes, at: Self.start + .seconds(400)) == nil)
        // Upstream failed: the stale answer, TTL 30.
        let served = try #require(try stale(cache, at: Self.start + .seconds(400)))
        #expect(served.answers.map(\.ttl) == [30])
        // A failure is stored, but does not replace the stale answer.
        cache.insert(.failure(question: CacheFixture.question, ttl: 5), key: Self.key, now: Self.start + .seconds(400))
        // Within the recheck period the hit path serves it without asking.
        #expect(try Self.lookup(cache, bytes, at: Self.start + .seconds(420))?.0.answers.map(\.ttl) == [30])
        #expect(try Self.lookup(cache, bytes, at: Self.start + .seconds(431)) == nil, "after 30 s, ask again")
        // Past the stale limit nothing is served.
        #expect(try stale(cache, at: Self.start + .seconds(300 + 3_601)) == nil)
        #expect(cache.statistics().staleHits == 2)
    }

    @Test("a failure is cached briefly, and never replaces a fresh answer")
    func failures() throws {
        let cache = AnswerCache(settings: CacheSettings())
        let failure = CachedAnswer.failure(question: CacheFixture.question, ttl: 5)
        cache.insert(failure, key: Self.key, now: Self.start)
        #expect(try Self.lookup(cache, CacheFixture.query(), at: Self.start + .seconds(4))?.0.rcode == .servFail)
        #expect(try Self.lookup(cache, CacheFixture.query(), at: Self.start + .seconds(5)) == nil)
        cache.insert(try CacheFixture.stored(), key: Self.key, now: Self.start + .seconds(10))
        cache.insert(failure, key: Self.key, now: Self.start + .seconds(11))
        #expect(try Self.lookup(cache, CacheFixture.query(), at: Self.start + .seconds(12))?.0.rcode == .noError)
    }

    @Test("many shards: entries spread, and every one is found")
    func shards() throws {
        let cache = AnswerCache(settings: CacheSettings(), shardCount: 8)
        for index in 0..<500 {
            cache.insert(try Self.entry("h\(index).example.net"), key: Self.key("h\(index).example.net"), now: Self.start)
        }
        #expect(cache.statistics().entries == 500)
        for index in stride(from: 0, to: 500, by: 7) {
            #expect(try Self.lookup(cache, CacheFixture.query("H\(index).example.NET"), at: Self.start) != nil)
        }
    }

    @Test("a compressed question name takes the slow path, and the key lookup answers it")
    func compressedQuestion() throws {
        // Question name: "www" then a pointer to offset 12+4? A pointer can only point backwards,
        // into the header here; the plain-name check must simply refuse it.
        var bytes: [UInt8] = [0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]
        bytes += [3, 0x77, 0x77, 0x77, 0xC0, 0x04, 0, 1, 0, 1]
        #expect(bytes.withUnsafeBytes { AnswerCache.plainName(in: $0, end: 18) } == nil)
        let plain = try CacheFixture.query("www.example.com", edns: false)
        #expect(plain.withUnsafeBytes { AnswerCache.plainName(in: $0, end: 12 + 17)?.count } == 17)
    }
}

@Suite("Coalescer")
struct CoalescerTests {
    final class Counter: Sendable {
        let value = Atomic<Int>(0)
    }

    @Test("50 concurrent identical requests run the work once and all get its result")
    func coalesces() async {
        let coalescer = Coalescer<String, Int>()
        let runs = Counter()
        let (gate, open) = AsyncStream<Void>.makeStream()
        let results = await withTaskGroup(of: Int.self) { group in
            for _ in 0..<50 {
                group.addTask {
                    await coalescer.run("key") {
                        runs.value.wrappingAdd(1, ordering: .relaxed)
                        // Hold the work until every caller has joined.
                        for await _ in gate { break }
                        return 42
                    }
                }
            }
            // Wait (bounded) until the leader is in and the 49 others are queued behind it.
            for _ in 0..<10_000 where coalescer.waiterCount("key") < 49 { await Task.yield() }
            open.yield()
            open.finish()
            var all: [Int] = []
            for await value in group { all.append(value) }
            return all
        }
        #expect(results == Array(repeating: 42, count: 50))
        #expect(runs.value.load(ordering: .relaxed) == 1)
        #expect(coalescer.inFlight == 0)
    }

    @Test("different keys do not wait for each other, and a finished key runs again")
    func separateKeys() async {
        let coalescer = Coalescer<Int, Int>()
        let a = await coalescer.run(1) { 10 }
        let b = await coalescer.run(2) { 20 }
        let c = await coalescer.run(1) { 30 }
        #expect([a, b, c] == [10, 20, 30])
    }
}
