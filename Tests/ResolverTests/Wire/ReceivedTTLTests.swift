// Wire/: TTLs as received from upstream servers (RFC 2181 §8), through the codec into the caches.

import NIOCore
import Testing

@testable import Resolver
import WireTestSupport

@Suite("ReceivedTTLs")
struct ReceivedTTLTests {
    /// An answer to www.example.com A with one record per TTL.
    static func answer(ttls: [UInt32]) -> [UInt8] {
        var bytes = TestWire.u16(0x1234) + TestWire.u16(0x8180) + TestWire.u16(1) + TestWire.u16(UInt16(ttls.count))
        bytes += TestWire.u16(0) + TestWire.u16(0) + TestWire.name("www.example.com") + TestWire.u16(1) + TestWire.u16(1)
        for (index, ttl) in ttls.enumerated() {
            bytes += TestWire.record(owner: [0xC0, 12], type: 1, ttl: ttl, rdata: [192, 0, 2, UInt8(index + 1)])
        }
        return bytes
    }

    @Test("RFC 2181 §8: a TTL with the top bit set is read as 0, not clamped to max_ttl and cached a day")
    func topBit() throws {
        #expect(DNSCodec.ttl(fromWire: 0x8000_0000) == 0)
        #expect(DNSCodec.ttl(fromWire: 0xFFFF_FFFF) == 0)
        #expect(DNSCodec.ttl(fromWire: 0x7FFF_FFFF) == 0x7FFF_FFFF)
        let message = try DNSCodec.decode(Self.answer(ttls: [0x8000_0000, 300]))
        #expect(message.answers.map(\.ttl) == [0, 300])
        let question = try #require(message.questions.first)
        let stored = try CachedAnswer.make(answer: message, question: question, authenticated: false, settings: CacheSettings())
        #expect(stored.ttl == 0, "not cached")
        let records = RecordCache(maxBytes: 1 << 20, maxTTL: 86_400, maxNegativeTTL: 3_600)
        records.insert(message.answers, credibility: .answer, now: .now())
        #expect(records.rrset(question.name, .a, now: .now()) == nil)
    }
}
