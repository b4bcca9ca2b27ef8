// Wire/: where domain names sit inside each type's RDATA, and what may be done to them: which
// are decompressed on read, compressed on write, lower-cased for DNSSEC. The reader, the writer
// and the canonical form all take their type knowledge from this one table so they cannot drift.

/// The layout of an RDATA that holds domain names: `prefix` fixed octets, then `strings`
/// <character-string>s, then `names` domain names, then a tail.
struct RDATAShape: Sendable, Equatable {
    enum Tail: Sendable, Equatable {
        /// The names end the RDATA.
        case none
        /// Exactly this many octets follow the names (SOA's five 32-bit fields).
        case fixed(Int)
        /// Any number of opaque octets follow (RRSIG's signature, NSEC's type bitmap).
        case rest
    }

    var prefix: Int
    var strings: Int
    var names: Int
    var tail: Tail

    static let oneName = RDATAShape(prefix: 0, strings: 0, names: 1, tail: .none)
    static let twoNames = RDATAShape(prefix: 0, strings: 0, names: 2, tail: .none)
    static let preferenceAndName = RDATAShape(prefix: 2, strings: 0, names: 1, tail: .none)
    static let nameThenRest = RDATAShape(prefix: 0, strings: 0, names: 1, tail: .rest)
}

/// Raw type numbers of the name-bearing types that `RecordType` has no constant for.
enum RawType {
    static let md: UInt16 = 3, mf: UInt16 = 4, mb: UInt16 = 7, mg: UInt16 = 8, mr: UInt16 = 9
    static let minfo: UInt16 = 14, rp: UInt16 = 17, afsdb: UInt16 = 18, rt: UInt16 = 21
    static let sig: UInt16 = 24, px: UInt16 = 26, nxt: UInt16 = 30, kx: UInt16 = 36, a6: UInt16 = 38
    static let talink: UInt16 = 58, lp: UInt16 = 107, tkey: UInt16 = 249, tsig: UInt16 = 250
}

extension RecordType {
    /// Where the names are in this type's RDATA, for every type whose names the reader
    /// decompresses; nil for opaque RDATA (and for A6, whose layout depends on a field, see
    /// `canonicalA6NameOffset`).
    ///
    /// The set is the one ldns 1.8 (the decoder this package replaces) decompresses: RFC 3597
    /// §4's well-known types (MUST), the types it says receivers SHOULD decompress (RP, AFSDB,
    /// RT, SIG, PX, NXT, NAPTR, SRV), KX, and the types whose names must not be compressed but
    /// which ldns and Unbound follow pointers in anyway (DNAME, RRSIG, NSEC, TALINK, LP, SVCB,
    /// HTTPS, TKEY, TSIG). Following a pointer a sender should not have written costs nothing
    /// and yields the name it meant; leaving it raw would keep a pointer that means nothing
    /// outside this packet.
    var nameShape: RDATAShape? {
        switch rawValue {
        case 2, RawType.md, RawType.mf, 5, RawType.mb, RawType.mg, RawType.mr, 12, 39: .oneName
        case 6: RDATAShape(prefix: 0, strings: 0, names: 2, tail: .fixed(20))
        case RawType.minfo, RawType.rp, RawType.talink: .twoNames
        case 15, RawType.afsdb, RawType.rt, RawType.kx, RawType.lp: .preferenceAndName
        case RawType.px: RDATAShape(prefix: 2, strings: 0, names: 2, tail: .none)
        case 33: RDATAShape(prefix: 6, strings: 0, names: 1, tail: .none)
        case 35: RDATAShape(prefix: 4, strings: 3, names: 1, tail: .none)
        case RawType.sig, 46: RDATAShape(prefix: 18, strings: 0, names: 1, tail: .rest)
        case RawType.nxt, 47, RawType.tkey, RawType.tsig: .nameThenRest
        case 64, 65: RDATAShape(prefix: 2, strings: 0, names: 1, tail: .rest)
        default: nil
        }
    }

    /// How many <character-string>s the RDATA of the types made of nothing else holds: TXT and
    /// SPF one or more, HINFO two; nil for every other type.
    var characterStrings: ClosedRange<Int>? {
        switch rawValue {
        case 16, 99: 1...Int.max
        case 13: 2...2
        default: nil
        }
    }

    /// The one RDATA length a type allows, for the fixed-size address types.
    var fixedRDATALength: Int? {
        switch rawValue {
        case 1: 4
        case 28: 16
        default: nil
        }
    }

    /// Whether the writer may compress this type's RDATA names: only RFC 3597 §4's well-known
    /// types (NS, MD, MF, CNAME, SOA, MB, MG, MR, PTR, MINFO, MX). Every other type is written
    /// uncompressed, SRV included (RFC 2782: "name compression is not to be used").
    var compressesOnWrite: Bool {
        switch rawValue {
        case 2, RawType.md, RawType.mf, 5, 6, RawType.mb, RawType.mg, RawType.mr, 12, RawType.minfo, 15: true
        default: false
        }
    }

    /// Whether the canonical form lower-cases this type's RDATA names: RFC 4034 §6.2 item 3
    /// as corrected by RFC 6840 §5.1 (NSEC's next name keeps its case; HINFO holds no names).
    var lowercasesNamesInCanonicalForm: Bool {
        switch rawValue {
        case 2, RawType.md, RawType.mf, 5, 6, RawType.mb, RawType.mg, RawType.mr, 12, RawType.minfo, 15, RawType.rp,
            RawType.afsdb, RawType.rt, RawType.sig, RawType.px, RawType.nxt, 35, RawType.kx, 33, 39, RawType.a6, 46:
            true
        default: false
        }
    }
}

/// Reading an uncompressed RDATA by its shape (the writer checks what it is given, the
/// canonical form finds the names to lower-case).
enum UncompressedRDATA {
    /// Calls `body` with the range of every name in `rdata` (uncompressed wire form), or returns
    /// false when the RDATA does not fit `shape`: a name that is not a valid uncompressed name,
    /// a length that does not add up.
    static func forEachName(
        in rdata: UnsafeBufferPointer<UInt8>, shape: RDATAShape, _ body: (Range<Int>) -> Void
    ) -> Bool {
        let end = rdata.count
        var position = shape.prefix
        guard position <= end else { return false }
        for _ in 0..<shape.strings {
            guard position < end else { return false }
            position += 1 + Int(rdata[position])
            guard position <= end else { return false }
        }
        for _ in 0..<shape.names {
            guard let nameEnd = nameEnd(in: rdata, at: position, limit: end) else { return false }
            body(position..<nameEnd)
            position = nameEnd
        }
        switch shape.tail {
        case .none: return position == end
        case .fixed(let count): return end - position == count
        case .rest: return true
        }
    }

    /// The offset just past the uncompressed name at `start`, or nil when there is none there
    /// (pointers, label types 0b01 and 0b10, over 255 octets, running past `limit`).
    static func nameEnd(in bytes: UnsafeBufferPointer<UInt8>, at start: Int, limit: Int) -> Int? {
        var position = start
        while position < limit {
            let length = Int(bytes[position])
            guard length <= DomainName.maxLabelLength else { return nil }
            position += 1 + length
            guard position - start <= DomainName.maxWireLength else { return nil }
            if length == 0 { return position }
        }
        return nil
    }

    /// Where A6's prefix name starts (RFC 2874 §3.1.1: prefix length, then the address suffix
    /// in as few octets as hold 128 - prefix length bits, then the name when the prefix length
    /// is not 0); nil when there is no name or the RDATA is malformed.
    static func a6NameStart(in rdata: UnsafeBufferPointer<UInt8>) -> Int? {
        guard let first = rdata.first, first > 0, first <= 128 else { return nil }
        let start = 1 + (128 - Int(first) + 7) / 8
        return start < rdata.count ? start : nil
    }
}
