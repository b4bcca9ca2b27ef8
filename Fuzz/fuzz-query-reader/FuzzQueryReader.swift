// Fuzz/fuzz-query-reader: libFuzzer target for what a client's packet meets first. The input is
// one query as received; it goes through QueryReader.read and then QueryPipeline.process, the
// synchronous part of the pipeline (FORMERR/NOTIMP/BADVERS replies, refusals, the answer cache's
// hit path with its reply patching, localhost/CHAOS/cluster/RFC 6303 local answers), over UDP
// and TCP. A pre-filled cache makes hits reachable. Nothing leaves the process: a query that
// would go upstream stops at `.resolve`. Every reply is checked: a header with the client's ID
// and QR, within the UDP size limit, and — when the question was readable — a message ldns
// reads back with the client's question, byte for byte.

import Foundation
import Logging
import NIOCore
import NIOPosix

@testable import Resolver

/// The pipeline and its cache, built once per process (the fuzzer calls the entry point in a loop).
private let fixture = PipelineFixture()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: data, count: size)

    // The reader alone, with what its answer promises.
    let view: QueryView?
    do throws(QueryRejection) {
        let read = try QueryReader.read(bytes)
        check(read.nameEnd > DNSHeader.length && read.questionEnd == read.nameEnd + 4 && read.questionEnd <= size,
              "view offsets out of the packet")
        // A name the fast reader accepted must decode on the slow path into a valid name.
        guard let name = try? WireNames.read(bytes, at: DNSHeader.length) else {
            fatalError("WireNames.read failed on a name QueryReader.read accepted")
        }
        check(DomainName(wire: name.wire) != nil, "WireNames.read built an invalid name")
        view = read
    } catch {
        switch error {
        case .formErr(_, let questionEnd?): check(questionEnd <= size, "questionEnd past the packet")
        case .badVersion(let read): check(read.questionEnd <= size, "BADVERS view past the packet")
        default: break
        }
        view = nil
    }
    _ = WireNames.rcodeAndType(bytes)

    // The whole synchronous pipeline, once per transport; one query in sixteen is not permitted.
    let permitted = size < 2 || bytes[1] & 0x0F != 0x0F
    for transport in [Transport.udp, .tcp] {
        let outcome = fixture.pipeline.process(
            bytes, permitted: permitted, transport: transport, allocator: fixture.allocator)
        switch outcome {
        case .reply(let reply):
            reply.withUnsafeReadableBytes { checkReply($0, query: bytes, view: view, transport: transport) }
        case .drop:
            break
        case .resolve(let pending):
            // Would go upstream: give back the pending slot the pipeline took for it.
            fixture.pipeline.pendingLimiter.release(client: pending.client?.ip)
            check(pending.view.questionEnd <= size, "pending query's view past the packet")
        }
    }
    return 0
}

/// What every reply must be, whatever the query was.
private func checkReply(
    _ reply: UnsafeRawBufferPointer, query: UnsafeRawBufferPointer, view: QueryView?, transport: Transport
) {
    check(reply.count >= DNSHeader.length, "reply shorter than a header")
    check(reply[0] == query[0] && reply[1] == query[1], "reply ID differs from the query's")
    check(reply[2] & 0x80 != 0, "reply without QR")
    guard let view else { return }
    if transport == .udp {
        check(reply.count <= ResponseBuilder.udpLimit(for: view.edns), "UDP reply over the client's limit")
    }
    // The question was read whole: unless its name points into the header (whose bytes the reply
    // changes), ldns must read the reply, and its question must be the client's, same letters.
    guard AnswerCache.plainName(in: query, end: view.nameEnd) != nil else { return }
    let questionCount = Int(reply[4]) << 8 | Int(reply[5])
    guard questionCount == 1 else { return }
    check(reply.count >= view.questionEnd, "reply cut inside the question")
    check(reply[DNSHeader.length..<view.questionEnd].elementsEqual(query[DNSHeader.length..<view.questionEnd]),
          "reply question differs from the query's")
    do {
        _ = try DNSCodec.decode(Array(reply))
    } catch {
        fatalError("ldns cannot read a reply: \(error)")
    }
}

private func check(_ condition: @autoclosure () -> Bool, _ message: StaticString) {
    if !condition() { fatalError("invariant: \(message)") }
}

/// A pipeline as the daemon builds it in recursive mode (so RFC 6303 zones answer too), with
/// one forward zone, the cluster zone holding two members, and a cache holding a few answers.
private final class PipelineFixture: Sendable {
    let pipeline: QueryPipeline
    let allocator = ByteBufferAllocator()
    /// Upstream is never asked, but a pipeline needs a forwarder; its client owns an idle thread.
    private let client: UpstreamClient
    private let group: MultiThreadedEventLoopGroup

    init() {
        let logger = Logger(label: "fuzz", factory: { _ in SwiftLogNoOpLogHandler() })
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        client = UpstreamClient(group: group, timeout: .seconds(1), logger: logger)
        let transactions = UpstreamTransactions(
            client: client, selector: AdaptiveSelector(policy: SelectionPolicy()), logger: logger)
        let corp = DomainName("corp.example.") ?? .root
        let forwardZones = ForwardZones([(corp, [ServerAddress(ip: .v4(0x7F00_0035), port: 53)])])
        let policy = RuntimePolicy(
            access: AccessControl(allowed: [IPNetwork("0.0.0.0/0"), IPNetwork("::/0")].compactMap { $0 }),
            forwardZones: forwardZones, recursive: true, rateLimiter: nil, maxPendingPerClient: 100, queryLog: nil)

        let registry = ServiceRegistry(
            store: MirrorStore(), policy: RegistryPolicy(), clock: WallClock { 1_700_000_000_000 })
        let members = [
            #"{"address":"192.0.2.1","port":8080,"ttl_s":86400,"tags":["http"],"check":{"type":"tcp"}}"#,
            #"{"address":"2001:db8::7","port":443,"ttl_s":86400,"service":"https","proto":"udp"}"#,
        ].enumerated().compactMap { index, body in
            try? Registration.member(group: "web", id: "a\(index + 1)", body: Data(body.utf8), now: 1_700_000_000_000)
        }
        registry.mirror(all: members)

        var settings = CacheSettings()
        settings.maxBytes = 1 << 20
        settings.serveStale = true
        let cache = AnswerCache(settings: settings, shardCount: 2)
        Self.fill(cache, settings: settings)

        pipeline = QueryPipeline(
            policy: policy, forwarder: Forwarder(transactions: transactions), recursor: nil,
            local: LocalAnswers(version: "resolverd fuzz", identity: "fuzz"),
            cluster: ClusterAnswers(domain: DomainName("cluster.internal.") ?? .root, registry: registry),
            cache: cache, metrics: ResolverMetrics(), maxPending: 10_000, logger: logger)
    }

    /// Answers the seeds ask for: positive, negative, a failure, and one too big for UDP, for
    /// queries with and without DO and CD.
    private static func fill(_ cache: AnswerCache, settings: CacheSettings) {
        func record(_ text: String) -> ResourceRecord? { try? DNSCodec.record(fromPresentation: text) }
        let soa = "example.com. 3600 IN SOA ns1.example.com. hostmaster.example.com. 1 7200 3600 1209600 300"
        let big = (0..<40).map { "big.example.com. 300 IN TXT \"\(String(repeating: "x", count: 60)) \($0)\"" }
        let entries: [(String, RecordType, ResponseCode, [String], [String])] = [
            ("www.example.com.", .a, .noError, ["www.example.com. 3600 IN A 192.0.2.1", "www.example.com. 3600 IN A 192.0.2.2"], []),
            ("www.example.com.", .aaaa, .noError, ["www.example.com. 60 IN AAAA 2001:db8::1"], []),
            ("example.org.", .mx, .noError, ["example.org. 300 IN MX 10 mail.example.org."], []),
            ("alias.example.com.", .a, .noError,
             ["alias.example.com. 300 IN CNAME www.example.com.", "www.example.com. 300 IN A 192.0.2.1"], []),
            ("nope.example.com.", .a, .nxDomain, [], [soa]),
            ("example.com.", .https, .noError, [], [soa]),
            ("big.example.com.", .txt, .noError, big, []),
        ]
        let now = NIODeadline.now()
        for (owner, type, rcode, answers, authorities) in entries {
            guard let name = DomainName(owner) else { continue }
            let question = Question(name: name, type: type)
            let message = DNSMessage(
                id: 0, flags: [.qr, .aa, .ra], rcode: rcode, questions: [question],
                answers: answers.compactMap(record), authorities: authorities.compactMap(record))
            guard let answer = try? CachedAnswer.make(answer: message, question: question, authenticated: true, settings: settings)
            else { continue }
            for (dnssecOK, checkingDisabled) in [(false, false), (true, false), (false, true), (true, true)] {
                cache.insert(answer, key: CacheKey(question: question, dnssecOK: dnssecOK, checkingDisabled: checkingDisabled), now: now)
            }
        }
        if let failed = DomainName("fail.example.") {
            let question = Question(name: failed, type: .a)
            cache.insert(.failure(question: question, ttl: 300), key: CacheKey(question: question, dnssecOK: false, checkingDisabled: false), now: now)
        }
    }
}
