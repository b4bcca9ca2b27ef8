// Fuzz/fuzz-response: libFuzzer target for an upstream server's response, from the socket to the
// client's reply. The input is the response's bytes. It goes through AnswerMatcher.match (ID, QR,
// DNSWire's reader, the question), then both ways resolverd uses an answer:
//   - forwarding: CachedAnswer.make → AnswerCache.insert → a client's query answered from the
//     cache (fresh, in its last tenth, stale) over TCP and UDP;
//   - recursion: ServerResponse.classify as the server of a zone above the question (the zone's
//     depth comes from the ID's low bits) → RecordCache inserts, as RecursiveResolver does →
//     the client's reply built from the classification, cached and served the same way.
// Checks: classification keeps its bailiwick promises (nothing from outside the zone, referrals
// strictly downwards, glue only for the referral's nameservers), and every served reply is a
// message DNSWire reads back, carrying the stored records (TTLs aside), fitting TCP's length field or,
// over UDP, the client's limit.

import NIOCore

@testable import Resolver

private let server = ServerAddress(ip: .v4(0x7F00_0035), port: 53)
private let allocator = ByteBufferAllocator()
private let start = NIODeadline.uptimeNanoseconds(1_000_000_000_000)

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard size >= DNSHeader.length else { return 0 }
    // The question asked is the one the response carries (a server answering what it was asked);
    // without one, a fixed question, which only error responses may leave out.
    let question = (try? MessageReader.decode(bytes, trailingData: .ignore))?.questions.first
        ?? Question(name: DomainName("www.example.com.") ?? .root, type: .a)
    let expected = ExpectedAnswer(id: UInt16(bytes[0]) << 8 | UInt16(bytes[1]), question: question, server: server)
    guard case .answer(let message) = AnswerMatcher.match(bytes, expected: expected) else { return 0 }

    var settings = CacheSettings()
    settings.maxBytes = 64 << 10
    settings.serveStale = true
    settings.minTTL = UInt32(bytes[1] >> 4)  // 0...15: raised TTLs too

    // Forwarding: the answer as it came.
    store(message, question: question, settings: settings)

    // Recursion: the response of a server of `zone`.
    let depth = Int(bytes[1] & 0x07) % (question.name.labelCount + 1)
    let zone = question.name.keepingLast(depth)
    let classified = ServerResponse.classify(message, question: question, zone: zone)
    checkBailiwick(classified, question: question, zone: zone)
    let records = RecordCache(maxBytes: 1 << 20, maxTTL: 86_400, maxNegativeTTL: 3_600, shardCount: 1)
    if let reply = learn(classified, question: question, records: records) {
        store(reply, question: question, settings: settings)
    }
    records.flush(.subtree(zone))
    return 0
}

/// What RecursiveResolver.lookup does with a classified response: the record cache's inserts,
/// and the message the client gets when the resolution ends here.
private func learn(_ response: ServerResponse, question: Question, records: RecordCache) -> DNSMessage? {
    func reply(_ rcode: ResponseCode, _ answers: [ResourceRecord], _ authority: [ResourceRecord] = []) -> DNSMessage {
        DNSMessage(id: 0, flags: [.qr, .ra], rcode: rcode, questions: [question], answers: answers, authorities: authority)
    }
    switch response {
    case .referral(let cut, let ns, let glue):
        records.insert(ns, credibility: .referral, now: start)
        records.insert(glue, credibility: .glue, now: start)
        _ = records.rrset(cut, .ns, now: start)
        for name in ns.compactMap(\.targetName) {
            _ = records.rrset(name, .a, now: start)
            _ = records.rrset(name, .aaaa, now: start, atLeast: .referral)
        }
        return nil
    case .lame:
        return nil
    case .answer(let chain, let found):
        records.insert(chain + found, credibility: .answer, now: start)
        _ = records.rrset(question.name, question.type, now: start + .seconds(30))
        return reply(.noError, chain + found)
    case .alias(let chain, let target):
        records.insert(chain, credibility: .answer, now: start)
        _ = records.rrset(target, .cname, now: start)
        return reply(.noError, chain)
    case .nxdomain(let chain, let authority):
        records.insert(chain, credibility: .answer, now: start)
        records.insertNXDomain(chain.last?.targetName ?? question.name, authority: authority, now: start)
        _ = records.nxdomain(covering: question.name, now: start + .seconds(1))
        return reply(.nxDomain, chain, authority)
    case .noData(let chain, let authority):
        records.insert(chain, credibility: .answer, now: start)
        records.insertNoData(chain.last?.targetName ?? question.name, question.type, authority: authority, now: start)
        _ = records.noData(question.name, question.type, now: start + .seconds(1))
        return reply(.noError, chain, authority)
    }
}

/// The promises of ServerResponse's header comment.
private func checkBailiwick(_ response: ServerResponse, question: Question, zone: DomainName) {
    func inZone(_ records: [ResourceRecord]) -> Bool { records.allSatisfy { $0.name.isSubdomain(of: zone) } }
    switch response {
    case .answer(let chain, let records):
        check(inZone(chain) && inZone(records), "answer with a record from outside the zone")
    case .alias(let chain, _):
        check(inZone(chain), "alias chain with a record from outside the zone")
    case .nxdomain(let chain, let authority), .noData(let chain, let authority):
        check(inZone(chain) && inZone(authority), "negative answer with data from outside the zone")
        check(authority.isEmpty || authority.first?.type == .soa, "negative answer's authority without its SOA first")
    case .referral(let cut, let ns, let glue):
        check(cut != zone && cut.isSubdomain(of: zone) && question.name.isSubdomain(of: cut), "referral not downwards")
        check(ns.allSatisfy { $0.name == cut && $0.type == .ns }, "referral NS not at the cut")
        let names = Set(ns.compactMap(\.targetName))
        check(inZone(glue) && glue.allSatisfy { names.contains($0.name) }, "glue outside the zone or not for an NS")
    case .lame:
        break
    }
}

/// Stores `message` as the answer to `question` and serves it to a client, as QueryPipeline does.
private func store(_ message: DNSMessage, question: Question, settings: CacheSettings) {
    let answer: CachedAnswer
    do {
        answer = try CachedAnswer.make(
            answer: message, question: question, authenticated: message.flags.contains(.ad), settings: settings)
    } catch {
        return  // not storable (the writer refuses it): the client gets SERVFAIL
    }
    let dnssecOK = message.edns?.dnssecOK ?? false
    let query = clientQuery(question, edns: message.edns != nil, dnssecOK: dnssecOK)
    // A question no client can ask (an OPT type, a name that does not fit) ends here.
    guard let view = query.withUnsafeBytes({ try? QueryReader.read($0) }) else { return }
    let cache = AnswerCache(settings: settings, shardCount: 1)
    let key = CacheKey(question: question, view: view)
    cache.insert(answer, key: key, now: start)

    // Served right away, from the answer itself (the clients that waited on it).
    query.withUnsafeBytes { raw in
        for transport in [Transport.tcp, .udp] {
            let reply = answer.render(query: raw, view: view, age: 0, transport: transport, allocator: allocator)
            checkServed(reply, answer: answer, message: message, view: view, transport: transport)
        }
    }
    guard answer.ttl > 0 else { return }
    // From the cache: fresh, in the prefetch window, then expired (stale after a failure).
    let lifetime = Int64(answer.ttl)
    for elapsed in [Int64(0), lifetime - lifetime / 20, lifetime + 1] {
        let now = start + .seconds(elapsed)
        query.withUnsafeBytes { raw in
            if let hit = cache.answer(key: key, query: raw, view: view, transport: .tcp, now: now, allocator: allocator) {
                checkServed(hit.reply, answer: answer, message: message, view: view, transport: .tcp)
            }
            if let stale = cache.staleAnswer(key: key, query: raw, view: view, transport: .udp, now: now, allocator: allocator) {
                checkServed(stale, answer: answer, message: message, view: view, transport: .udp)
            }
        }
    }
    cache.flush(.subtree(question.name))
}

/// A reply from the cache: over UDP within the client's limit; otherwise DNSWire reads it, and it
/// holds the stored records and the client's question.
private func checkServed(
    _ reply: ByteBuffer, answer: CachedAnswer, message: DNSMessage, view: QueryView, transport: Transport
) {
    let bytes = Array(reply.readableBytesView)
    if transport == .udp {
        check(bytes.count <= ResponseBuilder.udpLimit(for: view.edns), "UDP reply over the client's limit")
    } else {
        check(bytes.count <= Int(UInt16.max), "TCP reply over 65,535 octets (the length field)")
    }
    // Read back by DNSWire's reader, strictly (nothing after the last record): what resolverd
    // serves is what it accepted. (ldns checks the inside of more opaque types than DNSWire
    // and Unbound do, CAA's tag length say; it is no oracle for replies passed through.)
    let served: DNSMessage
    do {
        served = try MessageReader.decode(bytes)
    } catch {
        fatalError("DNSWire cannot read a reply served from the cache: \(error)")
    }
    check(served.id == view.id, "reply ID is not the client's")
    if served.flags.contains(.tc) { return }
    // TTLs are rewritten (clamps, age), and names are compressed case-insensitively, so a name
    // in RDATA may come back in the letter case of an earlier occurrence (RFC 4343: the same name).
    func strip(_ records: [ResourceRecord]) -> [ResourceRecord] {
        records.map { record in
            var copy = record
            copy.ttl = 0
            copy.rdata = record.rdata.map(DomainName.lower)
            return copy
        }
    }
    check(strip(served.answers) == strip(message.answers), "served answers differ from the stored ones")
    check(strip(served.authorities) == strip(message.authorities), "served authorities differ from the stored ones")
    check(strip(served.additionals) == strip(message.additionals), "served additionals differ from the stored ones")
    check(served.rcode.rawValue & 0x0F == message.rcode.rawValue & 0x0F, "served rcode differs")
}

/// The query a client sends for `question` (RD; EDNS with DO when asked).
private func clientQuery(_ question: Question, edns: Bool, dnssecOK: Bool) -> [UInt8] {
    var query: [UInt8] = [0x42, 0x42, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, edns ? 1 : 0]
    query += question.name.wire
    query += [UInt8(question.type.rawValue >> 8), UInt8(question.type.rawValue & 0xFF)]
    query += [UInt8(question.recordClass.rawValue >> 8), UInt8(question.recordClass.rawValue & 0xFF)]
    if edns { query += [0, 0, 41, 0x04, 0xD0, 0, 0, dnssecOK ? 0x80 : 0, 0, 0, 0] }
    return query
}

private func check(_ condition: @autoclosure () -> Bool, _ message: StaticString) {
    if !condition() { fatalError("invariant: \(message)") }
}
