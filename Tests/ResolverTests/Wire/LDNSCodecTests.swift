// Wire/LDNSCodec: DNSCodec round trips through ldns (records, flags, rcodes, EDNS), compression,
// errors, and presentation text.

import Testing

@testable import Resolver
import WireTestSupport

@Suite("DNSCodec")
struct LDNSCodecTests {
    static let presentations = [
        "www.example.com. 300 IN A 192.0.2.1",
        "www.example.com. 300 IN AAAA 2001:db8::1",
        "example.com. 3600 IN NS ns1.example.com.",
        "alias.example.com. 300 IN CNAME www.example.com.",
        "example.com. 300 IN MX 10 mail.example.com.",
        "example.com. 300 IN TXT \"hello world\" \"second\"",
        "example.com. 3600 IN SOA ns1.example.com. hostmaster.example.com. 2024010101 7200 3600 1209600 300",
        "_sip._tcp.example.com. 300 IN SRV 10 60 5060 sip.example.com.",
    ]

    private func record(_ text: String) throws -> ResourceRecord {
        try DNSCodec.record(fromPresentation: text)
    }

    private func name(_ text: String) throws -> DomainName {
        try #require(DomainName(text))
    }

    /// A full response using every record type above.
    private func sampleResponse() throws -> DNSMessage {
        let records = try Self.presentations.map(record)
        return DNSMessage(
            id: 0xABCD, flags: [.qr, .aa, .rd, .ra], rcode: .noError,
            questions: [Question(name: try name("www.example.com"), type: .a)],
            answers: Array(records[0...1]) + [records[3]],
            authorities: [records[2], records[6]],
            additionals: [records[4], records[5], records[7]],
            edns: EDNS(udpPayloadSize: 1232, dnssecOK: true))
    }

    // MARK: Records from presentation text

    @Test func parsesAddressRecords() throws {
        let a = try record("www.example.com. 300 IN A 192.0.2.1")
        #expect(a.name == (try name("www.example.com")))
        #expect(a.type == .a)
        #expect(a.recordClass == .in)
        #expect(a.ttl == 300)
        #expect(a.rdata == [192, 0, 2, 1])
        let aaaa = try record("www.example.com. 60 IN AAAA 2001:db8::1")
        #expect(aaaa.type == .aaaa)
        #expect(aaaa.rdata == [0x20, 0x01, 0x0D, 0xB8] + [UInt8](repeating: 0, count: 11) + [1])
    }

    @Test func keepsRDATANamesUncompressed() throws {
        let mx = try record("example.com. 300 IN MX 10 mail.example.com.")
        #expect(mx.rdata == [0, 10] + TestWire.name("mail.example.com"))
        let srv = try record("_sip._tcp.example.com. 300 IN SRV 10 60 5060 sip.example.com.")
        #expect(srv.type == .srv)
        #expect(srv.rdata == [0, 10, 0, 60, 0x13, 0xC4] + TestWire.name("sip.example.com"))
        let cname = try record("alias.example.com. 300 IN CNAME www.example.com.")
        #expect(cname.rdata == TestWire.name("www.example.com"))
    }

    @Test func parsesTXTAndSOA() throws {
        let txt = try record("example.com. 300 IN TXT \"hello world\" \"second\"")
        #expect(txt.rdata == [11] + Array("hello world".utf8) + [6] + Array("second".utf8))
        let soa = try record(Self.presentations[6])
        let names = TestWire.name("ns1.example.com") + TestWire.name("hostmaster.example.com")
        #expect(
            soa.rdata == names + TestWire.u32(2_024_010_101) + TestWire.u32(7200) + TestWire.u32(3600)
                + TestWire.u32(1_209_600) + TestWire.u32(300))
    }

    @Test func usesTheDefaultTTL() throws {
        let a = try DNSCodec.record(fromPresentation: "www.example.com. IN A 192.0.2.1", defaultTTL: 42)
        #expect(a.ttl == 42)
    }

    @Test(
        "bad presentation text throws",
        arguments: [
            "www.example.com. 300 IN A 999.0.2.1",
            "www.example.com. 300 IN A",
            "www.example.com. 300 IN NOSUCHTYPE 1",
            "www.example.com. 300 IN MX mail.example.com.",
        ])
    func rejectsBadPresentation(text: String) {
        #expect(throws: CodecError.self) { try DNSCodec.record(fromPresentation: text) }
    }

    // MARK: Round trips

    @Test func roundTripsAFullResponse() throws {
        let message = try sampleResponse()
        let decoded = try DNSCodec.decode(try DNSCodec.encode(message))
        #expect(decoded == message)
        #expect(decoded.answers.map(\.type) == [.a, .aaaa, .cname])
        #expect(decoded.authorities.map(\.type) == [.ns, .soa])
        #expect(decoded.additionals.map(\.type) == [.mx, .txt, .srv])
    }

    @Test func roundTripsAQuery() throws {
        let query = DNSMessage.query(Question(name: try name("Example.COM"), type: .mx), id: 99, dnssecOK: true)
        let bytes = try DNSCodec.encode(query)
        let decoded = try DNSCodec.decode(bytes)
        #expect(decoded == query)
        #expect(decoded.questions.first?.name.wire == TestWire.name("Example.COM"))
        #expect(decoded.edns == EDNS(udpPayloadSize: 1232, dnssecOK: true))
    }

    @Test func encodedQueriesSatisfyTheFastReader() throws {
        let query = DNSMessage.query(
            Question(name: try name("www.example.com"), type: .aaaa), id: 0x4242, checkingDisabled: true)
        let bytes = try DNSCodec.encode(query)
        let view = try readQuery(bytes).get()
        #expect(view.id == 0x4242)
        #expect(view.type == .aaaa)
        #expect(view.recursionDesired)
        #expect(view.checkingDisabled)
        #expect(view.edns == EDNSInfo(udpPayloadSize: 1232, version: 0, dnssecOK: false))
        #expect(view.questionEnd == 12 + 17 + 4)
    }

    @Test func roundTripsAMessageWithoutEDNS() throws {
        let message = DNSMessage(id: 1, flags: [.qr], questions: [Question(name: .root, type: .ns)])
        let bytes = try DNSCodec.encode(message)
        #expect(bytes.count == 12 + 1 + 4)
        let decoded = try DNSCodec.decode(bytes)
        #expect(decoded.edns == nil)
        #expect(decoded == message)
    }

    @Test(
        "each flag survives a round trip",
        arguments: [
            [], [.qr], [.aa], [.tc], [.rd], [.ra], [.ad], [.cd], [.qr, .aa, .tc, .rd, .ra, .ad, .cd], [.qr, .rd, .ra],
        ] as [MessageFlags])
    func roundTripsFlags(flags: MessageFlags) throws {
        let message = DNSMessage(id: 7, flags: flags, questions: [Question(name: try name("example"), type: .a)])
        let bytes = try DNSCodec.encode(message)
        #expect(TestWire.u16(flags.rawValue) == Array(bytes[2..<4]))
        #expect(try DNSCodec.decode(bytes).flags == flags)
    }

    @Test("header rcodes survive a round trip, with or without EDNS", arguments: [0, 1, 2, 3, 4, 5, 9, 15] as [UInt16])
    func roundTripsHeaderRcodes(rcode: UInt16) throws {
        for edns in [nil, EDNS(udpPayloadSize: 1232)] {
            let message = DNSMessage(
                id: 3, flags: [.qr], rcode: ResponseCode(rawValue: rcode),
                questions: [Question(name: try name("example"), type: .a)], edns: edns)
            let bytes = try DNSCodec.encode(message)
            #expect(bytes[3] & 0x0F == UInt8(rcode))
            let decoded = try DNSCodec.decode(bytes)
            #expect(decoded.rcode.rawValue == rcode)
            #expect(decoded == message)
        }
    }

    @Test("extended rcodes need EDNS and survive a round trip", arguments: [16, 23, 0xFFF] as [UInt16])
    func roundTripsExtendedRcodes(rcode: UInt16) throws {
        let message = DNSMessage(
            id: 3, flags: [.qr], rcode: ResponseCode(rawValue: rcode),
            questions: [Question(name: try name("example"), type: .a)], edns: EDNS(udpPayloadSize: 1232))
        let bytes = try DNSCodec.encode(message)
        #expect(bytes[3] & 0x0F == UInt8(rcode & 0x0F))
        let decoded = try DNSCodec.decode(bytes)
        #expect(decoded.rcode == ResponseCode(rawValue: rcode))
        #expect(decoded == message)
    }

    @Test func badVersHasItsMnemonic() throws {
        let message = DNSMessage(id: 3, flags: [.qr], rcode: .badVers, edns: EDNS(udpPayloadSize: 1232))
        let decoded = try DNSCodec.decode(try DNSCodec.encode(message))
        #expect(decoded.rcode == .badVers)
        #expect(decoded.rcode.description == "BADVERS")
    }

    @Test("an extended rcode without EDNS cannot be encoded", arguments: [16, 23, 0xFFF] as [UInt16])
    func rejectsExtendedRcodesWithoutEDNS(rcode: UInt16) {
        let message = DNSMessage(id: 3, flags: [.qr], rcode: ResponseCode(rawValue: rcode))
        let error = #expect(throws: CodecError.self) { try DNSCodec.encode(message) }
        #expect(error?.code == -1)
        #expect(error?.message.contains("EDNS") == true)
    }

    @Test("EDNS fields survive a round trip", arguments: [512, 1232, 4096, 65535] as [UInt16], [false, true])
    func roundTripsEDNS(size: UInt16, dnssecOK: Bool) throws {
        let edns = EDNS(udpPayloadSize: size, dnssecOK: dnssecOK)
        let message = DNSMessage(id: 5, questions: [Question(name: try name("example"), type: .a)], edns: edns)
        let decoded = try DNSCodec.decode(try DNSCodec.encode(message))
        #expect(decoded.edns == edns)
    }

    @Test("payload sizes below 512 keep their OPT", arguments: [1, 511] as [UInt16])
    func roundTripsSmallPayloadSizes(size: UInt16) throws {
        let edns = EDNS(udpPayloadSize: size)
        let message = DNSMessage(id: 5, questions: [Question(name: try name("example"), type: .a)], edns: edns)
        let bytes = try DNSCodec.encode(message)
        #expect(bytes[11] == 1)  // ARCOUNT: the OPT
        #expect(try DNSCodec.decode(bytes).edns == edns)
    }

    @Test("a payload size of 0 keeps its OPT and goes out as 512 (RFC 6891 §6.2.5)")
    func encodesAZeroPayloadSizeAs512() throws {
        let edns = EDNS(udpPayloadSize: 0)
        let message = DNSMessage(id: 5, questions: [Question(name: try name("example"), type: .a)], edns: edns)
        let bytes = try DNSCodec.encode(message)
        #expect(bytes[11] == 1)  // ARCOUNT: the OPT
        #expect(try DNSCodec.decode(bytes).edns == EDNS(udpPayloadSize: 512))
    }

    @Test func queriesTheFastReaderAcceptsAlsoDecodeInLDNS() {
        // The fast path and the ldns path must not disagree on what a well-formed query is.
        var random = SplitMix64(seed: 99)
        let valid = TestQuery(additionals: [TestWire.opt(udpSize: 4096, dnssecOK: true)]).bytes
        var disagreements: [[UInt8]] = []
        for _ in 0..<2000 {
            var bytes = valid
            bytes[Int.random(in: 0..<bytes.count, using: &random)] = UInt8.random(in: 0...255, using: &random)
            if case .success = readQuery(bytes), (try? DNSCodec.decode(bytes)) == nil { disagreements.append(bytes) }
        }
        #expect(disagreements.isEmpty, "accepted by QueryReader, rejected by ldns: \(disagreements.prefix(3))")
    }

    @Test func roundTripsAnEDNSVersion() throws {
        let edns = EDNS(udpPayloadSize: 1232, version: 1)
        let message = DNSMessage(id: 5, questions: [Question(name: try name("example"), type: .a)], edns: edns)
        let bytes = try DNSCodec.encode(message)
        #expect(try DNSCodec.decode(bytes).edns == edns)
        guard case .failure(.badVersion(let view)) = readQuery(bytes) else {
            Issue.record("the fast reader should answer EDNS version 1 with BADVERS")
            return
        }
        #expect(view.edns?.version == 1)
    }

    @Test("opcodes survive a round trip", arguments: [Opcode.query, .notify, .update])
    func roundTripsOpcodes(opcode: Opcode) throws {
        let message = DNSMessage(id: 9, opcode: opcode, questions: [Question(name: try name("example"), type: .soa)])
        let bytes = try DNSCodec.encode(message)
        #expect((bytes[2] >> 3) & 0x0F == opcode.rawValue)
        #expect(try DNSCodec.decode(bytes).opcode == opcode)
    }

    @Test func roundTripsOtherClassesAndUnknownTypes() throws {
        let record = ResourceRecord(
            name: try name("version.bind"), type: RecordType(rawValue: 65280), recordClass: .ch, ttl: 0,
            rdata: [1, 2, 3, 4])
        let message = DNSMessage(
            id: 11, flags: [.qr],
            questions: [Question(name: try name("version.bind"), type: .txt, recordClass: .ch)], answers: [record])
        let decoded = try DNSCodec.decode(try DNSCodec.encode(message))
        #expect(decoded == message)
        #expect(decoded.answers.first?.type.description == "TYPE65280")
    }

    // MARK: Compression

    @Test func compressesRepeatedNames() throws {
        let message = try sampleResponse()
        let bytes = try DNSCodec.encode(message)
        let records = message.answers + message.authorities + message.additionals
        let uncompressed =
            12 + message.questions.reduce(0) { $0 + $1.name.wire.count + 4 }
            + records.reduce(0) { $0 + $1.name.wire.count + 10 + $1.rdata.count } + 11
        #expect(bytes.count < uncompressed)
        // The first answer's owner is the question name: a pointer to offset 12.
        let firstAnswer = 12 + 17 + 4
        #expect(Array(bytes[firstAnswer..<(firstAnswer + 2)]) == [0xC0, 0x0C])
    }

    @Test func compressedOwnersAreReadableByWireNames() throws {
        let owner = try name("www.example.com")
        let answers = try (1...3).map { try record("www.example.com. 300 IN A 192.0.2.\($0)") }
        let message = DNSMessage(id: 1, flags: [.qr], questions: [Question(name: owner, type: .a)], answers: answers)
        let bytes = try DNSCodec.encode(message)
        #expect(bytes.count == 12 + 21 + 3 * (2 + 10 + 4))
        var offset = 12 + 21
        for _ in 0..<3 {
            let read = bytes.withUnsafeBytes { try? WireNames.read($0, at: offset) }
            #expect(read == owner)
            offset += 2 + 10 + 4
        }
    }

    @Test func decodeExpandsCompressedRDATA() throws {
        // The hand-built response of WireNamesTests: a CNAME whose target is `mail` + a pointer.
        let bytes = TestWire.pointerChains.prefix(52)
        let decoded = try DNSCodec.decode(Array(bytes))
        #expect(decoded.id == 0x1234)
        #expect(decoded.flags == [.qr, .rd, .ra])
        let answer = try #require(decoded.answers.first)
        #expect(answer.name.wire == TestWire.name("www.Example.com"))
        #expect(answer.type == .cname)
        #expect(answer.rdata == TestWire.name("mail.Example.com"))
    }

    // MARK: Errors

    @Test(
        "garbage does not decode",
        arguments: [
            [],
            [0x12],
            [0x12, 0x34, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0],  // 11 octets
            [0x12, 0x34, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0],  // QDCOUNT 1, no question
            [0x12, 0x34, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0, 3, 0x77, 0x77],  // name cut short
            [0x12, 0x34, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0, 0xC0, 0x0C, 0, 1, 0, 1],  // pointer loop
            [0x12, 0x34, 0x81, 0x80, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 4, 1],  // RDATA cut short
        ] as [[UInt8]])
    func rejectsGarbage(bytes: [UInt8]) {
        #expect(throws: CodecError.self) { try DNSCodec.decode(bytes) }
    }

    @Test func codecErrorsCarryLDNSMessages() {
        do {
            _ = try DNSCodec.decode([0x12])
            Issue.record("decoding one octet should fail")
        } catch {
            #expect(error.code > 0)
            #expect(!error.message.isEmpty)
            #expect(error.description == error.message)
        }
    }

    @Test(
        "RDATA that does not fit its type cannot be encoded",
        arguments: [
            [192, 0, 2], [192, 0, 2, 1, 5],
        ] as [[UInt8]])
    func rejectsMismatchedRDATA(rdata: [UInt8]) throws {
        let record = ResourceRecord(name: try name("www.example.com"), type: .a, ttl: 300, rdata: rdata)
        let message = DNSMessage(id: 1, flags: [.qr], answers: [record])
        #expect(throws: CodecError.self) { try DNSCodec.encode(message) }
    }

    // MARK: Presentation

    @Test func presentsRecordsLikeLDNS() throws {
        let a = try record("www.example.com. 300 IN A 192.0.2.1")
        #expect(DNSCodec.presentation(of: a) == "www.example.com.\t300\tIN\tA\t192.0.2.1")
        #expect(DNSCodec.rdataPresentation(of: a) == "192.0.2.1")
    }

    static let rdataPresentations = [
        "192.0.2.1", "2001:db8::1", "ns1.example.com.", "www.example.com.", "10 mail.example.com.",
        "\"hello world\" \"second\"", "ns1.example.com. hostmaster.example.com. 2024010101 7200 3600 1209600 300",
        "10 60 5060 sip.example.com.",
    ]

    @Test("RDATA alone, as +short prints it", arguments: zip(presentations, rdataPresentations))
    func presentsRDATA(text: String, rdata: String) throws {
        let parsed = try record(text)
        #expect(DNSCodec.rdataPresentation(of: parsed) == rdata)
        #expect(DNSCodec.presentation(of: parsed).hasSuffix("\t" + rdata))
        #expect(!DNSCodec.presentation(of: parsed).hasSuffix("\n"))
    }

    @Test func presentationRoundTripsThroughTheParser() throws {
        for text in Self.presentations {
            let parsed = try record(text)
            #expect(try record(DNSCodec.presentation(of: parsed)) == parsed)
        }
    }

    @Test func presentsBadRDATAWithoutLDNS() throws {
        // ldns cannot read a 3-octet A record; the fallback still names owner, TTL, class and type.
        let record = ResourceRecord(name: try name("www.example.com"), type: .a, ttl: 300, rdata: [1, 2, 3])
        #expect(DNSCodec.presentation(of: record) == "www.example.com.\t300\tIN\tA\t\\# 3")
    }
}
