// Wire/: the message writer. Appends header, questions, records and an OPT record to one
// `[UInt8]`, compressing names where RFC 3597 §4 allows it, and notes where every TTL field
// went so that the answer cache can count TTLs down in place.

/// One EDNS option to write (RFC 6891 §6.1.2).
public struct EDNSOption: Sendable, Hashable {
    public var code: UInt16
    public var data: [UInt8]

    public init(code: UInt16, data: [UInt8]) {
        self.code = code
        self.data = data
    }
}

/// How the writer matches a name against the names already written.
public enum NameCompression: Sendable, Hashable {
    /// Every name written in full.
    case none
    /// Only octet-identical suffixes are shared, so every name reads back in exactly the case
    /// it was given (a round trip keeps RDATA byte for byte). The default.
    case exactCase
    /// Suffixes equal but for ASCII case are shared too (as ldns did): smaller, but a later
    /// name reads back in the case of the earlier one (the same name, RFC 4343).
    case ignoringCase
}

/// Why a message could not be written. The writer checks before it appends, so after an
/// error it holds what it held before the call.
public enum MessageWriteError: Error, Sendable, Hashable {
    /// RDATA that does not fit its type (an A not 4 octets, an MX without a valid name, an
    /// embedded name with compression pointers), which no reader would accept.
    case badRDATA(RecordType)
    case rdataTooLong
    /// Over 65,535 octets (`finish`).
    case messageTooLong
    /// A section with 65,535 entries already.
    case tooManyEntries
    /// A question after a record, or a record for a section before one already written.
    case outOfOrder
    /// OPT goes through `addOPT`, which keeps it single and in the additional section.
    case optAsRecord
    case multipleOPT
    /// Nothing may follow a TSIG (RFC 8945 §5.1).
    case afterTSIG
    /// A response code above 15 needs the OPT record's extension bits (RFC 6891 §6.1.3).
    case rcodeNeedsEDNS
}

/// A finished message and the offset of every TTL field in it (OPT's, which holds flags, not
/// a time, left out), in the order the records were added.
public struct WrittenMessage: Sendable, Hashable {
    public var bytes: [UInt8]
    public var ttlOffsets: [Int]
}

/// Builds one message. Add questions, then records section by section, then `finish()`.
public struct MessageWriter: Sendable {
    public private(set) var bytes: [UInt8]
    public private(set) var ttlOffsets: [Int] = []
    public let compression: NameCompression
    private let rcode: ResponseCode
    /// 0 while questions are added, then 1 + the section of the last record.
    private var stage = 0
    private var hasOPT = false
    private var sealed = false
    private var table = CompressionTable()

    /// Compression pointers have 14 bits: names at or past this offset cannot be pointed at.
    static let pointerLimit = 0x4000

    /// Starts a message with the header; `rcode`'s upper eight bits go into the OPT record.
    public init(
        id: UInt16, flags: MessageFlags = [], opcode: Opcode = .query, rcode: ResponseCode = .noError,
        compression: NameCompression = .exactCase, reservingCapacity capacity: Int = 512
    ) {
        self.compression = compression
        self.rcode = rcode
        var header: [UInt8] = []
        header.reserveCapacity(max(capacity, DNSHeader.length))
        let word = flags.rawValue & MessageFlags.defined.rawValue | UInt16(opcode.rawValue & 0x0F) << 11
            | rcode.rawValue & DNSHeader.rcodeMask
        header.appendU16(id)
        header.appendU16(word)
        header.append(contentsOf: [0, 0, 0, 0, 0, 0, 0, 0])
        bytes = header
    }

    /// Appends a question (before any record).
    public mutating func add(_ question: Question) throws(MessageWriteError) {
        guard stage == 0 else { throw .outOfOrder }
        guard count(at: 4) < UInt16.max else { throw .tooManyEntries }
        question.name.wire.withUnsafeBufferPointer { writeName($0, compressible: true) }
        bytes.appendU16(question.type.rawValue)
        bytes.appendU16(question.recordClass.rawValue)
        increment(at: 4)
    }

    /// Appends a record to `section`.
    public mutating func add(_ record: ResourceRecord, to section: MessageSection) throws(MessageWriteError) {
        try record.rdata.withUnsafeBufferPointer { (rdata) throws(MessageWriteError) in
            try addRecord(
                owner: record.name, type: record.type, recordClass: record.recordClass, ttl: record.ttl, rdata: rdata,
                to: section)
        }
    }

    /// Appends a record whose RDATA is a slice (of a received message's expanded RDATA, say).
    /// RDATA names must be uncompressed.
    public mutating func addRecord(
        owner: DomainName, type: RecordType, recordClass: RecordClass = .in, ttl: UInt32, rdata: ArraySlice<UInt8>,
        to section: MessageSection
    ) throws(MessageWriteError) {
        try rdata.withUnsafeBufferPointer { (rdata) throws(MessageWriteError) in
            try addRecord(owner: owner, type: type, recordClass: recordClass, ttl: ttl, rdata: rdata, to: section)
        }
    }

    /// Appends the OPT record to the additional section (RFC 6891 §6.1.2): payload size as
    /// CLASS; extended rcode (the writer's rcode's upper bits), version and DO in the TTL.
    public mutating func addOPT(
        udpPayloadSize: UInt16, version: UInt8 = 0, dnssecOK: Bool = false, options: [EDNSOption] = []
    ) throws(MessageWriteError) {
        guard !hasOPT else { throw .multipleOPT }
        guard !sealed else { throw .afterTSIG }
        guard stage <= 3 else { throw .outOfOrder }
        guard count(at: 10) < UInt16.max else { throw .tooManyEntries }
        var length = 0
        for option in options { length += 4 + option.data.count }
        guard length <= Int(UInt16.max), options.allSatisfy({ $0.data.count <= Int(UInt16.max) }) else {
            throw .rdataTooLong
        }
        stage = 3
        hasOPT = true
        bytes.append(0)
        bytes.appendU16(RecordType.opt.rawValue)
        bytes.appendU16(udpPayloadSize)
        bytes.append(UInt8((rcode.rawValue >> 4) & 0xFF))
        bytes.append(version)
        bytes.appendU16(dnssecOK ? 0x8000 : 0)
        bytes.appendU16(UInt16(length))
        for option in options {
            bytes.appendU16(option.code)
            bytes.appendU16(UInt16(option.data.count))
            bytes.append(contentsOf: option.data)
        }
        increment(at: 10)
    }

    /// The message, once checked to fit 65,535 octets and to carry an OPT if its rcode needs one.
    public func finish() throws(MessageWriteError) -> WrittenMessage {
        guard bytes.count <= Int(UInt16.max) else { throw .messageTooLong }
        guard rcode.rawValue <= 0x0F || hasOPT else { throw .rcodeNeedsEDNS }
        return WrittenMessage(bytes: bytes, ttlOffsets: ttlOffsets)
    }

    /// Writes `message`: questions, answers, authorities, additionals, then an OPT record for
    /// `edns` (a payload size of 0 goes out as 512, RFC 6891 §6.2.5, as the ldns encoder did).
    public static func write(_ message: DNSMessage, compression: NameCompression = .exactCase)
        throws(MessageWriteError) -> WrittenMessage
    {
        var writer = MessageWriter(
            id: message.id, flags: message.flags, opcode: message.opcode, rcode: message.rcode, compression: compression)
        for question in message.questions { try writer.add(question) }
        for record in message.answers { try writer.add(record, to: .answer) }
        for record in message.authorities { try writer.add(record, to: .authority) }
        for record in message.additionals { try writer.add(record, to: .additional) }
        if let edns = message.edns {
            try writer.addOPT(
                udpPayloadSize: edns.udpPayloadSize == 0 ? 512 : edns.udpPayloadSize, version: edns.version,
                dnssecOK: edns.dnssecOK)
        }
        return try writer.finish()
    }

    /// `write(message).bytes`: a drop-in for the ldns-based `DNSCodec.encode`.
    public static func encode(_ message: DNSMessage, compression: NameCompression = .exactCase)
        throws(MessageWriteError) -> [UInt8]
    {
        try write(message, compression: compression).bytes
    }

    // MARK: - Records

    private mutating func addRecord(
        owner: DomainName, type: RecordType, recordClass: RecordClass, ttl: UInt32, rdata: UnsafeBufferPointer<UInt8>,
        to section: MessageSection
    ) throws(MessageWriteError) {
        let stageAfter = Int(section.rawValue) + 1
        guard stageAfter >= stage else { throw .outOfOrder }
        guard !sealed else { throw .afterTSIG }
        guard type != .opt else { throw .optAsRecord }
        guard rdata.count <= Int(UInt16.max) else { throw .rdataTooLong }
        let countOffset = 6 + 2 * Int(section.rawValue)
        guard count(at: countOffset) < UInt16.max else { throw .tooManyEntries }
        let shape = type.nameShape
        try Self.check(rdata, type: type, shape: shape, recordClass: recordClass)

        stage = stageAfter
        owner.wire.withUnsafeBufferPointer { writeName($0, compressible: true) }
        bytes.appendU16(type.rawValue)
        bytes.appendU16(recordClass.rawValue)
        ttlOffsets.append(bytes.count)
        bytes.appendU32(ttl)
        let lengthOffset = bytes.count
        bytes.appendU16(0)
        if let shape, type.compressesOnWrite, compression != .none, rdata.count > 0 {
            writeCompressing(rdata, shape: shape)
        } else {
            bytes.append(contentsOf: rdata)
        }
        // Never longer than `rdata`: compression only shortens.
        let length = bytes.count - lengthOffset - 2
        bytes[lengthOffset] = UInt8(length >> 8)
        bytes[lengthOffset + 1] = UInt8(length & 0xFF)
        increment(at: countOffset)
        if type.rawValue == RawType.tsig, section == .additional { sealed = true }
    }

    /// The writer refuses what `MessageReader` would refuse, so whatever it writes reads back.
    private static func check(
        _ rdata: UnsafeBufferPointer<UInt8>, type: RecordType, shape: RDATAShape?, recordClass: RecordClass
    ) throws(MessageWriteError) {
        if rdata.isEmpty, MessageReader.isUpdateClass(recordClass.rawValue) { return }
        if let fixed = type.fixedRDATALength {
            guard rdata.count == fixed else { throw .badRDATA(type) }
        } else if let shape {
            guard UncompressedRDATA.forEachName(in: rdata, shape: shape, { _ in }) else { throw .badRDATA(type) }
        }
    }

    /// RDATA of an RFC 3597 well-known type, its names compressed. `check` has passed, so
    /// every name the shape promises is whole.
    private mutating func writeCompressing(_ rdata: UnsafeBufferPointer<UInt8>, shape: RDATAShape) {
        var cursor = shape.prefix
        for _ in 0..<shape.strings { cursor += 1 + Int(rdata[cursor]) }
        bytes.append(contentsOf: UnsafeBufferPointer(rebasing: rdata[0..<cursor]))
        for _ in 0..<shape.names {
            guard let end = UncompressedRDATA.nameEnd(in: rdata, at: cursor, limit: rdata.count) else { break }
            writeName(UnsafeBufferPointer(rebasing: rdata[cursor..<end]), compressible: true)
            cursor = end
        }
        bytes.append(contentsOf: UnsafeBufferPointer(rebasing: rdata[cursor...]))
    }

    // MARK: - Names

    /// Writes an uncompressed name, as a pointer to its longest suffix already in the message
    /// when `compressible`, and remembers its new suffixes for later names.
    private mutating func writeName(_ name: UnsafeBufferPointer<UInt8>, compressible: Bool) {
        guard compressible, compression != .none, name.count > 1 else {
            bytes.append(contentsOf: name)
            return
        }
        let ignoringCase = compression == .ignoringCase
        var label = 0
        var match = -1
        var target = 0
        while label < name.count, name[label] != 0 {
            let hash = Self.hash(name, from: label, ignoringCase: ignoringCase)
            var slot = table.firstSlot(for: hash)
            while let offset = table.next(hash, slot: &slot) {
                if matches(name, from: label, at: offset, ignoringCase: ignoringCase) {
                    match = label
                    target = offset
                    break
                }
            }
            if match >= 0 { break }
            label += 1 + Int(name[label])
        }
        let start = bytes.count
        let written = match < 0 ? name.count : match
        label = 0
        while label < written, name[label] != 0, start + label < Self.pointerLimit {
            table.insert(Self.hash(name, from: label, ignoringCase: ignoringCase), offset: start + label)
            label += 1 + Int(name[label])
        }
        bytes.append(contentsOf: UnsafeBufferPointer(rebasing: name[0..<written]))
        if match >= 0 { bytes.appendU16(0xC000 | UInt16(target)) }
    }

    /// Whether the name written at `offset` (following its pointers) equals `name` from `start`.
    private func matches(_ name: UnsafeBufferPointer<UInt8>, from start: Int, at offset: Int, ignoringCase: Bool) -> Bool {
        var position = start
        var cursor = offset
        var jumps = 0
        while cursor < bytes.count, position < name.count {
            let length = Int(bytes[cursor])
            if length >= 0xC0 {
                guard cursor + 1 < bytes.count, jumps < MessageReader.maxPointers else { return false }
                cursor = (length & 0x3F) << 8 | Int(bytes[cursor + 1])
                jumps += 1
                continue
            }
            guard length == Int(name[position]) else { return false }
            if length == 0 { return true }
            guard cursor + 1 + length <= bytes.count, position + 1 + length <= name.count else { return false }
            for index in 1...length {
                let written = bytes[cursor + index]
                let wanted = name[position + index]
                if written != wanted, !ignoringCase || DomainName.lower(written) != DomainName.lower(wanted) {
                    return false
                }
            }
            cursor += 1 + length
            position += 1 + length
        }
        return false
    }

    /// FNV-1a over the suffix of `name` from `start`; never 0 (the table's empty mark).
    @inline(__always)
    private static func hash(_ name: UnsafeBufferPointer<UInt8>, from start: Int, ignoringCase: Bool) -> UInt64 {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for index in start..<name.count {
            let byte = ignoringCase ? DomainName.lower(name[index]) : name[index]
            hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01B3
        }
        return hash == 0 ? 1 : hash
    }

    // MARK: - Header counts

    private func count(at offset: Int) -> UInt16 { UInt16(bytes[offset]) << 8 | UInt16(bytes[offset + 1]) }

    private mutating func increment(at offset: Int) {
        let value = count(at: offset) + 1
        bytes[offset] = UInt8(value >> 8)
        bytes[offset + 1] = UInt8(value & 0xFF)
    }
}

/// Offsets of the name suffixes written so far, by hash: open addressing, grown at half full.
/// Equal hashes are confirmed against the message bytes, so collisions cost a comparison and
/// never a wrong pointer. Only offsets below 0x4000 are kept (a pointer has 14 bits).
struct CompressionTable: Sendable {
    private var hashes: [UInt64] = []
    private var offsets: [UInt16] = []
    private var used = 0

    /// Where the probe for `hash` starts (a value `next` ends at once for an empty table).
    func firstSlot(for hash: UInt64) -> Int {
        hashes.isEmpty ? -1 : Int(truncatingIfNeeded: hash) & (hashes.count - 1)
    }

    /// The next offset stored under `hash` from `slot` on, moving `slot` past it; nil at the
    /// end of the probe sequence.
    func next(_ hash: UInt64, slot: inout Int) -> Int? {
        guard slot >= 0 else { return nil }
        let mask = hashes.count - 1
        while hashes[slot] != 0 {
            let current = slot
            slot = (slot + 1) & mask
            if hashes[current] == hash { return Int(offsets[current]) }
        }
        return nil
    }

    mutating func insert(_ hash: UInt64, offset: Int) {
        if 2 * (used + 1) > hashes.count { grow() }
        let mask = hashes.count - 1
        var slot = Int(truncatingIfNeeded: hash) & mask
        while hashes[slot] != 0 { slot = (slot + 1) & mask }
        hashes[slot] = hash
        offsets[slot] = UInt16(offset)
        used += 1
    }

    private mutating func grow() {
        let oldHashes = hashes
        let oldOffsets = offsets
        let capacity = max(64, hashes.count * 2)
        hashes = [UInt64](repeating: 0, count: capacity)
        offsets = [UInt16](repeating: 0, count: capacity)
        used = 0
        for (index, hash) in oldHashes.enumerated() where hash != 0 {
            insert(hash, offset: Int(oldOffsets[index]))
        }
    }
}

extension [UInt8] {
    /// Appends `value` in network byte order.
    @inline(__always) public mutating func appendU16(_ value: UInt16) {
        append(UInt8(value >> 8))
        append(UInt8(value & 0xFF))
    }

    /// Appends `value` in network byte order.
    @inline(__always) public mutating func appendU32(_ value: UInt32) {
        appendU16(UInt16(value >> 16))
        appendU16(UInt16(value & 0xFFFF))
    }
}
