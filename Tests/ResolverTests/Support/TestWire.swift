// Support: hand-assembled DNS wire bytes for the reader tests, and a seeded random source.

@testable import Resolver

/// Builders for wire fragments (RFC 1035 §4.1), written out byte by byte so that tests do not
/// depend on the code under test to produce their input.
enum TestWire {
    /// Uncompressed wire form of a dotted name (`www.example.com`; `""` or `"."` is the root).
    static func name(_ text: String) -> [UInt8] {
        var wire: [UInt8] = []
        for label in text.split(separator: ".") {
            wire.append(UInt8(label.utf8.count))
            wire.append(contentsOf: label.utf8)
        }
        wire.append(0)
        return wire
    }

    /// A name made of `labels` labels of `length` octets each (`a` repeated).
    static func name(labels: Int, length: Int) -> [UInt8] {
        var wire: [UInt8] = []
        for _ in 0..<labels {
            wire.append(UInt8(length))
            wire.append(contentsOf: [UInt8](repeating: UInt8(ascii: "a"), count: length))
        }
        wire.append(0)
        return wire
    }

    static func u16(_ value: UInt16) -> [UInt8] { [UInt8(value >> 8), UInt8(value & 0xFF)] }

    static func u32(_ value: UInt32) -> [UInt8] { u16(UInt16(value >> 16)) + u16(UInt16(value & 0xFFFF)) }

    /// A resource record: owner bytes (possibly a pointer), type, class, TTL, RDATA.
    static func record(owner: [UInt8], type: UInt16, recordClass: UInt16 = 1, ttl: UInt32 = 300, rdata: [UInt8] = [])
        -> [UInt8]
    {
        owner + u16(type) + u16(recordClass) + u32(ttl) + u16(UInt16(rdata.count)) + rdata
    }

    /// An OPT pseudo-record (RFC 6891 §6.1.2): CLASS is the payload size, TTL holds the extended
    /// rcode, the version and the DO bit.
    static func opt(
        udpSize: UInt16 = 1232, extendedRcode: UInt8 = 0, version: UInt8 = 0, dnssecOK: Bool = false,
        owner: [UInt8] = [0], rdata: [UInt8] = []
    ) -> [UInt8] {
        let ttl = UInt32(extendedRcode) << 24 | UInt32(version) << 16 | (dnssecOK ? 0x8000 : 0)
        return record(owner: owner, type: 41, recordClass: udpSize, ttl: ttl, rdata: rdata)
    }
}

/// A query assembled field by field; every count can be set to lie about the sections.
struct TestQuery {
    var id: UInt16 = 0xBEEF
    var flags: UInt16 = DNSHeader.rdBit
    var questionCount: UInt16 = 1
    /// nil: the number of entries in `answers` (and likewise below).
    var answerCount: UInt16? = nil
    var authorityCount: UInt16? = nil
    var additionalCount: UInt16? = nil
    var name: [UInt8] = TestWire.name("www.example.com")
    var type: UInt16 = 1
    var recordClass: UInt16 = 1
    var answers: [[UInt8]] = []
    var authorities: [[UInt8]] = []
    var additionals: [[UInt8]] = []
    var trailing: [UInt8] = []

    /// Offset just past the question name.
    var nameEnd: Int { DNSHeader.length + name.count }
    /// Offset just past QCLASS.
    var questionEnd: Int { nameEnd + 4 }

    var bytes: [UInt8] {
        var wire = TestWire.u16(id) + TestWire.u16(flags) + TestWire.u16(questionCount)
        wire += TestWire.u16(answerCount ?? UInt16(answers.count))
        wire += TestWire.u16(authorityCount ?? UInt16(authorities.count))
        wire += TestWire.u16(additionalCount ?? UInt16(additionals.count))
        wire += name + TestWire.u16(type) + TestWire.u16(recordClass)
        for record in answers + authorities + additionals { wire += record }
        return wire + trailing
    }
}

/// Runs the hot-path reader over `bytes`, as a value that tests can compare.
func readQuery(_ bytes: [UInt8]) -> Result<QueryView, QueryRejection> {
    bytes.withUnsafeBytes { buffer in
        do throws(QueryRejection) {
            return .success(try QueryReader.read(buffer))
        } catch {
            return .failure(error)
        }
    }
}

/// SplitMix64 (Steele, Lea, Flood 2014): a tiny, seedable generator so random tests repeat.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
