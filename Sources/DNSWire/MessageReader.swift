// Wire/: the reader for whole messages (upstream answers). One pass over the received bytes
// checks everything — header, questions, every record, every compression pointer, the names in
// RDATA, the OPT record, trailing bytes — and leaves each record as offsets into the buffer plus
// its owner name. What passes the walk cannot fail later: RDATA decompression and the conversion
// to `DNSMessage` do not throw.

/// The three record sections (RFC 1035 §4.1).
public enum MessageSection: UInt8, Sendable, Hashable, CaseIterable {
    case answer = 0
    case authority = 1
    case additional = 2
}

/// The 12-octet header as received (RFC 1035 §4.1.1).
public struct MessageHeader: Sendable, Hashable {
    public var id: UInt16
    /// The whole second word: QR, opcode, AA, TC, RD, RA, Z, AD, CD, RCODE.
    public var rawFlags: UInt16
    public var questionCount: UInt16
    public var answerCount: UInt16
    public var authorityCount: UInt16
    public var additionalCount: UInt16

    /// The defined flag bits (Z is dropped, as the ldns decoder did).
    public var flags: MessageFlags { MessageFlags(rawValue: rawFlags & MessageFlags.defined.rawValue) }
    public var opcode: Opcode { Opcode(rawValue: UInt8((rawFlags & DNSHeader.opcodeMask) >> 11)) }
    /// The header's four RCODE bits only; `MessageView.rcode` adds the OPT's extension.
    public var headerRcode: UInt8 { UInt8(rawFlags & DNSHeader.rcodeMask) }
}

extension MessageFlags {
    /// Every flag with a meaning (all bits of the second header word but opcode, Z and RCODE).
    public static let defined: MessageFlags = [.qr, .aa, .tc, .rd, .ra, .ad, .cd]
}

/// One record of the answer, authority or additional section, as offsets into the message.
/// The OPT pseudo-record is not one of these; it is `MessageView.edns`.
public struct RecordView: Sendable, Hashable {
    public var section: MessageSection
    /// Where the owner name starts (it may be, or end in, a compression pointer).
    public var ownerOffset: Int
    /// The owner, decompressed, in the letter case received.
    public var owner: DomainName
    public var type: RecordType
    public var recordClass: RecordClass
    /// The TTL field exactly as received; see `receivedTTL` for the value to cache by.
    public var ttl: UInt32
    public var rdataOffset: Int
    public var rdataLength: Int

    public init(
        section: MessageSection, ownerOffset: Int, owner: DomainName, type: RecordType, recordClass: RecordClass,
        ttl: UInt32, rdataOffset: Int, rdataLength: Int
    ) {
        self.section = section
        self.ownerOffset = ownerOffset
        self.owner = owner
        self.type = type
        self.recordClass = recordClass
        self.ttl = ttl
        self.rdataOffset = rdataOffset
        self.rdataLength = rdataLength
    }

    /// Where the 4-octet TTL field is, for patching it in place.
    public var ttlOffset: Int { rdataOffset - 6 }
    public var rdataRange: Range<Int> { rdataOffset..<(rdataOffset + rdataLength) }
    /// The TTL to use: 0 when the top bit is set (RFC 2181 §8).
    public var receivedTTL: UInt32 { MessageReader.ttl(fromWire: ttl) }
}

/// One EDNS option of the OPT record (RFC 6891 §6.1.2), its data as offsets into the message.
public struct EDNSOptionView: Sendable, Hashable {
    public var code: UInt16
    /// Where the option's data starts (after its code and length).
    public var offset: Int
    public var length: Int

    public init(code: UInt16, offset: Int, length: Int) {
        self.code = code
        self.offset = offset
        self.length = length
    }

    public var range: Range<Int> { offset..<(offset + length) }
}

/// The OPT pseudo-record of a message (RFC 6891 §6.1).
public struct EDNSView: Sendable, Hashable {
    /// Where the OPT record starts (its root owner octet).
    public var recordOffset: Int
    /// The CLASS field as received. RFC 6891 §6.2.5 reads values below 512 as 512; that is
    /// the caller's policy, this is the wire value (as the ldns decoder gave it).
    public var udpPayloadSize: UInt16
    /// The upper eight bits of the 12-bit response code.
    public var extendedRcode: UInt8
    public var version: UInt8
    /// The 16 flag bits of the TTL field: DO and the reserved Z bits.
    public var flags: UInt16
    public var rdataOffset: Int
    public var rdataLength: Int
    public var options: [EDNSOptionView]

    /// The DO bit (RFC 3225).
    public var dnssecOK: Bool { flags & 0x8000 != 0 }
    /// The EDNS parameters of `DNSMessage`.
    public var edns: EDNS { EDNS(udpPayloadSize: udpPayloadSize, version: version, dnssecOK: dnssecOK) }
}

/// A message that passed `MessageReader.read`: its header, questions, records and OPT, with
/// the bytes they point into.
public struct MessageView: Sendable {
    /// The message as received (shared with the caller's array, not copied).
    public let bytes: [UInt8]
    public let header: MessageHeader
    public let questions: [Question]
    /// Answer, authority and additional records in message order, OPT left out.
    public let records: [RecordView]
    public let edns: EDNSView?
    let answerEnd: Int
    let authorityEnd: Int

    public var answers: ArraySlice<RecordView> { records[0..<answerEnd] }
    public var authorities: ArraySlice<RecordView> { records[answerEnd..<authorityEnd] }
    public var additionals: ArraySlice<RecordView> { records[authorityEnd...] }

    /// The full 12-bit response code: the header's four bits plus the OPT's upper eight.
    public var rcode: ResponseCode {
        ResponseCode(rawValue: UInt16(edns?.extendedRcode ?? 0) << 4 | UInt16(header.headerRcode))
    }

    /// A record's RDATA exactly as received (names possibly compressed).
    public func rdata(of record: RecordView) -> ArraySlice<UInt8> { bytes[record.rdataRange] }

    /// An option's data.
    public func data(of option: EDNSOptionView) -> ArraySlice<UInt8> { bytes[option.range] }

    /// A record's RDATA with every embedded name decompressed (for the types in
    /// `RecordType.nameShape`), otherwise a copy of the raw RDATA. Names keep their case.
    public func expandedRDATA(of record: RecordView) -> [UInt8] {
        bytes.withUnsafeBufferPointer { MessageReader.expandedRDATA($0, record) }
    }

    /// The record as a `ResourceRecord`: RDATA expanded, TTL as `receivedTTL`.
    public func resourceRecord(_ record: RecordView) -> ResourceRecord {
        ResourceRecord(
            name: record.owner, type: record.type, recordClass: record.recordClass, ttl: record.receivedTTL,
            rdata: expandedRDATA(of: record))
    }

    /// Decompresses the name at `offset` (the owner of a record, a name inside RDATA). Checks
    /// it like the reader does, so any offset may be passed.
    public func name(at offset: Int) throws(MalformedReason) -> DomainName {
        try bytes.withUnsafeBufferPointer { (buffer) throws(MalformedReason) -> DomainName in
            guard offset >= 0 else { throw MalformedReason.truncated }
            let scan = try MessageReader.scanName(buffer, at: offset, limit: buffer.count, overrun: .truncated)
            return MessageReader.copyName(buffer, from: offset, length: scan.length)
        }
    }

    /// The message as the ldns-based decoder built it: flags without Z, the rcode with its
    /// extension, RDATA names decompressed, TTLs with the top bit set read as 0, the OPT as
    /// `edns`, and a TSIG closing the additional section left out (ldns kept it apart).
    public func message() -> DNSMessage {
        bytes.withUnsafeBufferPointer { buffer in
            var message = DNSMessage(
                id: header.id, flags: header.flags, opcode: header.opcode, rcode: rcode, questions: questions,
                edns: edns?.edns)
            var additionalEnd = records.count
            if additionalEnd > authorityEnd, records[additionalEnd - 1].type.rawValue == RawType.tsig {
                additionalEnd -= 1
            }
            func convert(_ range: Range<Int>) -> [ResourceRecord] {
                var result: [ResourceRecord] = []
                result.reserveCapacity(range.count)
                for index in range {
                    let record = records[index]
                    result.append(
                        ResourceRecord(
                            name: record.owner, type: record.type, recordClass: record.recordClass,
                            ttl: record.receivedTTL, rdata: MessageReader.expandedRDATA(buffer, record)))
                }
                return result
            }
            message.answers = convert(0..<answerEnd)
            message.authorities = convert(answerEnd..<authorityEnd)
            message.additionals = convert(authorityEnd..<additionalEnd)
            return message
        }
    }
}

/// Reads whole DNS messages in one pass. Stricter than RFC 1035 readers of old, on purpose:
/// a resolver gains nothing from guessing what a malformed answer meant.
///
/// - Compression pointers must point strictly backwards — each one below the start of the
///   name and below every earlier target of the same name — and never into the 12-octet
///   header. That rules out forward pointers, pointers to themselves and loops in one check.
///   At most 128 pointers per name (one per label of the longest possible name, and the
///   root): a chain of pointers to pointers cannot make one name cost thousands of steps.
/// - Labels of 64 octets or more (length octets 0x40–0xBF: the retired label types 0b01
///   and 0b10, RFC 6891 §5) are `labelTooLong`; names over 255 octets `nameTooLong`.
/// - At most one OPT, in the additional section, owned by the root (RFC 6891 §6.1.1);
///   options must tile its RDATA exactly. A TSIG must close the additional section.
/// - A and AAAA RDATA must be 4 and 16 octets, names inside RDATA must end within RDLENGTH,
///   fixed fields must be whole (SOA's 20 octets after its names). Empty RDATA is accepted
///   for classes NONE and ANY (RFC 2136's update forms).
/// - Nothing may follow the last counted record (`trailingData`), unless the caller asks to
///   ignore it (`TrailingData.ignore`: what ldns and Unbound do with received answers).
///
/// Owner names are decoded during the walk, not on demand: a resolver needs every owner, and
/// decoding them while the labels are being checked anyway costs less than walking again
/// later. Measured on the ~300-octet answer of `ReaderBenchmarkTests` (release build, 2-core
/// VM): 1.3–1.5 µs per read with owners, 0.8 µs walking and checking alone. An owner that is
/// one pointer to where a recently decoded name starts shares that name's storage instead of
/// being decoded again (answers pointing at the question, NS records at their zone).
public enum MessageReader {
    /// A TTL as received: one with the most significant bit set is read as 0 (RFC 2181 §8:
    /// TTLs are 0 to 2^31 - 1), as the ldns-based decoder did.
    @inline(__always) public static func ttl(fromWire raw: UInt32) -> UInt32 {
        raw & 0x8000_0000 == 0 ? raw : 0
    }

    /// Pointers per name, at most: the longest name has 127 labels and the root.
    static let maxPointers = 128

    /// What to do with octets after the last counted record.
    public enum TrailingData: Sendable {
        /// A malformed message (`trailingData`): for what clients send.
        case reject
        /// Not part of the message: for answers from servers, some of which pad them.
        case ignore
    }

    /// Walks the whole message once and checks it.
    public static func read(_ bytes: [UInt8], trailingData: TrailingData = .reject) throws(MalformedReason) -> MessageView {
        let result = bytes.withUnsafeBufferPointer { buffer in
            // One scratch buffer per message for putting compressed names together.
            withUnsafeTemporaryAllocation(of: UInt8.self, capacity: DomainName.maxWireLength) { scratch in
                var parser = Parser(buffer, scratch: scratch, ignoresTrailingData: trailingData == .ignore)
                do throws(MalformedReason) {
                    try parser.parse()
                } catch {
                    return Result<MessageView, MalformedReason>.failure(error)
                }
                return .success(
                    MessageView(
                        bytes: bytes, header: parser.header, questions: parser.questions, records: parser.records,
                        edns: parser.edns, answerEnd: parser.answerEnd, authorityEnd: parser.authorityEnd))
            }
        }
        return try result.get()
    }

    /// `read(bytes).message()`: a drop-in for the ldns-based `DNSCodec.decode`.
    public static func decode(_ bytes: [UInt8], trailingData: TrailingData = .reject) throws(MalformedReason) -> DNSMessage {
        try read(bytes, trailingData: trailingData).message()
    }

    // MARK: - The walk

    /// The state of one walk. A struct over the buffer so that the hot loop makes no calls
    /// through closures or existentials.
    struct Parser {
        let bytes: UnsafeBufferPointer<UInt8>
        /// `DomainName.maxWireLength` octets to put a compressed name together in.
        let scratch: UnsafeMutableBufferPointer<UInt8>
        var header = MessageHeader(
            id: 0, rawFlags: 0, questionCount: 0, answerCount: 0, authorityCount: 0, additionalCount: 0)
        var questions: [Question] = []
        var records: [RecordView] = []
        var edns: EDNSView?
        var answerEnd = 0
        var authorityEnd = 0
        var recent = RecentNames()
        let ignoresTrailingData: Bool

        init(_ bytes: UnsafeBufferPointer<UInt8>, scratch: UnsafeMutableBufferPointer<UInt8>, ignoresTrailingData: Bool) {
            self.bytes = bytes
            self.scratch = scratch
            self.ignoresTrailingData = ignoresTrailingData
        }

        mutating func parse() throws(MalformedReason) {
            let count = bytes.count
            guard count >= DNSHeader.length else { throw .truncatedHeader }
            // Offsets then fit 16 bits, as everywhere in DNS (TCP's length field).
            guard count <= Int(UInt16.max) else { throw .messageTooLong }
            header = MessageHeader(
                id: u16(0), rawFlags: u16(2), questionCount: u16(4), answerCount: u16(6), authorityCount: u16(8),
                additionalCount: u16(10))

            var offset = DNSHeader.length
            let questionCount = Int(header.questionCount)
            if questionCount > 0 {
                // A question takes at least 5 octets: a lying QDCOUNT must not reserve 1.5 MB.
                questions.reserveCapacity(min(questionCount, (count - offset) / 5))
                for _ in 0..<questionCount {
                    let (name, end) = try owner(at: offset)
                    guard end + 4 <= count else { throw .truncated }
                    questions.append(
                        Question(name: name, type: RecordType(rawValue: u16(end)), recordClass: RecordClass(rawValue: u16(end + 2))))
                    offset = end + 4
                }
            }

            let answers = Int(header.answerCount)
            let authorities = Int(header.authorityCount)
            let additionals = Int(header.additionalCount)
            // Each record takes at least 11 octets: do not reserve for counts the bytes cannot hold.
            records.reserveCapacity(min(answers + authorities + additionals, (count - offset) / 11))
            try section(.answer, count: answers, offset: &offset)
            answerEnd = records.count
            try section(.authority, count: authorities, offset: &offset)
            authorityEnd = records.count
            try section(.additional, count: additionals, offset: &offset)
            guard offset == count || ignoresTrailingData else { throw .trailingData }
        }

        mutating func section(_ section: MessageSection, count recordCount: Int, offset: inout Int)
            throws(MalformedReason)
        {
            let count = bytes.count
            for index in 0..<recordCount {
                let ownerOffset = offset
                let (owner, end) = try owner(at: offset)
                guard end + 10 <= count else { throw .truncated }
                let type = u16(end)
                let recordClass = u16(end + 2)
                let ttl = UInt32(u16(end + 4)) << 16 | UInt32(u16(end + 6))
                let rdataLength = Int(u16(end + 8))
                let rdataOffset = end + 10
                guard rdataOffset + rdataLength <= count else { throw .truncated }
                offset = rdataOffset + rdataLength

                if type == RecordType.opt.rawValue {
                    guard section == .additional else { throw .optNotInAdditional }
                    guard edns == nil else { throw .multipleOPT }
                    guard owner.isRoot else { throw .optNotRoot }
                    edns = EDNSView(
                        recordOffset: ownerOffset, udpPayloadSize: recordClass, extendedRcode: UInt8(ttl >> 24),
                        version: UInt8((ttl >> 16) & 0xFF), flags: UInt16(ttl & 0xFFFF), rdataOffset: rdataOffset,
                        rdataLength: rdataLength, options: try options(rdataOffset, rdataLength))
                    continue
                }
                if type == RawType.tsig, section == .additional, index != recordCount - 1 { throw .tsigNotLast }
                try MessageReader.checkRDATA(
                    bytes, type: RecordType(rawValue: type), recordClass: recordClass, offset: rdataOffset,
                    length: rdataLength)
                records.append(
                    RecordView(
                        section: section, ownerOffset: ownerOffset, owner: owner, type: RecordType(rawValue: type),
                        recordClass: RecordClass(rawValue: recordClass), ttl: ttl, rdataOffset: rdataOffset,
                        rdataLength: rdataLength))
            }
        }

        /// The OPT's options; they must fill its RDATA exactly.
        func options(_ start: Int, _ length: Int) throws(MalformedReason) -> [EDNSOptionView] {
            var result: [EDNSOptionView] = []
            var position = start
            let end = start + length
            while position < end {
                guard position + 4 <= end else { throw .badEDNSOption }
                let optionLength = Int(u16(position + 2))
                guard position + 4 + optionLength <= end else { throw .badEDNSOption }
                result.append(EDNSOptionView(code: u16(position), offset: position + 4, length: optionLength))
                position += 4 + optionLength
            }
            return result
        }

        /// An owner or question name and the offset just past it. A name that is a pointer to
        /// where an earlier name began is that name again: shared, not decoded a second time.
        mutating func owner(at start: Int) throws(MalformedReason) -> (DomainName, Int) {
            guard start < bytes.count else { throw .truncated }
            let first = bytes[start]
            if first == 0 { return (.root, start + 1) }
            if first >= 0xC0, start + 1 < bytes.count {
                let target = Int(first & 0x3F) << 8 | Int(bytes[start + 1])
                if target < start, let name = recent.name(origin: target) {
                    return (name, start + 2)
                }
            }
            let scan = try MessageReader.readName(bytes, at: start, into: scratch)
            let name: DomainName
            if scan.origin == start, scan.pointers == 0 {
                // Uncompressed: one copy straight out of the packet.
                name = DomainName(uncheckedWire: Array(UnsafeBufferPointer(rebasing: bytes[start..<scan.end])))
            } else {
                name = DomainName(uncheckedWire: Array(UnsafeBufferPointer(rebasing: scratch[0..<scan.length])))
            }
            // Remembered by where its first label is, when a later name that is one pointer
            // to there gets the checks this one passed — the same labels, and as many
            // pointers: the name began there (then one pointer less than the limit), or was
            // itself one pointer to there.
            if scan.origin == start, scan.pointers < MessageReader.maxPointers {
                recent.insert(origin: start, name)
            } else if first >= 0xC0, scan.origin == (Int(first & 0x3F) << 8 | Int(bytes[start + 1])) {
                recent.insert(origin: scan.origin, name)
            }
            return (name, scan.end)
        }

        @inline(__always) func u16(_ offset: Int) -> UInt16 {
            UInt16(bytes[offset]) << 8 | UInt16(bytes[offset + 1])
        }
    }

    /// The last few names read from their first label, by where they start: a response's
    /// owners are mostly pointers to the question or to one zone name.
    struct RecentNames {
        private var origins: (Int, Int, Int, Int) = (-1, -1, -1, -1)
        private var names: (DomainName, DomainName, DomainName, DomainName) = (.root, .root, .root, .root)
        private var next = 0

        @inline(__always) func name(origin: Int) -> DomainName? {
            if origins.0 == origin { return names.0 }
            if origins.1 == origin { return names.1 }
            if origins.2 == origin { return names.2 }
            if origins.3 == origin { return names.3 }
            return nil
        }

        mutating func insert(origin: Int, _ name: DomainName) {
            switch next {
            case 0: (origins.0, names.0) = (origin, name)
            case 1: (origins.1, names.1) = (origin, name)
            case 2: (origins.2, names.2) = (origin, name)
            default: (origins.3, names.3) = (origin, name)
            }
            next = (next + 1) & 3
        }
    }

    // MARK: - Names

    struct NameScan {
        /// Offset just past the name where it was found (past its first pointer, if any).
        var end: Int
        /// Uncompressed length, root label included.
        var length: Int
        /// Where the first label was read (after any leading pointers).
        var origin: Int
        var pointers: Int
    }

    /// Checks the (possibly compressed) name at `start` and measures it. The part before the
    /// first pointer must end by `limit` (RDLENGTH, for a name in RDATA), else `overrun`.
    @inline(__always)
    static func scanName(
        _ bytes: UnsafeBufferPointer<UInt8>, at start: Int, limit: Int, overrun: MalformedReason
    ) throws(MalformedReason) -> NameScan {
        var offset = start
        var bound = limit
        var end = -1
        var length = 0
        var lowest = start
        var pointers = 0
        var origin = -1
        while true {
            guard offset < bound else { throw end < 0 ? overrun : .truncated }
            let byte = bytes[offset]
            if byte < 0x40 {
                if origin < 0 { origin = offset }
                let labelLength = Int(byte)
                length += 1 + labelLength
                guard length <= DomainName.maxWireLength else { throw .nameTooLong }
                if labelLength == 0 {
                    return NameScan(end: end < 0 ? offset + 1 : end, length: length, origin: origin, pointers: pointers)
                }
                offset += 1 + labelLength
                guard offset <= bound else { throw end < 0 ? overrun : .truncated }
            } else if byte >= 0xC0 {
                guard offset + 2 <= bound else { throw end < 0 ? overrun : .truncated }
                let target = Int(byte & 0x3F) << 8 | Int(bytes[offset + 1])
                guard target < lowest, target >= DNSHeader.length, pointers < maxPointers else { throw .badPointer }
                pointers += 1
                if end < 0 {
                    end = offset + 2
                    bound = bytes.count
                }
                lowest = target
                offset = target
            } else {
                throw .labelTooLong
            }
        }
    }

    /// `scanName` for owners and questions (no RDLENGTH limit) that also copies the labels
    /// into `scratch` as it checks them: one walk instead of two.
    @inline(__always)
    static func readName(
        _ bytes: UnsafeBufferPointer<UInt8>, at start: Int, into scratch: UnsafeMutableBufferPointer<UInt8>
    ) throws(MalformedReason) -> NameScan {
        guard let source = bytes.baseAddress, let destination = scratch.baseAddress,
            scratch.count >= DomainName.maxWireLength
        else { throw .truncated }
        let count = bytes.count
        var offset = start
        var end = -1
        var length = 0
        var lowest = start
        var pointers = 0
        var origin = -1
        while true {
            guard offset < count else { throw .truncated }
            let byte = bytes[offset]
            if byte < 0x40 {
                if origin < 0 { origin = offset }
                let run = 1 + Int(byte)
                guard length + run <= DomainName.maxWireLength else { throw .nameTooLong }
                guard offset + run <= count else { throw .truncated }
                (destination + length).initialize(from: source + offset, count: run)
                length += run
                if byte == 0 {
                    return NameScan(end: end < 0 ? offset + 1 : end, length: length, origin: origin, pointers: pointers)
                }
                offset += run
            } else if byte >= 0xC0 {
                guard offset + 2 <= count else { throw .truncated }
                let target = Int(byte & 0x3F) << 8 | Int(bytes[offset + 1])
                guard target < lowest, target >= DNSHeader.length, pointers < maxPointers else { throw .badPointer }
                pointers += 1
                if end < 0 { end = offset + 2 }
                lowest = target
                offset = target
            } else {
                throw .labelTooLong
            }
        }
    }

    /// Copies the name at `start`, already checked by `scanName` to be `length` octets, into
    /// `destination`. Returns the offset just past the name where it was found.
    @inline(__always)
    static func copyName(
        _ bytes: UnsafeBufferPointer<UInt8>, from start: Int, length: Int, into destination: UnsafeMutablePointer<UInt8>
    ) -> Int {
        guard let source = bytes.baseAddress else { return start }
        var offset = start
        var end = -1
        var written = 0
        var jumps = 0
        // Bounded by `length` and the pointer limit even if called on unchecked input.
        while written < length, jumps <= maxPointers {
            let byte = Int(bytes[offset])
            if byte >= 0xC0 {
                if end < 0 { end = offset + 2 }
                offset = (byte & 0x3F) << 8 | Int(bytes[offset + 1])
                jumps += 1
                continue
            }
            let run = byte + 1
            guard written + run <= length else { break }
            (destination + written).initialize(from: source + offset, count: run)
            written += run
            offset += run
        }
        return end < 0 ? offset : end
    }

    /// The name at `start` (checked by `scanName`, `length` octets) as a `DomainName`. An
    /// uncompressed name is one copy out of the packet; a compressed one is put together on
    /// the stack first. (`Array(UnsafeBufferPointer)` is specialized for octets; building the
    /// array in place through `init(unsafeUninitializedCapacity:)` costs a generic metadata
    /// lookup per name, which measured twice as slow.)
    static func copyName(_ bytes: UnsafeBufferPointer<UInt8>, from start: Int, length: Int) -> DomainName {
        if start + length <= bytes.count, bytes[start + length - 1] == 0,
            isUncompressed(bytes, from: start, length: length)
        {
            return DomainName(uncheckedWire: Array(UnsafeBufferPointer(rebasing: bytes[start..<(start + length)])))
        }
        let wire = withUnsafeTemporaryAllocation(of: UInt8.self, capacity: DomainName.maxWireLength) { buffer in
            guard let destination = buffer.baseAddress else { return [UInt8]() }
            _ = copyName(bytes, from: start, length: length, into: destination)
            return Array(UnsafeBufferPointer(start: destination, count: length))
        }
        return DomainName(uncheckedWire: wire)
    }

    /// Whether the checked name at `start` is `length` octets of labels with no pointer.
    @inline(__always)
    private static func isUncompressed(_ bytes: UnsafeBufferPointer<UInt8>, from start: Int, length: Int) -> Bool {
        var offset = start
        let end = start + length
        while offset < end {
            let byte = bytes[offset]
            if byte >= 0xC0 { return false }
            if byte == 0 { return offset == end - 1 }
            offset += 1 + Int(byte)
        }
        return false
    }

    // MARK: - RDATA

    /// Checks a record's RDATA against its type (see the type's doc comment for the rules).
    @inline(__always)
    static func checkRDATA(
        _ bytes: UnsafeBufferPointer<UInt8>, type: RecordType, recordClass: UInt16, offset: Int, length: Int
    ) throws(MalformedReason) {
        if let fixed = type.fixedRDATALength {
            guard length == fixed || (length == 0 && isUpdateClass(recordClass)) else { throw .badRDATA }
        } else if let shape = type.nameShape, length > 0 || !isUpdateClass(recordClass) {
            _ = try expandedLength(bytes, shape: shape, offset: offset, length: length)
        } else if let strings = type.characterStrings, length > 0 || !isUpdateClass(recordClass) {
            // TXT, SPF, HINFO: <character-string>s that tile the RDATA exactly (RFC 1035
            // §3.3.2, §3.3.14). A reply passed on with a string running past its RDATA is one
            // that clients' parsers (ldns, BIND's) refuse whole.
            var position = offset
            var count = 0
            let end = offset + length
            while position < end {
                position += 1 + Int(bytes[position])
                count += 1
            }
            guard position == end, strings.contains(count) else { throw .badRDATA }
        }
    }

    /// RFC 2136 §2.4, §2.5: NONE and ANY records carry empty RDATA.
    @inline(__always) static func isUpdateClass(_ recordClass: UInt16) -> Bool {
        recordClass == RecordClass.none.rawValue || recordClass == RecordClass.any.rawValue
    }

    /// Checks RDATA of a name-bearing type and returns its length with names decompressed.
    static func expandedLength(
        _ bytes: UnsafeBufferPointer<UInt8>, shape: RDATAShape, offset: Int, length: Int
    ) throws(MalformedReason) -> Int {
        let end = offset + length
        var position = offset + shape.prefix
        guard position <= end else { throw .badRDATA }
        for _ in 0..<shape.strings {
            guard position < end else { throw .badRDATA }
            position += 1 + Int(bytes[position])
            guard position <= end else { throw .badRDATA }
        }
        var expanded = position - offset
        for _ in 0..<shape.names {
            let scan = try scanName(bytes, at: position, limit: end, overrun: .badRDATA)
            expanded += scan.length
            position = scan.end
        }
        switch shape.tail {
        case .none: guard position == end else { throw .badRDATA }
        case .fixed(let count): guard end - position == count else { throw .badRDATA }
        case .rest: break
        }
        return expanded + (end - position)
    }

    /// RDATA with its names decompressed; a plain copy for other types and for empty RDATA.
    static func expandedRDATA(_ bytes: UnsafeBufferPointer<UInt8>, _ record: RecordView) -> [UInt8] {
        let start = record.rdataOffset
        let end = start + record.rdataLength
        guard let shape = record.type.nameShape, record.rdataLength > 0, let source = bytes.baseAddress,
            let total = try? expandedLength(bytes, shape: shape, offset: start, length: record.rdataLength)
        else { return Array(UnsafeBufferPointer(rebasing: bytes[start..<end])) }
        // Put together in a temporary buffer (on the stack when small), then one array: see
        // `copyName` for why not `init(unsafeUninitializedCapacity:)`.
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: total) { buffer in
            guard let destination = buffer.baseAddress else { return [UInt8]() }
            var position = start + shape.prefix
            for _ in 0..<shape.strings { position += 1 + Int(bytes[position]) }
            var written = position - start
            destination.initialize(from: source + start, count: written)
            for _ in 0..<shape.names {
                // Checked by `expandedLength` above; measured again to know each length.
                guard let scan = try? scanName(bytes, at: position, limit: end, overrun: .badRDATA) else {
                    return Array(UnsafeBufferPointer(rebasing: bytes[start..<end]))
                }
                position = copyName(bytes, from: position, length: scan.length, into: destination + written)
                written += scan.length
            }
            let rest = end - position
            (destination + written).initialize(from: source + position, count: rest)
            return Array(UnsafeBufferPointer(start: destination, count: written + rest))
        }
    }
}
