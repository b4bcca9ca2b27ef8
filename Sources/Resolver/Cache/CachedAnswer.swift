// Cache/: an answer in the form the hit path serves it. The bytes are the reply itself — ID 0,
// the question lower-cased, no OPT record — followed by the offset of every TTL field. Building
// one costs an ldns encode once per upstream answer; serving one is a copy and a few patches:
// the client's ID, RD and CD bits and question letters, TTLs counted down, and our OPT record.
// No ldns, no Foundation, no allocation but the reply buffer.

import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// What kind of answer an entry holds; each has its own TTL rule.
public enum CachedKind: UInt8, Sendable {
    /// Records for the question (RFC 2181: lives as long as its shortest TTL).
    case positive
    /// NXDOMAIN or NODATA with the zone's SOA (RFC 2308).
    case negative
    /// Resolution failed (RFC 9520): SERVFAIL for a few seconds, without asking again.
    case failure
}

/// A stored reply and where its TTLs are.
public struct CachedAnswer: Sendable, Equatable {
    /// The message, then two bytes (big-endian) per TTL field giving that field's offset.
    let storage: [UInt8]
    let messageLength: UInt16
    /// Length of the question name in wire form (it starts at offset 12).
    let nameLength: UInt8
    public let kind: CachedKind
    /// Seconds the entry stays fresh.
    public let ttl: UInt32

    public var rcode: ResponseCode { ResponseCode(rawValue: UInt16(storage[3] & 0x0F)) }
    /// The reply's size without OPT.
    public var count: Int { Int(messageLength) }
    /// Bytes held, for the cache's memory accounting.
    public var storedBytes: Int { storage.capacity }
    var ttlFieldCount: Int { (storage.count - Int(messageLength)) / 2 }

    /// The stored form of an upstream answer to `question`, with TTLs set by `settings` (clamps,
    /// negative TTL). `ttl` is 0 when the answer must not be cached (a TTL of 0, a negative
    /// answer without SOA, a referral); it can still be rendered for the clients waiting on it.
    public static func make(
        answer: DNSMessage, question: Question, authenticated: Bool, settings: CacheSettings
    ) throws(CodecError) -> CachedAnswer {
        var flags: MessageFlags = [.qr, .ra]
        if authenticated { flags.insert(.ad) }
        let message = DNSMessage(
            id: 0, flags: flags, opcode: .query, rcode: answer.rcode,
            questions: [Question(name: question.name.lowercased, type: question.type, recordClass: question.recordClass)],
            answers: answer.answers, authorities: answer.authorities, additionals: answer.additionals, edns: nil)
        var bytes = try DNSCodec.encode(message)
        // Served over TCP with our OPT record it must still fit the 2-octet length (fuzzing
        // finding F7: 65,525–65,535 octets were cached and then could not be sent).
        guard bytes.count <= Int(UInt16.max) - ResponseBuilder.optLength else {
            throw CodecError("an answer of \(bytes.count) octets is too long to serve over TCP with EDNS")
        }
        let scan: WireScan
        do throws(MalformedReason) {
            scan = try WireScan(bytes)
        } catch {
            throw CodecError("re-encoded answer is unreadable: \(error.rawValue)")
        }
        let decision = settings.lifetime(rcode: answer.rcode, scan: scan)
        for field in scan.records {
            let clamped = decision.clamp(field)
            if clamped != field.ttl { bytes.writeU32(clamped, at: field.ttlOffset) }
        }
        return CachedAnswer(message: bytes, nameLength: scan.nameLength, ttlOffsets: scan.records.map(\.ttlOffset),
                            kind: decision.kind, ttl: decision.ttl)
    }

    /// A failure entry: SERVFAIL with the question and no records.
    public static func failure(question: Question, ttl: UInt32) -> CachedAnswer {
        let name = question.name.lowercased.wire
        var bytes: [UInt8] = [0, 0, UInt8((DNSHeader.qrBit | DNSHeader.raBit) >> 8), UInt8(DNSHeader.raBit & 0xFF) | 2]
        bytes += [0, 1, 0, 0, 0, 0, 0, 0]
        bytes += name
        bytes.appendU16(question.type.rawValue)
        bytes.appendU16(question.recordClass.rawValue)
        return CachedAnswer(message: bytes, nameLength: name.count, ttlOffsets: [], kind: .failure, ttl: ttl)
    }

    init(message: [UInt8], nameLength: Int, ttlOffsets: [Int], kind: CachedKind, ttl: UInt32) {
        var storage = message
        storage.reserveCapacity(message.count + 2 * ttlOffsets.count)
        for offset in ttlOffsets { storage.appendU16(UInt16(offset)) }
        self.storage = storage
        self.messageLength = UInt16(message.count)
        self.nameLength = UInt8(nameLength)
        self.kind = kind
        self.ttl = ttl
    }

    /// The stored question name (lower case, wire form).
    var name: DomainName { DomainName(uncheckedWire: Array(storage[12..<(12 + Int(nameLength))])) }

    /// The question's type and class, as stored.
    var questionType: UInt16 { storage.u16(at: 12 + Int(nameLength)) }
    var questionClass: UInt16 { storage.u16(at: 14 + Int(nameLength)) }

    /// Whether `name` (uncompressed wire form, any letter case) is this entry's question name.
    func matches(name: UnsafeRawBufferPointer, type: UInt16, recordClass: UInt16) -> Bool {
        guard name.count == Int(nameLength), questionType == type, questionClass == recordClass else { return false }
        return storage.withUnsafeBytes { stored in
            guard let storedName = stored.baseAddress.map({ $0 + DNSHeader.length }), let asked = name.baseAddress else {
                return false
            }
            // Most stubs ask in lower case: one memcmp; else compare folding ASCII letters.
            if memcmp(storedName, asked, name.count) == 0 { return true }
            for index in 0..<name.count
            where DomainName.lower(asked.load(fromByteOffset: index, as: UInt8.self))
                != storedName.load(fromByteOffset: index, as: UInt8.self)
            {
                return false
            }
            return true
        }
    }

    /// The reply to `query`: this answer with the client's ID, RD/CD bits and question letters,
    /// TTLs reduced by `age` seconds (or all set to `staleTTL` when serving stale), and an OPT
    /// record when the query had one. Over UDP, a reply larger than the client takes is sent as
    /// header, question and OPT with TC set (RFC 7766 §5).
    public func render(
        query: UnsafeRawBufferPointer, view: QueryView, age: UInt32, staleTTL: UInt32? = nil, transport: Transport,
        allocator: ByteBufferAllocator
    ) -> ByteBuffer {
        let length = Int(messageLength)
        let total = length + (view.edns == nil ? 0 : ResponseBuilder.optLength)
        if transport == .udp, total > ResponseBuilder.udpLimit(for: view.edns) {
            return ResponseBuilder.reply(
                to: query, questionEnd: view.questionEnd, rcode: rcode, edns: view.edns, truncated: true, allocator: allocator)
        }
        var buffer = allocator.buffer(capacity: total)
        _ = storage.withUnsafeBytes { stored in
            buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: length) { out in
                out.copyMemory(from: UnsafeRawBufferPointer(rebasing: stored[0..<length]))
                // ID, then RD and CD from the query over the stored flags.
                out[0] = query[0]
                out[1] = query[1]
                out[2] |= query[2] & UInt8(DNSHeader.rdBit >> 8)
                out[3] |= query[3] & UInt8(DNSHeader.cdBit)
                // The client's letter case (RFC 4343; some stubs check it, 0x20 randomisation).
                let nameLength = Int(self.nameLength)
                if view.nameEnd - DNSHeader.length == nameLength {
                    var same = true
                    for index in 12..<(12 + nameLength) where DomainName.lower(query[index]) != stored[index] {
                        same = false
                        break
                    }
                    if same {
                        for index in 12..<(12 + nameLength) { out[index] = query[index] }
                    }
                }
                var cursor = length
                while cursor < stored.count {
                    let offset = Int(stored[cursor]) << 8 | Int(stored[cursor + 1])
                    cursor += 2
                    let original = UInt32(stored[offset]) << 24 | UInt32(stored[offset + 1]) << 16
                        | UInt32(stored[offset + 2]) << 8 | UInt32(stored[offset + 3])
                    let now: UInt32 = staleTTL ?? (original > age ? original - age : 0)
                    out[offset] = UInt8(now >> 24)
                    out[offset + 1] = UInt8((now >> 16) & 0xFF)
                    out[offset + 2] = UInt8((now >> 8) & 0xFF)
                    out[offset + 3] = UInt8(now & 0xFF)
                }
                if view.edns != nil {
                    // One more additional record: ours.
                    let additional = (UInt16(out[10]) << 8 | UInt16(out[11])) &+ 1
                    out[10] = UInt8(additional >> 8)
                    out[11] = UInt8(additional & 0xFF)
                }
                return length
            }
        }
        if let edns = view.edns {
            ResponseBuilder.writeOPT(into: &buffer, extendedRcode: 0, dnssecOK: edns.dnssecOK)
        }
        return buffer
    }
}

/// The TTL fields of a message, found by walking its records (names skipped, never decoded).
struct WireScan {
    struct Field: Equatable {
        var ttlOffset: Int
        var type: UInt16
        var ttl: UInt32
        /// 0 answer, 1 authority, 2 additional.
        var section: Int
        var rdataOffset: Int
        var rdataLength: Int
    }

    var nameLength: Int
    var answerCount: Int
    var records: [Field] = []
    /// The first SOA in the authority section: its TTL and MINIMUM field (RFC 2308 §5).
    var soa: (ttl: UInt32, minimum: UInt32)?

    init(_ bytes: [UInt8]) throws(MalformedReason) {
        guard bytes.count >= DNSHeader.length else { throw .truncatedHeader }
        guard bytes.u16(at: 4) == 1 else { throw .questionCount }
        let counts = [Int(bytes.u16(at: 6)), Int(bytes.u16(at: 8)), Int(bytes.u16(at: 10))]
        answerCount = counts[0]
        var offset = DNSHeader.length
        try Self.skipName(bytes, &offset)
        nameLength = offset - DNSHeader.length
        offset += 4
        guard offset <= bytes.count else { throw .truncated }
        records.reserveCapacity(counts.reduce(0, +))
        for (section, count) in counts.enumerated() {
            for _ in 0..<count {
                try Self.skipName(bytes, &offset)
                guard offset + 10 <= bytes.count else { throw .truncated }
                let type = bytes.u16(at: offset)
                let ttl = UInt32(bytes.u16(at: offset + 4)) << 16 | UInt32(bytes.u16(at: offset + 6))
                let rdataLength = Int(bytes.u16(at: offset + 8))
                guard offset + 10 + rdataLength <= bytes.count else { throw .truncated }
                // OPT's "TTL" holds flags, not a time (RFC 6891 §6.1.3).
                if type == RecordType.soa.rawValue, section == 1, soa == nil, rdataLength >= 20 {
                    let end = offset + 10 + rdataLength
                    soa = (ttl, UInt32(bytes.u16(at: end - 4)) << 16 | UInt32(bytes.u16(at: end - 2)))
                }
                if type != RecordType.opt.rawValue {
                    records.append(Field(
                        ttlOffset: offset + 4, type: type, ttl: ttl, section: section, rdataOffset: offset + 10,
                        rdataLength: rdataLength))
                }
                offset += 10 + rdataLength
            }
        }
        guard offset == bytes.count else { throw .trailingData }
    }

    /// Moves `offset` past a (possibly compressed) name.
    private static func skipName(_ bytes: [UInt8], _ offset: inout Int) throws(MalformedReason) {
        while true {
            guard offset < bytes.count else { throw .truncated }
            let length = Int(bytes[offset])
            if length & 0xC0 == 0xC0 {
                offset += 2
                return
            }
            guard length <= DomainName.maxLabelLength else { throw .labelTooLong }
            offset += 1 + length
            if length == 0 { return }
        }
    }
}

extension [UInt8] {
    func u16(at offset: Int) -> UInt16 { UInt16(self[offset]) << 8 | UInt16(self[offset + 1]) }

    mutating func writeU32(_ value: UInt32, at offset: Int) {
        self[offset] = UInt8(value >> 24)
        self[offset + 1] = UInt8((value >> 16) & 0xFF)
        self[offset + 2] = UInt8((value >> 8) & 0xFF)
        self[offset + 3] = UInt8(value & 0xFF)
    }
}
