// Recursion/RecordCache: credibility ranking (RFC 2181 §5.4.1), TTLs counted down on a fake
// clock, RFC 8020 NXDOMAIN cuts, NODATA, flush and the byte bound (many names, huge RRsets); the
// resolution budget, the caps on a zone cut's nameservers and addresses, and the upstream timer
// heap. Recursion/LocalZones: RFC 6303's zones and the forward zones that
// override them.

import NIOCore
import Synchronization
import Testing

@testable import Resolver
import WireTestSupport

@Suite("RecordCache")
struct RecordCacheTests {
    let start = NIODeadline.uptimeNanoseconds(1_000_000_000_000)
    let soa = "inb.test. 3600 IN SOA ns1.inb.test. nobody.invalid. 1 3600 1200 604800 60"

    func cache(maxBytes: Int = 1 << 20) -> RecordCache {
        RecordCache(maxBytes: maxBytes, maxTTL: 86400, maxNegativeTTL: 3600, shardCount: 2)
    }

    /// An RRset of `count` A records at `owner` (about 88 bytes each as counted).
    func bigRRset(_ text: String, count: Int) throws -> [ResourceRecord] {
        let owner = try name(text)
        return (0..<count).map { index in
            ResourceRecord(name: owner, type: .a, ttl: 300, rdata: [10, 0, UInt8(index >> 8 & 0xFF), UInt8(index & 0xFF)])
        }
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

    @Test func aNonAuthoritativeAnswerRanksBetweenReferralAndAuthoritativeData() throws {
        let records = cache()
        let owner = try name("ns1.inb.test.")
        records.insert([try rr("ns1.inb.test. 300 IN A 192.0.2.7")], credibility: .glue, now: start)
        records.insert([try rr("ns1.inb.test. 300 IN A 192.0.2.1")], credibility: .answer(authoritative: false), now: start)
        #expect(records.rrset(owner, .a, now: start, atLeast: .nonAuthoritativeAnswer)?.map(\.rdata) == [[192, 0, 2, 1]])
        // Glue does not replace it; an authoritative answer does.
        records.insert([try rr("ns1.inb.test. 300 IN A 6.6.6.6")], credibility: .glue, now: start)
        #expect(records.rrset(owner, .a, now: start)?.map(\.rdata) == [[192, 0, 2, 1]])
        records.insert([try rr("ns1.inb.test. 300 IN A 192.0.2.2")], credibility: .answer(authoritative: true), now: start)
        #expect(records.rrset(owner, .a, now: start, atLeast: .answer)?.map(\.rdata) == [[192, 0, 2, 2]])
    }

    @Test func aChildsNSSetNeverOutlivesTheParentsDelegation() throws {
        let records = cache()
        let zone = try name("moved.test.")
        records.insert([try rr("moved.test. 60 IN NS ns1.moved.test.")], credibility: .referral, now: start)
        // The child's own NS set, asked for 10 s later: more credible, TTL one day. It replaces
        // the referral's, but goes when the referral would have (CVE-2012-1033).
        records.insert([try rr("moved.test. 86400 IN NS ns1.moved.test.")], credibility: .answer, now: start + .seconds(10))
        let held = try #require(records.rrset(zone, .ns, now: start + .seconds(10), atLeast: .answer))
        #expect(held.map(\.ttl) == [50])
        #expect(records.rrset(zone, .ns, now: start + .seconds(60)) == nil)
        // Once it expired the next delegation stands on its own TTL.
        records.insert([try rr("moved.test. 86400 IN NS ns2.moved.test.")], credibility: .referral, now: start + .seconds(61))
        #expect(records.rrset(zone, .ns, now: start + .seconds(3600)) != nil)
    }

    @Test func ttlsAboveMaxTTLAreServedAsMaxTTL() throws {
        let records = RecordCache(maxBytes: 1 << 20, maxTTL: 3600, maxNegativeTTL: 900, shardCount: 1)
        records.insert([try rr("big.inb.test. 2147483647 IN A 192.0.2.1")], credibility: .answer, now: start)
        #expect(records.rrset(try name("big.inb.test."), .a, now: start)?.map(\.ttl) == [3600])
        #expect(records.rrset(try name("big.inb.test."), .a, now: start + .seconds(3600)) == nil)
    }

    @Test func negativeAnswersKeepTheirProofRecordsWithTTLsCapped() throws {
        let records = cache()
        // SOA TTL 30 below its MINIMUM 60: the negative TTL is 30 (RFC 2308 §5), and no proof
        // record is served longer.
        let soa = try rr("inb.test. 30 IN SOA ns1.inb.test. nobody.invalid. 1 3600 1200 604800 60")
        let nsec = try rr("gone.inb.test. 600 IN NSEC www.inb.test. A RRSIG NSEC")
        records.insertNXDomain(try name("nope.inb.test."), authority: [soa, nsec], now: start)
        let held = try #require(records.nxdomain(covering: try name("nope.inb.test."), now: start + .seconds(5)))
        #expect(held.map(\.type) == [.soa, .nsec])
        #expect(held.map(\.ttl) == [25, 25])
        #expect(records.nxdomain(covering: try name("nope.inb.test."), now: start + .seconds(30)) == nil)
        // The SOA must come first: proof records alone make no negative answer.
        records.insertNoData(try name("www.inb.test."), .txt, authority: [nsec, soa], now: start)
        #expect(records.noData(try name("www.inb.test."), .txt, now: start) == nil)
    }

    @Test func ttlsCountDownAndAnRRsetLivesAsLongAsItsShortestTTL() throws {
        let records = cache()
        records.insert(
            [try rr("www.inb.test. 300 IN A 192.0.2.1"), try rr("www.inb.test. 100 IN A 192.0.2.2")], credibility: .answer,
            now: start)
        let later = try #require(records.rrset(try name("www.inb.test."), .a, now: start + .seconds(40)))
        // RFC 2181 §5.2: an RRset's records share one TTL, its shortest.
        #expect(later.map(\.ttl) == [60, 60])
        #expect(records.rrset(try name("www.inb.test."), .a, now: start + .seconds(100)) == nil)
        // TTL 0 is never stored.
        records.insert([try rr("zero.inb.test. 0 IN A 192.0.2.3")], credibility: .answer, now: start)
        #expect(records.rrset(try name("zero.inb.test."), .a, now: start) == nil)
    }

    @Test func anNXDomainCoversEverythingBelowIt() throws {
        let records = cache()
        records.insertNXDomain(try name("nope.inb.test."), authority: [try rr(soa)], now: start)
        let below = records.nxdomain(covering: try name("a.b.NOPE.inb.test."), now: start + .seconds(10))
        #expect(below?.first?.ttl == 50)  // min(SOA TTL, MINIMUM 60), ten seconds old
        #expect(records.nxdomain(covering: try name("inb.test."), now: start) == nil)
        #expect(records.nxdomain(covering: try name("nope.inb.test."), now: start + .seconds(60)) == nil)
        // Without an SOA there is no negative TTL, so nothing is kept.
        records.insertNXDomain(try name("other.inb.test."), authority: [], now: start)
        #expect(records.nxdomain(covering: try name("other.inb.test."), now: start) == nil)
    }

    @Test func noDataIsPerTypeAndEndsWhenRecordsArrive() throws {
        let records = cache()
        records.insertNoData(try name("www.inb.test."), .aaaa, authority: [try rr(soa)], now: start)
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
        records.insertNXDomain(try name("nope.inb.test."), authority: [try rr(soa)], now: start)
        #expect(records.flush(.name(try name("www.inb.test."))) == 1)
        #expect(records.flush(.subtree(try name("inb.test."))) == 2)
        #expect(records.count == 1)
        #expect(records.flush(.all) == 1)
    }

    @Test func staysWithinItsByteBoundWithManySmallEntries() throws {
        let records = cache()
        let soa = try rr(soa)
        for index in 0..<20_000 {
            let now = start + .milliseconds(Int64(index))
            records.insert([try rr("n\(index).inb.test. 300 IN A 192.0.2.1")], credibility: .answer, now: now)
            records.insertNoData(try name("n\(index).inb.test."), .aaaa, authority: [soa], now: now)
            records.insertNXDomain(try name("x\(index).inb.test."), authority: [soa], now: now)
            if index % 100 == 0 { #expect(records.bytes <= records.maxBytes) }
        }
        #expect(records.bytes <= records.maxBytes)
        #expect(records.bytes > records.maxBytes / 2)
        #expect(records.count > 1_000)
        // The newest are kept, the oldest went.
        #expect(records.rrset(try name("n19999.inb.test."), .a, now: start + .seconds(20)) != nil)
    }

    @Test func staysWithinItsByteBoundWithHugeRRsets() throws {
        // 1 MiB in two shards of 512 KiB; RRsets of 1,000 records (about 88 KB each as counted)
        // fit a quarter of a shard. The old bound counted entries: 64 of them could be 5.6 MB.
        let records = cache()
        for index in 0..<200 {
            records.insert(try bigRRset("big\(index).inb.test.", count: 1_000), credibility: .answer, now: start + .seconds(Int64(index)))
            #expect(records.bytes <= records.maxBytes, "\(records.bytes) bytes after \(index + 1) RRsets")
        }
        #expect(records.count >= 4)
        #expect(records.rrset(try name("big199.inb.test."), .a, now: start + .seconds(200))?.count == 1_000)
        // An RRset past a quarter of a shard (4,000 records, 64 KB on the wire) is not kept at all.
        records.insert(try bigRRset("huge.inb.test.", count: 4_000), credibility: .answer, now: start)
        #expect(records.rrset(try name("huge.inb.test."), .a, now: start) == nil)
        // The count is exact: what goes out is taken off.
        records.flush(.all)
        #expect(records.bytes == 0)
        #expect(records.count == 0)
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
        let now = NIODeadline.uptimeNanoseconds(1_000_000_000)
        let budget = ResolutionBudget(settings: settings, now: now)
        #expect(budget.exhausted(now: now) == nil)
        #expect((0..<3).allSatisfy { _ in budget.spend(now: now) })
        #expect(!budget.spend(now: now))
        #expect(budget.sent == 3)
        #expect(budget.exhausted(now: now) == .budgetSpent(maxQueries: 3))
        // The deadline: nothing leaves at or past it, whatever is left.
        settings.maxUpstreamQueries = 64
        let timed = ResolutionBudget(settings: settings, now: now)
        #expect(timed.spend(now: now + .milliseconds(9_999)))
        #expect(!timed.spend(now: now + .seconds(10)))
        #expect(timed.exhausted(now: now + .seconds(10)) == .deadlinePassed)
        #expect(timed.sent == 1)
    }

    @Test func aZoneCutTakesItsFirst13NameserversAndTwoAddressesEach() throws {
        var settings = RecursionSettings()
        settings.queryLoopback = true
        let names = try (1...200).map { try name("ns\($0).wide.test.") }
        // Each name has ten A and ten AAAA records: one of each family is taken.
        let (found, missing) = RecursionMachine.candidates(names + names, settings: settings) { owner in
            let a = (0..<10).map { ResourceRecord(name: owner, type: .a, ttl: 300, rdata: [127, 0, 0, UInt8($0 + 1)]) }
            let aaaa = (0..<10).map { ResourceRecord(name: owner, type: .aaaa, ttl: 300, rdata: [UInt8](repeating: 0, count: 15) + [UInt8($0 + 1)]) }
            return (a, aaaa)
        }
        #expect(found.count == 26)
        #expect(missing.isEmpty)
        #expect(found.filter { !$0.ip.isV6 }.count == 13)
        // Names without addresses: only the first 13 are candidates for a lookup.
        let (none, unknown) = RecursionMachine.candidates(names, settings: settings) { _ in ([], []) }
        #expect(none.isEmpty)
        #expect(unknown == Array(names.prefix(13)))
    }

    @Test func nameserverAddressesOnThisHostAreNotQueriedUnlessAllowed() throws {
        let names = try ["ns1.local.test.", "ns2.local.test.", "ns3.local.test.", "ns4.local.test."].map(name)
        let addresses: [DomainName: ([UInt8], [UInt8])] = [
            names[0]: ([127, 0, 0, 1], []),
            names[1]: ([0, 0, 0, 0], [UInt8](repeating: 0, count: 15) + [1]),
            names[2]: ([], [UInt8](repeating: 0, count: 10) + [0xFF, 0xFF, 127, 0, 0, 1]),
            names[3]: ([192, 0, 2, 53], []),
        ]
        func known(_ owner: DomainName) -> (a: [ResourceRecord], aaaa: [ResourceRecord]) {
            let (v4, v6) = addresses[owner] ?? ([], [])
            return (
                v4.isEmpty ? [] : [ResourceRecord(name: owner, type: .a, ttl: 300, rdata: v4)],
                v6.isEmpty ? [] : [ResourceRecord(name: owner, type: .aaaa, ttl: 300, rdata: v6)]
            )
        }
        // Default: only the one public address; the others are not looked up again either.
        let (found, missing) = RecursionMachine.candidates(names, settings: RecursionSettings(), known: known)
        #expect(found.map(\.ip.description) == ["192.0.2.53"])
        #expect(missing.isEmpty)
        var allowed = RecursionSettings()
        allowed.queryLoopback = true
        #expect(RecursionMachine.candidates(names, settings: allowed, known: known).found.count == 5)
    }

    @Test func primingBacksOffFromOneSecondToAMinute() {
        #expect((1...8).map { RecursiveResolver.primingBackoff(failures: $0).nanoseconds / 1_000_000_000 } == [1, 2, 4, 8, 16, 32, 60, 60])
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
