// Fuzz/fuzz-codec: libFuzzer target for the two codecs, DNSWire's reader and writer (the path of
// every upstream answer) and ldns (dig-lite's presentation text), against each other. The input
// is any DNS message. What DNSWire reads, ldns must read too and to the same message (DNSWire is
// the stricter of the two); DNSWire must write it again into bytes that it and ldns read back to
// the same message, with one TTL offset per record. What ldns reads must print (presentation
// text, as dig-lite shows it), and its names must survive a trip through their text form. Set
// FUZZ_CODEC_LENIENT=1 to tolerate messages that decode but do not encode again (they are
// SERVFAIL, not a crash).

import Foundation

@testable import Resolver

private let lenient = ProcessInfo.processInfo.environment["FUZZ_CODEC_LENIENT"] == "1"

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let message: DNSMessage
    do {
        message = try DNSCodec.decode(bytes)
    } catch {
        _ = error.description
        return 0
    }

    for question in message.questions {
        checkNameText(question.name)
        _ = question.description
    }
    for record in message.answers + message.authorities + message.additionals {
        checkNameText(record.name)
        // As dig-lite prints it. (Reading text back, DNSCodec.record(fromPresentation:), is for
        // tests only and not fuzzed: it reaches a leak in ldns 1.8.3, F6 in Fuzz/README.md.)
        _ = DNSCodec.presentation(of: record)
        _ = DNSCodec.rdataPresentation(of: record)
        if let target = record.targetName { checkNameText(target) }
        _ = record.address
    }

    // DNSWire: what it accepts, ldns accepted, and read the same way.
    let wire: DNSMessage
    do {
        wire = try MessageReader.decode(bytes)
    } catch {
        return 0
    }
    if !sameReading(wire, ldns: message) { fatalError("DNSWire and ldns read the same bytes differently") }
    let written: WrittenMessage
    do {
        written = try MessageWriter.write(wire, compression: .ignoringCase)
    } catch {
        if lenient { return 0 }
        fatalError("a message DNSWire read does not write again: \(error)")
    }
    let records = wire.answers.count + wire.authorities.count + wire.additionals.count
    if written.ttlOffsets.count != records { fatalError("\(written.ttlOffsets.count) TTL offsets for \(records) records") }
    let again: DNSMessage
    let fromLDNS: DNSMessage
    do {
        again = try MessageReader.decode(written.bytes)
        fromLDNS = try DNSCodec.decode(written.bytes)
    } catch {
        fatalError("what DNSWire wrote does not read back: \(error)")
    }
    // Names are compressed ignoring case, so a name in RDATA (NS, CNAME, MX, SOA, PTR) may come
    // back in the letter case of an earlier occurrence: the same name (RFC 4343).
    var expected = wire
    // RFC 6891 §6.2.5: a payload size of 0 goes out as 512 (MessageWriter.write).
    if expected.edns?.udpPayloadSize == 0 { expected.edns?.udpPayloadSize = 512 }
    if folded(again) != folded(expected) { fatalError("read(write(m)) != m") }
    if !sameReading(folded(expected), ldns: folded(fromLDNS)) { fatalError("ldns reads what DNSWire wrote differently") }
    return 0
}

/// Whether DNSWire read what ldns read. One difference is by design: for a type whose RDATA is
/// longer than ldns's field layout for it (an L32 of 20 octets, say), ldns keeps only the fields
/// it knows while DNSWire keeps RDLENGTH octets, as sent.
private func sameReading(_ wire: DNSMessage, ldns: DNSMessage) -> Bool {
    func same(_ a: [ResourceRecord], _ b: [ResourceRecord]) -> Bool {
        a.count == b.count
            && zip(a, b).allSatisfy { mine, theirs in
                var cut = mine
                cut.rdata = Array(mine.rdata.prefix(theirs.rdata.count))
                return mine == theirs || (theirs.rdata.count < mine.rdata.count && cut == theirs)
            }
    }
    var header = wire
    header.answers = ldns.answers
    header.authorities = ldns.authorities
    header.additionals = ldns.additionals
    return header == ldns && same(wire.answers, ldns.answers) && same(wire.authorities, ldns.authorities)
        && same(wire.additionals, ldns.additionals)
}

/// `message` with every RDATA octet in ASCII lower case (owner names already compare that way).
private func folded(_ message: DNSMessage) -> DNSMessage {
    func fold(_ records: [ResourceRecord]) -> [ResourceRecord] {
        records.map { record in
            var copy = record
            copy.rdata = record.rdata.map(DomainName.lower)
            return copy
        }
    }
    var copy = message
    copy.answers = fold(message.answers)
    copy.authorities = fold(message.authorities)
    copy.additionals = fold(message.additionals)
    return copy
}

/// A name's presentation text parses back into the same name (RFC 1035 §5.1 escapes).
private func checkNameText(_ name: DomainName) {
    guard let parsed = DomainName(name.description), parsed.wire == name.wire else {
        fatalError("name does not survive its text form: \(name)")
    }
}
