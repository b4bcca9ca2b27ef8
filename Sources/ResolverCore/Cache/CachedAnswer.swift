// Cache/: an answer in the form the hit path serves it. The bytes are the reply itself — ID 0,
// the question lower-cased, no OPT record — followed by the offset of every TTL field. Building
// one costs one write by DNSWire's MessageWriter per upstream answer (it gives the TTL offsets);
// serving one is a copy and a few patches: the client's ID, RD and CD bits and question letters,
// TTLs counted down, and our OPT record.
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
    package let storage: [UInt8]
    package let messageLength: UInt16
    /// Length of the question name in wire form (it starts at offset 12).
    package let nameLength: UInt8
    public let kind: CachedKind
    /// Seconds the entry stays fresh.
    public let ttl: UInt32

    public var rcode: ResponseCode { ResponseCode(rawValue: UInt16(storage[3] & 0x0F)) }
    /// The reply's size without OPT.
    public var count: Int { Int(messageLength) }
    /// Bytes held, for the cache's memory accounting.
    public var storedBytes: Int { storage.capacity }
    package var ttlFieldCount: Int { (storage.count - Int(messageLength)) / 2 }

    /// The stored form of an upstream answer to `question`, with TTLs set by `settings` (clamps,
    /// negative TTL). `ttl` is 0 when the answer must not be cached (a TTL of 0, a negative
    /// answer without SOA, a referral); it can still be rendered for the clients waiting on it.
    public static func make(
        answer: DNSMessage, question: Question, authenticated: Bool, settings: CacheSettings
    ) throws(ResolutionFailure) -> CachedAnswer {
        var flags: MessageFlags = [.qr, .ra]
        if authenticated { flags.insert(.ad) }
        let message = DNSMessage(
            id: 0, flags: flags, opcode: .query, rcode: answer.rcode,
            questions: [Question(name: question.name.lowercased, type: question.type, recordClass: question.recordClass)],
            answers: answer.answers, authorities: answer.authorities, additionals: answer.additionals, edns: nil)
        // Written once by DNSWire's writer, which says where every TTL field went.
        let written: WrittenMessage
        do {
            written = try MessageWriter.write(message, compression: .ignoringCase)
        } catch {
            throw .unstorable("the answer cannot be written: \(error)")
        }
        var bytes = written.bytes
        // Served over TCP with our OPT record it must still fit the 2-octet length (fuzzing
        // finding F7: 65,525–65,535 octets were cached and then could not be sent).
        guard bytes.count <= Int(UInt16.max) - ResponseBuilder.optLength else {
            throw .unstorable("an answer of \(bytes.count) octets is too long to serve over TCP with EDNS")
        }
        let fields = AnswerTTLs(message, ttlOffsets: written.ttlOffsets)
        let decision = settings.lifetime(rcode: answer.rcode, ttls: fields)
        for field in fields.records {
            let clamped = decision.clamp(field)
            if clamped != field.ttl { bytes.writeU32(clamped, at: field.ttlOffset) }
        }
        return CachedAnswer(
            message: bytes, nameLength: message.questions[0].name.wire.count, ttlOffsets: written.ttlOffsets,
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

    package init(message: [UInt8], nameLength: Int, ttlOffsets: [Int], kind: CachedKind, ttl: UInt32) {
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
    package var name: DomainName { DomainName(uncheckedWire: Array(storage[12..<(12 + Int(nameLength))])) }

    /// The question's type and class, as stored.
    package var questionType: UInt16 { storage.u16(at: 12 + Int(nameLength)) }
    package var questionClass: UInt16 { storage.u16(at: 14 + Int(nameLength)) }

    /// Whether `name` (uncompressed wire form, any letter case) is this entry's question name.
    package func matches(name: UnsafeRawBufferPointer, type: UInt16, recordClass: UInt16) -> Bool {
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

/// The TTL fields of an answer as written: each record's TTL, type and section with the offset
/// the writer put its TTL at (in record order, OPT excluded); and the first authority SOA's TTL
/// and MINIMUM field (RFC 2308 §5).
package struct AnswerTTLs {
    package struct Field: Equatable {
        package var ttlOffset: Int
        package var type: UInt16
        package var ttl: UInt32
        /// 0 answer, 1 authority, 2 additional.
        package var section: Int
    }

    package var answerCount: Int
    package var records: [Field] = []
    package var soa: (ttl: UInt32, minimum: UInt32)?

    package init(_ message: DNSMessage, ttlOffsets: [Int]) {
        answerCount = message.answers.count
        let sections = [message.answers, message.authorities, message.additionals]
        var index = 0
        records.reserveCapacity(ttlOffsets.count)
        for (section, list) in sections.enumerated() {
            for record in list where index < ttlOffsets.count {
                records.append(
                    Field(ttlOffset: ttlOffsets[index], type: record.type.rawValue, ttl: record.ttl, section: section))
                index += 1
                if section == 1, soa == nil, let minimum = record.soaMinimum { soa = (record.ttl, minimum) }
            }
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
