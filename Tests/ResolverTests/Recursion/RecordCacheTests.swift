// Recursion/RecordCache: credibility ranking (RFC 2181 §5.4.1), TTLs counted down on a fake
// clock, RFC 8020 NXDOMAIN cuts, NODATA, flush and the entry bound; the resolution budget and the
// upstream timer heap. Recursion/LocalZones: RFC 6303's zones and the forward zones that
// override them.

import NIOCore
import Synchronization
import Testing

@testable import Resolver

@Suite("RecordCache")
struct RecordCacheTests {
    let start = NIODeadline.uptimeNanoseconds(1_000_000_000_000)
    let soa = "inb.test. 3600 IN SOA ns1.inb.test. nobody.invalid. 1 3600 1200 604800 60"

    func cache(maxEntries: Int = 1000) -> RecordCache {
        RecordCache(maxEntries: maxEntries, maxTTL: 86400, maxNegativeTTL: 3600, shardCount: 2)
    }

    @Test func glueNeverOverwritesAnAuthoritativeAnswer() throws {
        let records = cache()
        let answer = try rr("ns1.inb.test. 300 IN A 192.0.2.1")
        records.insert([answer], credibility: .answer, now: start)
        records.insert([try rr("ns1.inb.test. 86400 IN A 6.6.6.6")], credibility: .glue, now: start + .seconds(1))
        #expect(records.rrset(try name("NS1.inb.test."), .a, now: start + .seconds(1))?.map(\.rdata) == [[192, 0, 2, 1]])
        // Higher credibility replaces lower; and once the answer expired, glue may come back.
        records.insert([try rr("ns1.inb.test. 86400 IN A 6.6.6.6")], credibility: .glue, now: start + .seconds(301))
        #expect(records.rrset(try name("ns1.inb.test."), .a, now: start + .seconds(301))?.map(\.rdata) == [[6, 6, 6, 6]])
        records.insert([answer], credibility: .answer, now: start + .seconds(302))
        #expect(records.rrset(try name("ns1.inb.test."), .a, now: start + .seconds(302), atLeast: .answer) != nil)
        // Glue is not good enough where an answer is wanted.
        records.insert([try rr("glue.inb.test. 300 IN A 192.0.2.9")], credibility: .glue, now: start)
        #expect(records.rrset(try name("glue.inb.test."), .a, now: start, atLeast: .authority) == nil)
        #expect(records.rrset(try name("glue.inb.test."), .a, now: start) != nil)
    }

    @Test func ttlsCountDownAndAnRRsetLivesAsLongAsItsShortestTTL() throws {
        let records = cache()
        records.insert(
            [try rr("www.inb.test. 300 IN A 192.0.2.1"), try rr("www.inb.test. 100 IN A 192.0.2.2")], credibility: .answer,
            now: start)
        let later = try #require(records.rrset(try name("www.inb.test."), .a, now: start + .seconds(40)))
        #expect(later.map(\.ttl) == [260, 60])
        #expect(records.rrset(try name("www.inb.test."), .a, now: start + .seconds(100)) == nil)
        // TTL 0 is never stored.
        records.insert([try rr("zero.inb.test. 0 IN A 192.0.2.3")], credibility: .answer, now: start)
        #expect(records.rrset(try name("zero.inb.test."), .a, now: start) == nil)
    }

    @Test func anNXDomainCoversEverythingBelowIt() throws {
        let records = cache()
        records.insertNXDomain(try name("nope.inb.test."), soa: try rr(soa), now: start)
        let below = records.nxdomain(covering: try name("a.b.NOPE.inb.test."), now: start + .seconds(10))
        #expect(below??.ttl == 50)  // min(SOA TTL, MINIMUM 60), ten seconds old
        #expect(records.nxdomain(covering: try name("inb.test."), now: start) == nil)
        #expect(records.nxdomain(covering: try name("nope.inb.test."), now: start + .seconds(60)) == nil)
        // Without an SOA there is no negative TTL, so nothing is kept.
        records.insertNXDomain(try name("other.inb.test."), soa: nil, now: start)
        #expect(records.nxdomain(covering: try name("other.inb.test."), now: start) == nil)
    }

    @Test func noDataIsPerTypeAndEndsWhenRecordsArrive() throws {
        let records = cache()
        records.insertNoData(try name("www.inb.test."), .aaaa, soa: try rr(soa), now: start)
        #expect(records.noData(try name("www.inb.test."), .aaaa, now: start) != nil)
        #expect(records.noData(try name("www.inb.test."), .a, now: start) == nil)
        records.insert([try rr("www.inb.test. 300 IN AAAA 2001:db8::1")], credibility: .answer, now: start)
        #expect(records.noData(try name("www.inb.test."), .aaaa, now: start) == nil)
    }

    @Test func flushRemovesANameOrASubtree() throws {
        let records = cache()
        for text in ["www.inb.test. 300 IN A 192.0.2.1", "a.www.inb.test. 300 IN A 192.0.2.2", "www.lab. 300 IN A 192.0.2.3"] {
            records.insert([try rr(text)], credibility: .answer, now: start)
        }
        records.insertNXDomain(try name("nope.inb.test."), soa: try rr(soa), now: start)
        #expect(records.flush(.name(try name("www.inb.test."))) == 1)
        #expect(records.flush(.subtree(try name("inb.test."))) == 2)
        #expect(records.count == 1)
        #expect(records.flush(.all) == 1)
    }

    @Test func staysWithinItsEntryBound() throws {
        let records = cache(maxEntries: 64)
        for index in 0..<1000 {
            records.insert([try rr("n\(index).inb.test. 300 IN A 192.0.2.1")], credibility: .answer, now: start)
        }
        #expect(records.count <= 64)
        #expect(records.count > 16)
    }
}

@Suite("LocalZones")
struct LocalZonesTests {
    let zones = LocalZones(forwardZones: ForwardZones([]))

    func ask(_ text: String, _ type: RecordType = .ptr, zones: LocalZones? = nil) throws -> LocalAnswer? {
        (zones ?? self.zones).answer(Question(name: try name(text), type: type))
    }

    @Test func privateReverseNamesDoNotExist() throws {
        for text in ["3.2.1.10.in-addr.arpa.", "1.1.20.172.in-addr.arpa.", "1.1.168.192.in-addr.arpa.", "1.0.254.169.in-addr.arpa."] {
            let answer = try #require(try ask(text), "\(text)")
            #expect(answer.rcode == .nxDomain)
            #expect(answer.authorities.first?.type == .soa)
        }
        // The apex exists: SOA and NS, NODATA for the rest.
        #expect(try ask("10.in-addr.arpa.", .soa)?.answers.first?.type == .soa)
        #expect(try ask("10.in-addr.arpa.", .ns)?.answers.first?.type == .ns)
        #expect(try ask("10.in-addr.arpa.", .a)?.answers.isEmpty == true)
        // Public addresses and 172.32/12 are not local.
        #expect(try ask("1.1.32.172.in-addr.arpa.") == nil)
        #expect(try ask("8.8.8.8.in-addr.arpa.") == nil)
        #expect(try ask("www.example.com.", .a) == nil)
    }

    @Test func loopbackAddressesAreLocalhost() throws {
        let v4 = try #require(try ask("1.0.0.127.in-addr.arpa."))
        #expect(v4.answers.first?.targetName == (try name("localhost.")))
        let v6 = try #require(try ask("1." + String(repeating: "0.", count: 31) + "ip6.arpa."))
        #expect(v6.answers.first?.targetName == (try name("localhost.")))
        #expect(try ask("2.0.0.127.in-addr.arpa.")?.rcode == .nxDomain)
    }

    @Test func aForwardZoneCoveringTheNameWins() throws {
        let corporate = LocalZones(
            forwardZones: ForwardZones([(try name("10.in-addr.arpa."), [try #require(ServerAddress("192.0.2.53"))])]))
        #expect(try ask("3.2.1.10.in-addr.arpa.", zones: corporate) == nil)
        #expect(try ask("1.1.168.192.in-addr.arpa.", zones: corporate)?.rcode == .nxDomain)
    }
}

@Suite("ResolutionBudget and TimerHeap")
struct BudgetAndTimerTests {
    @Test func theBudgetStopsAtItsQueryCountAndDeadline() {
        var settings = RecursionSettings()
        settings.maxUpstreamQueries = 3
        let budget = ResolutionBudget(settings: settings, now: .now())
        #expect((0..<3).allSatisfy { _ in budget.spend() == nil })
        #expect(budget.spend()?.contains("more than 3") == true)
        settings.deadline = .zero
        #expect(ResolutionBudget(settings: settings, now: .now()).spend() == "deadline passed")
        // A nameserver lookup already under way is a loop.
        let question = Question(name: .root, type: .a)
        #expect(budget.begin(question))
        #expect(!budget.begin(question))
        budget.end(question)
        #expect(budget.begin(question))
    }

    @Test func timersComeDueInDeadlineOrderAndCancelledOnesDoNotRun() {
        let start = NIODeadline.uptimeNanoseconds(1_000_000_000)
        var heap = TimerHeap()
        let fired = Mutex<[Int]>([])
        var random = SplitMix64(seed: 7)
        var timers: [Int: UpstreamTimer] = [:]
        for index in 0..<200 {
            let timer = UpstreamTimer { fired.withLock { $0.append(index) } }
            timers[index] = timer
            heap.push(deadline: start + .milliseconds(Int64(random.next() % 1000)), timer)
        }
        timers[5]?.cancel()
        #expect(heap.popDue(now: start - .milliseconds(1)).isEmpty)
        var count = 0
        for step in stride(from: 0, through: 1000, by: 50) {
            let now = start + .milliseconds(Int64(step))
            let due = heap.popDue(now: now)
            count += due.count
            due.forEach { $0.fire() }
            #expect(heap.earliest.map { $0 > now } ?? true)
        }
        #expect(count == 200)
        #expect(heap.earliest == nil)
        #expect(fired.withLock { $0.count } == 199)
        #expect(!fired.withLock { $0.contains(5) })
    }
}
