// Wire/: the DNS message as a Swift value. Read by MessageReader and written by MessageWriter
// (formerly by LDNSCodec through ldns); everything above Wire/ works with these types only.

/// One entry of the question section (RFC 1035 §4.1.2).
public struct Question: Hashable, Sendable, CustomStringConvertible {
    public var name: DomainName
    public var type: RecordType
    public var recordClass: RecordClass

    public init(name: DomainName, type: RecordType, recordClass: RecordClass = .in) {
        self.name = name
        self.type = type
        self.recordClass = recordClass
    }

    public var description: String { "\(name) \(recordClass) \(type)" }
}

/// A resource record with its RDATA in uncompressed wire form (RFC 1035 §4.1.3).
public struct ResourceRecord: Hashable, Sendable {
    public var name: DomainName
    public var type: RecordType
    public var recordClass: RecordClass
    public var ttl: UInt32
    /// RDATA with every embedded name uncompressed.
    public var rdata: [UInt8]

    public init(name: DomainName, type: RecordType, recordClass: RecordClass = .in, ttl: UInt32, rdata: [UInt8]) {
        self.name = name
        self.type = type
        self.recordClass = recordClass
        self.ttl = ttl
        self.rdata = rdata
    }
}

extension ResourceRecord {
    /// The domain name an NS, CNAME, DNAME or PTR record points at (its whole RDATA).
    public var targetName: DomainName? {
        switch type {
        case .ns, .cname, .dname, .ptr: DomainName(wire: rdata)
        default: nil
        }
    }

    /// An SOA record's MINIMUM field, its last four octets (RFC 1035 §3.3.13; the negative TTL,
    /// RFC 2308 §4); nil for other types and for RDATA too short to hold the fixed fields.
    public var soaMinimum: UInt32? {
        guard type == .soa, rdata.count >= 20 else { return nil }
        return rdata.suffix(4).reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
    }

    /// The type an RRSIG record covers (the first two octets of its RDATA, RFC 4034 §3.1).
    public var coveredType: RecordType? {
        guard type == .rrsig, rdata.count >= 2 else { return nil }
        return RecordType(rawValue: UInt16(rdata[0]) << 8 | UInt16(rdata[1]))
    }

    /// The address of an A or AAAA record.
    public var address: IPAddress? {
        switch type {
        case .a where rdata.count == 4:
            .v4(UInt32(rdata[0]) << 24 | UInt32(rdata[1]) << 16 | UInt32(rdata[2]) << 8 | UInt32(rdata[3]))
        case .aaaa where rdata.count == 16: .v6(rdata)
        default: nil
        }
    }
}

/// EDNS(0) parameters of a message's OPT pseudo-record (RFC 6891 §6.1).
public struct EDNS: Hashable, Sendable {
    public var udpPayloadSize: UInt16
    public var version: UInt8
    public var dnssecOK: Bool

    public init(udpPayloadSize: UInt16, version: UInt8 = 0, dnssecOK: Bool = false) {
        self.udpPayloadSize = udpPayloadSize
        self.version = version
        self.dnssecOK = dnssecOK
    }

    /// The payload size resolverd advertises and accepts over UDP: 1232 octets, the DNS Flag
    /// Day 2020 figure that avoids IP fragmentation on common paths (RFC 9715 §3.1).
    public static let advertisedPayloadSize: UInt16 = 1232
}

/// The header flag bits (RFC 1035 §4.1.1; AD and CD from RFC 4035 §3.2).
public struct MessageFlags: OptionSet, Hashable, Sendable {
    public let rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    public static let qr = MessageFlags(rawValue: DNSHeader.qrBit)
    public static let aa = MessageFlags(rawValue: DNSHeader.aaBit)
    public static let tc = MessageFlags(rawValue: DNSHeader.tcBit)
    public static let rd = MessageFlags(rawValue: DNSHeader.rdBit)
    public static let ra = MessageFlags(rawValue: DNSHeader.raBit)
    public static let ad = MessageFlags(rawValue: DNSHeader.adBit)
    public static let cd = MessageFlags(rawValue: DNSHeader.cdBit)

    /// dig's spelling, in dig's order: `qr aa tc rd ra ad cd`.
    public var names: [String] {
        let all: [(MessageFlags, String)] = [
            (.qr, "qr"), (.aa, "aa"), (.tc, "tc"), (.rd, "rd"), (.ra, "ra"), (.ad, "ad"), (.cd, "cd"),
        ]
        return all.filter { contains($0.0) }.map(\.1)
    }
}

/// A whole DNS message. The OPT record is not among `additionals`; it is `edns`.
public struct DNSMessage: Hashable, Sendable {
    public var id: UInt16
    public var flags: MessageFlags
    public var opcode: Opcode
    /// The full response code: the header's four bits plus the OPT's extended eight.
    public var rcode: ResponseCode
    public var questions: [Question]
    public var answers: [ResourceRecord]
    public var authorities: [ResourceRecord]
    public var additionals: [ResourceRecord]
    public var edns: EDNS?

    public init(
        id: UInt16, flags: MessageFlags = [], opcode: Opcode = .query, rcode: ResponseCode = .noError,
        questions: [Question] = [], answers: [ResourceRecord] = [], authorities: [ResourceRecord] = [],
        additionals: [ResourceRecord] = [], edns: EDNS? = nil
    ) {
        self.id = id
        self.flags = flags
        self.opcode = opcode
        self.rcode = rcode
        self.questions = questions
        self.answers = answers
        self.authorities = authorities
        self.additionals = additionals
        self.edns = edns
    }

    /// A recursive query for `question`, with EDNS advertising our payload size.
    public static func query(
        _ question: Question, id: UInt16, recursionDesired: Bool = true, dnssecOK: Bool = false,
        checkingDisabled: Bool = false, edns: Bool = true
    ) -> DNSMessage {
        var flags: MessageFlags = []
        if recursionDesired { flags.insert(.rd) }
        if checkingDisabled { flags.insert(.cd) }
        return DNSMessage(
            id: id, flags: flags, questions: [question],
            edns: edns ? EDNS(udpPayloadSize: EDNS.advertisedPayloadSize, dnssecOK: dnssecOK) : nil)
    }
}
