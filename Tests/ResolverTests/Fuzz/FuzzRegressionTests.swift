// Fuzz/: what the libFuzzer targets (Fuzz/, scripts/fuzz.sh) found, as regression tests, and the
// hostile inputs every entry point must survive — truncated and looping compression pointers,
// label and name length overflows, lying RDLENGTHs, OPT where it may not be, deeply nested TOML
// and JSON, numbers no field can hold. Each feeds the input to the entry point the fuzz target
// uses and expects a clean error (or a sane value), never a trap; the findings F1–F5 (see
// Fuzz/README.md) fail on the code before their fixes. The seeds under
// Fuzz/corpus are checked to be what their names say, so the corpus stays realistic.

import Foundation
import NIOCore
import Testing

@testable import Resolver
import WireTestSupport

@Suite("FuzzRegression")
struct FuzzRegressionTests {
    // MARK: - Helpers

    /// Bytes from hex text (spaces allowed).
    static func bytes(_ hex: String) -> [UInt8] {
        let digits = Array(hex.filter { !$0.isWhitespace })
        return stride(from: 0, to: digits.count - 1, by: 2).compactMap { UInt8(String(digits[$0...$0 + 1]), radix: 16) }
    }

    /// A 12-octet header: ID 0xBEEF, `flags`, then the four counts.
    static func header(flags: UInt16 = DNSHeader.rdBit, qd: UInt16 = 1, an: UInt16 = 0, ns: UInt16 = 0, ar: UInt16 = 0)
        -> [UInt8]
    {
        TestWire.u16(0xBEEF) + TestWire.u16(flags) + TestWire.u16(qd) + TestWire.u16(an) + TestWire.u16(ns)
            + TestWire.u16(ar)
    }

    static let question = TestWire.name("www.example.com") + TestWire.u16(1) + TestWire.u16(1)

    /// The question's end in a message that starts with `header()` and `question`.
    static let questionEnd = DNSHeader.length + question.count

    /// The folder of the seed corpora (Fuzz/corpus), from this file's path.
    static var corpus: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fuzz/corpus")
    }

    static func seeds(_ target: String) throws -> [(name: String, bytes: [UInt8])] {
        let folder = corpus.appendingPathComponent(target)
        let names = try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted()
        return try names.map { ($0, Array(try Data(contentsOf: folder.appendingPathComponent($0)))) }
    }

    // MARK: - Queries (QueryReader, the hot path)

    @Test func truncatedCompressionPointerInTheQuestion() {
        // The question name is one octet of a pointer: 0xC0 and the message ends.
        #expect(readQuery(Self.header() + [0xC0]) == .failure(.formErr(.truncated, questionEnd: nil)))
        // The pointer is whole (to offset 4, QDCOUNT's high octet: a root label), the type and
        // class are not there.
        #expect(readQuery(Self.header() + [0xC0, 0x04]) == .failure(.formErr(.truncated, questionEnd: nil)))
        // A pointer to offset 0 reads the ID's first octet, 0xBE, as a label length.
        #expect(readQuery(Self.header() + [0xC0, 0x00, 0, 1, 0, 1]) == .failure(.formErr(.labelTooLong, questionEnd: nil)))
    }

    @Test func compressionPointerLoopsAndForwardPointers() {
        // A pointer to itself, a label then a pointer back to the name's start, a forward pointer.
        for name in [[0xC0, 0x0C], [0x01, 0x61, 0xC0, 0x0C], [0xC0, 0x20]] as [[UInt8]] {
            let query = Self.header() + name + TestWire.u16(1) + TestWire.u16(1)
            #expect(readQuery(query) == .failure(.formErr(.badPointer, questionEnd: nil)), "\(name)")
        }
    }

    @Test func pointerIntoTheHeaderIsReadNotTrusted() throws {
        // RFC 1035 allows any earlier offset; the header's octets then read as a name. The
        // reader accepts it (it is well formed), the slow path decodes it, the error reply echoes
        // it: no trap anywhere.
        var query = Self.header() + [0xC0, 0x04] + TestWire.u16(1) + TestWire.u16(1)
        query[4] = 0x00  // QDCOUNT high octet: the "name" at offset 4 is the root label
        query[5] = 0x01
        let view = try readQuery(query).get()
        let name = try query.withUnsafeBytes { try WireNames.read($0, at: DNSHeader.length) }
        #expect(name == .root)
        let reply = query.withUnsafeBytes {
            ResponseBuilder.reply(
                to: $0, questionEnd: view.questionEnd, rcode: .formErr, edns: nil, allocator: ByteBufferAllocator())
        }
        #expect(reply.readableBytes == view.questionEnd)
        #expect(query.withUnsafeBytes { AnswerCache.plainName(in: $0, end: view.nameEnd) } == nil)
    }

    @Test func labelLengthOverflow() {
        // 64 is one past the limit; 0x40 and 0x80 are the retired extended label types (RFC 6891 §5).
        for length: UInt8 in [64, 0x7F, 0x80, 0xBF] {
            let query = Self.header() + [length] + [UInt8](repeating: 0x61, count: Int(length & 0x3F)) + [0]
                + TestWire.u16(1) + TestWire.u16(1)
            #expect(readQuery(query) == .failure(.formErr(.labelTooLong, questionEnd: nil)), "\(length)")
        }
    }

    @Test func nameLengthOverflow() {
        // Four 63-octet labels: 256 octets with the root, one past RFC 1035's 255.
        let query = Self.header() + TestWire.name(labels: 4, length: 63) + TestWire.u16(1) + TestWire.u16(1)
        #expect(readQuery(query) == .failure(.formErr(.nameTooLong, questionEnd: nil)))
        let longest = Self.header() + TestWire.name(labels: 3, length: 63).dropLast()
            + TestWire.name(labels: 1, length: 61) + TestWire.u16(1) + TestWire.u16(1)
        #expect((try? readQuery(longest).get()) != nil)
    }

    @Test func hugeRDLENGTH() {
        var opt = TestWire.opt()
        opt[9] = 0xFF  // RDLENGTH 0xFFFF, no RDATA behind it
        opt[10] = 0xFF
        let query = Self.header(ar: 1) + Self.question + opt
        #expect(readQuery(query) == .failure(.formErr(.truncated, questionEnd: Self.questionEnd)))
    }

    @Test func optInTheWrongSectionOrTwice() {
        // In the answer section: a query has no answers.
        #expect(readQuery(Self.header(an: 1) + Self.question + TestWire.opt())
            == .failure(.formErr(.unexpectedRecords, questionEnd: nil)))
        // Owned by a name, or by a pointer to the question's name.
        for owner in [TestWire.name("a"), [0xC0, 0x0C]] {
            #expect(readQuery(Self.header(ar: 1) + Self.question + TestWire.opt(owner: owner))
                == .failure(.formErr(.optNotRoot, questionEnd: Self.questionEnd)))
        }
        #expect(readQuery(Self.header(ar: 2) + Self.question + TestWire.opt() + TestWire.opt())
            == .failure(.formErr(.multipleOPT, questionEnd: Self.questionEnd)))
        // More additionals announced than present.
        #expect(readQuery(Self.header(ar: 3) + Self.question + TestWire.opt())
            == .failure(.formErr(.truncated, questionEnd: Self.questionEnd)))
    }

    @Test func everyPrefixOfARealQueryIsRejectedCleanly() throws {
        let query = Self.header(ar: 1) + Self.question + TestWire.opt(rdata: [0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8])
        #expect((try? readQuery(query).get()) != nil)
        for length in 0..<query.count {
            let prefix = Array(query.prefix(length))
            guard case .failure(let rejection) = readQuery(prefix) else {
                Issue.record("a \(length)-octet prefix was read as a query")
                continue
            }
            if case .formErr(_, let end?) = rejection { #expect(end <= length) }
            _ = prefix.withUnsafeBytes { WireNames.rcodeAndType($0) }
        }
    }

    // MARK: - The ldns codec

    /// A response to `www.example.com A` with one answer whose owner is `owner` and RDATA `rdata`.
    static func response(owner: [UInt8], type: UInt16 = 1, rdlength: UInt16? = nil, rdata: [UInt8]) -> [UInt8] {
        var record = owner + TestWire.u16(type) + TestWire.u16(1) + TestWire.u32(300)
        record += TestWire.u16(rdlength ?? UInt16(rdata.count)) + rdata
        return Self.header(flags: 0x8180, an: 1) + Self.question + record
    }

    @Test func codecRejectsHostileNames() {
        let rejected: [(String, [UInt8])] = [
            ("owner pointer to itself", Self.response(owner: [0xC0, UInt8(Self.questionEnd)], rdata: [192, 0, 2, 1])),
            ("owner pointer past the end", Self.response(owner: [0xFF, 0xFF], rdata: [192, 0, 2, 1])),
            ("message ends inside a pointer", Self.header(flags: 0x8180, an: 1) + Self.question + [0xC0]),
            ("owner label of 64 octets", Self.response(owner: [64] + [UInt8](repeating: 0x61, count: 64) + [0], rdata: [192, 0, 2, 1])),
            ("RDLENGTH past the end", Self.response(owner: [0xC0, 0x0C], rdlength: 0xFFFF, rdata: [192, 0, 2, 1])),
            ("CNAME target pointing at itself",
             Self.response(owner: [0xC0, 0x0C], type: 5, rdata: [0xC0, UInt8(Self.questionEnd + 12)])),
            ("header announcing 65535 answers", Self.header(flags: 0x8180, an: 0xFFFF) + Self.question),
        ]
        for (label, message) in rejected {
            #expect(throws: CodecError.self, "\(label)") { try DNSCodec.decode(message) }
        }
    }

    @Test func codecKeepsAnOPTOutsideTheAdditionalSection() throws {
        // ldns turns only an additional-section OPT into EDNS; one among the answers is a record.
        let message = Self.header(flags: 0x8180, an: 1) + Self.question + TestWire.opt()
        let decoded = try DNSCodec.decode(message)
        #expect(decoded.edns == nil)
        #expect(decoded.answers.map(\.type) == [.opt])
        #expect(try DNSCodec.decode(try DNSCodec.encode(decoded)) == decoded)
    }

    @Test func rdataNamesMayComeBackInAnEarlierLetterCase() throws {
        // What fuzz-codec's first "decode(encode(m)) != m" reports were: ldns compresses names
        // case-insensitively, so the second NS target is written as a pointer to the first and
        // reads back in its letter case. The same name (RFC 4343), so the target compares
        // letter-insensitively (DomainName ==), not octet by octet (ResourceRecord ==).
        let zone = try #require(DomainName("example.com."))
        let first = try #require(DomainName("ns1.example.net."))
        let second = try #require(DomainName("NS1.Example.NET."))
        let message = DNSMessage(
            id: 1, flags: [.qr, .aa], questions: [Question(name: zone, type: .ns)],
            answers: [
                ResourceRecord(name: zone, type: .ns, ttl: 300, rdata: first.wire),
                ResourceRecord(name: zone, type: .txt, ttl: 300, rdata: [3, 0x61, 0x62, 0x63]),
                ResourceRecord(name: zone, type: .cname, ttl: 300, rdata: second.wire),
            ])
        let again = try DNSCodec.decode(try DNSCodec.encode(message))
        #expect(again.answers.map(\.targetName) == message.answers.map(\.targetName))
        #expect(again.answers[2].rdata == first.wire)
        #expect(again.answers[1] == message.answers[1])
    }

    @Test func certificateTypeZeroIsRejected() {
        // F6 (ldns 1.8.3, leaks 2 octets; Fuzz/README.md): the text parser refuses a CERT
        // record of certificate type 0 — as an error, leaking the field it had parsed.
        #expect(throws: CodecError.self) { try DNSCodec.record(fromPresentation: "example. 300 IN CERT 0 1 1 AAAA") }
    }

    @Test func codecRoundTripsEveryResponseSeed() throws {
        for (name, bytes) in try Self.seeds("fuzz-codec") where name.hasPrefix("r-") && !name.contains("bad-") {
            let message = try DNSCodec.decode(bytes)
            #expect(try DNSCodec.decode(try DNSCodec.encode(message)) == message, "\(name)")
        }
    }

    // MARK: - Responses and the caches

    /// F1: a response whose 291 SRV records each name their target with a 2-octet compression
    /// pointer to one 209-octet name. ldns decodes it (6,045 octets) and, since RFC 2782 forbids
    /// compressing SRV targets, encodes it again uncompressed: 66,090 octets, past what a DNS
    /// message can hold. Past 65,535 ldns writes RDLENGTH as 0 and still reports success; the
    /// first target's octets are chosen so that the broken bytes still scan (one RDLENGTH
    /// swallowing the rest), and CachedAnswer's UInt16 offsets then trap.
    static func srvExpansionResponse(records: Int = 291) -> [UInt8] {
        var message = Self.header(flags: 0x8400, an: UInt16(records))
        message += TestWire.name("srv.example.com") + TestWire.u16(33) + TestWire.u16(1)
        var target: [UInt8] = [63, 0x61, 0x62, 0x01, 0xAF] + [UInt8](repeating: 0x61, count: 59)
        for letter in [UInt8(ascii: "b"), UInt8(ascii: "c")] { target += [63] + [UInt8](repeating: letter, count: 63) }
        target += [0xC0, 0x0C]
        let targetOffset = message.count + 2 + 10 + 6
        message += TestWire.record(owner: [0xC0, 0x0C], type: 33, rdata: TestWire.u16(0) + TestWire.u16(0) + TestWire.u16(1) + target)
        for index in 1..<records {
            let rdata = TestWire.u16(0) + TestWire.u16(0) + TestWire.u16(UInt16(index + 1))
                + TestWire.u16(0xC000 | UInt16(targetOffset))
            message += TestWire.record(owner: [0xC0, 0x0C], type: 33, rdata: rdata)
        }
        return message
    }

    @Test func srvTargetExpansionPastSixtyFourKilobytes() throws {
        let bytes = Self.srvExpansionResponse()
        #expect(bytes.count == 6_045)
        let message = try DNSCodec.decode(bytes)
        #expect(message.answers.count == 291)
        // What ldns would write back is longer than any DNS message (the root cause of F1): the
        // codec refuses it.
        #expect(throws: CodecError.self) { try DNSCodec.encode(message) }
        // Below the line nothing is wrong: 250 records re-encode to 56,783 octets and are stored.
        let smaller = try DNSCodec.decode(Self.srvExpansionResponse(records: 250))
        let question = try #require(smaller.questions.first)
        let answer = try CachedAnswer.make(answer: smaller, question: question, authenticated: false, settings: CacheSettings())
        #expect(answer.count == 56_783)
    }

    @Test func srvTargetExpansionIsAnErrorNotATrap() throws {
        // F1, the exact reproducer (Fuzz/regressions/fuzz-response/F1-srv-target-expansion):
        // the forward path (CachedAnswer.make on the upstream message) and the recursive path
        // (classification, then the client's reply) throw `unstorable` (the client gets
        // SERVFAIL) instead of trapping in CachedAnswer.init, as they did before the fix.
        let message = try DNSCodec.decode(Self.srvExpansionResponse())
        let question = try #require(message.questions.first)
        #expect(throws: ResolutionFailure.self) {
            try CachedAnswer.make(answer: message, question: question, authenticated: false, settings: CacheSettings())
        }
        let zone = try #require(DomainName("example.com."))
        guard case .answer(let chain, let records) = ServerResponse.classify(message, question: question, zone: zone) else {
            Issue.record("the response should classify as an answer")
            return
        }
        let reply = DNSMessage(id: 0, flags: [.qr, .ra], questions: [question], answers: chain + records)
        #expect(throws: ResolutionFailure.self) {
            try CachedAnswer.make(answer: reply, question: question, authenticated: false, settings: CacheSettings())
        }
    }

    @Test func aTXTStringRunningPastItsRDATAIsMalformed() throws {
        // F8, the exact reproducer (Fuzz/regressions/fuzz-response/F8-txt-string-past-rdata): a
        // TXT whose second character-string claims 151 octets with 5 left. DNSWire's reader took
        // it as opaque, the answer was cached and served, and no client parser reads that reply.
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fuzz/regressions/fuzz-response/F8-txt-string-past-rdata")
        let bytes = [UInt8](try Data(contentsOf: url))
        #expect(throws: MalformedReason.badRDATA) { try MessageReader.decode(bytes, trailingData: .ignore) }
        let expected = ExpectedAnswer(
            id: 0x5678, question: Question(name: try #require(DomainName("example.com.")), type: .any),
            server: ServerAddress(ip: .v4(0x7F00_0035), port: 53))
        guard case .malformed = AnswerMatcher.match(bytes, expected: expected) else {
            Issue.record("the upstream answer should be refused as malformed")
            return
        }
    }

    /// F7: 288 SRV records expanding as in F1, then a TXT record sized so that the stored answer
    /// is 65,531 octets — under the codec's 65,535 — and an OPT record.
    static func tcpEdgeResponse() -> [UInt8] {
        let records = 288
        var message = Self.header(flags: 0x8400, an: UInt16(records + 1), ar: 1)
        message += TestWire.name("srv.example.com") + TestWire.u16(33) + TestWire.u16(1)
        var target: [UInt8] = []
        for letter in [UInt8(ascii: "a"), UInt8(ascii: "b"), UInt8(ascii: "c")] {
            target += [63] + [UInt8](repeating: letter, count: 63)
        }
        target += [0xC0, 0x0C]
        let targetOffset = message.count + 2 + 10 + 6
        message += TestWire.record(owner: [0xC0, 0x0C], type: 33, rdata: TestWire.u16(0) + TestWire.u16(0) + TestWire.u16(1) + target)
        for index in 1..<records {
            let rdata = TestWire.u16(0) + TestWire.u16(0) + TestWire.u16(UInt16(index + 1))
                + TestWire.u16(0xC000 | UInt16(targetOffset))
            message += TestWire.record(owner: [0xC0, 0x0C], type: 33, rdata: rdata)
        }
        message += TestWire.record(owner: [0xC0, 0x0C], type: 16, rdata: [109] + [UInt8](repeating: 0x78, count: 109))
        return message + TestWire.opt()
    }

    @Test func cachedAnswerWithOurOPTStillFitsTCP() throws {
        // F7 (Fuzz/regressions/fuzz-response/F7-tcp-reply-past-65535): the answer re-encodes to
        // 65,531 octets, which the codec allows, and is cached; served over TCP to a client with
        // EDNS it gets our 11-octet OPT: 65,542 octets, past TCP's length field. NIO's
        // LengthFieldPrepender then fails the write (promise nil): the client gets nothing and
        // waits out its timeout, for as long as the answer is cached. Now it is not cached (the
        // client gets SERVFAIL at once).
        let message = try DNSCodec.decode(Self.tcpEdgeResponse())
        let question = try #require(message.questions.first)
        #expect(throws: ResolutionFailure.self) {
            try CachedAnswer.make(answer: message, question: question, authenticated: false, settings: CacheSettings())
        }
    }

    @Test func responseSeedsSurviveEveryTruncation() throws {
        for (name, bytes) in try Self.seeds("fuzz-response") {
            let question = (try? DNSCodec.decode(bytes))?.questions.first ?? Question(name: .root, type: .a)
            for length in stride(from: 0, through: bytes.count, by: 1) {
                let prefix = Array(bytes.prefix(length))
                let expected = ExpectedAnswer(
                    id: UInt16(bytes[0]) << 8 | UInt16(bytes[1]), question: question,
                    server: ServerAddress(ip: .v4(0x7F00_0035), port: 53))
                // A message cut short is never taken for the answer.
                if case .answer = AnswerMatcher.match(prefix, expected: expected) {
                    #expect(length == bytes.count, "\(name) cut at \(length) was taken for an answer")
                }
            }
        }
    }

    @Test func outOfBailiwickRecordsAreNotBelieved() throws {
        let seeds = Dictionary(uniqueKeysWithValues: try Self.seeds("fuzz-response").map { ($0.name, $0.bytes) })
        let message = try DNSCodec.decode(try #require(seeds["out-of-bailiwick"]))
        let question = try #require(message.questions.first)
        let zone = try #require(DomainName("example.com."))
        guard case .answer(let chain, let records) = ServerResponse.classify(message, question: question, zone: zone) else {
            Issue.record("expected an answer")
            return
        }
        #expect(chain.isEmpty)
        #expect(records.allSatisfy { $0.name.isSubdomain(of: zone) })
        #expect(records.count == 1)
    }

    @Test func cachesTakeOddAnswersWithoutTrapping() throws {
        let now = NIODeadline.uptimeNanoseconds(1_000_000_000_000)
        let name = try #require(DomainName("odd.example."))
        // An SOA whose RDATA is too short for its MINIMUM field, and one with a TTL of 0.
        let shortSOA = ResourceRecord(name: name, type: .soa, ttl: 300, rdata: [0, 0, 1])
        let records = RecordCache(maxBytes: 1 << 20, maxTTL: 86_400, maxNegativeTTL: 3_600, shardCount: 1)
        records.insertNXDomain(name, authority: [shortSOA], now: now)
        records.insertNoData(name, .a, authority: [ResourceRecord(name: name, type: .soa, ttl: 0, rdata: [UInt8](repeating: 0, count: 22))], now: now)
        #expect(records.nxdomain(covering: name, now: now) == nil)
        #expect(records.noData(name, .a, now: now) == nil)
        // More RRsets than the shard holds: trimming, not growth.
        for index in 0..<5_000 {
            let owner = try #require(DomainName("n\(index).odd.example."))
            records.insert(
                [ResourceRecord(name: owner, type: .a, ttl: 60, rdata: [192, 0, 2, UInt8(truncatingIfNeeded: index)])],
                credibility: .answer, now: now)
        }
        #expect(records.bytes <= records.maxBytes)
        #expect(records.count < 5_000)
        // A failure entry rendered to a query whose name differs in length from the stored one.
        let failure = CachedAnswer.failure(question: Question(name: name, type: .a), ttl: 5)
        let query = TestQuery(name: TestWire.name("x.example")).bytes
        let view = try readQuery(query).get()
        let reply = query.withUnsafeBytes {
            failure.render(query: $0, view: view, age: 10, transport: .udp, allocator: ByteBufferAllocator())
        }
        #expect(reply.readableBytes == failure.count)
    }

    // MARK: - The config file

    @Test func deeplyNestedTOMLUpToAFewHundredLevels() throws {
        // Nesting that real files never reach but that parses: an unknown key, not a crash.
        for depth in [1, 64, 500] {
            let text = "x = " + String(repeating: "[", count: depth) + String(repeating: "]", count: depth) + "\n"
            #expect(throws: ConfigError.self) { try Config.parse(text) }
            let inline = "x = " + String(repeating: "{ a = ", count: depth) + "1" + String(repeating: " }", count: depth)
            #expect(throws: ConfigError.self) { try Config.parse(inline) }
        }
    }

    @Test func deeplyNestedTOMLIsAnErrorNotAStackOverflow() throws {
        // F3 (Fuzz/regressions/fuzz-config/F3-deep-nesting): TOMLParser.value() → array() →
        // value() recursed once per '[' (and inlineTable() once per '{') without a limit, so a
        // config (or a reload) with 100,000 of them overflowed the stack. Now: an error naming
        // the line, past 32 levels.
        for opener in ["[", "{a="] {
            let text = "x = " + String(repeating: opener, count: 100_000)
            let error = try #require(Self.configError(text))
            #expect(error.line != nil && error.message.contains("nested deeper than 32"), "\(error)")
        }
        // 32 levels still parse (and then fail as an unknown key).
        let fits = "x = " + String(repeating: "[", count: 32) + String(repeating: "]", count: 32) + "\n"
        #expect(Self.configError(fits)?.message.contains("nested") == false)
    }

    @Test func unterminatedStringsAndBadEscapes() {
        let texts = [
            "[resolver]\nmode = \"recursive\ntimeout_ms = 100\n",
            "[resolver]\nmode = 'recursive\n",
            "[resolver]\nmode = \"recursive\\",
            "[resolver]\nmode = \"\\u12\"",
            "[resolver]\nmode = \"\\uD800\"",  // a surrogate is no scalar
            "[resolver]\nmode = \"\\U0011FFFF\"",  // past Unicode
            "[resolver]\nmode = \"\\q\"",
            "[resolver]\nmode = \"\"\"multi\nline\"\"\"",
            "[resolver",
            "[[forward]\n",
            "[\"unterminated]\n",
            "x = [1, 2",
            "x = { a = 1",
            "= 1",
            "x = ",
        ]
        for text in texts {
            #expect(throws: ConfigError.self, "\(text.debugDescription)") { try Config.parse(text) }
        }
    }

    /// A forward zone, so that a config is complete but for the line under test.
    static let forward = "[[forward]]\nzone = \".\"\nservers = [\"192.0.2.53\"]\n"

    /// The error `text` (with a forward zone) gets, or nil when it parses.
    static func configError(_ text: String) -> ConfigError? {
        do throws(ConfigError) {
            _ = try Config.parse(forward + text)
            return nil
        } catch {
            return error
        }
    }

    @Test func numbersNoSettingCanHold() {
        let cases: [(String, String?)] = [
            ("[server]\nthreads = 99999999999999999999\n", nil),  // past Int64: a syntax error
            ("[server]\nthreads = -9223372036854775808\n", "server.threads"),
            ("[server]\nthreads = 0x7FFFFFFFFFFFFFFF\n", "server.threads"),
            ("[server]\nthreads = 0xFFFFFFFFFFFFFFFFF\n", nil),
            ("[cache]\nmax_bytes = 9223372036854775807\n", "cache.max_bytes"),
            ("[cache]\nmin_ttl = 1e400\n", "cache.min_ttl"),  // +inf: a float, not an integer
            ("[resolver]\nprobe_probability = nan\n", "resolver.probe_probability"),
            ("[resolver]\nprobe_probability = inf\n", "resolver.probe_probability"),
            ("[resolver]\nprobe_probability = -0.0001\n", "resolver.probe_probability"),
            ("[rate_limit]\nslip = 1_000_000_000_000_000_000\n", "rate_limit.slip"),
        ]
        for (text, key) in cases {
            let error = Self.configError(text)
            #expect(error != nil, "\(text.debugDescription) was accepted")
            #expect(error?.key == key, "\(text.debugDescription): \(String(describing: error))")
        }
        #expect(Self.configError("[server]\nthreads = 0x10\n[rate_limit]\nslip = 1_0\n") == nil)
    }

    @Test func tableShapesThatDoNotFit() {
        let texts = [
            "forward = []\n[[forward]]\nzone = \".\"\nservers = [\"192.0.2.1\"]\n[forward]\n",
            "forward = 1\n[[forward]]\n",
            "[cache]\n[[cache]]\n",
            "[server]\n[server]\n",
            "[server]\nlisten = [[\"127.0.0.1\"]]\n",
            "[[forward]]\nzone = \"a..b\"\nservers = [\"192.0.2.1\"]\n",
            "[[forward]]\nzone = \"\(String(repeating: "a", count: 64)).\"\nservers = [\"192.0.2.1\"]\n",
        ]
        for text in texts {
            #expect(throws: ConfigError.self, "\(text.debugDescription)") { try Config.parse(text) }
        }
    }

    @Test func everyConfigSeedParsesOrNamesItsError() throws {
        for (name, bytes) in try Self.seeds("fuzz-config") {
            let text = String(decoding: bytes, as: UTF8.self)
            if name.hasPrefix("errors-") || name.hasPrefix("inline-") {
                #expect(throws: ConfigError.self, "\(name)") { try Config.parse(text) }
            } else {
                #expect(throws: Never.self, "\(name)") { try Config.parse(text) }
            }
        }
    }

    // MARK: - API bodies

    static func register(_ body: String) -> Result<Member, FieldError> {
        do throws(FieldError) {
            return .success(try Registration.member(group: "web", id: "a1", body: Data(body.utf8), now: 1_700_000_000_000))
        } catch {
            return .failure(error)
        }
    }

    @Test func registrationNumbersNoFieldCanHold() {
        let bodies = [
            #"{"address":"192.0.2.1","ttl_s":1e308}"#,
            #"{"address":"192.0.2.1","ttl_s":1e400}"#,
            #"{"address":"192.0.2.1","ttl_s":-1e400}"#,
            #"{"address":"192.0.2.1","ttl_s":60.5}"#,
            #"{"address":"192.0.2.1","ttl_s":9223372036854775808}"#,
            #"{"address":"192.0.2.1","ttl_s":60,"port":65536}"#,
            #"{"address":"192.0.2.1","ttl_s":60,"port":-0.0000001}"#,
            #"{"address":"192.0.2.1","ttl_s":60,"port":80,"check":{"type":"tcp","timeout_ms":1e-320}}"#,
            #"{"address":"192.0.2.1","ttl_s":"60"}"#,
        ]
        for body in bodies {
            guard case .failure(let error) = Self.register(body) else {
                Issue.record("accepted: \(body)")
                continue
            }
            #expect(!error.field.isEmpty)
        }
        // -0 is a whole number in range: 0 is not (ttl_s starts at 1), 60.0 is 60.
        #expect((try? Self.register(#"{"address":"192.0.2.1","ttl_s":60.0}"#).get())?.ttlSeconds == 60)
    }

    @Test func malformedAndDeeplyNestedJSON() {
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        let bodies = [
            "", "{", "}", "[]", "null", "\"x\"", "{\"address\":\"192.0.2.1\",}", "{\"a\":1,\"a\":2}",
            "{\"address\":\"\\ud800\",\"ttl_s\":60}", "{\"address\":\"192.0.2.1\u{0}\",\"ttl_s\":60}",
            #"{"address":"192.0.2.1","ttl_s":60,"tags":[]"#, deep, "{\"x\":" + deep + "}",
        ]
        for body in bodies {
            #expect((try? Self.register(body).get()) == nil, "\(body.prefix(40))")
            _ = try? AdminAPI.flush(from: Data(body.utf8))
            _ = try? JSONDecoder().decode(RegistryChangeRecord.self, from: Data(body.utf8))
        }
        // Invalid UTF-8 is not JSON.
        #expect((try? Registration.member(group: "web", id: "a1", body: Data([0x7B, 0xFF, 0xFE, 0x7D]), now: 0)) == nil)
    }

    @Test func nestedJSONIsRefusedPastSixteenLevels() {
        // F4 (Fuzz/regressions/fuzz-api-json/F4-nested-arrays-400): JSONValue.init(from:) tries
        // Bool, Double and String before an array or object at every level, and each failed try
        // costs in proportion to the depth: 400 levels took 0.45 s, 511 (Foundation's limit)
        // 1.0 s, a 64 KiB body of 64 such arrays 58 s of CPU (debug build). Bodies nested deeper
        // than 16 levels are now refused before that cost builds up.
        let reproducer = String(repeating: "[", count: 400) + String(repeating: "]", count: 400)
        let wide = String(repeating: String(repeating: "[", count: 511) + String(repeating: "]", count: 511), count: 64)
        for body in [reproducer, "{\"tags\":" + reproducer + "}", "[" + wide.split(separator: "]").joined(separator: "],") + "]"] {
            #expect((try? Self.register(body).get()) == nil)
        }
        let sixteen = #"{"address":"192.0.2.1","ttl_s":60,"x":"# + String(repeating: "[", count: 14) + String(repeating: "]", count: 14) + "}"
        let seventeen = #"{"address":"192.0.2.1","ttl_s":60,"x":"# + String(repeating: "[", count: 17) + String(repeating: "]", count: 17) + "}"
        #expect(JSONValue.maxDepth == 16)
        #expect((try? JSONDecoder().decode(JSONValue.self, from: Data(sixteen.utf8))) != nil)
        #expect((try? JSONDecoder().decode(JSONValue.self, from: Data(seventeen.utf8))) == nil)
    }

    @Test func flushBodies() throws {
        #expect(try AdminAPI.flush(from: Data()) == .all)
        #expect(try AdminAPI.flush(from: Data("{}".utf8)) == .all)
        #expect(try AdminAPI.flush(from: Data(#"{"name":"Example.COM.","subtree":true}"#.utf8))
            == .subtree(try #require(DomainName("example.com."))))
        // A NUL in a name is an octet like any other (RFC 2181 §11).
        #expect(try AdminAPI.flush(from: Data(#"{"name":"a\u0000b.example"}"#.utf8)) != .all)
        for body in [#"{"subtree":true}"#, #"{"name":"a..b"}"#, #"{"name":5}"#, "[1]", #"{"name":"\#(String(repeating: "a", count: 64))"}"#] {
            #expect(throws: (any Error).self, "\(body)") { try AdminAPI.flush(from: Data(body.utf8)) }
        }
    }

    @Test func registrationWithTheLongestServiceLabelIsFoundBySRV() {
        // F2 (Fuzz/regressions/fuzz-api-json/F2-63-octet-service): a service (or tag) may be 63
        // octets, the DNS label limit, but its SRV owner `_<service>` is then 64: the member is
        // registered yet no SRV question can reach it. Registration should cap service and tags
        // at 62 octets (or the answer side find another spelling).
        let service = String(repeating: "s", count: 63)
        let body = #"{"address":"192.0.2.1","port":80,"ttl_s":60,"service":"\#(service)"}"#
        #expect((try? Self.register(body).get()) == nil, "a 63-octet service is refused")
        let tagged = #"{"address":"192.0.2.1","port":80,"ttl_s":60,"tags":["\#(service)"]}"#
        #expect((try? Self.register(tagged).get()) == nil, "a 63-octet tag is refused")
        // 62 octets: accepted and reachable.
        let fits = String(repeating: "s", count: 62)
        let accepted = try? Self.register(#"{"address":"192.0.2.1","port":80,"ttl_s":60,"service":"\#(fits)"}"#).get()
        #expect(accepted != nil)
        #expect(DomainName("_\(fits)._tcp.web.cluster.internal.") != nil)
    }

    @Test func addressesWithANULAreNotAddresses() {
        // F5: IPAddress(String) hands the text to inet_pton as a C string, which ends at the
        // first NUL, so "192.0.2.1\0anything" reads as 192.0.2.1 — in a registration (JSON
        // "\u0000") and in the config file (TOML "\u0000") alike.
        #expect(IPAddress("192.0.2.1\u{0}junk") == nil)
        #expect(ServerAddress("[::1\u{0}junk]:53") == nil)
        #expect((try? Self.register(#"{"address":"192.0.2.1\u0000junk","ttl_s":60}"#).get()) == nil)
        #expect(Self.configError("[server]\nlisten = [\"127.0.0.1\\u0000junk\"]\n") != nil)
        #expect(IPAddress("192.0.2.1junk") == nil)
    }

    @Test func registrationSeedsAreAcceptedAndSurviveTheFeed() throws {
        for (name, bytes) in try Self.seeds("fuzz-api-json") where name.hasPrefix("register-") {
            let result = Self.register(String(decoding: bytes, as: UTF8.self))
            if name.contains("bad") || name.contains("huge") || name.contains("unicode") {
                #expect((try? result.get()) == nil, "\(name)")
                continue
            }
            let member = try result.get()
            let json = try JSONEncoder().encode(RegistryChangeRecord(.put(member)))
            let change = try JSONDecoder().decode(RegistryChangeRecord.self, from: json).change()
            #expect(change == .put(member), "\(name)")
        }
    }

    // MARK: - Seeds

    @Test func querySeedsAreQueries() throws {
        for (name, bytes) in try Self.seeds("fuzz-query-reader") {
            let result = readQuery(bytes)
            switch result {
            case .success:
                #expect(!name.hasPrefix("bad-"), "\(name) should be rejected")
            case .failure(.badVersion), .failure(.notImplemented):
                #expect(name.hasPrefix("edns-version") || name.hasPrefix("opcode"), "\(name)")
            case .failure:
                #expect(name.hasPrefix("bad-"), "\(name) was rejected: \(result)")
            }
        }
    }

    @Test func responseSeedsAreResponses() throws {
        for (name, bytes) in try Self.seeds("fuzz-response") {
            if name.hasPrefix("bad-") {
                #expect(throws: CodecError.self, "\(name)") { try DNSCodec.decode(bytes) }
            } else {
                let message = try DNSCodec.decode(bytes)
                #expect(message.flags.contains(.qr), "\(name)")
            }
        }
    }
}
