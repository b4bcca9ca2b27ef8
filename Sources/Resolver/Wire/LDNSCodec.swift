// Wire/: the one file that talks to ldns. Wire bytes → DNSMessage and back, and presentation
// text. ldns pointers never leave this file; each is freed in a `defer` next to its creation.

import CLDNS

/// An ldns failure as one Swift error: ldns's status code and its message.
public struct CodecError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The `ldns_status` value, or -1 for errors found on the Swift side.
    public let code: Int32
    public let message: String

    init(status: ldns_status) {
        code = Int32(bitPattern: status.rawValue)
        message = ldns_get_errorstr_by_id(status).map { String(cString: $0) } ?? "ldns status \(status.rawValue)"
    }

    init(_ message: String) {
        code = -1
        self.message = message
    }

    public var description: String { message }
}

/// Converts between wire bytes, `DNSMessage` values and presentation text, through ldns.
public enum DNSCodec {
    /// Parses a whole message. The OPT record becomes `edns`; the rcode includes its extension.
    public static func decode(_ bytes: [UInt8]) throws(CodecError) -> DNSMessage {
        var packet: UnsafeMutablePointer<ldns_pkt>? = nil
        let status = bytes.withUnsafeBufferPointer { ldns_wire2pkt(&packet, $0.baseAddress, $0.count) }
        guard status == LDNS_STATUS_OK, let packet else { throw CodecError(status: status) }
        defer { ldns_pkt_free(packet) }

        var flags: MessageFlags = []
        if isSet(ldns_pkt_qr(packet)) { flags.insert(.qr) }
        if isSet(ldns_pkt_aa(packet)) { flags.insert(.aa) }
        if isSet(ldns_pkt_tc(packet)) { flags.insert(.tc) }
        if isSet(ldns_pkt_rd(packet)) { flags.insert(.rd) }
        if isSet(ldns_pkt_ra(packet)) { flags.insert(.ra) }
        if isSet(ldns_pkt_ad(packet)) { flags.insert(.ad) }
        if isSet(ldns_pkt_cd(packet)) { flags.insert(.cd) }

        let hasEDNS = isSet(ldns_pkt_edns(packet))
        let extended = hasEDNS ? UInt16(ldns_pkt_edns_extended_rcode(packet)) << 4 : 0
        var message = DNSMessage(
            id: ldns_pkt_id(packet), flags: flags,
            opcode: Opcode(rawValue: UInt8(truncatingIfNeeded: ldns_pkt_get_opcode(packet).rawValue)),
            rcode: ResponseCode(rawValue: extended | UInt16(truncatingIfNeeded: ldns_pkt_get_rcode(packet).rawValue)))
        if hasEDNS {
            message.edns = EDNS(
                udpPayloadSize: ldns_pkt_edns_udp_size(packet), version: ldns_pkt_edns_version(packet),
                dnssecOK: isSet(ldns_pkt_edns_do(packet)))
        }
        message.questions = try records(ldns_pkt_question(packet)).map {
            Question(name: $0.name, type: $0.type, recordClass: $0.recordClass)
        }
        message.answers = try records(ldns_pkt_answer(packet))
        message.authorities = try records(ldns_pkt_authority(packet))
        message.additionals = try records(ldns_pkt_additional(packet))
        return message
    }

    /// Builds wire bytes with name compression.
    public static func encode(_ message: DNSMessage) throws(CodecError) -> [UInt8] {
        guard let packet = ldns_pkt_new() else { throw CodecError("ldns_pkt_new failed") }
        defer { ldns_pkt_free(packet) }
        ldns_pkt_set_id(packet, message.id)
        ldns_pkt_set_qr(packet, cBool(message.flags.contains(.qr)))
        ldns_pkt_set_aa(packet, cBool(message.flags.contains(.aa)))
        ldns_pkt_set_tc(packet, cBool(message.flags.contains(.tc)))
        ldns_pkt_set_rd(packet, cBool(message.flags.contains(.rd)))
        ldns_pkt_set_ra(packet, cBool(message.flags.contains(.ra)))
        ldns_pkt_set_ad(packet, cBool(message.flags.contains(.ad)))
        ldns_pkt_set_cd(packet, cBool(message.flags.contains(.cd)))
        ldns_pkt_set_opcode(packet, ldns_pkt_opcode(rawValue: UInt32(message.opcode.rawValue)))
        ldns_pkt_set_rcode(packet, UInt8(message.rcode.rawValue & 0x0F))
        if let edns = message.edns {
            // ldns writes an OPT only when some EDNS field is set, and a size of 0 sets none;
            // RFC 6891 §6.2.5 reads sizes below 512 as 512, so 0 goes out as 512.
            ldns_pkt_set_edns_udp_size(packet, edns.udpPayloadSize == 0 ? 512 : edns.udpPayloadSize)
            ldns_pkt_set_edns_version(packet, edns.version)
            ldns_pkt_set_edns_do(packet, cBool(edns.dnssecOK))
            ldns_pkt_set_edns_extended_rcode(packet, UInt8((message.rcode.rawValue >> 4) & 0xFF))
        } else if message.rcode.rawValue > 0x0F {
            throw CodecError("rcode \(message.rcode) needs EDNS")
        }
        for question in message.questions {
            var wire = question.name.wire
            wire.appendU16(question.type.rawValue)
            wire.appendU16(question.recordClass.rawValue)
            try push(wire, section: LDNS_SECTION_QUESTION, to: packet)
        }
        let sections: [(ldns_pkt_section, [ResourceRecord])] = [
            (LDNS_SECTION_ANSWER, message.answers), (LDNS_SECTION_AUTHORITY, message.authorities),
            (LDNS_SECTION_ADDITIONAL, message.additionals),
        ]
        for (section, records) in sections {
            for record in records {
                try push(wireForm(record), section: section, to: packet)
            }
        }

        var output: UnsafeMutablePointer<UInt8>? = nil
        var size = 0
        let status = ldns_pkt2wire(&output, packet, &size)
        guard status == LDNS_STATUS_OK, let output else { throw CodecError(status: status) }
        defer { CLDNS_free(output) }
        // A message cannot be longer than 65,535 octets (TCP's length field). ldns writes one
        // anyway when records it re-encodes uncompressed (SRV targets) grow past that, with a
        // broken RDLENGTH: refuse it (fuzzing finding F1).
        guard size <= Int(UInt16.max) else { throw CodecError("the message would be \(size) octets, over 65,535") }
        return Array(UnsafeBufferPointer(start: output, count: size))
    }

    /// One record in zone-file presentation form (`name TTL CLASS TYPE RDATA`), as ldns prints it.
    public static func presentation(of record: ResourceRecord) -> String {
        withLDNSRecord(record, section: LDNS_SECTION_ANSWER) { rr in
            guard let text = ldns_rr2str(rr) else { return nil }
            defer { CLDNS_free(text) }
            return String(cString: text).trimmingTrailingNewlines()
        } ?? "\(record.name)\t\(record.ttl)\t\(record.recordClass)\t\(record.type)\t\\# \(record.rdata.count)"
    }

    /// Only the RDATA in presentation form (`192.0.2.1`, `10 mail.example.`), for `+short`.
    public static func rdataPresentation(of record: ResourceRecord) -> String {
        let full = presentation(of: record)
        // ldns separates owner, TTL, class, type and RDATA with tabs; RDATA may hold spaces.
        let fields = full.split(separator: "\t", maxSplits: 4, omittingEmptySubsequences: false)
        return fields.count == 5 ? String(fields[4]) : full
    }

    /// Parses one record in presentation form (`www.example. 300 IN A 192.0.2.1`).
    public static func record(fromPresentation text: String, defaultTTL: UInt32 = 3600) throws(CodecError)
        -> ResourceRecord
    {
        var rr: UnsafeMutablePointer<ldns_rr>? = nil
        let status = ldns_rr_new_frm_str(&rr, text, defaultTTL, nil, nil)
        guard status == LDNS_STATUS_OK, let rr else { throw CodecError(status: status) }
        defer { ldns_rr_free(rr) }
        return try record(from: rr)
    }

    // MARK: - ldns ↔ Swift

    private static func records(_ list: UnsafeMutablePointer<ldns_rr_list>?) throws(CodecError) -> [ResourceRecord] {
        guard let list else { return [] }
        let count = ldns_rr_list_rr_count(list)
        var result: [ResourceRecord] = []
        result.reserveCapacity(count)
        for index in 0..<count {
            guard let rr = ldns_rr_list_rr(list, index) else { continue }
            result.append(try record(from: rr))
        }
        return result
    }

    private static func record(from rr: UnsafeMutablePointer<ldns_rr>) throws(CodecError) -> ResourceRecord {
        guard let owner = ldns_rr_owner(rr), let ownerData = ldns_rdf_data(owner),
            let name = DomainName(wire: Array(UnsafeBufferPointer(start: ownerData, count: ldns_rdf_size(owner))))
        else { throw CodecError("record without a valid owner name") }
        guard let buffer = ldns_buffer_new(512) else { throw CodecError("ldns_buffer_new failed") }
        defer { ldns_buffer_free(buffer) }
        let status = ldns_rr_rdata2buffer_wire(buffer, rr)
        guard status == LDNS_STATUS_OK else { throw CodecError(status: status) }
        let rdata = Array(UnsafeBufferPointer(start: CLDNS_buffer_bytes(buffer), count: CLDNS_buffer_length(buffer)))
        let type = RecordType(rawValue: UInt16(truncatingIfNeeded: ldns_rr_get_type(rr).rawValue))
        return ResourceRecord(
            name: name, type: type,
            recordClass: RecordClass(rawValue: UInt16(truncatingIfNeeded: ldns_rr_get_class(rr).rawValue)),
            // OPT's "TTL" holds flags, not a time (RFC 6891 §6.1.3).
            ttl: type == .opt ? ldns_rr_ttl(rr) : Self.ttl(fromWire: ldns_rr_ttl(rr)), rdata: rdata)
    }

    /// A TTL as received: one with the most significant bit set is read as 0 (RFC 2181 §8: TTLs
    /// are 0 to 2^31 - 1), not as a huge value that the max_ttl clamp would then keep a day.
    public static func ttl(fromWire raw: UInt32) -> UInt32 {
        raw & 0x8000_0000 == 0 ? raw : 0
    }

    private static func wireForm(_ record: ResourceRecord) throws(CodecError) -> [UInt8] {
        guard record.rdata.count <= Int(UInt16.max) else { throw CodecError("RDATA longer than 65535 octets") }
        var wire = record.name.wire
        wire.reserveCapacity(wire.count + 10 + record.rdata.count)
        wire.appendU16(record.type.rawValue)
        wire.appendU16(record.recordClass.rawValue)
        wire.appendU32(record.ttl)
        wire.appendU16(UInt16(record.rdata.count))
        wire.append(contentsOf: record.rdata)
        return wire
    }

    /// Reads `wire` as one record of `section` and appends it to the packet (which owns it then).
    private static func push(_ wire: [UInt8], section: ldns_pkt_section, to packet: UnsafeMutablePointer<ldns_pkt>)
        throws(CodecError)
    {
        var rr: UnsafeMutablePointer<ldns_rr>? = nil
        var position = 0
        let status = wire.withUnsafeBufferPointer { ldns_wire2rr(&rr, $0.baseAddress, $0.count, &position, section) }
        guard status == LDNS_STATUS_OK, let rr else { throw CodecError(status: status) }
        guard position == wire.count else {
            ldns_rr_free(rr)
            throw CodecError("RDATA does not match its type")
        }
        guard isSet(ldns_pkt_push_rr(packet, section, rr)) else {
            ldns_rr_free(rr)
            throw CodecError("ldns_pkt_push_rr failed")
        }
    }

    private static func withLDNSRecord<T>(
        _ record: ResourceRecord, section: ldns_pkt_section, _ body: (UnsafeMutablePointer<ldns_rr>) -> T?
    ) -> T? {
        guard let wire = try? wireForm(record) else { return nil }
        var rr: UnsafeMutablePointer<ldns_rr>? = nil
        var position = 0
        let status = wire.withUnsafeBufferPointer { ldns_wire2rr(&rr, $0.baseAddress, $0.count, &position, section) }
        guard status == LDNS_STATUS_OK, let rr else { return nil }
        defer { ldns_rr_free(rr) }
        return body(rr)
    }
}

/// ldns declares `bool` as a small integer on this platform; these keep the conversions in one place.
@inline(__always) private func isSet<T: BinaryInteger>(_ value: T) -> Bool { value != 0 }
@inline(__always) private func cBool<T: BinaryInteger>(_ value: Bool) -> T { value ? 1 : 0 }

extension String {
    fileprivate func trimmingTrailingNewlines() -> String {
        var copy = self
        while copy.last == "\n" { copy.removeLast() }
        return copy
    }
}
