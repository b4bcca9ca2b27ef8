// Scripted authoritative servers for recursion scenarios (Tests/Scenarios/*.scn), in the spirit
// of CZ.NIC's Deckard: each scenario is a small DNS hierarchy on loopback — servers holding zone
// data and answering as an authoritative server does, and scripted replies that override it for
// chosen questions (a non-authoritative answer, a referral to itself, FORMERR to EDNS, …) — and
// the client questions to ask a resolver resolving from its root. The integration tests run them
// in process against resolverd; bench/scenarios.py runs the same files through `fake-dns
// --scenario` against resolverd and Unbound and compares the answers section by section.
//
// Format, one item per line; `#` starts a comment, blank lines are skipped:
//
//   server N [noedns] [at A]  a server at host N of the scenario's /24 (127.R.S.N), port 53, or
//                             at address A instead (::1); noedns: FORMERR without OPT to
//                             every query with EDNS
//   zone                      the records after it are the server's zone data (the default)
//   entry NAME TYPE FLAG...   a scripted reply, for TYPE (or *) at NAME, or at and below X
//                             when NAME is *.X; FLAGs: aa, ra, an rcode (noerror, nxdomain,
//                             servfail, refused, formerr, notimp), drop (no reply at all)
//   answer | authority | additional
//                             the entry's records that follow go in that section
//   query NAME TYPE [do]      a client question, asked in order after the servers are up
//   expect rcode RCODE        what the reply to the last question must be: its rcode,
//   expect answer RECORD      its answer section (these records, any order, TTLs not compared;
//   expect answer none        or empty),
//   expect authority TYPE...  the types of its authority section, in order (none: empty),
//   expect ttl<= N            no TTL in it above N, or below N (ttl>= N),
//   expect within-ms N        and it came within N ms;
//   expect silent N           server N has received no query so far
//   noloopback                the resolvers run with their default of not querying nameserver
//                             addresses on loopback (without it, the scenario allows them)
//   <record>                  a record in presentation form; `$N` stands for host N's address
//
// The first matching entry wins; a question no entry matches is answered from the zone data.
// The root hints are host 1.

import Resolver

/// A scripted reply for the questions it matches.
public struct ScriptEntry: Sendable {
    /// The owner it answers for, exactly or (subtree) at and below it.
    public var name: DomainName
    public var subtree = false
    /// nil: any type.
    public var type: RecordType?
    public var flags: MessageFlags = [.qr]
    public var rcode: ResponseCode = .noError
    /// No reply at all.
    public var drop = false
    public var answers: [ResourceRecord] = []
    public var authorities: [ResourceRecord] = []
    public var additionals: [ResourceRecord] = []

    public init(name: DomainName) { self.name = name }

    func matches(_ question: Question) -> Bool {
        (type == nil || type == question.type)
            && (subtree ? question.name.isSubdomain(of: name) : question.name == name)
    }

    /// The reply to `query`: its ID, question and RD, this entry's flags, rcode and sections.
    func reply(to query: DNSMessage) -> DNSMessage {
        var flags = self.flags
        flags.insert(.qr)
        if query.flags.contains(.rd) { flags.insert(.rd) }
        return DNSMessage(
            id: query.id, flags: flags, rcode: rcode, questions: query.questions, answers: answers,
            authorities: authorities, additionals: additionals,
            edns: query.edns.map { EDNS(udpPayloadSize: 1232, dnssecOK: $0.dnssecOK) })
    }
}

/// One server of a scenario.
public struct ScenarioServer: Sendable {
    public let host: Int
    /// Where it listens instead of its host's address.
    public var address: String?
    public var zone: [ResourceRecord] = []
    public var behavior = FakeBehavior()
}

/// A client question of a scenario, and what its reply must be.
public struct ScenarioQuery: Sendable, Equatable {
    public let name: DomainName
    public let type: RecordType
    public let dnssecOK: Bool
    /// Line number in the scenario file.
    public let line: Int
    public var expectations: [Expectation] = []

    public enum Expectation: Sendable, Equatable {
        case rcode(ResponseCode)
        /// Compared without TTLs, in any order.
        case answer([ResourceRecord])
        case authorityTypes([RecordType])
        case maxTTL(UInt32)
        case minTTL(UInt32)
        /// Checked by the runner, which holds the time and the servers.
        case within(milliseconds: Int)
        case silent(host: Int)
    }

    /// What in `reply` breaks the expectations, one line each (empty: it meets them all).
    public func failures(in reply: DNSMessage) -> [String] {
        func key(_ record: ResourceRecord) -> String {
            "\(record.name.lowercased) \(record.type) \(DNSCodec.rdataPresentation(of: record))"
        }
        let ttls = (reply.answers + reply.authorities).map(\.ttl)
        var failures: [String] = []
        for expectation in expectations {
            switch expectation {
            case .rcode(let rcode) where reply.rcode != rcode:
                failures.append("rcode \(reply.rcode), expected \(rcode)")
            case .answer(let records) where records.map(key).sorted() != reply.answers.map(key).sorted():
                failures.append("answer \(reply.answers.map(key)), expected \(records.map(key))")
            case .authorityTypes(let types) where reply.authorities.map(\.type) != types:
                failures.append("authority types \(reply.authorities.map(\.type)), expected \(types)")
            case .maxTTL(let limit) where ttls.contains(where: { $0 > limit }):
                failures.append("TTLs \(ttls), expected none above \(limit)")
            case .minTTL(let limit) where ttls.contains(where: { $0 < limit }):
                failures.append("TTLs \(ttls), expected none below \(limit)")
            default:
                break
            }
        }
        return failures
    }
}

/// A parsed scenario file.
public struct Scenario: Sendable {
    public var servers: [ScenarioServer] = []
    public var queries: [ScenarioQuery] = []
    /// The resolvers keep their default of not querying nameservers on loopback.
    public var noLoopback = false

    static let rcodes: [String: ResponseCode] = [
        "noerror": .noError, "nxdomain": .nxDomain, "servfail": .servFail, "refused": .refused, "formerr": .formErr,
        "notimp": .notImp,
    ]

    /// A line that does not parse: its number and what is wrong.
    public struct ParseError: Error, CustomStringConvertible {
        public let line: Int
        public let message: String
        public var description: String { "line \(line): \(message)" }
    }

    /// Parses `text`; `address(N)` is host N's IPv4 address (it replaces `$N` in records).
    public init(_ text: String, address: (Int) -> String) throws(ParseError) {
        enum Section { case zone, answer, authority, additional }
        var section = Section.zone
        var entry: ScriptEntry? = nil
        func finishEntry() {
            if let done = entry, !servers.isEmpty { servers[servers.count - 1].behavior.script.append(done) }
            entry = nil
        }
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let number = index + 1
            let line = raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first
                .map(String.init)?.trimmingWhitespace ?? ""
            if line.isEmpty { continue }
            let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            func fail(_ message: String) -> ParseError { ParseError(line: number, message: message) }
            switch words[0].lowercased() {
            case "server":
                finishEntry()
                guard words.count >= 2, let host = Int(words[1]), (1...254).contains(host) else {
                    throw fail("server needs a host number 1-254")
                }
                var server = ScenarioServer(host: host)
                var flags = words.dropFirst(2).makeIterator()
                while let flag = flags.next() {
                    switch flag {
                    case "noedns": server.behavior.noEDNS = true
                    case "at":
                        guard let where_ = flags.next(), IPAddress(where_) != nil else { throw fail("'at' needs an address") }
                        server.address = where_
                    default: throw fail("unknown server flag '\(flag)'")
                    }
                }
                servers.append(server)
                section = .zone
            case "zone":
                finishEntry()
                section = .zone
            case "entry":
                finishEntry()
                guard !servers.isEmpty else { throw fail("entry outside a server") }
                guard words.count >= 3 else { throw fail("entry needs NAME TYPE") }
                let subtree = words[1].hasPrefix("*.")
                guard let name = DomainName(subtree ? String(words[1].dropFirst(2)) : words[1]) else {
                    throw fail("bad name '\(words[1])'")
                }
                var made = ScriptEntry(name: name)
                made.subtree = subtree
                if words[2] != "*" {
                    guard let type = RecordType(mnemonic: words[2].uppercased()) else { throw fail("bad type '\(words[2])'") }
                    made.type = type
                }
                for flag in words.dropFirst(3).map({ $0.lowercased() }) {
                    switch flag {
                    case "aa": made.flags.insert(.aa)
                    case "ra": made.flags.insert(.ra)
                    case "drop": made.drop = true
                    default:
                        guard let rcode = Self.rcodes[flag] else { throw fail("unknown entry flag '\(flag)'") }
                        made.rcode = rcode
                    }
                }
                entry = made
                section = .answer
            case "answer", "authority", "additional":
                guard entry != nil else { throw fail("\(words[0]) outside an entry") }
                section = words[0] == "answer" ? .answer : words[0] == "authority" ? .authority : .additional
            case "query":
                finishEntry()
                guard words.count >= 3, let name = DomainName(words[1]), let type = RecordType(mnemonic: words[2].uppercased())
                else { throw fail("query needs NAME TYPE") }
                queries.append(ScenarioQuery(name: name, type: type, dnssecOK: words.dropFirst(3).contains("do"), line: number))
            case "noloopback":
                noLoopback = true
            case "expect":
                finishEntry()
                guard !queries.isEmpty else { throw fail("expect before any query") }
                guard words.count >= 2 else { throw fail("expect needs what") }
                let rest = Array(words.dropFirst(2))
                let expectation: ScenarioQuery.Expectation
                switch words[1] {
                case "rcode":
                    guard let rcode = rest.first.flatMap({ Self.rcodes[$0.lowercased()] }) else { throw fail("bad rcode") }
                    expectation = .rcode(rcode)
                case "answer":
                    var records: [ResourceRecord] = []
                    if rest != ["none"] {
                        do {
                            records = [try DNSCodec.record(fromPresentation: Self.substitute(rest.joined(separator: " "), address: address))]
                        } catch {
                            throw fail("bad record: \(error)")
                        }
                    }
                    // Several `expect answer` lines make one answer section.
                    if case .answer(let earlier)? = queries[queries.count - 1].expectations.last {
                        queries[queries.count - 1].expectations.removeLast()
                        records = earlier + records
                    }
                    expectation = .answer(records)
                case "authority":
                    let types = rest == ["none"] ? [] : rest.compactMap { RecordType(mnemonic: $0.uppercased()) }
                    guard types.count == rest.count || rest == ["none"] else { throw fail("bad type in \(rest)") }
                    expectation = .authorityTypes(types)
                case "within-ms":
                    guard let limit = rest.first.flatMap({ Int($0) }) else { throw fail("bad milliseconds") }
                    expectation = .within(milliseconds: limit)
                case "silent":
                    guard let host = rest.first.flatMap({ Int($0) }) else { throw fail("bad host") }
                    expectation = .silent(host: host)
                case "ttl<=", "ttl>=":
                    guard let limit = rest.first.flatMap({ UInt32($0) }) else { throw fail("bad TTL") }
                    expectation = words[1] == "ttl<=" ? .maxTTL(limit) : .minTTL(limit)
                default:
                    throw fail("unknown expectation '\(words[1])'")
                }
                queries[queries.count - 1].expectations.append(expectation)
            default:
                guard !servers.isEmpty else { throw fail("record outside a server") }
                let text = Self.substitute(line, address: address)
                let record: ResourceRecord
                do {
                    record = try DNSCodec.record(fromPresentation: text)
                } catch {
                    throw fail("bad record '\(text)': \(error)")
                }
                switch (section, entry != nil) {
                case (.zone, _): servers[servers.count - 1].zone.append(record)
                case (.answer, true): entry?.answers.append(record)
                case (.authority, true): entry?.authorities.append(record)
                case (.additional, true): entry?.additionals.append(record)
                default: throw fail("record outside a section")
                }
            }
        }
        finishEntry()
    }

    /// `line` with every `$N` replaced by host N's address.
    static func substitute(_ line: String, address: (Int) -> String) -> String {
        var out = ""
        var index = line.startIndex
        while index < line.endIndex {
            let character = line[index]
            index = line.index(after: index)
            guard character == "$" else {
                out.append(character)
                continue
            }
            let digits = line[index...].prefix(while: \.isNumber)
            guard let host = Int(digits) else {
                out.append(character)
                continue
            }
            out += address(host)
            index = digits.endIndex
        }
        return out
    }

    /// Starts every server at its host's address, port 53 (as `address` gives them).
    public func start(address: (Int) -> String) async throws -> [Int: FakeDNSServer] {
        var started: [Int: FakeDNSServer] = [:]
        do {
            for server in servers {
                let fake = FakeDNSServer(records: server.zone, behavior: server.behavior)
                started[server.host] = fake
                _ = try await fake.start(host: server.address ?? address(server.host), port: 53)
            }
        } catch {
            for fake in started.values { await fake.stop() }
            throw error
        }
        return started
    }
}

extension String {
    fileprivate var trimmingWhitespace: String {
        var text = Substring(self)
        while let first = text.first, first == " " || first == "\t" || first == "\r" { text = text.dropFirst() }
        while let last = text.last, last == " " || last == "\t" || last == "\r" { text = text.dropLast() }
        return String(text)
    }
}
