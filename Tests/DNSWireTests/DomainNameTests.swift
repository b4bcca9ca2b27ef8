// Wire/DomainName: presentation parsing and printing, limits, case-insensitive identity, and the
// tree relations (subdomain, parent, canonical order).

import Testing

@testable import DNSWire
import WireTestSupport

@Suite("DomainName")
struct DomainNameTests {
    // MARK: Parsing

    @Test func parsesWithAndWithoutTheTrailingDot() throws {
        let dotted = try #require(DomainName("www.example.com."))
        let bare = try #require(DomainName("www.example.com"))
        #expect(dotted.wire == TestWire.name("www.example.com"))
        #expect(bare.wire == dotted.wire)
    }

    @Test("the root", arguments: [".", ""])
    func parsesTheRoot(text: String) throws {
        let name = try #require(DomainName(text))
        #expect(name == .root)
        #expect(name.wire == [0])
        #expect(name.isRoot)
        #expect(name.labelCount == 0)
        #expect(name.description == ".")
    }

    @Test func parsesAnEscapedDot() throws {
        let name = try #require(DomainName("a\\.b.example"))
        #expect(name.labelCount == 2)
        #expect(name.wire == [3, 0x61, 0x2E, 0x62, 7] + Array("example".utf8) + [0])
        #expect(name.description == "a\\.b.example.")
    }

    @Test func parsesDecimalEscapes() throws {
        let name = try #require(DomainName("\\065\\000\\255.example"))
        #expect(Array(name.labels[0]) == [0x41, 0x00, 0xFF])
        #expect(name.description == "A\\000\\255.example.")
    }

    @Test func parsesOtherEscapedCharacters() throws {
        let name = try #require(DomainName("a\\\\b\\ c.example"))
        #expect(Array(name.labels[0]) == Array("a\\b c".utf8))
    }

    @Test(
        "malformed text is rejected",
        arguments: [
            "a..b", ".example", "..", "example..", "www..example.com.",
            "a\\", "a\\0", "a\\06", "a\\6x5", "a\\256", "a\\999",
        ])
    func rejectsMalformedText(text: String) {
        #expect(DomainName(text) == nil)
    }

    @Test func acceptsALabelOf63Octets() throws {
        let label = String(repeating: "a", count: 63)
        let name = try #require(DomainName("\(label).example"))
        #expect(name.labels[0].count == 63)
    }

    @Test func rejectsALabelOf64Octets() {
        #expect(DomainName(String(repeating: "a", count: 64) + ".example") == nil)
        #expect(DomainName("example." + String(repeating: "a", count: 64)) == nil)
        // An escape counts as one octet: 63 escapes fit, 64 do not.
        #expect(DomainName(String(repeating: "\\065", count: 63)) != nil)
        #expect(DomainName(String(repeating: "\\065", count: 64)) == nil)
    }

    @Test func acceptsA255OctetName() throws {
        // 3 × (1 + 63) + (1 + 61) + 1 = 255.
        let label = String(repeating: "a", count: 63)
        let text = "\(label).\(label).\(label).\(String(repeating: "b", count: 61))"
        let name = try #require(DomainName(text))
        #expect(name.wire.count == 255)
        #expect(DomainName(text + ".") == name)
    }

    @Test func rejectsA256OctetName() {
        let label = String(repeating: "a", count: 63)
        #expect(DomainName("\(label).\(label).\(label).\(String(repeating: "b", count: 62))") == nil)
        #expect(DomainName(Array(repeating: "a", count: 128).joined(separator: ".")) == nil)
        #expect(DomainName(Array(repeating: "a", count: 127).joined(separator: ".")) != nil)
    }

    // MARK: Wire validation

    @Test func validatesWire() throws {
        #expect(DomainName(wire: [0]) == .root)
        let name = try #require(DomainName(wire: TestWire.name("example.com")))
        #expect(name.description == "example.com.")
    }

    @Test(
        "invalid wire is rejected",
        arguments: [
            [],  // no root label
            [1, 0x61],  // no root label
            [1, 0x61, 0, 0],  // bytes after the root label
            [5, 0x61, 0],  // label runs past the end
            [64] + [UInt8](repeating: 0x61, count: 64) + [0],  // label too long
            [0xC0, 0x00],  // a compression pointer
        ] as [[UInt8]])
    func rejectsInvalidWire(wire: [UInt8]) {
        #expect(DomainName(wire: wire) == nil)
    }

    @Test func rejectsWireOver255Octets() {
        #expect(DomainName(wire: TestWire.name(labels: 4, length: 63)) == nil)
        #expect(DomainName(wire: TestWire.name(labels: 127, length: 1)) != nil)
    }

    // MARK: Presentation

    @Test(
        "description round-trips through the parser",
        arguments: [
            "example.com.", "WwW.ExAmPlE.CoM.", "a\\.b.example.", "a\\\\b.example.", "\\000\\001\\255.example.",
            "semi\\;colon.example.", "q\\\"uote.example.", "\\(paren\\).example.", "\\@\\$.example.", "sp\\032ace.",
            "*.example.", "_sip._tcp.example.", "xn--bcher-kva.example.", "-.example.",
        ])
    func roundTripsDescription(text: String) throws {
        let name = try #require(DomainName(text))
        #expect(name.description == text)
        let again = try #require(DomainName(name.description))
        #expect(again.wire == name.wire)
    }

    @Test func escapesBytesOutsidePrintableASCII() throws {
        let name = try #require(DomainName(wire: [4, 0x20, 0x7F, 0x80, 0x09, 0]))
        #expect(name.description == "\\032\\127\\128\\009.")
    }

    @Test func escapesSpecialCharacters() throws {
        let name = try #require(DomainName(wire: [8] + Array(".\\\";()@$".utf8) + [0]))
        #expect(name.description == "\\.\\\\\\\"\\;\\(\\)\\@\\$.")
    }

    // MARK: Identity

    @Test func comparesCaseInsensitively() throws {
        let upper = try #require(DomainName("WWW.EXAMPLE.COM"))
        let lower = try #require(DomainName("www.example.com"))
        let mixed = try #require(DomainName("wWw.ExAmPlE.cOm."))
        #expect(upper == lower)
        #expect(mixed == lower)
        #expect(upper.hashValue == lower.hashValue)
        #expect(Set([upper, lower, mixed]).count == 1)
        #expect([lower: 1][upper] == 1)
        // Case is kept, only ignored.
        #expect(upper.wire != lower.wire)
        #expect(upper.description == "WWW.EXAMPLE.COM.")
    }

    @Test func caseFoldingIsASCIIOnly() throws {
        // 0xC0 and 0xE0 differ by 0x20 like A and a, but are not letters (RFC 4343 §3).
        let a = try #require(DomainName(wire: [1, 0xC0, 0]))
        let b = try #require(DomainName(wire: [1, 0xE0, 0]))
        #expect(a != b)
        // `[` (0x5B) and `{` (0x7B) too.
        #expect(DomainName("[") != DomainName("{"))
        #expect(DomainName("@") != DomainName("`"))
    }

    @Test(
        "different names differ",
        arguments: [
            ("example.com", "example.org"), ("www.example.com", "example.com"), ("a.b", "ab"), ("a.bc", "ab.c"),
            ("example.com", "."),
        ])
    func distinguishesDifferentNames(lhs: String, rhs: String) throws {
        let left = try #require(DomainName(lhs))
        let right = try #require(DomainName(rhs))
        #expect(left != right)
    }

    @Test func lowercasesASCIIOnly() throws {
        let name = try #require(DomainName("WWW.Ex\\200mple.COM"))
        #expect(
            name.lowercased.wire == [3] + Array("www".utf8) + [7, 0x65, 0x78, 200] + Array("mple".utf8) + [3]
                + Array("com".utf8) + [0])
        #expect(name.lowercased == name)
        #expect(DomainName.root.lowercased == .root)
    }

    // MARK: Structure

    @Test(
        "label counts",
        arguments: [
            (".", 0), ("com", 1), ("example.com.", 2), ("a\\.b.example.com", 3),
            ("a.b.c.d.e.f", 6),
        ])
    func countsLabels(text: String, count: Int) throws {
        let name = try #require(DomainName(text))
        #expect(name.labelCount == count)
        #expect(name.labels.count == count)
    }

    @Test func listsLabelsOutermostLast() throws {
        let name = try #require(DomainName("www.Example.com"))
        #expect(name.labels.map { String(decoding: $0, as: UTF8.self) } == ["www", "Example", "com"])
    }

    @Test func walksParentsToTheRoot() throws {
        var name = DomainName("a.B.example.com")
        #expect(name != nil)
        var seen: [String] = []
        while let current = name {
            seen.append(current.description)
            name = current.parent
        }
        #expect(seen == ["a.B.example.com.", "B.example.com.", "example.com.", "com.", "."])
        #expect(DomainName.root.parent == nil)
    }

    @Test(
        "subdomains",
        arguments: [
            ("www.example.com", "example.com", true),
            ("example.com", "example.com", true),
            ("WWW.EXAMPLE.COM", "example.com", true),
            ("a.b.c.example.com", "c.EXAMPLE.com.", true),
            ("example.com", ".", true),
            (".", ".", true),
            ("xexample.com", "example.com", false),
            ("www.xexample.com", "example.com", false),
            ("example.com", "www.example.com", false),
            ("example.org", "example.com", false),
            (".", "com", false),
            ("com", "example.com", false),
            ("a\\.example.com", "example.com", false),
            ("www.a\\.example.com", "example.com", false),
            ("www.a\\.example.com", "a\\.example.com", true),
            ("ab.c.com", "c.com", true),
            ("a.bc.com", "c.com", false),
        ])
    func decidesSubdomains(name: String, zone: String, expected: Bool) throws {
        let child = try #require(DomainName(name))
        let parent = try #require(DomainName(zone))
        #expect(child.isSubdomain(of: parent) == expected)
    }

    @Test func escapedDotIsNotALabelBoundary() throws {
        // `a\.example.com` has the labels `a.example` and `com`: it is not below `example.com`
        // by its labels, whatever its text looks like.
        let name = try #require(DomainName("a\\.example.com"))
        let zone = try #require(DomainName("example.com"))
        #expect(name.labelCount == 2)
        #expect(!name.isSubdomain(of: zone))
    }

    // MARK: Canonical order

    @Test func sortsInCanonicalOrder() throws {
        // The example list of RFC 4034 §6.1, already in canonical order.
        let ordered = [
            "example.", "a.example.", "yljkjljk.a.example.", "Z.a.example.", "zABC.a.EXAMPLE.", "z.example.",
            "\\001.z.example.", "*.z.example.", "\\200.z.example.",
        ]
        let names = try ordered.map { try #require(DomainName($0)) }
        var random = SplitMix64(seed: 4034)
        for _ in 0..<10 {
            let sorted = names.shuffled(using: &random).sorted()
            #expect(sorted.map(\.description) == ordered)
        }
        for (lower, higher) in zip(names, names.dropFirst()) {
            #expect(lower < higher)
            #expect(!(higher < lower))
        }
    }

    @Test func orderIgnoresCase() throws {
        let upper = try #require(DomainName("EXAMPLE.COM"))
        let lower = try #require(DomainName("example.com"))
        #expect(!(upper < lower))
        #expect(!(lower < upper))
        #expect(DomainName.root < lower)
        #expect(!(lower < DomainName.root))
    }

    @Test func keepsTheLastLabelsAndReplacesASuffix() throws {
        let www = try #require(DomainName("www.Example.com."))
        #expect(www.keepingLast(2) == DomainName("example.com."))
        #expect(www.keepingLast(0) == .root)
        #expect(www.keepingLast(5) == www)
        #expect(www.replacingSuffix(try #require(DomainName("example.com.")), with: try #require(DomainName("example.net."))) == DomainName("www.example.net."))
        #expect(www.replacingSuffix(try #require(DomainName("other.com.")), with: .root) == nil)
        // A substitution past 255 octets is no name (RFC 6672 §2.2: YXDOMAIN).
        let long = try #require(DomainName(wire: TestWire.name(labels: 4, length: 62)))
        #expect(DomainName("a.b.")?.replacingSuffix(try #require(DomainName("b.")), with: long)?.wire.count == 255)
        #expect(DomainName("aa.b.")?.replacingSuffix(try #require(DomainName("b.")), with: long) == nil)
    }
}
