// Wire/: the allocation-free reader for the hot path. It reads a query's header, its single
// question and its OPT record straight from the received bytes, and rejects malformed input
// with a reason that says whether the sender gets FORMERR, NOTIMP, BADVERS or nothing at all.

/// EDNS(0) facts from a query's OPT record (RFC 6891 §6.1.2, §6.1.3).
public struct EDNSInfo: Sendable, Equatable {
    /// The requestor's UDP payload size; values below 512 are treated as 512 (RFC 6891 §6.2.3).
    public var udpPayloadSize: UInt16
    public var version: UInt8
    /// The DO bit (RFC 3225).
    public var dnssecOK: Bool

    public init(udpPayloadSize: UInt16, version: UInt8, dnssecOK: Bool) {
        self.udpPayloadSize = udpPayloadSize
        self.version = version
        self.dnssecOK = dnssecOK
    }
}

/// What was wrong with a packet, for logs and metrics. No payload, so nothing allocates.
public enum MalformedReason: String, Sendable, Error {
    case truncatedHeader = "truncated header"
    /// Not malformed: the answer was held back by response rate limiting.
    case rateLimited = "response rate limit"
    case isResponse = "QR bit set"
    case questionCount = "QDCOUNT is not 1"
    case unexpectedRecords = "answer or authority records in a query"
    case labelTooLong = "label longer than 63 octets"
    case nameTooLong = "name longer than 255 octets"
    case badPointer = "compression pointer loop or forward pointer"
    case truncated = "message ends inside a field"
    case trailingData = "trailing bytes after the last record"
    case optNotRoot = "OPT owner is not the root"
    case multipleOPT = "more than one OPT record"
    /// RFC 6891 §6.1.1: the OPT pseudo-record belongs in the additional section only.
    case optNotInAdditional = "OPT outside the additional section"
    /// An OPT option whose length runs past the OPT RDATA (RFC 6891 §6.1.2).
    case badEDNSOption = "EDNS option runs past the OPT RDATA"
    /// RDATA that does not fit its type: an A not 4 octets, an SOA without its 20 fixed
    /// octets, an embedded name running past RDLENGTH.
    case badRDATA = "RDATA does not match its type"
    /// RFC 8945 §5.1: TSIG must be the last record of the additional section.
    case tsigNotLast = "TSIG is not the last record"
    /// A DNS message cannot be longer than TCP's 2-octet length field allows.
    case messageTooLong = "message longer than 65,535 octets"
}

/// Why a query cannot be answered normally, and how to answer it.
public enum QueryRejection: Error, Sendable, Equatable {
    /// Nothing readable to answer to (or a response, which must never be answered): drop it.
    case drop(MalformedReason)
    /// Header readable, the rest malformed: FORMERR. `questionEnd` is set when the question was
    /// read whole and may be echoed.
    case formErr(MalformedReason, questionEnd: Int?)
    /// Opcode other than QUERY: NOTIMP (RFC 1035 §4.1.1).
    case notImplemented(Opcode)
    /// EDNS version above 0: BADVERS with an OPT of version 0 (RFC 6891 §6.1.3).
    case badVersion(QueryView)
}

/// A readable query: every field the hot path needs, as offsets into the original bytes.
public struct QueryView: Sendable, Equatable {
    public var id: UInt16
    /// The second header word: QR, opcode, AA, TC, RD, RA, Z, AD, CD, RCODE.
    public var flags: UInt16
    /// Offset just past the question name (the name spans `12..<nameEnd`).
    public var nameEnd: Int
    /// Offset just past QCLASS.
    public var questionEnd: Int
    public var type: RecordType
    public var recordClass: RecordClass
    public var edns: EDNSInfo?

    public var opcode: Opcode { Opcode(rawValue: UInt8((flags >> 11) & 0x0F)) }
    public var recursionDesired: Bool { flags & DNSHeader.rdBit != 0 }
    public var checkingDisabled: Bool { flags & DNSHeader.cdBit != 0 }
}

/// Header layout constants (RFC 1035 §4.1.1; AD and CD from RFC 4035 §3.2).
public enum DNSHeader {
    public static let length = 12
    public static let qrBit: UInt16 = 0x8000
    public static let aaBit: UInt16 = 0x0400
    public static let tcBit: UInt16 = 0x0200
    public static let rdBit: UInt16 = 0x0100
    public static let raBit: UInt16 = 0x0080
    public static let adBit: UInt16 = 0x0020
    public static let cdBit: UInt16 = 0x0010
    public static let opcodeMask: UInt16 = 0x7800
    public static let rcodeMask: UInt16 = 0x000F
}

/// Reads queries and walks names without allocating.
public enum QueryReader {
    /// Parses `bytes` as a query with exactly one question and at most one OPT record.
    public static func read(_ bytes: UnsafeRawBufferPointer) throws(QueryRejection) -> QueryView {
        guard bytes.count >= DNSHeader.length else { throw .drop(.truncatedHeader) }
        let id = bytes.u16(at: 0)
        let flags = bytes.u16(at: 2)
        guard flags & DNSHeader.qrBit == 0 else { throw .drop(.isResponse) }
        let opcode = Opcode(rawValue: UInt8((flags >> 11) & 0x0F))
        guard opcode == .query else { throw .notImplemented(opcode) }
        guard bytes.u16(at: 4) == 1 else { throw .formErr(.questionCount, questionEnd: nil) }
        guard bytes.u16(at: 6) == 0, bytes.u16(at: 8) == 0 else {
            throw .formErr(.unexpectedRecords, questionEnd: nil)
        }
        let additionalCount = Int(bytes.u16(at: 10))

        let nameEnd: Int
        do {
            nameEnd = try WireNames.skip(bytes, at: DNSHeader.length)
        } catch {
            throw .formErr(error, questionEnd: nil)
        }
        guard nameEnd + 4 <= bytes.count else { throw .formErr(.truncated, questionEnd: nil) }
        let questionEnd = nameEnd + 4
        var view = QueryView(
            id: id, flags: flags, nameEnd: nameEnd, questionEnd: questionEnd,
            type: RecordType(rawValue: bytes.u16(at: nameEnd)),
            recordClass: RecordClass(rawValue: bytes.u16(at: nameEnd + 2)), edns: nil)

        var offset = questionEnd
        for _ in 0..<additionalCount {
            let ownerStart = offset
            do {
                offset = try WireNames.skip(bytes, at: offset)
            } catch {
                throw .formErr(error, questionEnd: questionEnd)
            }
            guard offset + 10 <= bytes.count else { throw .formErr(.truncated, questionEnd: questionEnd) }
            let type = RecordType(rawValue: bytes.u16(at: offset))
            let rdLength = Int(bytes.u16(at: offset + 8))
            guard offset + 10 + rdLength <= bytes.count else {
                throw .formErr(.truncated, questionEnd: questionEnd)
            }
            if type == .opt {
                // RFC 6891 §6.1.1: exactly one OPT, owned by the root name.
                guard view.edns == nil else { throw .formErr(.multipleOPT, questionEnd: questionEnd) }
                guard offset == ownerStart + 1, bytes[ownerStart] == 0 else {
                    throw .formErr(.optNotRoot, questionEnd: questionEnd)
                }
                let ttl = bytes.u32(at: offset + 4)
                view.edns = EDNSInfo(
                    udpPayloadSize: max(512, bytes.u16(at: offset + 2)),
                    version: UInt8((ttl >> 16) & 0xFF),
                    dnssecOK: ttl & 0x8000 != 0)
            }
            offset += 10 + rdLength
        }
        guard offset == bytes.count else { throw .formErr(.trailingData, questionEnd: questionEnd) }
        if let edns = view.edns, edns.version > 0 { throw .badVersion(view) }
        return view
    }
}

/// Name walking over wire bytes with compression (RFC 1035 §4.1.4).
public enum WireNames {
    /// The rcode and question type of a whole message (a reply), read from the header and the
    /// first question; nil when the header is short, the type nil when there is no readable
    /// question. For counting and logging replies without parsing them.
    public static func rcodeAndType(_ message: UnsafeRawBufferPointer) -> (rcode: ResponseCode, type: RecordType?)? {
        guard message.count >= DNSHeader.length else { return nil }
        let rcode = ResponseCode(rawValue: UInt16(message[3] & 0x0F))
        guard message[4] != 0 || message[5] != 0, let end = try? skip(message, at: DNSHeader.length),
            end + 2 <= message.count
        else { return (rcode, nil) }
        return (rcode, RecordType(rawValue: UInt16(message[end]) << 8 | UInt16(message[end + 1])))
    }

    /// Returns the offset just past the name that starts at `start`. Follows compression
    /// pointers to validate what they point at, but only strictly backwards (which rules out
    /// loops and forward pointers), and checks label and total lengths.
    public static func skip(_ bytes: UnsafeRawBufferPointer, at start: Int) throws(MalformedReason) -> Int {
        var offset = start
        var end: Int? = nil
        var wireLength = 0
        // The lowest offset any label of this name has been read from: a pointer must go below it.
        var lowest = start
        while true {
            guard offset < bytes.count else { throw .truncated }
            let length = Int(bytes[offset])
            switch length & 0xC0 {
            case 0x00:
                wireLength += 1 + length
                guard wireLength <= DomainName.maxWireLength else { throw .nameTooLong }
                if length == 0 { return end ?? offset + 1 }
                guard offset + 1 + length <= bytes.count else { throw .truncated }
                offset += 1 + length
            case 0xC0:
                guard offset + 2 <= bytes.count else { throw .truncated }
                let target = Int(bytes.u16(at: offset) & 0x3FFF)
                guard target < lowest else { throw .badPointer }
                if end == nil { end = offset + 2 }
                lowest = target
                offset = target
            default:
                // A length of 64...191: over the 63-octet limit, or one of the retired extended
                // label types (RFC 6891 §5). Either way the name is unreadable.
                throw .labelTooLong
            }
        }
    }

    /// Reads the (possibly compressed) name at `start` into uncompressed wire bytes.
    /// Allocates; for the slow path (responses, logs), not per hit.
    public static func read(_ bytes: UnsafeRawBufferPointer, at start: Int) throws(MalformedReason) -> DomainName {
        _ = try skip(bytes, at: start)  // validates pointers and lengths first
        var wire: [UInt8] = []
        var offset = start
        while true {
            let length = Int(bytes[offset])
            if length & 0xC0 == 0xC0 {
                offset = Int(bytes.u16(at: offset) & 0x3FFF)
                continue
            }
            wire.append(bytes[offset])
            if length == 0 { break }
            wire.append(contentsOf: bytes[(offset + 1)..<(offset + 1 + length)])
            offset += 1 + length
        }
        return DomainName(uncheckedWire: wire)
    }
}

extension UnsafeRawBufferPointer {
    @inline(__always) func u16(at offset: Int) -> UInt16 {
        UInt16(self[offset]) << 8 | UInt16(self[offset + 1])
    }

    @inline(__always) func u32(at offset: Int) -> UInt32 {
        UInt32(u16(at: offset)) << 16 | UInt32(u16(at: offset + 2))
    }
}
