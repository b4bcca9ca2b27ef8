// MessageReader: hand-built packets. Malformed names (pointers forward, to themselves, in loops,
// past the end, into the header; long labels and names), truncation at every level, trailing
// bytes, OPT rules, RDATA lengths; and a normal response with compression everywhere.

import DNSWire
import WireTestSupport
import Testing

@Suite("MessageReader")
struct MessageReaderTests {
    // MARK: A normal response

    /// www.Example.com A, answered through a CNAME and an MX target, with NS, SOA, glue and OPT.
    /// Every owner after the question and every RDATA name is compressed; returns the bytes and
    /// where the names were put.
    static func compressedResponse() -> (bytes: [UInt8], offsets: [String: Int]) {
        var b = TestWire.header(flags: 0x8180, answers: 3, authorities: 2, additionals: 2)
        var at: [String: Int] = [:]
        at["www"] = b.count
        at["example"] = b.count + 4
        b += TestWire.question(TestWire.name("www.Example.com"))
        // CNAME www → mail.Example.com: `mail` + pointer to Example.com.
        at["cnameTTL"] = b.count + 2 + 4
        at["mail"] = b.count + 12
        b += TestWire.record(owner: TestWire.pointer(at["www"]!), type: 5, rdata: [4] + Array("mail".utf8) + TestWire.pointer(at["example"]!))
        // MX at mail: 10 mx1.Example.com.
        at["mx1"] = b.count + 12 + 2
        b += TestWire.record(owner: TestWire.pointer(at["mail"]!), type: 15, rdata: [0, 10, 3] + Array("mx1".utf8) + TestWire.pointer(at["example"]!))
        b += TestWire.record(owner: TestWire.pointer(at["mx1"]!), type: 1, ttl: 0x8000_0001, rdata: [192, 0, 2, 1])
        // NS Example.com → ns1.Example.com.
        at["ns1"] = b.count + 12
        b += TestWire.record(owner: TestWire.pointer(at["example"]!), type: 2, rdata: [3] + Array("ns1".utf8) + TestWire.pointer(at["example"]!))
        // SOA: mname is a pointer to ns1, rname `hostmaster` + pointer, then the five numbers.
        let numbers = Self.soaNumbers
        b += TestWire.record(
            owner: TestWire.pointer(at["example"]!), type: 6, ttl: 3600,
            rdata: TestWire.pointer(at["ns1"]!) + [10] + Array("hostmaster".utf8) + TestWire.pointer(at["example"]!) + numbers)
        b += TestWire.record(owner: TestWire.pointer(at["ns1"]!), type: 1, rdata: [192, 0, 2, 53])
        b += TestWire.opt(udpSize: 1232, dnssecOK: true)
        return (b, at)
    }

    /// SOA serial, refresh, retry, expire, minimum.
    static let soaNumbers: [UInt8] = [2_024_010_101, 7200, 3600, 1_209_600, 300].flatMap { TestWire.u32($0) }

    @Test func readsACompressedResponse() throws {
        let (bytes, at) = Self.compressedResponse()
        let view = try MessageReader.read(bytes)
        #expect(view.header.id == 0x1234)
        #expect(view.header.flags == [.qr, .rd, .ra])
        #expect(view.header.opcode == .query)
        #expect(view.rcode == .noError)
        #expect(view.questions == [Question(name: name("www.example.com"), type: .a)])
        #expect(view.answers.map(\.type) == [.cname, .mx, .a])
        #expect(view.authorities.map(\.type) == [.ns, .soa])
        #expect(view.additionals.map(\.type) == [.a])
        #expect(view.records.map(\.section) == [.answer, .answer, .answer, .authority, .authority, .additional])
        // Owners decompressed, in the case received.
        #expect(view.records.map(\.owner.wire) == [
            TestWire.name("www.Example.com"), TestWire.name("mail.Example.com"), TestWire.name("mx1.Example.com"),
            TestWire.name("Example.com"), TestWire.name("Example.com"), TestWire.name("ns1.Example.com"),
        ])
        #expect(view.records[0].ownerOffset == 33)
        #expect(view.records[0].ttlOffset == at["cnameTTL"])
        #expect(Array(bytes[view.records[0].ttlOffset..<(view.records[0].ttlOffset + 4)]) == TestWire.u32(300))
        // RDATA as received, and expanded.
        let cname = view.records[0]
        #expect(Array(view.rdata(of: cname)) == [4] + Array("mail".utf8) + TestWire.pointer(at["example"]!))
        #expect(view.expandedRDATA(of: cname) == TestWire.name("mail.Example.com"))
        #expect(view.expandedRDATA(of: view.records[1]) == [0, 10] + TestWire.name("mx1.Example.com"))
        #expect(view.expandedRDATA(of: view.records[3]) == TestWire.name("ns1.Example.com"))
        let soa = view.expandedRDATA(of: view.records[4])
        let soaNames: [UInt8] = TestWire.name("ns1.Example.com") + TestWire.name("hostmaster.Example.com")
        #expect(soa == soaNames + Self.soaNumbers)
        // The raw TTL is kept; the received TTL reads a set top bit as 0 (RFC 2181 §8).
        #expect(view.records[2].ttl == 0x8000_0001)
        #expect(view.records[2].receivedTTL == 0)
        #expect(view.edns?.udpPayloadSize == 1232)
        #expect(view.edns?.dnssecOK == true)
        #expect(view.edns?.recordOffset == bytes.count - 11)
        #expect(try view.name(at: at["mx1"]!).wire == TestWire.name("mx1.Example.com"))
    }

    @Test func convertsToTheMessageTheLDNSDecoderBuilt() throws {
        let (bytes, _) = Self.compressedResponse()
        let message = try MessageReader.decode(bytes)
        let soaNumbers = Self.soaNumbers
        let expected = DNSMessage(
            id: 0x1234, flags: [.qr, .rd, .ra], rcode: .noError,
            questions: [Question(name: name("www.Example.com"), type: .a)],
            answers: [
                ResourceRecord(name: name("www.Example.com"), type: .cname, ttl: 300, rdata: TestWire.name("mail.Example.com")),
                ResourceRecord(name: name("mail.Example.com"), type: .mx, ttl: 300, rdata: [0, 10] + TestWire.name("mx1.Example.com")),
                ResourceRecord(name: name("mx1.Example.com"), type: .a, ttl: 0, rdata: [192, 0, 2, 1]),
            ],
            authorities: [
                ResourceRecord(name: name("Example.com"), type: .ns, ttl: 300, rdata: TestWire.name("ns1.Example.com")),
                ResourceRecord(
                    name: name("Example.com"), type: .soa, ttl: 3600,
                    rdata: TestWire.name("ns1.Example.com") + TestWire.name("hostmaster.Example.com") + soaNumbers),
            ],
            additionals: [ResourceRecord(name: name("ns1.Example.com"), type: .a, ttl: 300, rdata: [192, 0, 2, 53])],
            edns: EDNS(udpPayloadSize: 1232, dnssecOK: true))
        #expect(message == expected)
    }

    @Test func readsAMessageWithoutRecords() throws {
        let view = try MessageReader.read(TestWire.header(questions: 0))
        #expect(view.questions.isEmpty)
        #expect(view.records.isEmpty)
        #expect(view.edns == nil)
    }

    @Test func dropsZFromFlagsButKeepsItRaw() throws {
        let view = try MessageReader.read(TestWire.header(flags: 0xFFFF, questions: 0))
        #expect(view.header.flags == MessageFlags.defined)
        #expect(view.header.rawFlags == 0xFFFF)
        #expect(view.header.opcode == Opcode(rawValue: 15))
        #expect(view.header.headerRcode == 15)
    }

    // MARK: Names

    @Test(
        "bad compression pointers",
        arguments: [
            ("forward", TestWire.pointer(40)),
            ("to itself", TestWire.pointer(33)),
            ("past the end", TestWire.pointer(0x3FFF)),
            ("into the header", TestWire.pointer(4)),
            ("to offset 0", TestWire.pointer(0)),
        ])
    func rejectsBadPointers(label: String, owner: [UInt8]) {
        // The owner of the first answer (at 33) is the pointer under test; padding after it.
        let bytes = TestWire.responseStart(answers: 1) + TestWire.record(owner: owner, type: 1, rdata: [1, 2, 3, 4])
        #expect(rejection(bytes) == .badPointer, "\(label)")
    }

    @Test func rejectsPointerLoops() {
        // Answer 1's owner `a` + pointer to answer 2's owner, whose pointer goes back to answer 1.
        var bytes = TestWire.responseStart(answers: 2)
        let first = bytes.count
        bytes += TestWire.record(owner: TestWire.pointer(12), type: 1, rdata: [1, 2, 3, 4])
        let second = bytes.count
        bytes += TestWire.record(owner: [1, UInt8(ascii: "a")] + TestWire.pointer(second), type: 1, rdata: [1, 2, 3, 4])
        #expect(rejection(bytes) == .badPointer)  // a label, then a pointer to the name's own start
        // Two names pointing into each other: the second one's pointer lands on a pointer that
        // goes forward again.
        var loop = TestWire.responseStart(answers: 2)
        let loopFirst = loop.count
        loop += TestWire.record(owner: [1, UInt8(ascii: "b"), 0], type: 1, rdata: [1, 2, 3, 4])
        let loopSecond = loop.count
        loop += TestWire.record(owner: TestWire.pointer(loopSecond + 2) + [0xC0, UInt8(loopFirst + 2)], type: 1, rdata: [1, 2, 3, 4])
        #expect(rejection(loop) == .badPointer)
        _ = first
    }

    @Test func rejectsAPointerChainThatOnlyGoesUpAndDown() {
        // RDATA of an unknown type holds pointer → pointer → question; each jump goes back, but
        // the third target is above the second: not strictly backwards from there.
        var bytes = TestWire.responseStart(answers: 2)
        let rdataStart = bytes.count + 2 + 10
        bytes += TestWire.record(owner: TestWire.pointer(12), type: 65280, rdata: TestWire.pointer(12) + TestWire.pointer(rdataStart + 4) + [0, 0])
        bytes += TestWire.record(owner: TestWire.pointer(rdataStart + 2), type: 1, rdata: [1, 2, 3, 4])
        #expect(rejection(bytes) == .badPointer)
    }

    @Test("at most 128 pointers per name", arguments: [(127, true), (128, false)])
    func limitsPointersPerName(chain: Int, accepted: Bool) {
        // An unknown type's RDATA is a chain of pointers, each to the one before, the first to
        // the question; the next record's owner points at the chain's last link: chain + 1
        // pointers for that name.
        var bytes = TestWire.responseStart(answers: 2)
        let rdataStart = bytes.count + 2 + 10
        var rdata = TestWire.pointer(12)
        for link in 1..<chain { rdata += TestWire.pointer(rdataStart + 2 * (link - 1)) }
        bytes += TestWire.record(owner: TestWire.pointer(12), type: 65280, rdata: rdata)
        bytes += TestWire.record(owner: TestWire.pointer(rdataStart + 2 * (chain - 1)), type: 1, rdata: [1, 2, 3, 4])
        if accepted {
            #expect(rejection(bytes) == nil)
            #expect((try? MessageReader.read(bytes))?.records.last?.owner == name("www.example.com"))
        } else {
            #expect(rejection(bytes) == .badPointer)
        }
    }

    @Test("labels of 64 octets and more: the 0b01 and 0b10 label types", arguments: [64, 0x41, 0x7F, 0x80, 0xBF] as [UInt8])
    func rejectsLongLabels(length: UInt8) {
        let bytes = TestWire.header() + [length] + [UInt8](repeating: 0x61, count: 70) + [0, 0, 1, 0, 1]
        #expect(rejection(bytes) == .labelTooLong)
    }

    @Test func acceptsA63OctetLabelAndA255OctetName() throws {
        // 63 + 63 + 63 + 61 octet labels: 4 + 250 + 1 = 255 octets.
        let longest = [63] + [UInt8](repeating: 0x61, count: 63) + [63] + [UInt8](repeating: 0x62, count: 63)
            + [63] + [UInt8](repeating: 0x63, count: 63) + [61] + [UInt8](repeating: 0x64, count: 61) + [0]
        #expect(longest.count == 255)
        let view = try MessageReader.read(TestWire.header(answers: 0) + TestWire.question(longest))
        #expect(view.questions.first?.name.wire == longest)
    }

    @Test func rejectsNamesOver255Octets() {
        #expect(rejection(TestWire.header() + TestWire.question(TestWire.name(labels: 5, length: 63))) == .nameTooLong)
        // 256 octets only once decompressed: a 200-octet question name, then an owner of
        // 56 octets of labels + a pointer to it.
        let question = TestWire.name(labels: 4, length: 49)  // 4 * 50 + 1 = 201
        let owner = [UInt8](TestWire.name(labels: 1, length: 54).dropLast()) + TestWire.pointer(12)  // 55 + 201 = 256
        let bytes = TestWire.header(answers: 1) + TestWire.question(question) + TestWire.record(owner: owner, type: 1, rdata: [1, 2, 3, 4])
        #expect(rejection(bytes) == .nameTooLong)
    }

    // MARK: Truncation and trailing bytes

    @Test func rejectsTruncatedMessagesAtEveryLevel() {
        let (bytes, _) = Self.compressedResponse()
        #expect(rejection([]) == .truncatedHeader)
        #expect(rejection(Array(bytes.prefix(11))) == .truncatedHeader)
        for length in 12..<bytes.count {
            #expect(rejection(Array(bytes.prefix(length))) == .truncated, "cut at \(length)")
        }
    }

    @Test func rejectsTruncatedQuestionAndRecordParts() {
        let header = TestWire.header(answers: 1)
        #expect(rejection(header + [3] + Array("ww".utf8)) == .truncated)  // inside a label
        #expect(rejection(header + TestWire.name("www")) == .truncated)  // no type
        #expect(rejection(header + TestWire.name("www") + [0, 1, 0]) == .truncated)  // half a class
        let start = TestWire.responseStart(answers: 1)
        #expect(rejection(start + TestWire.pointer(12) + [0, 1, 0, 1, 0, 0]) == .truncated)  // inside the TTL
        #expect(rejection(start + TestWire.record(owner: TestWire.pointer(12), type: 1, rdata: [1, 2, 3], rdataLength: 4)) == .truncated)
        #expect(rejection(start + [0xC0]) == .truncated)  // half a pointer
    }

    @Test func rejectsTrailingBytes() {
        let (bytes, _) = Self.compressedResponse()
        #expect(rejection(bytes) == nil)
        #expect(rejection(bytes + [0]) == .trailingData)
        #expect(rejection(TestWire.header(questions: 0) + [1, 2, 3]) == .trailingData)
    }

    @Test func refusesLyingCountsWithoutReservingForThem() {
        // 65,535 questions and records claimed, none there.
        let bytes = TestWire.header(questions: 0xFFFF, answers: 0xFFFF, authorities: 0xFFFF, additionals: 0xFFFF)
        #expect(rejection(bytes) == .truncated)
        #expect(rejection(TestWire.header(questions: 0, answers: 0xFFFF)) == .truncated)
    }

    @Test func rejectsMessagesOver65535Octets() {
        #expect(rejection(TestWire.header(questions: 0) + [UInt8](repeating: 0, count: 65_535)) == .messageTooLong)
    }

    // MARK: OPT

    @Test func readsTheExtendedRcodeFromOPT() throws {
        // Header RCODE 0 with extension 1: BADVERS (16); header 3 with extension 2: 35.
        let badVers = TestWire.header(flags: 0x8100, answers: 0, additionals: 1) + TestWire.question(TestWire.name("example"))
            + TestWire.opt(extendedRcode: 1)
        let view = try MessageReader.read(badVers)
        #expect(view.header.headerRcode == 0)
        #expect(view.edns?.extendedRcode == 1)
        #expect(view.rcode == .badVers)
        #expect(try MessageReader.decode(badVers).rcode == .badVers)
        let other = TestWire.header(flags: 0x8103, additionals: 1) + TestWire.question(TestWire.name("example")) + TestWire.opt(extendedRcode: 2)
        #expect(try MessageReader.read(other).rcode == ResponseCode(rawValue: 0x23))
        // Without OPT the rcode is the header's four bits.
        #expect(try MessageReader.read(TestWire.header(flags: 0x8103, questions: 0)).rcode == .nxDomain)
    }

    @Test func readsEDNSFieldsAndOptions() throws {
        let cookie: [UInt8] = [1, 2, 3, 4, 5, 6, 7, 8]
        let options = TestWire.u16(10) + TestWire.u16(8) + cookie + TestWire.u16(12) + TestWire.u16(0)
        let bytes = TestWire.header(additionals: 1) + TestWire.question(TestWire.name("example"))
            + TestWire.opt(udpSize: 4096, version: 1, dnssecOK: true, rdata: options)
        let view = try MessageReader.read(bytes)
        let edns = try #require(view.edns)
        #expect(edns.udpPayloadSize == 4096)
        #expect(edns.version == 1)
        #expect(edns.dnssecOK)
        #expect(edns.flags == 0x8000)
        #expect(edns.options.map(\.code) == [10, 12])
        #expect(edns.options.map(\.length) == [8, 0])
        #expect(view.data(of: edns.options[0]) == ArraySlice(cookie))
        #expect(view.records.isEmpty, "OPT is not a record")
        #expect(try MessageReader.decode(bytes).edns == EDNS(udpPayloadSize: 4096, version: 1, dnssecOK: true))
    }

    @Test func keepsSmallPayloadSizesAsReceived() throws {
        let bytes = TestWire.header(additionals: 1) + TestWire.question(TestWire.name("example")) + TestWire.opt(udpSize: 100)
        #expect(try MessageReader.read(bytes).edns?.udpPayloadSize == 100)
    }

    @Test(
        "options must tile the OPT RDATA",
        arguments: [[0, 10], [0, 10, 0, 4, 1, 2, 3], [0, 10, 0, 0, 0]] as [[UInt8]])
    func rejectsBadOptions(rdata: [UInt8]) {
        let bytes = TestWire.header(additionals: 1) + TestWire.question(TestWire.name("example")) + TestWire.opt(rdata: rdata)
        #expect(rejection(bytes) == .badEDNSOption)
    }

    @Test func rejectsTwoOPTRecords() {
        let bytes = TestWire.header(additionals: 2) + TestWire.question(TestWire.name("example")) + TestWire.opt() + TestWire.opt()
        #expect(rejection(bytes) == .multipleOPT)
    }

    @Test("OPT outside the additional section", arguments: [true, false])
    func rejectsOPTInOtherSections(inAnswer: Bool) {
        let bytes = TestWire.header(answers: inAnswer ? 1 : 0, authorities: inAnswer ? 0 : 1) + TestWire.question(TestWire.name("example"))
            + TestWire.opt()
        #expect(rejection(bytes) == .optNotInAdditional)
    }

    @Test func rejectsAnOPTNotOwnedByTheRoot() {
        let bytes = TestWire.header(additionals: 1) + TestWire.question(TestWire.name("example")) + TestWire.opt(owner: TestWire.pointer(12))
        #expect(rejection(bytes) == .optNotRoot)
    }

    // MARK: TSIG

    @Test func requiresTSIGToBeLast() throws {
        let tsig = TestWire.record(owner: TestWire.name("key"), type: 250, recordClass: 255, ttl: 0, rdata: TestWire.name("hmac-sha256") + [0, 0, 0, 0, 0, 1, 1, 44, 0, 0, 0x12, 0x34, 0, 0, 0, 0])
        let a = TestWire.record(owner: TestWire.pointer(12), type: 1, rdata: [192, 0, 2, 1])
        let last = TestWire.header(additionals: 3) + TestWire.question(TestWire.name("example")) + a + TestWire.opt() + tsig
        let view = try MessageReader.read(last)
        #expect(view.additionals.map(\.type) == [.a, RecordType(rawValue: 250)])
        // The ldns decoder kept a TSIG apart from the additional records; so does `message()`.
        #expect(view.message().additionals.map(\.type) == [.a])
        let notLast = TestWire.header(additionals: 2) + TestWire.question(TestWire.name("example")) + tsig + a
        #expect(rejection(notLast) == .tsigNotLast)
    }

    // MARK: RDATA

    @Test(
        "fixed-size RDATA has its size",
        arguments: [(1, 5), (1, 3), (1, 0), (28, 15), (28, 4)] as [(UInt16, Int)])
    func rejectsWrongAddressLengths(type: UInt16, length: Int) {
        let bytes = TestWire.responseStart(answers: 1) + TestWire.record(owner: TestWire.pointer(12), type: type, rdata: [UInt8](repeating: 1, count: length))
        #expect(rejection(bytes) == .badRDATA)
    }

    @Test func acceptsEmptyRDATAForUpdateClasses() throws {
        for recordClass: UInt16 in [254, 255] {
            let bytes = TestWire.responseStart(answers: 2) + TestWire.record(owner: TestWire.pointer(12), type: 1, recordClass: recordClass)
                + TestWire.record(owner: TestWire.pointer(12), type: 15, recordClass: recordClass)
            #expect(try MessageReader.decode(bytes).answers.map(\.rdata) == [[], []])
        }
    }

    @Test func checksTheSOAFixedFields() {
        let names = TestWire.pointer(12) + TestWire.pointer(12)
        for fixed in [0, 19, 21] {
            let bytes = TestWire.responseStart(authorities: 1)
                + TestWire.record(owner: TestWire.pointer(16), type: 6, rdata: names + [UInt8](repeating: 0, count: fixed))
            #expect(rejection(bytes) == .badRDATA, "\(fixed) fixed octets")
        }
        let whole = TestWire.responseStart(authorities: 1) + TestWire.record(owner: TestWire.pointer(16), type: 6, rdata: names + [UInt8](repeating: 0, count: 20))
        #expect(rejection(whole) == nil)
    }

    @Test func rejectsRDATANamesThatRunPastRDLENGTH() {
        // A CNAME whose RDLENGTH cuts its name short, then a byte that would finish it.
        let name = TestWire.name("mail")
        let bytes = TestWire.responseStart(answers: 1) + TestWire.record(owner: TestWire.pointer(12), type: 5, rdata: Array(name.dropLast()), rdataLength: name.count - 1) + [0]
        #expect(rejection(bytes) == .badRDATA)
        // An MX with bytes after its name.
        let mx = TestWire.responseStart(answers: 1) + TestWire.record(owner: TestWire.pointer(12), type: 15, rdata: [0, 10] + TestWire.pointer(12) + [7])
        #expect(rejection(mx) == .badRDATA)
        // An MX without its preference.
        #expect(rejection(TestWire.responseStart(answers: 1) + TestWire.record(owner: TestWire.pointer(12), type: 15, rdata: [0])) == .badRDATA)
        // RDATA names follow the same pointer rules as owners.
        let forward = TestWire.responseStart(answers: 1) + TestWire.record(owner: TestWire.pointer(12), type: 2, rdata: TestWire.pointer(60))
        #expect(rejection(forward) == .badPointer)
    }

    @Test func characterStringsMustTileTheirRDATA() {
        func answer(_ type: UInt16, _ rdata: [UInt8]) -> [UInt8] {
            TestWire.responseStart(answers: 1) + TestWire.record(owner: TestWire.pointer(12), type: type, rdata: rdata)
        }
        let spf = [UInt8](arrayLiteral: 11) + Array("v=spf1 -all".utf8)
        #expect(rejection(answer(16, spf)) == nil)
        #expect(rejection(answer(16, spf + [2, 65, 66])) == nil)
        // A string running past the RDATA (fuzzing finding: the reply served from it was one
        // ldns and BIND refuse whole), an empty TXT, HINFO with one string.
        #expect(rejection(answer(16, spf + [151, 65])) == .badRDATA)
        #expect(rejection(answer(16, [])) == .badRDATA)
        #expect(rejection(answer(99, [5, 65])) == .badRDATA)
        #expect(rejection(answer(13, [3] + Array("x86".utf8))) == .badRDATA)
        #expect(rejection(answer(13, [3] + Array("x86".utf8) + [5] + Array("Linux".utf8))) == nil)
    }

    @Test func expandsNamesInTheTypesReceiversShouldDecompress() throws {
        // SRV, NAPTR, RRSIG, NSEC (compression forbidden or discouraged, but followed on read,
        // as ldns did): each holds a pointer to the question name.
        let target = TestWire.pointer(12)
        let full = TestWire.name("www.example.com")
        let cases: [(UInt16, [UInt8], [UInt8])] = [
            (33, [0, 1, 0, 2, 0, 53], []), (35, [0, 1, 0, 2, 1, 0x53, 0, 0], []),
            (46, [UInt8](repeating: 7, count: 18), [9, 9, 9]), (47, [], [0, 1, 0x40]),
        ]
        for (type, prefix, suffix) in cases {
            let bytes = TestWire.responseStart(answers: 1) + TestWire.record(owner: target, type: type, rdata: prefix + target + suffix)
            let record = try #require(try MessageReader.decode(bytes).answers.first)
            #expect(record.rdata == prefix + full + suffix, "type \(type)")
        }
        // Opaque types keep their bytes, pointer-like or not.
        let txt = TestWire.responseStart(answers: 1) + TestWire.record(owner: target, type: 16, rdata: [2] + target)
        #expect(try MessageReader.decode(txt).answers.first?.rdata == [2] + target)
    }
}
