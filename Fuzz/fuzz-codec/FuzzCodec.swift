// Fuzz/fuzz-codec: libFuzzer target for the ldns codec (Wire/LDNSCodec.swift). The input is any
// DNS message. What ldns reads must print (presentation text, as dig-lite shows it), its names
// must survive a trip through their text form, and it must encode again into bytes that decode to
// the same message, which the answer cache's TTL scan can walk. Set FUZZ_CODEC_LENIENT=1 to
// tolerate messages that decode but do not encode again (they are SERVFAIL, not a crash).

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

    let encoded: [UInt8]
    do {
        encoded = try DNSCodec.encode(message)
    } catch {
        if lenient { return 0 }
        fatalError("a decoded message does not encode again: \(error)")
    }
    let again: DNSMessage
    do {
        again = try DNSCodec.decode(encoded)
    } catch {
        fatalError("ldns cannot read what it wrote: \(error)")
    }
    var expected = message
    // RFC 6891 §6.2.5: a payload size of 0 goes out as 512 (DNSCodec.encode).
    if expected.edns?.udpPayloadSize == 0 { expected.edns?.udpPayloadSize = 512 }
    // ldns compresses names case-insensitively, so a name in RDATA (NS, CNAME, MX, SOA, PTR)
    // may come back in the letter case of an earlier occurrence: the same name (RFC 4343).
    if folded(again) != folded(expected) { fatalError("decode(encode(m)) != m") }
    if message.questions.count == 1 {
        do throws(MalformedReason) {
            _ = try WireScan(encoded)
        } catch {
            fatalError("the answer cache cannot scan an encoded message: \(error)")
        }
    }
    return 0
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
