// Replies/: answers built straight from a query's bytes, without ldns: error responses
// (FORMERR, REFUSED, NOTIMP, SERVFAIL, BADVERS) and the truncated reply that sends a UDP client
// to TCP. These run for hostile input too, so they allocate only the reply buffer.

import NIOCore

/// Builds small replies from the query's own bytes.
public enum ResponseBuilder {
    /// A reply with `rcode` and no records. Echoes the question when `questionEnd` is known,
    /// and an OPT record when the query had one (RFC 6891 §7: a responder to an EDNS query
    /// includes OPT, also in error replies).
    public static func reply(
        to query: UnsafeRawBufferPointer, questionEnd: Int?, rcode: ResponseCode, edns: EDNSInfo?,
        truncated: Bool = false, allocator: ByteBufferAllocator
    ) -> ByteBuffer {
        let questionLength = (questionEnd ?? DNSHeader.length) - DNSHeader.length
        var buffer = allocator.buffer(capacity: DNSHeader.length + questionLength + 11)
        let queryFlags = UInt16(query[2]) << 8 | UInt16(query[3])
        // Keep opcode, RD and CD from the query; set QR and RA (we offer recursion); AA stays 0.
        var flags = (queryFlags & (DNSHeader.opcodeMask | DNSHeader.rdBit | DNSHeader.cdBit)) | DNSHeader.qrBit
            | DNSHeader.raBit | (rcode.rawValue & 0x0F)
        if truncated { flags |= DNSHeader.tcBit }
        buffer.writeBytes(UnsafeRawBufferPointer(rebasing: query[0..<2]))  // ID
        buffer.writeInteger(flags)
        buffer.writeInteger(UInt16(questionEnd == nil ? 0 : 1))
        buffer.writeInteger(UInt16(0))
        buffer.writeInteger(UInt16(0))
        buffer.writeInteger(UInt16(edns == nil ? 0 : 1))
        if let questionEnd {
            buffer.writeBytes(UnsafeRawBufferPointer(rebasing: query[DNSHeader.length..<questionEnd]))
        }
        if let edns {
            writeOPT(into: &buffer, extendedRcode: UInt8(rcode.rawValue >> 4), dnssecOK: edns.dnssecOK)
        }
        return buffer
    }

    /// The size of our OPT record: root owner, type, class, TTL, RDLENGTH.
    package static let optLength = 11

    /// Our OPT record: root owner, our payload size, version 0, the DO bit echoed (RFC 3225 §3).
    package static func writeOPT(into buffer: inout ByteBuffer, extendedRcode: UInt8, dnssecOK: Bool) {
        buffer.writeInteger(UInt8(0))
        buffer.writeInteger(RecordType.opt.rawValue)
        buffer.writeInteger(EDNS.advertisedPayloadSize)
        buffer.writeInteger(extendedRcode)
        buffer.writeInteger(UInt8(0))  // version
        buffer.writeInteger(UInt16(dnssecOK ? 0x8000 : 0))
        buffer.writeInteger(UInt16(0))  // RDLENGTH
    }

    /// The largest reply a UDP client can take: 512 without EDNS (RFC 1035 §4.2.1), else its
    /// advertised size, capped at ours (RFC 6891 §6.2.5).
    public static func udpLimit(for edns: EDNSInfo?) -> Int {
        guard let edns else { return 512 }
        return Int(min(edns.udpPayloadSize, EDNS.advertisedPayloadSize).clamped(toAtLeast: 512))
    }
}

extension UInt16 {
    fileprivate func clamped(toAtLeast lower: UInt16) -> UInt16 { Swift.max(self, lower) }
}
