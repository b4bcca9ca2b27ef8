// Recursion/RecursionMachine without sockets: each case is a table row — what the record cache
// holds, the questions the machine must ask (of which zone and servers), what comes back and when
// on a clock moved by hand, and how the resolution ends. Nothing is sent; the replies are built
// here as the scripted servers would send them.

import NIOCore
import Testing

@testable import Resolver

/// One row: a question, the cache before, the exchanges in order, the end.
struct MachineCase: CustomTestStringConvertible, Sendable {
    /// What the machine is expected to send, and what it gets back.
    struct Exchange: Sendable {
        var ask: String
        var type: RecordType = .a
        var zone: String
        var servers: [String]
        var reply: Reply
        /// Seconds since the start when the reply arrives.
        var at: Int64 = 0
    }

    enum Reply: Sendable {
        case message(rcode: ResponseCode = .noError, aa: Bool, answers: [String] = [], authorities: [String] = [],
            additionals: [String] = [])
        case failure(ResolutionFailure)
    }

    enum End: Sendable {
        case answer(chain: [String] = [], records: [String])
        case nxdomain(chain: [String] = [], authority: [String])
        case noData(authority: [String])
        case failure(ResolutionFailure)
    }

    var name: String
    var question: String
    var type: RecordType = .a
    var minimise = false
    var tune: @Sendable (inout RecursionSettings) -> Void = { _ in }
    /// Records in the cache before the question: (presentation, credibility).
    var cached: [(String, Credibility)] = []
    /// A name cached as NXDOMAIN (with example.test.'s SOA) before the question.
    var cachedNXDomain: String?
    var exchanges: [Exchange]
    var end: End

    var testDescription: String { name }
}

private let rootHint = "127.0.0.1"
private let soaExample = "example.test. 300 IN SOA ns1.example.test. nobody.invalid. 1 3600 1200 604800 60"
/// The same SOA from the negative cache: its TTL at most the MINIMUM (RFC 2308).
private let soaExampleServed = "example.test. 60 IN SOA ns1.example.test. nobody.invalid. 1 3600 1200 604800 60"

/// The referral `.` gives for test., and test. for example.test. (glue on loopback).
private let rootToTest = MachineCase.Reply.message(
    aa: false, authorities: ["test. 86400 IN NS ns1.test."], additionals: ["ns1.test. 86400 IN A 127.0.0.2"])
private let testToExample = MachineCase.Reply.message(
    aa: false, authorities: ["example.test. 3600 IN NS ns1.example.test."],
    additionals: ["ns1.example.test. 3600 IN A 127.0.0.3"])
/// example.test.'s delegation already in the cache.
private let exampleCut: [(String, Credibility)] = [
    ("example.test. 3600 IN NS ns1.example.test.", .referral), ("ns1.example.test. 3600 IN A 127.0.0.3", .glue),
]
private let otherCut: [(String, Credibility)] = [
    ("other.test. 3600 IN NS ns1.other.test.", .referral), ("ns1.other.test. 3600 IN A 127.0.0.4", .glue),
]
private let serversFailed = MachineCase.Reply.failure(
    .serversFailed(zone: .root, last: .error(ServerAddress(ip: .v4(0x7F00_0003), port: 53), .timeout)))

let machineCases: [MachineCase] = [
    MachineCase(
        name: "referrals from the root hints down to the answer",
        question: "www.example.test.",
        exchanges: [
            .init(ask: "www.example.test.", zone: ".", servers: [rootHint], reply: rootToTest),
            .init(ask: "www.example.test.", zone: "test.", servers: ["127.0.0.2"], reply: testToExample),
            .init(
                ask: "www.example.test.", zone: "example.test.", servers: ["127.0.0.3"],
                reply: .message(aa: true, answers: ["www.example.test. 300 IN A 127.0.0.80"])),
        ],
        end: .answer(records: ["www.example.test. 300 IN A 127.0.0.80"])),
    MachineCase(
        name: "a lame server (upward referral) fails the name",
        question: "www.example.test.", cached: exampleCut,
        exchanges: [
            .init(
                ask: "www.example.test.", zone: "example.test.", servers: ["127.0.0.3"],
                reply: .message(aa: false, authorities: [". 3600 IN NS a.root-servers.net."]))
        ],
        end: .failure(.lame(zone: DomainName("example.test.") ?? .root, .upwardOrSidewaysReferral(to: .root)))),
    MachineCase(
        name: "a cached cut whose servers all fail is forgotten and the parent asked again",
        question: "www.example.test.", cached: exampleCut,
        exchanges: [
            .init(ask: "www.example.test.", zone: "example.test.", servers: ["127.0.0.3"], reply: serversFailed),
            .init(ask: "www.example.test.", zone: ".", servers: [rootHint], reply: rootToTest),
            .init(
                ask: "www.example.test.", zone: "test.", servers: ["127.0.0.2"],
                reply: .message(
                    aa: false, authorities: ["example.test. 3600 IN NS ns2.example.test."],
                    additionals: ["ns2.example.test. 3600 IN A 127.0.0.5"])),
            .init(
                ask: "www.example.test.", zone: "example.test.", servers: ["127.0.0.5"],
                reply: .message(aa: true, answers: ["www.example.test. 300 IN A 127.0.0.81"])),
        ],
        end: .answer(records: ["www.example.test. 300 IN A 127.0.0.81"])),
    MachineCase(
        name: "servers of a cut from a referral all failing end the name",
        question: "www.example.test.",
        exchanges: [
            .init(ask: "www.example.test.", zone: ".", servers: [rootHint], reply: rootToTest),
            .init(ask: "www.example.test.", zone: "test.", servers: ["127.0.0.2"], reply: serversFailed),
        ],
        end: .failure(.noUsableAnswer(zone: DomainName("test.") ?? .root))),
    MachineCase(
        name: "a CNAME into another zone is followed there",
        question: "www.example.test.", cached: exampleCut + otherCut,
        exchanges: [
            .init(
                ask: "www.example.test.", zone: "example.test.", servers: ["127.0.0.3"],
                reply: .message(aa: true, answers: ["www.example.test. 300 IN CNAME web.other.test."])),
            .init(
                ask: "web.other.test.", zone: "other.test.", servers: ["127.0.0.4"],
                reply: .message(aa: true, answers: ["web.other.test. 300 IN A 127.0.0.82"])),
        ],
        end: .answer(
            chain: ["www.example.test. 300 IN CNAME web.other.test."], records: ["web.other.test. 300 IN A 127.0.0.82"])),
    MachineCase(
        name: "a CNAME loop across zones fails",
        question: "www.example.test.", cached: exampleCut + otherCut,
        exchanges: [
            .init(
                ask: "www.example.test.", zone: "example.test.", servers: ["127.0.0.3"],
                reply: .message(aa: true, answers: ["www.example.test. 300 IN CNAME web.other.test."])),
            .init(
                ask: "web.other.test.", zone: "other.test.", servers: ["127.0.0.4"],
                reply: .message(aa: true, answers: ["web.other.test. 300 IN CNAME www.example.test."])),
        ],
        end: .failure(.cnameLoop(at: DomainName("www.example.test.") ?? .root))),
    MachineCase(
        name: "a chain longer than the cap fails from the cache without a packet",
        question: "c0.example.test.", tune: { $0.maxCNAMEChain = 2 },
        cached: (0..<4).map { ("c\($0).example.test. 300 IN CNAME c\($0 + 1).example.test.", .answer) },
        exchanges: [], end: .failure(.cnameChainTooLong(limit: 2))),
    MachineCase(
        name: "a nameserver without glue is looked up first, then asked",
        question: "www.example.test.",
        cached: [("example.test. 3600 IN NS ns.other.test.", .referral)] + otherCut,
        exchanges: [
            .init(
                ask: "ns.other.test.", zone: "other.test.", servers: ["127.0.0.4"],
                reply: .message(aa: true, answers: ["ns.other.test. 300 IN A 127.0.0.6"])),
            .init(
                ask: "www.example.test.", zone: "example.test.", servers: ["127.0.0.6"],
                reply: .message(aa: true, answers: ["www.example.test. 300 IN A 127.0.0.83"])),
        ],
        end: .answer(records: ["www.example.test. 300 IN A 127.0.0.83"])),
    MachineCase(
        name: "nameservers that need each other are a loop: no packet, no address",
        question: "www.example.test.",
        cached: [
            ("example.test. 3600 IN NS ns.other.test.", .referral),
            ("other.test. 3600 IN NS ns.example.test.", .referral),
        ],
        exchanges: [], end: .failure(.noNameserverAddress(zone: DomainName("example.test.") ?? .root))),
    MachineCase(
        name: "NXDOMAIN with the zone's SOA",
        question: "nope.example.test.", cached: exampleCut,
        exchanges: [
            .init(
                ask: "nope.example.test.", zone: "example.test.", servers: ["127.0.0.3"],
                reply: .message(rcode: .nxDomain, aa: true, authorities: [soaExample]))
        ],
        end: .nxdomain(authority: [soaExample])),
    MachineCase(
        name: "below a cached NXDOMAIN nothing exists (RFC 8020): no packet",
        question: "a.nope.example.test.", cachedNXDomain: "nope.example.test.",
        // Served with every TTL at most the SOA's MINIMUM (RFC 2308).
        exchanges: [], end: .nxdomain(authority: [soaExampleServed])),
    MachineCase(
        name: "NODATA with the zone's SOA",
        question: "www.example.test.", type: .aaaa, cached: exampleCut,
        exchanges: [
            .init(
                ask: "www.example.test.", type: .aaaa, zone: "example.test.", servers: ["127.0.0.3"],
                reply: .message(aa: true, authorities: [soaExample]))
        ],
        end: .noData(authority: [soaExample])),
    MachineCase(
        name: "QNAME minimisation asks one label more per zone, through an empty non-terminal",
        question: "a.b.example.test.", minimise: true,
        exchanges: [
            .init(ask: "test.", zone: ".", servers: [rootHint], reply: rootToTest),
            .init(ask: "example.test.", zone: "test.", servers: ["127.0.0.2"], reply: testToExample),
            .init(
                ask: "b.example.test.", zone: "example.test.", servers: ["127.0.0.3"],
                reply: .message(aa: true, authorities: [soaExample])),
            .init(
                ask: "a.b.example.test.", zone: "example.test.", servers: ["127.0.0.3"],
                reply: .message(aa: true, answers: ["a.b.example.test. 300 IN A 127.0.0.84"])),
        ],
        end: .answer(records: ["a.b.example.test. 300 IN A 127.0.0.84"])),
    MachineCase(
        name: "a minimised name denied (NXDOMAIN) is asked again in full (relaxed, RFC 9156 §2.3)",
        question: "a.b.example.test.", minimise: true, cached: exampleCut,
        exchanges: [
            .init(
                ask: "b.example.test.", zone: "example.test.", servers: ["127.0.0.3"],
                reply: .message(rcode: .nxDomain, aa: true, authorities: [soaExample])),
            .init(
                ask: "a.b.example.test.", zone: "example.test.", servers: ["127.0.0.3"],
                reply: .message(aa: true, answers: ["a.b.example.test. 300 IN A 127.0.0.85"])),
        ],
        end: .answer(records: ["a.b.example.test. 300 IN A 127.0.0.85"])),
    MachineCase(
        name: "referrals past the cap fail the name",
        question: "a.b.c.d.example.test.", tune: { $0.maxReferrals = 2 }, cached: exampleCut,
        exchanges: [
            .init(
                ask: "a.b.c.d.example.test.", zone: "example.test.", servers: ["127.0.0.3"],
                reply: .message(
                    aa: false, authorities: ["d.example.test. 3600 IN NS ns.d.example.test."],
                    additionals: ["ns.d.example.test. 3600 IN A 127.0.0.7"])),
            .init(
                ask: "a.b.c.d.example.test.", zone: "d.example.test.", servers: ["127.0.0.7"],
                reply: .message(
                    aa: false, authorities: ["c.d.example.test. 3600 IN NS ns.c.d.example.test."],
                    additionals: ["ns.c.d.example.test. 3600 IN A 127.0.0.8"])),
        ],
        end: .failure(.tooManyReferrals(name: DomainName("a.b.c.d.example.test.") ?? .root, limit: 2))),
    MachineCase(
        name: "a reply after the deadline ends the resolution",
        question: "www.example.test.", cached: exampleCut,
        exchanges: [
            .init(
                ask: "www.example.test.", zone: "example.test.", servers: ["127.0.0.3"],
                reply: .message(aa: true, answers: ["www.example.test. 300 IN A 127.0.0.86"]), at: 10)
        ],
        end: .failure(.deadlinePassed)),
    MachineCase(
        name: "a spent budget inside a nameserver lookup ends the whole resolution",
        question: "www.example.test.",
        cached: [("example.test. 3600 IN NS ns.other.test.", .referral)] + otherCut,
        exchanges: [
            .init(
                ask: "ns.other.test.", zone: "other.test.", servers: ["127.0.0.4"],
                reply: .failure(.budgetSpent(maxQueries: 64)))
        ],
        end: .failure(.budgetSpent(maxQueries: 64))),
    MachineCase(
        name: "nameserver addresses on this host are not asked unless allowed",
        question: "www.example.test.", tune: { $0.queryLoopback = false }, cached: exampleCut,
        exchanges: [], end: .failure(.noNameserverAddress(zone: DomainName("example.test.") ?? .root))),
]

@Suite("RecursionMachine, table-driven")
struct RecursionMachineTests {
    static let start = NIODeadline.uptimeNanoseconds(1_000_000_000_000)

    func records(_ row: MachineCase) throws -> RecordCache {
        let records = RecordCache(maxBytes: 1 << 20, maxTTL: 86_400, maxNegativeTTL: 3_600, shardCount: 1)
        for (text, credibility) in row.cached {
            records.insert([try rr(text)], credibility: credibility, now: Self.start)
        }
        if let nxdomain = row.cachedNXDomain {
            records.insertNXDomain(try name(nxdomain), authority: [try rr(soaExample)], now: Self.start)
        }
        return records
    }

    @Test(arguments: machineCases)
    func resolves(_ row: MachineCase) throws {
        var settings = RecursionSettings()
        settings.rootHints = [try #require(ServerAddress(rootHint))]
        settings.qnameMinimisation = row.minimise
        settings.queryLoopback = true
        row.tune(&settings)
        let question = Question(name: try name(row.question), type: row.type)
        var machine = RecursionMachine(
            question: question, settings: settings, records: try records(row), deadline: Self.start + settings.deadline)

        var action = machine.start(now: Self.start)
        for (index, exchange) in row.exchanges.enumerated() {
            let asked = Question(name: try name(exchange.ask), type: exchange.type)
            let servers = try exchange.servers.map { try #require(ServerAddress($0)) }
            try #require(
                action == .send(asked, zone: try name(exchange.zone), servers: servers),
                "exchange \(index): expected \(asked) to \(exchange.zone) \(exchange.servers), got \(action)")
            let outcome: SendOutcome
            switch exchange.reply {
            case .message(let rcode, let aa, let answers, let authorities, let additionals):
                outcome = .answer(
                    try response(
                        to: asked, rcode: rcode, aa: aa, answers: answers, authorities: authorities,
                        additionals: additionals))
            case .failure(let reason):
                outcome = .failure(reason)
            }
            action = machine.receive(outcome, now: Self.start + .seconds(exchange.at))
        }
        let expected: RecursionStep
        switch row.end {
        case .answer(let chain, let found): expected = .answer(chain: try chain.map(rr), records: try found.map(rr))
        case .nxdomain(let chain, let authority):
            expected = .nxdomain(chain: try chain.map(rr), authority: try authority.map(rr))
        case .noData(let authority): expected = .noData(chain: [], authority: try authority.map(rr))
        case .failure(let reason): expected = .failure(reason)
        }
        #expect(action == .finish(expected))
        #expect(machine.depth == 0)
    }

    @Test func delegationsLearnedStartTheNextResolutionUntilTheyExpire() throws {
        var settings = RecursionSettings()
        settings.rootHints = [try #require(ServerAddress(rootHint))]
        settings.qnameMinimisation = false
        settings.queryLoopback = true
        let records = RecordCache(maxBytes: 1 << 20, maxTTL: 86_400, maxNegativeTTL: 3_600, shardCount: 1)
        func machine(_ text: String, at now: NIODeadline) throws -> RecursionMachine {
            RecursionMachine(
                question: Question(name: try name(text), type: .a), settings: settings, records: records,
                deadline: now + .seconds(10))
        }
        func reply(_ text: String, _ reply: MachineCase.Reply) throws -> SendOutcome {
            guard case .message(let rcode, let aa, let answers, let authorities, let additionals) = reply else {
                throw CancellationError()
            }
            return .answer(
                try response(
                    to: Question(name: try name(text), type: .a), rcode: rcode, aa: aa, answers: answers,
                    authorities: authorities, additionals: additionals))
        }

        var first = try machine("www.example.test.", at: Self.start)
        _ = first.start(now: Self.start)
        _ = first.receive(try reply("www.example.test.", rootToTest), now: Self.start)
        _ = first.receive(try reply("www.example.test.", testToExample), now: Self.start)

        // The next name in the zone starts at the zone's servers...
        var second = try machine("mail.example.test.", at: Self.start + .seconds(5))
        #expect(
            second.start(now: Self.start + .seconds(5))
                == .send(
                    Question(name: try name("mail.example.test."), type: .a), zone: try name("example.test."),
                    servers: [try #require(ServerAddress("127.0.0.3"))]))
        // ...until the delegation's TTL (3600 s) is over: then at test.'s (86400 s).
        var late = try machine("mail.example.test.", at: Self.start + .seconds(3601))
        #expect(
            late.start(now: Self.start + .seconds(3601))
                == .send(
                    Question(name: try name("mail.example.test."), type: .a), zone: try name("test."),
                    servers: [try #require(ServerAddress("127.0.0.2"))]))
    }
}
