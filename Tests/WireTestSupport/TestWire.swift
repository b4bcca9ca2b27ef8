// Support shared by the wire and resolver unit tests: DNS wire fragments assembled byte by byte,
// so that the readers' tests do not depend on the writer (or anything else under test) for
// their input; queries built field by field; and a seeded random source so random tests repeat.

import DNSWire

/// Builders for wire fragments (RFC 1035 §4.1).
public enum TestWire {
    /// Uncompressed wire form of a dotted name (`www.example.com`; `""` or `"."` is the root).
    public static func name(_ text: String) -> [UInt8] {
        var wire: [UInt8] = []
        for label in text.split(separator: ".") {
            wire.append(UInt8(label.utf8.count))
            wire.append(contentsOf: label.utf8)
        }
        wire.append(0)
        return wire
    }

    /// A name made of `labels` labels of `length` octets each (`a` repeated), root added.
    public static func name(labels: Int, length: Int) -> [UInt8] {
        var wire: [UInt8] = []
        for _ in 0..<labels {
            wire.append(UInt8(length))
            wire.append(contentsOf: [UInt8](repeating: UInt8(ascii: "a"), count: length))
        }
        wire.append(0)
        return wire
    }

    /// A compression pointer to `offset`.
    public static func pointer(_ offset: Int) -> [UInt8] { [0xC0 | UInt8(offset >> 8), UInt8(offset & 0xFF)] }

    public static func u16(_ value: UInt16) -> [UInt8] { [UInt8(value >> 8), UInt8(value & 0xFF)] }

    public static func u32(_ value: UInt32) -> [UInt8] { u16(UInt16(value >> 16)) + u16(UInt16(value & 0xFFFF)) }

    /// A header: ID, second word, then the four counts.
    public static func header(
        id: UInt16 = 0x1234, flags: UInt16 = 0x8180, questions: UInt16 = 1, answers: UInt16 = 0, authorities: UInt16 = 0,
        additionals: UInt16 = 0
    ) -> [UInt8] {
        u16(id) + u16(flags) + u16(questions) + u16(answers) + u16(authorities) + u16(additionals)
    }

    /// A question: name bytes (possibly compressed), type, class.
    public static func question(_ name: [UInt8], type: UInt16 = 1, recordClass: UInt16 = 1) -> [UInt8] {
        name + u16(type) + u16(recordClass)
    }

    /// A resource record: owner bytes (possibly a pointer), type, class, TTL, RDLENGTH (the
    /// RDATA's own unless `rdataLength` lies), RDATA.
    public static func record(
        owner: [UInt8], type: UInt16, recordClass: UInt16 = 1, ttl: UInt32 = 300, rdata: [UInt8] = [],
        rdataLength: Int? = nil
    ) -> [UInt8] {
        owner + u16(type) + u16(recordClass) + u32(ttl) + u16(UInt16(rdataLength ?? rdata.count)) + rdata
    }

    /// An OPT pseudo-record (RFC 6891 §6.1.2): CLASS is the payload size, TTL holds the extended
    /// rcode, the version and the DO bit.
    public static func opt(
        udpSize: UInt16 = 1232, extendedRcode: UInt8 = 0, version: UInt8 = 0, dnssecOK: Bool = false,
        owner: [UInt8] = [0], rdata: [UInt8] = []
    ) -> [UInt8] {
        let ttl = UInt32(extendedRcode) << 24 | UInt32(version) << 16 | (dnssecOK ? 0x8000 : 0)
        return record(owner: owner, type: 41, recordClass: udpSize, ttl: ttl, rdata: rdata)
    }

    /// A response-like buffer:
    /// - 12: `www.Example.com` (the question), then QTYPE and QCLASS;
    /// - 33: a pointer to 12 (the answer's owner), then TYPE … RDLENGTH;
    /// - 45: `mail` + a pointer to 16 (`Example.com`), the CNAME target;
    /// - 52: `x` + a pointer to 45 (`mail.Example.com`), a pointer to a name that ends in a pointer;
    /// - 56: a pointer to 52, a pointer to a pointer.
    public static let pointerChains: [UInt8] = {
        var bytes =
            TestWire.u16(0x1234) + TestWire.u16(0x8180) + TestWire.u16(1) + TestWire.u16(1)
            + TestWire.u16(0) + TestWire.u16(0)
        bytes += TestWire.name("www.Example.com") + TestWire.u16(5) + TestWire.u16(1)
        bytes += [0xC0, 0x0C] + TestWire.u16(5) + TestWire.u16(1) + TestWire.u32(300) + TestWire.u16(7)
        bytes += [4] + Array("mail".utf8) + [0xC0, 0x10]
        bytes += [1, UInt8(ascii: "x"), 0xC0, 45]
        bytes += [0xC0, 52]
        return bytes
    }()

    /// Header for www.example.com A and its question: 33 octets; the name is at offset 12.
    public static func responseStart(answers: UInt16 = 0, authorities: UInt16 = 0, additionals: UInt16 = 0) -> [UInt8] {
        header(answers: answers, authorities: authorities, additionals: additionals) + question(name("www.example.com"))
    }
}

/// A query assembled field by field; every count can be set to lie about the sections.
public struct TestQuery {
    public var id: UInt16
    public var flags: UInt16
    public var questionCount: UInt16
    /// nil: the number of entries in `answers` (and likewise below).
    public var answerCount: UInt16?
    public var authorityCount: UInt16?
    public var additionalCount: UInt16?
    public var name: [UInt8]
    public var type: UInt16
    public var recordClass: UInt16
    public var answers: [[UInt8]]
    public var authorities: [[UInt8]]
    public var additionals: [[UInt8]]
    public var trailing: [UInt8]

    public init(
        id: UInt16 = 0xBEEF, flags: UInt16 = DNSHeader.rdBit, questionCount: UInt16 = 1, answerCount: UInt16? = nil,
        authorityCount: UInt16? = nil, additionalCount: UInt16? = nil, name: [UInt8] = TestWire.name("www.example.com"),
        type: UInt16 = 1, recordClass: UInt16 = 1, answers: [[UInt8]] = [], authorities: [[UInt8]] = [],
        additionals: [[UInt8]] = [], trailing: [UInt8] = []
    ) {
        self.id = id
        self.flags = flags
        self.questionCount = questionCount
        self.answerCount = answerCount
        self.authorityCount = authorityCount
        self.additionalCount = additionalCount
        self.name = name
        self.type = type
        self.recordClass = recordClass
        self.answers = answers
        self.authorities = authorities
        self.additionals = additionals
        self.trailing = trailing
    }

    /// Offset just past the question name.
    public var nameEnd: Int { DNSHeader.length + name.count }
    /// Offset just past QCLASS.
    public var questionEnd: Int { nameEnd + 4 }

    public var bytes: [UInt8] {
        var wire = TestWire.u16(id) + TestWire.u16(flags) + TestWire.u16(questionCount)
        wire += TestWire.u16(answerCount ?? UInt16(answers.count))
        wire += TestWire.u16(authorityCount ?? UInt16(authorities.count))
        wire += TestWire.u16(additionalCount ?? UInt16(additionals.count))
        wire += name + TestWire.u16(type) + TestWire.u16(recordClass)
        for record in answers + authorities + additionals { wire += record }
        return wire + trailing
    }
}

/// Runs the hot-path query reader over `bytes`, as a value that tests can compare.
public func readQuery(_ bytes: [UInt8]) -> Result<QueryView, QueryRejection> {
    bytes.withUnsafeBytes { buffer in
        do throws(QueryRejection) {
            return .success(try QueryReader.read(buffer))
        } catch {
            return .failure(error)
        }
    }
}

/// SplitMix64 (Steele, Lea, Flood 2014): a tiny, seedable generator so random tests repeat.
public struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
