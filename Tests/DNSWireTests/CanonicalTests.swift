// Canonical: RFC 4034 §6 — name order (the RFC's own example), record form (which RDATA names
// are lower-cased, RFC 6840 §5.1's NSEC exception), RRset order, and the signed octets of
// §3.1.8.1 built by hand, wildcard owners included.

import DNSWire
import WireTestSupport
import Testing

@Suite("Canonical")
struct CanonicalTests {
    /// RFC 4034 §6.1's example, in its order.
    static let rfcOrder = [
        "example", "a.example", "yljkjljk.a.example", "Z.a.example", "zABC.a.EXAMPLE", "z.example", "\\001.z.example",
        "*.z.example", "\\200.z.example",
    ]

    @Test func sortsTheRFC4034Example() {
        let names = Self.rfcOrder.map(name)
        var random = SplitMix64(seed: 4034)
        for _ in 0..<20 {
            #expect(names.shuffled(using: &random).sorted().map(\.description) == names.map(\.description))
        }
        for (earlier, later) in zip(names, names.dropFirst()) {
            #expect(earlier < later, "\(earlier) < \(later)")
            #expect(DomainName.canonicalCompare(earlier, later) < 0)
            #expect(DomainName.canonicalCompare(later, earlier) > 0)
        }
    }

    @Test func comparesCaseInsensitivelyAndByLabelsFromTheRoot() {
        #expect(DomainName.canonicalCompare(name("WWW.Example.COM"), name("www.example.com")) == 0)
        #expect(!(name("WWW.Example.COM") < name("www.example.com")))
        #expect(DomainName.root < name("com"))
        // Label by label from the right: `a.z` after `b.a` although `a` < `b`.
        #expect(name("b.a") < name("a.z"))
        // A label that is a prefix of another sorts first; a missing label before any.
        #expect(name("ab.example") < name("abc.example"))
        #expect(name("example") < name("a.example"))
        // `_` (0x5F) sorts between upper-case letters and lower-case ones; lower-casing moves `Z`.
        #expect(name("_a.example") < name("Z.example"))
    }

    // MARK: Record form

    @Test func lowersNamesInsideMXSRVAndRRSIGButNotNSEC() {
        let mx = Canonical.rdata([0, 10] + TestWire.name("Mail.Example.COM"), type: .mx)
        #expect(mx == [0, 10] + TestWire.name("mail.example.com"))
        let srv = Canonical.rdata([0, 1, 0, 2, 0, 80] + TestWire.name("SIP.Example.com"), type: .srv)
        #expect(srv == [0, 1, 0, 2, 0, 80] + TestWire.name("sip.example.com"))
        // RRSIG: the signer's name only; a signature octet that looks like `A` stays.
        let fixed: [UInt8] = [0, 1, 8, 2, 0, 0, 14, 16, 0x65, 0, 0, 0, 0x64, 0, 0, 0, 0x12, 0x34]
        let rrsig = Canonical.rdata(fixed + TestWire.name("Example.COM") + [0x41, 0x42, 0x5A], type: .rrsig)
        #expect(rrsig == fixed + TestWire.name("example.com") + [0x41, 0x42, 0x5A])
        // NSEC keeps its next name's case (RFC 6840 §5.1), and its bitmap.
        let nsec = TestWire.name("Next.Example.COM") + [0, 1, 0x40]
        #expect(Canonical.rdata(nsec, type: .nsec) == nsec)
        // Types without names: as they are.
        let txt: [UInt8] = [5] + Array("HeLLo".utf8)
        #expect(Canonical.rdata(txt, type: .txt) == txt)
        #expect(Canonical.rdata([0x41, 0x42, 0x43, 0x44], type: .a) == [0x41, 0x42, 0x43, 0x44])
    }

    @Test func lowersNamesOfEveryListedType() {
        let upper = TestWire.name("A.B")
        let lower = TestWire.name("a.b")
        #expect(Canonical.rdata(upper, type: .ns) == lower)
        #expect(Canonical.rdata(upper, type: .cname) == lower)
        #expect(Canonical.rdata(upper, type: .ptr) == lower)
        #expect(Canonical.rdata(upper, type: .dname) == lower)
        #expect(Canonical.rdata(upper + upper + [UInt8](repeating: 0x41, count: 20), type: .soa) == lower + lower + [UInt8](repeating: 0x41, count: 20))
        #expect(Canonical.rdata([0, 1, 0, 2, 1, 0x55, 0, 0] + upper, type: .naptr) == [0, 1, 0, 2, 1, 0x55, 0, 0] + lower)
        #expect(Canonical.rdata(upper + upper, type: RecordType(rawValue: 17)) == lower + lower)  // RP
        // A6 (RFC 2874): prefix length 64 → 8 suffix octets, then the prefix name.
        let a6: [UInt8] = [64] + [UInt8](repeating: 0x41, count: 8)
        #expect(Canonical.rdata(a6 + upper, type: RecordType(rawValue: 38)) == a6 + lower)
        // Not listed: SVCB (RFC 9460 §2.2 leaves its target as it is).
        #expect(Canonical.rdata([0, 1] + upper, type: .svcb) == [0, 1] + upper)
    }

    @Test func leavesMalformedRDATAAlone() {
        let broken: [UInt8] = [0, 10, 5, 0x41, 0x42]
        #expect(Canonical.rdata(broken, type: .mx) == broken)
    }

    @Test func canonicalRecordLowersTheOwner() {
        let record = ResourceRecord(name: name("WWW.Example.COM"), type: .cname, ttl: 60, rdata: TestWire.name("Target.Example.COM"))
        let canonical = Canonical.record(record)
        #expect(canonical.name.wire == TestWire.name("www.example.com"))
        #expect(canonical.rdata == TestWire.name("target.example.com"))
        #expect(canonical.ttl == 60)
    }

    // MARK: RRset order

    @Test func ordersAnRRsetAndDropsDuplicates() {
        let owner = name("example")
        let records = [[1, 2, 3], [1, 2], [0, 9, 9, 9], [1, 2], [255]].map {
            ResourceRecord(name: owner, type: RecordType(rawValue: 65280), ttl: 1, rdata: $0)
        }
        #expect(Canonical.sortedRRset(records).map(\.rdata) == [[0, 9, 9, 9], [1, 2], [1, 2, 3], [255]])
        // Duplicates once canonical: MX targets differing in case only.
        let mx = [("B.example", 10), ("a.example", 10), ("A.EXAMPLE", 10), ("a.example", 5)].map { target, preference in
            ResourceRecord(name: owner, type: .mx, ttl: 1, rdata: [0, UInt8(preference)] + TestWire.name(target))
        }
        #expect(Canonical.sortedRRset(mx).map(\.rdata) == [
            [0, 5] + TestWire.name("a.example"), [0, 10] + TestWire.name("a.example"), [0, 10] + TestWire.name("b.example"),
        ])
    }

    // MARK: Signed data

    static let rrsigFixed: [UInt8] = [
        0, 1,  // type covered: A
        8,  // algorithm: RSASHA256
        3,  // labels: www.example.com
        0, 0, 0x0E, 0x10,  // original TTL 3600
        0x65, 0, 0, 0,  // expiration
        0x64, 0, 0, 0,  // inception
        0x12, 0x34,  // key tag
    ]

    @Test func buildsTheSignedOctetsOfASmallRRset() throws {
        let signature: [UInt8] = [0xDE, 0xAD, 0xBE, 0xEF]
        let rrsig = Self.rrsigFixed + TestWire.name("Example.COM") + signature
        // Given out of order, with a duplicate, an owner in upper case and another TTL.
        let rrset = [[192, 0, 2, 2], [192, 0, 2, 1], [192, 0, 2, 2]].map {
            ResourceRecord(name: name("WWW.Example.com"), type: .a, ttl: 300, rdata: $0)
        }
        let owner: [UInt8] = [3, 0x77, 0x77, 0x77, 7, 0x65, 0x78, 0x61, 0x6D, 0x70, 0x6C, 0x65, 3, 0x63, 0x6F, 0x6D, 0]
        var expected = Self.rrsigFixed
        expected += [7, 0x65, 0x78, 0x61, 0x6D, 0x70, 0x6C, 0x65, 3, 0x63, 0x6F, 0x6D, 0]  // example.com, lower case
        for last: UInt8 in [1, 2] {
            expected += owner
            expected += [0, 1, 0, 1]  // type A, class IN
            expected += [0, 0, 0x0E, 0x10]  // the original TTL, not 300
            expected += [0, 4, 192, 0, 2, last]
        }
        #expect(try Canonical.signedData(rrsig: rrsig, rrset: rrset) == expected)
    }

    @Test func signsAWildcardExpansionAsTheWildcard() throws {
        // labels 2: an answer for x.y.example.com was expanded from *.example.com.
        var fixed = Self.rrsigFixed
        fixed[3] = 2
        let rrsig = fixed + TestWire.name("example.com") + [1, 2, 3]
        let rrset = [ResourceRecord(name: name("x.Y.example.com"), type: .a, ttl: 60, rdata: [10, 0, 0, 1])]
        let data = try Canonical.signedData(rrsig: rrsig, rrset: rrset)
        let prefixLength = 18 + TestWire.name("example.com").count
        let wildcard: [UInt8] = [1, 0x2A] + TestWire.name("example.com")
        #expect(Array(data[prefixLength..<(prefixLength + wildcard.count)]) == wildcard)
        #expect(data.count == prefixLength + wildcard.count + 10 + 4)
        // The wildcard owner itself (3 labels with `*`, labels field 2) is signed the same way.
        let literal = [ResourceRecord(name: name("*.example.com"), type: .a, ttl: 60, rdata: [10, 0, 0, 1])]
        #expect(try Canonical.signedData(rrsig: rrsig, rrset: literal) == data)
    }

    @Test func refusesWhatCannotBeVerified() {
        let rrsig = Self.rrsigFixed + TestWire.name("example.com") + [1]
        let a = ResourceRecord(name: name("www.example.com"), type: .a, ttl: 60, rdata: [10, 0, 0, 1])
        #expect(throws: CanonicalError.badRRSIG) { try Canonical.signedData(rrsig: Array(rrsig.prefix(18)), rrset: [a]) }
        #expect(throws: CanonicalError.badRRSIG) { try Canonical.signedData(rrsig: Self.rrsigFixed + [5, 0x61], rrset: [a]) }
        #expect(throws: CanonicalError.emptyRRset) { try Canonical.signedData(rrsig: rrsig, rrset: []) }
        var other = a
        other.name = name("mail.example.com")
        #expect(throws: CanonicalError.mixedRRset) { try Canonical.signedData(rrsig: rrsig, rrset: [a, other]) }
        var aaaa = a
        aaaa.type = .aaaa
        #expect(throws: CanonicalError.typeNotCovered) { try Canonical.signedData(rrsig: rrsig, rrset: [aaaa]) }
        var shallow = a
        shallow.name = name("example.com")  // 2 labels, the RRSIG says 3
        #expect(throws: CanonicalError.labelsExceedOwner) { try Canonical.signedData(rrsig: rrsig, rrset: [shallow]) }
    }
}
