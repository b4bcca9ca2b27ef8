// Wire/QueryReader: the hot-path reader on good queries, on every kind of malformed input, and on
// random and mutated bytes.

import Testing

@testable import DNSWire
import WireTestSupport

@Suite("QueryReader.read")
struct QueryReaderTests {
    // MARK: Good queries

    @Test func readsAPlainAQuery() throws {
        let query = TestQuery()
        let view = try readQuery(query.bytes).get()
        #expect(view.id == 0xBEEF)
        #expect(view.flags == DNSHeader.rdBit)
        #expect(view.nameEnd == 12 + 17)
        #expect(view.nameEnd == query.nameEnd)
        #expect(view.questionEnd == query.questionEnd)
        #expect(view.type == .a)
        #expect(view.recordClass == .in)
        #expect(view.edns == nil)
        #expect(view.opcode == .query)
        #expect(view.recursionDesired)
        #expect(!view.checkingDisabled)
    }

    @Test func readsFlagsTypeAndClass() throws {
        let query = TestQuery(id: 7, flags: DNSHeader.cdBit | DNSHeader.adBit, type: 28, recordClass: 3)
        let view = try readQuery(query.bytes).get()
        #expect(view.id == 7)
        #expect(!view.recursionDesired)
        #expect(view.checkingDisabled)
        #expect(view.type == .aaaa)
        #expect(view.recordClass == .ch)
    }

    @Test func readsTheRootName() throws {
        let query = TestQuery(name: [0], type: 2)
        let view = try readQuery(query.bytes).get()
        #expect(view.nameEnd == 13)
        #expect(view.questionEnd == 17)
        #expect(view.type == .ns)
    }

    @Test func readsOPT() throws {
        let query = TestQuery(additionals: [TestWire.opt(udpSize: 4096, dnssecOK: true)])
        let view = try readQuery(query.bytes).get()
        #expect(view.edns == EDNSInfo(udpPayloadSize: 4096, version: 0, dnssecOK: true))
        #expect(view.questionEnd == query.questionEnd)
    }

    @Test func readsOPTWithoutDO() throws {
        let query = TestQuery(additionals: [TestWire.opt(udpSize: 1232)])
        let view = try readQuery(query.bytes).get()
        #expect(view.edns == EDNSInfo(udpPayloadSize: 1232, version: 0, dnssecOK: false))
    }

    @Test func ignoresOtherBitsOfTheOPTTTL() throws {
        // Z bits other than DO, and an extended rcode, say nothing about DO (RFC 6891 §6.1.3).
        var opt = TestWire.opt(udpSize: 1232, extendedRcode: 3)
        opt[7] = 0x7F  // Z without DO (the TTL's third and fourth octets)
        opt[8] = 0xFF
        let view = try readQuery(TestQuery(additionals: [opt]).bytes).get()
        #expect(view.edns?.dnssecOK == false)
    }

    @Test func readsOPTWithOptions() throws {
        // An 8-octet client COOKIE option (RFC 7873): code 10, length 8.
        let cookie: [UInt8] = [0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8]
        let query = TestQuery(additionals: [TestWire.opt(udpSize: 1400, rdata: cookie)])
        let view = try readQuery(query.bytes).get()
        #expect(view.edns?.udpPayloadSize == 1400)
    }

    @Test func skipsOtherAdditionalRecords() throws {
        let other = TestWire.record(
            owner: TestWire.name("key.example"), type: 250, recordClass: 255, ttl: 0,
            rdata: [1, 2, 3, 4])
        let query = TestQuery(additionals: [other, TestWire.opt(udpSize: 2048)])
        let view = try readQuery(query.bytes).get()
        #expect(view.edns?.udpPayloadSize == 2048)
    }

    @Test(
        "UDP payload sizes below 512 are reported as 512 (RFC 6891 §6.2.3)",
        arguments: [
            (0, 512), (1, 512), (100, 512), (511, 512), (512, 512), (513, 513), (1232, 1232),
            (65535, 65535),
        ] as [(UInt16, UInt16)])
    func clampsSmallPayloadSizes(advertised: UInt16, reported: UInt16) throws {
        let query = TestQuery(additionals: [TestWire.opt(udpSize: advertised)])
        let view = try readQuery(query.bytes).get()
        #expect(view.edns?.udpPayloadSize == reported)
    }

    @Test func acceptsANameOf255Octets() throws {
        // Three 63-octet labels (3 × 64) plus a 61-octet label (62) plus the root: 255.
        let name = Array(TestWire.name(labels: 3, length: 63).dropLast()) + TestWire.name(labels: 1, length: 61)
        #expect(name.count == 255)
        let view = try readQuery(TestQuery(name: name).bytes).get()
        #expect(view.nameEnd == 12 + 255)
    }

    @Test func acceptsALabelOf63Octets() throws {
        let view = try readQuery(TestQuery(name: TestWire.name(labels: 1, length: 63)).bytes).get()
        #expect(view.nameEnd == 12 + 65)
    }

    // MARK: Dropped

    @Test("fewer than 12 octets are dropped", arguments: 0..<12)
    func dropsTruncatedHeaders(length: Int) {
        let bytes = Array(TestQuery().bytes.prefix(length))
        #expect(readQuery(bytes) == .failure(.drop(.truncatedHeader)))
    }

    @Test func dropsResponses() {
        let query = TestQuery(flags: DNSHeader.qrBit | DNSHeader.rdBit)
        #expect(readQuery(query.bytes) == .failure(.drop(.isResponse)))
    }

    @Test func dropsResponsesEvenWhenOtherwiseBroken() {
        // QR is checked first: a response is never answered, whatever else is wrong with it.
        let query = TestQuery(flags: DNSHeader.qrBit | 0x2000, questionCount: 0, trailing: [1, 2, 3])
        #expect(readQuery(query.bytes) == .failure(.drop(.isResponse)))
    }

    // MARK: NOTIMP

    @Test("opcodes other than QUERY are NOTIMP", arguments: [1, 2, 3, 4, 5, 6, 15] as [UInt8])
    func rejectsOtherOpcodes(opcode: UInt8) {
        let query = TestQuery(flags: UInt16(opcode) << 11 | DNSHeader.rdBit)
        #expect(readQuery(query.bytes) == .failure(.notImplemented(Opcode(rawValue: opcode))))
    }

    @Test func notImplementedNamesTheOpcode() {
        let notify = TestQuery(flags: UInt16(4) << 11)
        #expect(readQuery(notify.bytes) == .failure(.notImplemented(.notify)))
        let update = TestQuery(flags: UInt16(5) << 11)
        #expect(readQuery(update.bytes) == .failure(.notImplemented(.update)))
        let status = TestQuery(flags: UInt16(2) << 11)
        #expect(readQuery(status.bytes) == .failure(.notImplemented(.status)))
    }

    // MARK: FORMERR before the question is read

    @Test("QDCOUNT other than 1 is FORMERR", arguments: [0, 2, 0xFFFF] as [UInt16])
    func rejectsQuestionCounts(count: UInt16) {
        let query = TestQuery(questionCount: count)
        #expect(readQuery(query.bytes) == .failure(.formErr(.questionCount, questionEnd: nil)))
    }

    @Test func rejectsTwoRealQuestions() {
        let second = TestWire.name("example.org") + TestWire.u16(1) + TestWire.u16(1)
        let query = TestQuery(questionCount: 2, trailing: second)
        #expect(readQuery(query.bytes) == .failure(.formErr(.questionCount, questionEnd: nil)))
    }

    @Test func rejectsAnswerRecords() {
        let answer = TestWire.record(owner: [0xC0, 0x0C], type: 1, rdata: [192, 0, 2, 1])
        let query = TestQuery(answers: [answer])
        #expect(readQuery(query.bytes) == .failure(.formErr(.unexpectedRecords, questionEnd: nil)))
    }

    @Test func rejectsAuthorityRecords() {
        let soa = TestWire.record(owner: [0], type: 6, rdata: [0, 0] + [UInt8](repeating: 0, count: 20))
        let query = TestQuery(authorities: [soa])
        #expect(readQuery(query.bytes) == .failure(.formErr(.unexpectedRecords, questionEnd: nil)))
    }

    @Test func rejectsOPTInTheAnswerSection() {
        let query = TestQuery(answers: [TestWire.opt()])
        #expect(readQuery(query.bytes) == .failure(.formErr(.unexpectedRecords, questionEnd: nil)))
    }

    @Test(
        "ANCOUNT or NSCOUNT that lie are FORMERR too",
        arguments: [(1, 0), (0, 1), (0xFFFF, 0xFFFF)] as [(UInt16, UInt16)])
    func rejectsNonzeroCountsWithoutRecords(answers: UInt16, authorities: UInt16) {
        let query = TestQuery(answerCount: answers, authorityCount: authorities)
        #expect(readQuery(query.bytes) == .failure(.formErr(.unexpectedRecords, questionEnd: nil)))
    }

    // MARK: FORMERR in the question name

    @Test func rejectsALabelOf64Octets() {
        let query = TestQuery(name: TestWire.name(labels: 1, length: 64))
        #expect(readQuery(query.bytes) == .failure(.formErr(.labelTooLong, questionEnd: nil)))
    }

    @Test(
        "label types 0b01 and 0b10 (RFC 6891 §5) are unreadable", arguments: [0x40, 0x41, 0x7F, 0x80, 0xBF] as [UInt8])
    func rejectsExtendedLabelTypes(firstByte: UInt8) {
        let query = TestQuery(name: [firstByte] + [UInt8](repeating: 0x61, count: 70) + [0])
        #expect(readQuery(query.bytes) == .failure(.formErr(.labelTooLong, questionEnd: nil)))
    }

    @Test func rejectsANameOf256Octets() {
        let name = Array(TestWire.name(labels: 3, length: 63).dropLast()) + TestWire.name(labels: 1, length: 62)
        #expect(name.count == 256)
        #expect(readQuery(TestQuery(name: name).bytes) == .failure(.formErr(.nameTooLong, questionEnd: nil)))
    }

    @Test func rejectsANameOfManyShortLabels() {
        // 128 one-octet labels: 257 octets in wire form.
        let name = TestWire.name(labels: 128, length: 1)
        #expect(readQuery(TestQuery(name: name).bytes) == .failure(.formErr(.nameTooLong, questionEnd: nil)))
    }

    @Test func rejectsAPointerToItself() {
        let query = TestQuery(name: [0xC0, 0x0C])
        #expect(readQuery(query.bytes) == .failure(.formErr(.badPointer, questionEnd: nil)))
    }

    @Test func rejectsAPointerBackIntoTheSameName() {
        // `a` then a pointer to the `a` label itself: a loop.
        let query = TestQuery(name: [1, 0x61, 0xC0, 0x0C])
        #expect(readQuery(query.bytes) == .failure(.formErr(.badPointer, questionEnd: nil)))
    }

    @Test func rejectsAForwardPointer() {
        // Points at the QTYPE just after the pointer.
        let query = TestQuery(name: [0xC0, 0x0E])
        #expect(readQuery(query.bytes) == .failure(.formErr(.badPointer, questionEnd: nil)))
    }

    @Test func rejectsAPointerPastTheEnd() {
        let query = TestQuery(name: [0xFF, 0xFF])
        #expect(readQuery(query.bytes) == .failure(.formErr(.badPointer, questionEnd: nil)))
    }

    @Test func rejectsALoopThroughTheHeader() {
        // ID 0xC00C is itself a pointer to offset 12, which points at the ID: a two-step loop.
        let query = TestQuery(id: 0xC00C, name: [0xC0, 0x00])
        #expect(readQuery(query.bytes) == .failure(.formErr(.badPointer, questionEnd: nil)))
    }

    @Test(
        "names that run past the end are truncated",
        arguments: [
            [3, 0x77, 0x77],  // inside a label
            [3, 0x77, 0x77, 0x77],  // no root label
            [0xC0],  // half a pointer
            [],  // nothing at all
        ] as [[UInt8]])
    func rejectsNamesRunningPastTheEnd(name: [UInt8]) {
        let bytes = Array(TestQuery().bytes.prefix(12)) + name
        #expect(readQuery(bytes) == .failure(.formErr(.truncated, questionEnd: nil)))
    }

    @Test("a question cut inside QTYPE or QCLASS is truncated", arguments: 0..<4)
    func rejectsATruncatedQuestion(extra: Int) {
        let query = TestQuery()
        let bytes = Array(query.bytes.prefix(query.nameEnd + extra))
        #expect(readQuery(bytes) == .failure(.formErr(.truncated, questionEnd: nil)))
    }

    // MARK: FORMERR after the question (which may be echoed)

    @Test func rejectsTrailingGarbage() {
        let query = TestQuery(trailing: [0xFF])
        #expect(readQuery(query.bytes) == .failure(.formErr(.trailingData, questionEnd: query.questionEnd)))
    }

    @Test func rejectsTrailingGarbageAfterOPT() {
        let query = TestQuery(additionals: [TestWire.opt()], trailing: [0, 0, 0])
        #expect(readQuery(query.bytes) == .failure(.formErr(.trailingData, questionEnd: query.questionEnd)))
    }

    @Test func rejectsAnAdditionalCountWithoutRecords() {
        let query = TestQuery(additionalCount: 1)
        #expect(readQuery(query.bytes) == .failure(.formErr(.truncated, questionEnd: query.questionEnd)))
    }

    @Test("an OPT cut short is truncated", arguments: 1..<11)
    func rejectsATruncatedOPT(cut: Int) {
        let query = TestQuery(additionals: [TestWire.opt()])
        let bytes = Array(query.bytes.dropLast(cut))
        #expect(readQuery(bytes) == .failure(.formErr(.truncated, questionEnd: query.questionEnd)))
    }

    @Test func rejectsRDLengthPastTheEnd() {
        var opt = TestWire.opt(rdata: [0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8])
        opt[9] = 0  // RDLENGTH 13 instead of 12
        opt[10] = 13
        let query = TestQuery(additionals: [opt])
        #expect(readQuery(query.bytes) == .failure(.formErr(.truncated, questionEnd: query.questionEnd)))
    }

    @Test func rejectsTwoOPTRecords() {
        let query = TestQuery(additionals: [TestWire.opt(), TestWire.opt(udpSize: 4096)])
        #expect(readQuery(query.bytes) == .failure(.formErr(.multipleOPT, questionEnd: query.questionEnd)))
    }

    @Test(
        "OPT must be owned by the root",
        arguments: [
            TestWire.name("example"),
            [0xC0, 0x0C],  // a pointer to the question name
        ])
    func rejectsOPTWithANonRootOwner(owner: [UInt8]) {
        let query = TestQuery(additionals: [TestWire.opt(owner: owner)])
        #expect(readQuery(query.bytes) == .failure(.formErr(.optNotRoot, questionEnd: query.questionEnd)))
    }

    @Test func rejectsABadNameInTheAdditionalSection() {
        let record = TestWire.record(owner: [0xC0, 0xFF], type: 1, rdata: [192, 0, 2, 1])
        let query = TestQuery(additionals: [record])
        #expect(readQuery(query.bytes) == .failure(.formErr(.badPointer, questionEnd: query.questionEnd)))
    }

    // MARK: BADVERS

    @Test("EDNS versions above 0 are BADVERS", arguments: [1, 2, 255] as [UInt8])
    func rejectsEDNSVersions(version: UInt8) throws {
        let query = TestQuery(additionals: [TestWire.opt(udpSize: 4096, version: version, dnssecOK: true)])
        guard case .failure(.badVersion(let view)) = readQuery(query.bytes) else {
            Issue.record("expected BADVERS for version \(version)")
            return
        }
        #expect(view.id == 0xBEEF)
        #expect(view.questionEnd == query.questionEnd)
        #expect(view.type == .a)
        #expect(view.edns == EDNSInfo(udpPayloadSize: 4096, version: version, dnssecOK: true))
    }

    @Test func trailingDataWinsOverBadVersion() {
        // A query that is malformed anyway gets FORMERR, not an invitation to retry with EDNS 0.
        let query = TestQuery(additionals: [TestWire.opt(version: 1)], trailing: [0])
        #expect(readQuery(query.bytes) == .failure(.formErr(.trailingData, questionEnd: query.questionEnd)))
    }

    // MARK: Random input

    @Test func neverCrashesOnRandomBytes() {
        var random = SplitMix64(seed: 0x5EED_0001)
        for round in 0..<2000 {
            let length = Int.random(in: 0..<300, using: &random)
            var bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &random) }
            if round % 2 == 0, bytes.count >= 12 {
                // Half of the inputs get a plausible header, so the reader goes past its first checks.
                bytes.replaceSubrange(2..<12, with: [0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, UInt8(round % 3)])
            }
            checkInvariants(bytes)
        }
    }

    @Test func neverCrashesOnMutatedQueries() {
        var random = SplitMix64(seed: 0x5EED_0002)
        let other = TestWire.record(owner: [0xC0, 0x0C], type: 1, rdata: [192, 0, 2, 1])
        let valid = TestQuery(additionals: [other, TestWire.opt(udpSize: 4096, dnssecOK: true)]).bytes
        #expect((try? readQuery(valid).get()) != nil)
        for _ in 0..<2000 {
            var bytes = valid
            bytes[Int.random(in: 0..<bytes.count, using: &random)] = UInt8.random(in: 0...255, using: &random)
            checkInvariants(bytes)
        }
    }

    /// A read either gives a view whose offsets lie inside the bytes, or a rejection whose
    /// question end (if any) lies inside them: never a crash, never an offset out of range.
    private func checkInvariants(_ bytes: [UInt8], sourceLocation: SourceLocation = #_sourceLocation) {
        switch readQuery(bytes) {
        case .success(let view):
            #expect(view.nameEnd > DNSHeader.length, sourceLocation: sourceLocation)
            #expect(view.questionEnd == view.nameEnd + 4, sourceLocation: sourceLocation)
            #expect(view.questionEnd <= bytes.count, sourceLocation: sourceLocation)
            #expect(
                view.edns.map { $0.udpPayloadSize >= 512 && $0.version == 0 } ?? true,
                sourceLocation: sourceLocation)
            let name = bytes.withUnsafeBytes { buffer in try? WireNames.read(buffer, at: DNSHeader.length) }
            #expect(name != nil, sourceLocation: sourceLocation)
        case .failure(.formErr(_, let questionEnd?)):
            #expect(questionEnd > DNSHeader.length && questionEnd <= bytes.count, sourceLocation: sourceLocation)
        case .failure(.badVersion(let view)):
            #expect(view.questionEnd <= bytes.count && view.edns != nil, sourceLocation: sourceLocation)
        case .failure(.drop), .failure(.formErr(_, nil)), .failure(.notImplemented):
            break
        }
    }
}
