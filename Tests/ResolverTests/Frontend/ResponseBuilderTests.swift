// Frontend/ResponseBuilder: error replies built from the query's own bytes, and the UDP size limit.

import NIOCore
import Testing

@testable import Resolver
import WireTestSupport

@Suite("ResponseBuilder")
struct ResponseBuilderTests {
    private let allocator = ByteBufferAllocator()

    private func reply(
        to query: [UInt8], questionEnd: Int?, rcode: ResponseCode, edns: EDNSInfo?, truncated: Bool = false
    ) -> [UInt8] {
        let buffer = query.withUnsafeBytes { bytes in
            ResponseBuilder.reply(
                to: bytes, questionEnd: questionEnd, rcode: rcode, edns: edns, truncated: truncated,
                allocator: allocator)
        }
        return Array(buffer.readableBytesView)
    }

    private func header(_ reply: [UInt8]) -> (id: UInt16, flags: UInt16, counts: [UInt16]) {
        func u16(_ at: Int) -> UInt16 { UInt16(reply[at]) << 8 | UInt16(reply[at + 1]) }
        return (u16(0), u16(2), [u16(4), u16(6), u16(8), u16(10)])
    }

    @Test func formErrWithoutTheQuestion() throws {
        let query = TestQuery(id: 0x1234, flags: DNSHeader.rdBit, trailing: [0xFF])
        let bytes = reply(to: query.bytes, questionEnd: nil, rcode: .formErr, edns: nil)
        #expect(bytes.count == 12)
        let (id, flags, counts) = header(bytes)
        #expect(id == 0x1234)
        #expect(flags == DNSHeader.qrBit | DNSHeader.rdBit | DNSHeader.raBit | 1)
        #expect(counts == [0, 0, 0, 0])
        let decoded = try DNSCodec.decode(bytes)
        #expect(decoded.rcode == .formErr)
        #expect(decoded.questions.isEmpty)
        #expect(decoded.edns == nil)
    }

    @Test func formErrEchoingTheQuestion() throws {
        let query = TestQuery(trailing: [0xFF])
        guard case .failure(.formErr(.trailingData, let questionEnd?)) = readQuery(query.bytes) else {
            Issue.record("expected FORMERR with the question's end")
            return
        }
        let bytes = reply(to: query.bytes, questionEnd: questionEnd, rcode: .formErr, edns: nil)
        #expect(bytes.count == query.questionEnd)
        #expect(Array(bytes[12...]) == Array(query.bytes[12..<query.questionEnd]))
        #expect(header(bytes).counts == [1, 0, 0, 0])
    }

    @Test func refusedEchoesTheQuestionAndOPT() throws {
        let query = TestQuery(
            id: 0xCAFE, name: TestWire.name("WwW.Example.COM"), type: 28,
            additionals: [TestWire.opt(udpSize: 4096, dnssecOK: true)])
        let view = try readQuery(query.bytes).get()
        let bytes = reply(to: query.bytes, questionEnd: view.questionEnd, rcode: .refused, edns: view.edns)
        #expect(bytes.count == view.questionEnd + 11)
        let (id, flags, counts) = header(bytes)
        #expect(id == 0xCAFE)
        #expect(flags & DNSHeader.rcodeMask == 5)
        #expect(flags & DNSHeader.qrBit != 0)
        #expect(flags & DNSHeader.aaBit == 0)
        #expect(flags & DNSHeader.tcBit == 0)
        #expect(counts == [1, 0, 0, 1])
        // The question exactly as asked, letter case included.
        #expect(Array(bytes[12..<view.questionEnd]) == Array(query.bytes[12..<view.questionEnd]))
        // Our OPT: root owner, type 41, our payload size, extended rcode 0, version 0, DO echoed, no options.
        #expect(Array(bytes[view.questionEnd...]) == [0, 0, 41, 0x04, 0xD0, 0, 0, 0x80, 0, 0, 0])

        let decoded = try DNSCodec.decode(bytes)
        #expect(decoded.rcode == .refused)
        #expect(decoded.questions == [Question(name: try #require(DomainName("www.example.com")), type: .aaaa)])
        #expect(decoded.questions.first?.name.wire == TestWire.name("WwW.Example.COM"))
        #expect(decoded.edns == EDNS(udpPayloadSize: EDNS.advertisedPayloadSize, dnssecOK: true))
    }

    @Test func echoesDOOnlyWhenSet() throws {
        let query = TestQuery(additionals: [TestWire.opt(udpSize: 1232)])
        let view = try readQuery(query.bytes).get()
        let bytes = reply(to: query.bytes, questionEnd: view.questionEnd, rcode: .servFail, edns: view.edns)
        #expect(Array(bytes[(bytes.count - 4)...]) == [0, 0, 0, 0])
        let decoded = try DNSCodec.decode(bytes)
        #expect(decoded.edns?.dnssecOK == false)
        #expect(decoded.rcode == .servFail)
    }

    @Test func badVersSplitsTheRcode() throws {
        let query = TestQuery(additionals: [TestWire.opt(udpSize: 4096, version: 1)])
        guard case .failure(.badVersion(let view)) = readQuery(query.bytes) else {
            Issue.record("expected BADVERS")
            return
        }
        let bytes = reply(to: query.bytes, questionEnd: view.questionEnd, rcode: .badVers, edns: view.edns)
        #expect(header(bytes).flags & DNSHeader.rcodeMask == 0)
        // OPT TTL: extended rcode 1 (16 >> 4), version 0 (RFC 6891 §6.1.3).
        #expect(bytes[view.questionEnd + 5] == 1)
        #expect(bytes[view.questionEnd + 6] == 0)
        let decoded = try DNSCodec.decode(bytes)
        #expect(decoded.rcode == .badVers)
        #expect(decoded.edns?.version == 0)
    }

    @Test func setsTCWhenTruncated() throws {
        let query = TestQuery()
        let bytes = reply(to: query.bytes, questionEnd: query.questionEnd, rcode: .noError, edns: nil, truncated: true)
        #expect(header(bytes).flags & DNSHeader.tcBit != 0)
        #expect(header(bytes).flags & DNSHeader.rcodeMask == 0)
        #expect(try DNSCodec.decode(bytes).flags.contains(.tc))
        let untruncated = reply(to: query.bytes, questionEnd: query.questionEnd, rcode: .noError, edns: nil)
        #expect(header(untruncated).flags & DNSHeader.tcBit == 0)
    }

    @Test(
        "keeps opcode, RD and CD; sets QR and RA; drops AA, TC, AD and Z",
        arguments: [
            (0x0000, 0x8080), (DNSHeader.rdBit, 0x8180), (DNSHeader.cdBit, 0x8090),
            (DNSHeader.aaBit | DNSHeader.tcBit | DNSHeader.adBit | 0x0040 | 0x000F, 0x8080),
            (UInt16(4) << 11 | DNSHeader.rdBit, 0xA180), (UInt16(15) << 11, 0xF880),
        ] as [(UInt16, UInt16)])
    func copiesTheRightFlags(queryFlags: UInt16, replyFlags: UInt16) {
        let query = TestQuery(flags: queryFlags)
        let bytes = reply(to: query.bytes, questionEnd: nil, rcode: .noError, edns: nil)
        #expect(header(bytes).flags == replyFlags)
    }

    @Test func notImpKeepsTheOpcode() throws {
        let query = TestQuery(flags: UInt16(Opcode.notify.rawValue) << 11)
        guard case .failure(.notImplemented(let opcode)) = readQuery(query.bytes) else {
            Issue.record("expected NOTIMP")
            return
        }
        let bytes = reply(to: query.bytes, questionEnd: nil, rcode: .notImp, edns: nil)
        let decoded = try DNSCodec.decode(bytes)
        #expect(decoded.opcode == opcode)
        #expect(decoded.rcode == .notImp)
    }

    @Test(
        "the UDP limit",
        arguments: [
            (nil, 512), (EDNSInfo(udpPayloadSize: 512, version: 0, dnssecOK: false), 512),
            (EDNSInfo(udpPayloadSize: 100, version: 0, dnssecOK: false), 512),
            (EDNSInfo(udpPayloadSize: 600, version: 0, dnssecOK: true), 600),
            (EDNSInfo(udpPayloadSize: 1232, version: 0, dnssecOK: false), 1232),
            (EDNSInfo(udpPayloadSize: 1233, version: 0, dnssecOK: false), 1232),
            (EDNSInfo(udpPayloadSize: 4096, version: 0, dnssecOK: false), 1232),
            (EDNSInfo(udpPayloadSize: 65535, version: 0, dnssecOK: false), 1232),
        ] as [(EDNSInfo?, Int)])
    func limitsUDPReplies(edns: EDNSInfo?, limit: Int) {
        #expect(ResponseBuilder.udpLimit(for: edns) == limit)
    }
}
