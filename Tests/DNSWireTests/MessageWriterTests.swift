// MessageWriter: round trips through MessageReader for every type resolverd handles, that
// compression happens (and only where RFC 3597 allows it), pointer reach, TTL offsets, OPT,
// and the errors that keep the writer from producing what the reader would refuse.

import DNSWire
import WireTestSupport
import Testing

@Suite("MessageWriter")
struct MessageWriterTests {
    static let zone = name("Example.com")
    static let soaNumbers: [UInt8] = [2_024_010_101, 7200, 3600, 1_209_600, 300].flatMap { TestWire.u32($0) }

    static func record(_ owner: String, _ type: RecordType, ttl: UInt32 = 300, _ rdata: [UInt8]) -> ResourceRecord {
        ResourceRecord(name: name(owner), type: type, ttl: ttl, rdata: rdata)
    }

    /// One record of every type resolverd uses, with names that share suffixes.
    static let everyType: [ResourceRecord] = {
        let www = TestWire.name("www.Example.com")
        let mail = TestWire.name("mail.Example.com")
        let ns1 = TestWire.name("ns1.Example.com")
        let signature = [UInt8](repeating: 0xAB, count: 64)
        let rrsigFixed: [UInt8] = [0, 1, 8, 3] + TestWire.u32(300) + TestWire.u32(1_700_000_000) + TestWire.u32(1_690_000_000) + [0x12, 0x34]
        let nsec3: [UInt8] = [1, 0, 0, 10, 4, 0xAA, 0xBB, 0xCC, 0xDD, 20] + [UInt8](repeating: 0x42, count: 20) + [0, 2, 0x40, 0x01]
        let txt: [UInt8] = [11] + Array("hello world".utf8) + [6] + Array("second".utf8)
        return [
            record("www.Example.com", .a, [192, 0, 2, 1]),
            record("www.Example.com", .aaaa, [0x20, 0x01, 0x0D, 0xB8] + [UInt8](repeating: 0, count: 11) + [1]),
            record("Example.com", .ns, ttl: 3600, ns1),
            record("alias.Example.com", .cname, www),
            record("Example.com", .soa, ttl: 3600, ns1 + TestWire.name("hostmaster.Example.com") + soaNumbers),
            record("1.2.0.192.in-addr.arpa", .ptr, www),
            record("Example.com", .mx, [0, 10] + mail),
            record("Example.com", .txt, txt),
            record("_sip._tcp.Example.com", .srv, [0, 10, 0, 60, 0x13, 0xC4] + TestWire.name("sip.Example.com")),
            record("old.Example.com", .dname, TestWire.name("new.Example.com")),
            record("child.Example.com", .ds, [0x12, 0x34, 8, 2] + [UInt8](repeating: 0x5A, count: 32)),
            record("www.Example.com", .rrsig, rrsigFixed + TestWire.name("Example.com") + signature),
            record("www.Example.com", .nsec, TestWire.name("xyz.Example.com") + [0, 6, 0x40, 0x01, 0, 0, 0, 3]),
            record("Example.com", .dnskey, [1, 1, 3, 8] + [UInt8](repeating: 0x33, count: 68)),
            record("abc.Example.com", .nsec3, nsec3),
            record("www.Example.com", RecordType(rawValue: 65534), [0xC0, 0x0C, 1, 2, 3]),
        ]
    }()

    static func everyTypeMessage() -> DNSMessage {
        let records = everyType
        return DNSMessage(
            id: 0xBEEF, flags: [.qr, .aa, .rd, .ra, .ad], rcode: .noError,
            questions: [Question(name: name("www.Example.com"), type: .a)],
            answers: Array(records[0..<6]), authorities: Array(records[6..<11]), additionals: Array(records[11...]),
            edns: EDNS(udpPayloadSize: 1232, dnssecOK: true))
    }

    // MARK: Round trips

    @Test("every type reads back the same", arguments: [NameCompression.none, .exactCase, .ignoringCase])
    func roundTripsEveryType(compression: NameCompression) throws {
        let message = Self.everyTypeMessage()
        let written = try MessageWriter.write(message, compression: compression)
        let decoded = try MessageReader.decode(written.bytes)
        #expect(decoded == message)
        // Byte for byte, owners included (DomainName's == ignores case); here every name that
        // shares a suffix shares its case too, so even ignoringCase keeps it.
        let all = decoded.answers + decoded.authorities + decoded.additionals
        let expected = message.answers + message.authorities + message.additionals
        #expect(all.map(\.name.wire) == expected.map(\.name.wire))
        #expect(all.map(\.rdata) == expected.map(\.rdata))
        #expect(decoded.questions.map(\.name.wire) == message.questions.map(\.name.wire))
    }

    @Test func roundTripsEachTypeAlone() throws {
        for record in Self.everyType {
            let message = DNSMessage(id: 1, flags: [.qr], questions: [Question(name: record.name, type: record.type)], answers: [record])
            #expect(try MessageReader.decode(try MessageWriter.encode(message)) == message, "\(record.type)")
        }
    }

    @Test func roundTripsTheOPTRecordWithOptions() throws {
        var writer = MessageWriter(id: 7, flags: [.qr], rcode: .badVers)
        try writer.add(Question(name: name("example"), type: .a))
        let cookie = EDNSOption(code: 10, data: [1, 2, 3, 4, 5, 6, 7, 8])
        let padding = EDNSOption(code: 12, data: [])
        try writer.addOPT(udpPayloadSize: 4096, version: 0, dnssecOK: true, options: [cookie, padding])
        let bytes = try writer.finish().bytes
        let view = try MessageReader.read(bytes)
        let edns = try #require(view.edns)
        #expect(view.rcode == .badVers)
        #expect(edns.extendedRcode == 1)
        #expect(edns.udpPayloadSize == 4096)
        #expect(edns.dnssecOK)
        #expect(edns.options.map(\.code) == [10, 12])
        #expect(Array(view.data(of: edns.options[0])) == cookie.data)
        #expect(edns.options[1].length == 0)
    }

    @Test("extended rcodes go into the OPT record", arguments: [16, 23, 0xFFF] as [UInt16])
    func roundTripsExtendedRcodes(rcode: UInt16) throws {
        let message = DNSMessage(
            id: 3, flags: [.qr], rcode: ResponseCode(rawValue: rcode), questions: [Question(name: name("example"), type: .a)],
            edns: EDNS(udpPayloadSize: 1232))
        let bytes = try MessageWriter.encode(message)
        #expect(bytes[3] & 0x0F == UInt8(rcode & 0x0F))
        #expect(try MessageReader.decode(bytes) == message)
    }

    @Test func writesAZeroPayloadSizeAs512() throws {
        let message = DNSMessage(id: 5, questions: [Question(name: name("example"), type: .a)], edns: EDNS(udpPayloadSize: 0))
        #expect(try MessageReader.decode(try MessageWriter.encode(message)).edns == EDNS(udpPayloadSize: 512))
    }

    @Test func writesHeaderFieldsAsGiven() throws {
        let message = DNSMessage(
            id: 0xABCD, flags: [.qr, .aa, .tc, .rd, .ra, .ad, .cd], opcode: .notify, rcode: .refused,
            questions: [Question(name: name("example"), type: .soa, recordClass: .ch)])
        let bytes = try MessageWriter.encode(message)
        #expect(Array(bytes[0..<4]) == [0xAB, 0xCD, 0x87 | 4 << 3, 0xB5])
        #expect(try MessageReader.decode(bytes) == message)
    }

    // MARK: Compression

    @Test func compresses() throws {
        let message = Self.everyTypeMessage()
        let bytes = try MessageWriter.encode(message)
        let records = message.answers + message.authorities + message.additionals
        var uncompressed = 12 + 11
        for question in message.questions { uncompressed += question.name.wire.count + 4 }
        for record in records { uncompressed += record.name.wire.count + 10 + record.rdata.count }
        #expect(try MessageWriter.encode(message, compression: .none).count == uncompressed)
        #expect(bytes.count < uncompressed - 100)
        // The first answer's owner is the question name: a pointer to offset 12.
        let view = try MessageReader.read(bytes)
        #expect(Array(bytes[view.records[0].ownerOffset..<(view.records[0].ownerOffset + 2)]) == [0xC0, 12])
    }

    /// Whether the RDATA of the first record of `type` holds a compression pointer.
    private func rdataHasPointer(_ view: MessageView, _ type: RecordType) throws -> Bool {
        let record = try #require(view.records.first { $0.type == type })
        return view.rdata(of: record).count < view.expandedRDATA(of: record).count
    }

    @Test func compressesRDATANamesOnlyForTheWellKnownTypes() throws {
        let view = try MessageReader.read(try MessageWriter.encode(Self.everyTypeMessage()))
        for type in [RecordType.ns, .cname, .soa, .ptr, .mx] {
            #expect(try rdataHasPointer(view, type), "\(type) RDATA should be compressed")
        }
        // RFC 2782 (SRV), RFC 6672 §2.5 (DNAME), RFC 4034 §3.1.7 and §4.1.1 (RRSIG, NSEC).
        for type in [RecordType.srv, .dname, .rrsig, .nsec] {
            #expect(try !rdataHasPointer(view, type), "\(type) RDATA must not be compressed")
        }
    }

    @Test func srvTargetsStayWholeEvenWhenTheNameWasWrittenBefore() throws {
        let target = name("sip.example.com")
        let message = DNSMessage(
            id: 1, flags: [.qr], questions: [Question(name: target, type: .a)],
            answers: [ResourceRecord(name: name("_sip._tcp.example.com"), type: .srv, ttl: 60, rdata: [0, 1, 0, 1, 0, 80] + target.wire)])
        let bytes = try MessageWriter.encode(message)
        #expect(bytes.suffix(target.wire.count) == ArraySlice(target.wire))
    }

    @Test func caseDecidesWhatIsShared() throws {
        let answers = [
            ResourceRecord(name: name("www.example.com"), type: .cname, ttl: 60, rdata: TestWire.name("WWW.EXAMPLE.COM")),
        ]
        let message = DNSMessage(id: 1, flags: [.qr], questions: [Question(name: name("www.example.com"), type: .a)], answers: answers)
        let exact = try MessageWriter.encode(message, compression: .exactCase)
        let folded = try MessageWriter.encode(message, compression: .ignoringCase)
        #expect(folded.count == exact.count - 17 + 2)
        #expect(try MessageReader.decode(exact).answers.first?.rdata == TestWire.name("WWW.EXAMPLE.COM"))
        // Ignoring case, the target became a pointer to the question and reads back in its case.
        #expect(try MessageReader.decode(folded).answers.first?.rdata == TestWire.name("www.example.com"))
    }

    @Test func pointsOnlyBelow0x4000() throws {
        // 400 TXT records of 60 octets under distinct owners take the message past 0x4000;
        // then the same owners again: those first written past 0x4000 cannot be pointed at.
        var answers: [ResourceRecord] = []
        for index in 0..<400 {
            answers.append(ResourceRecord(name: name("host\(index).example.com"), type: .txt, ttl: 60, rdata: [59] + [UInt8](repeating: 0x78, count: 59)))
        }
        for index in 0..<400 {
            answers.append(ResourceRecord(name: name("host\(index).example.com"), type: .a, ttl: 60, rdata: [10, 0, UInt8(index >> 8), UInt8(index & 0xFF)]))
        }
        let message = DNSMessage(id: 1, flags: [.qr], questions: [Question(name: name("example.com"), type: .txt)], answers: answers)
        let written = try MessageWriter.write(message)
        #expect(written.bytes.count > 0x8000)
        let view = try MessageReader.read(written.bytes)
        #expect(view.message() == message)
        var beyond = 0
        for record in view.records {
            let first = written.bytes[record.ownerOffset]
            if first >= 0xC0 {
                let target = Int(first & 0x3F) << 8 | Int(written.bytes[record.ownerOffset + 1])
                #expect(target < 0x4000)
            } else if record.ownerOffset >= 0x4000, record.type == .a {
                beyond += 1  // a repeat written with its own labels: its first copy was out of reach
            }
        }
        #expect(beyond > 0)
    }

    // MARK: TTL offsets

    @Test func reportsWhereEveryTTLWent() throws {
        var message = Self.everyTypeMessage()
        for index in message.answers.indices { message.answers[index].ttl = 1000 + UInt32(index) }
        let written = try MessageWriter.write(message)
        let view = try MessageReader.read(written.bytes)
        // One per record, OPT left out, in order, and where the reader finds them.
        #expect(written.ttlOffsets.count == view.records.count)
        #expect(written.ttlOffsets == view.records.map(\.ttlOffset))
        let records = message.answers + message.authorities + message.additionals
        for (offset, record) in zip(written.ttlOffsets, records) {
            let field = written.bytes[offset..<(offset + 4)].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
            #expect(field == record.ttl)
        }
    }

    // MARK: Errors

    @Test("RDATA that does not fit its type is refused", arguments: [
        (RecordType.a, [192, 0, 2]), (.a, [192, 0, 2, 1, 5]), (.aaaa, [1, 2, 3, 4]),
        (.mx, [0, 10]), (.mx, [0, 10, 0xC0, 12]), (.soa, TestWire.name("a") + TestWire.name("b") + [1, 2, 3]),
        (.cname, [3, 0x61, 0x62]), (.srv, [0, 1, 0, 1, 0]), (.rrsig, [1, 2, 3]),
    ] as [(RecordType, [UInt8])])
    func refusesBadRDATA(type: RecordType, rdata: [UInt8]) throws {
        var writer = MessageWriter(id: 1, flags: [.qr])
        let before = writer.bytes
        let record = ResourceRecord(name: name("www.example.com"), type: type, ttl: 300, rdata: rdata)
        #expect(throws: MessageWriteError.badRDATA(type)) { try writer.add(record, to: .answer) }
        #expect(writer.bytes == before, "nothing written")
    }

    @Test func refusesAnExtendedRcodeWithoutEDNS() {
        let message = DNSMessage(id: 3, flags: [.qr], rcode: .badVers)
        #expect(throws: MessageWriteError.rcodeNeedsEDNS) { try MessageWriter.encode(message) }
    }

    @Test func keepsTheOPTRules() throws {
        var writer = MessageWriter(id: 1)
        let opt = ResourceRecord(name: .root, type: .opt, recordClass: RecordClass(rawValue: 1232), ttl: 0, rdata: [])
        #expect(throws: MessageWriteError.optAsRecord) { try writer.add(opt, to: .additional) }
        try writer.addOPT(udpPayloadSize: 1232)
        #expect(throws: MessageWriteError.multipleOPT) { try writer.addOPT(udpPayloadSize: 1232) }
        let a = ResourceRecord(name: name("a"), type: .a, ttl: 1, rdata: [1, 2, 3, 4])
        #expect(throws: MessageWriteError.outOfOrder) { try writer.add(a, to: .answer) }
        try writer.add(a, to: .additional)
        #expect(try MessageReader.read(writer.finish().bytes).additionals.count == 1)
    }

    @Test func keepsSectionOrder() throws {
        var writer = MessageWriter(id: 1)
        let a = ResourceRecord(name: name("a"), type: .a, ttl: 1, rdata: [1, 2, 3, 4])
        try writer.add(a, to: .authority)
        #expect(throws: MessageWriteError.outOfOrder) { try writer.add(a, to: .answer) }
        #expect(throws: MessageWriteError.outOfOrder) { try writer.add(Question(name: name("a"), type: .a)) }
        try writer.add(a, to: .authority)
        try writer.add(a, to: .additional)
        let view = try MessageReader.read(writer.finish().bytes)
        #expect(view.records.map(\.section) == [.authority, .authority, .additional])
    }

    @Test func refusesMessagesOver65535Octets() throws {
        var writer = MessageWriter(id: 1)
        let big = ResourceRecord(name: name("a"), type: .txt, ttl: 1, rdata: [UInt8](repeating: 0, count: 60_000))
        try writer.add(big, to: .answer)
        try writer.add(big, to: .answer)
        #expect(throws: MessageWriteError.messageTooLong) { try writer.finish() }
    }

    @Test func writesRDATASlicesWithoutCopies() throws {
        // Forwarding a received record: its expanded RDATA, as a slice, straight to a writer.
        let (bytes, _) = MessageReaderTests.compressedResponse()
        let view = try MessageReader.read(bytes)
        var writer = MessageWriter(id: 9, flags: [.qr])
        for record in view.records {
            let rdata = view.expandedRDATA(of: record)
            try writer.addRecord(
                owner: record.owner, type: record.type, recordClass: record.recordClass, ttl: record.receivedTTL,
                rdata: rdata[...], to: record.section)
        }
        let again = try MessageReader.read(try writer.finish().bytes)
        #expect(again.records.map { view.resourceRecord($0) }.count == view.records.count)
        #expect(again.message().answers == view.message().answers)
        #expect(again.message().authorities == view.message().authorities)
    }
}
