// Recursion/: resolving a name from the root. For each question:
//   1. What the record cache knows decides first: the RRset itself, a CNAME to follow, or a
//      negative fact (an NXDOMAIN above the name ends it, RFC 8020).
//   2. Otherwise iterate: start at the deepest zone cut the cache knows (at worst the root: its
//      primed NS set, or the hints themselves while priming — in the background, never waited
//      for — has not worked); ask that zone's servers — ordered, hedged and probed by Selection/ per
//      zone, like forward zones — and follow referrals down, caching each delegation and its glue.
//      With QNAME minimisation (RFC 9156, relaxed) a server is asked only for the next label
//      below its zone, as an A query, until the full name is reached.
//   3. A referral's nameservers without glue are looked up as questions of their own (nested at
//      most `maxDependencyDepth` deep, a few names per referral, never one already being looked
//      up: that is a loop). Nameserver addresses on this host learned from the network are not
//      queried unless `queryLoopback` (Unbound's do-not-query-localhost).
//   4. An answer ending in a CNAME or DNAME leaving the zone is followed as a new question, at
//      most `maxCNAMEChain` links.
// Everything a client query causes is bounded: upstream packets (every one — hedges, probes,
// failovers, TCP retries, nested lookups — taken from one budget per client query), the
// nameservers and addresses taken from one zone cut, the servers asked per question, referrals,
// chain length, nested lookups, and an overall deadline, kept while waiting too (the client gets
// its SERVFAIL at the deadline even with upstream queries in flight); past any of them the client
// gets SERVFAIL.

import Logging
import NIOCore
import Synchronization

/// Recursion's knobs; the defaults are what `[resolver]` gives.
public struct RecursionSettings: Sendable, Equatable {
    /// Where iteration starts before priming.
    public var rootHints: [ServerAddress] = RootHints.iana
    /// RFC 9156: ask each server only for the next label (relaxed: fall back to the full name).
    public var qnameMinimisation = true
    /// A client query unanswered after this long gets SERVFAIL.
    public var deadline: TimeAmount = .seconds(10)
    /// Upstream packets one client query may cause: first sends, hedges, probes, failovers, TCP
    /// and EDNS-less retries, nested lookups included.
    public var maxUpstreamQueries = 64
    /// NS names of one zone cut whose addresses are used (PowerDNS's max-ns-per-resolve is 13,
    /// BIND's NS_PROCESSING_LIMIT 20): a referral to 200 nameservers is a referral to 13.
    public var maxNameserversPerCut = 13
    /// Addresses used per NS name (one of each family when it has both).
    public var maxAddressesPerNameserver = 2
    /// Servers asked for one question at one zone cut — first choice, probe, hedges and failovers
    /// (Knot Resolver retries a query at most 4 times, KR_QUERY_NSRETRY_LIMIT).
    public var maxServersPerQuestion = 4
    /// Referrals followed for one name.
    public var maxReferrals = 30
    /// CNAME/DNAME links followed for one client query.
    public var maxCNAMEChain = 12
    /// Nameserver names without glue looked up per referral (the NXNS attack's lever).
    public var maxNSLookupsPerReferral = 3
    /// Nameserver lookups nested inside nameserver lookups.
    public var maxDependencyDepth = 4
    /// RFC 9156 §2.3: minimised queries per name, at most; the rest of the labels go at once.
    public var maxMinimisedQueries = 10
    /// Query nameserver addresses on loopback or unspecified learned from the network (glue,
    /// looked-up addresses). Off, as Unbound's do-not-query-localhost: a delegation to 127.0.0.1
    /// must not make resolverd query its own host. Root hints are used whatever they are.
    public var queryLoopback = false

    public init() {}
}

/// Resolves names iteratively from the root.
public final class RecursiveResolver: Sendable {
    public let records: RecordCache
    let transactions: UpstreamTransactions
    let settings: RecursionSettings
    let logger: Logger
    /// Every TTL, expiry and deadline of resolution is read from it.
    let clock: ResolverClock
    /// Identical upstream questions to the same zone in flight at once are asked once.
    private let inFlight = Coalescer<UpstreamKey, TransactionOutcome>()

    struct UpstreamKey: Hashable, Sendable {
        let zone: DomainName
        let question: Question
    }

    /// A zone cut and how to reach its servers.
    struct Cut: Sendable {
        let zone: DomainName
        /// The NS names; their addresses are in the record cache or looked up.
        let nameservers: [DomainName]
        /// Addresses used as they are (the root hints before priming).
        let fixed: [ServerAddress]
    }

    /// One question's outcome inside a resolution.
    enum Step: Sendable {
        case answer(chain: [ResourceRecord], records: [ResourceRecord])
        case alias(chain: [ResourceRecord], target: DomainName)
        /// `authority`: the zone's SOA and its proof records, as the zone sent them.
        case nxdomain(chain: [ResourceRecord], authority: [ResourceRecord])
        case noData(chain: [ResourceRecord], authority: [ResourceRecord])
        case failure(ResolutionFailure)
    }

    public init(
        transactions: UpstreamTransactions, records: RecordCache, settings: RecursionSettings, logger: Logger,
        clock: ResolverClock = .system
    ) {
        self.transactions = transactions
        self.records = records
        self.settings = settings
        self.logger = logger
        self.clock = clock
    }

    /// Resolves a client's question: the answer message (NOERROR with records, NXDOMAIN or NODATA
    /// with the SOA), or a failure for SERVFAIL — at the deadline at the latest.
    public func resolve(_ query: UpstreamQuery) async -> Resolution {
        let budget = ResolutionBudget(settings: settings, now: clock.now(), clock: clock)
        let outcome = await withDeadline(budget.deadline) { [self] in
            await lookup(query.question, budget: budget, depth: 0)
        }
        switch outcome {
        case .failure(let reason):
            return .failure(reason)
        case .answer(let chain, let found):
            return .answer(message(query.question, .noError, answers: chain + found))
        case .alias(let chain, _):
            return .answer(message(query.question, .noError, answers: chain))
        case .nxdomain(let chain, let authority):
            return .answer(message(query.question, .nxDomain, answers: chain, authorities: shown(authority, to: query)))
        case .noData(let chain, let authority):
            return .answer(message(query.question, .noError, answers: chain, authorities: shown(authority, to: query)))
        }
    }

    /// The authority records a client gets: the DNSSEC ones (NSEC, NSEC3, RRSIG) only when it
    /// set DO (RFC 4035 §3.2.1).
    private func shown(_ authority: [ResourceRecord], to query: UpstreamQuery) -> [ResourceRecord] {
        query.dnssecOK ? authority : authority.filter { ![.nsec, .nsec3, .rrsig].contains($0.type) }
    }

    /// Asks the root hints for the root's NS set and caches it with the addresses that come along
    /// (RFC 8109). Returns whether it worked; resolution starts from the hints while it has not.
    @discardableResult
    public func prime() async -> Bool {
        let question = Question(name: .root, type: .ns)
        let budget = ResolutionBudget(settings: settings, now: clock.now(), clock: clock)
        guard case .answer(let upstream) = await ask(question, zone: .root, servers: settings.rootHints, budget: budget)
        else { return false }
        guard case .answer(_, let ns) = ServerResponse.classify(upstream, question: question, zone: .root) else {
            return false
        }
        let now = clock.now()
        let names = Set(ns.compactMap(\.targetName))
        records.insert(ns, credibility: .answer(authoritative: upstream.flags.contains(.aa)), now: now)
        records.insert(
            upstream.additionals.filter { ($0.type == .a || $0.type == .aaaa) && names.contains($0.name) },
            credibility: .glue, now: now)
        logger.debug("primed the root", metadata: ["servers": "\(names.count)"])
        return true
    }

    /// Keeps the root primed until cancelled: primes, then again when the root's NS set is about
    /// to expire; after a failure again after a back-off doubling from 1 s to 60 s. No client
    /// query waits for it: without a root NS set they start from the hints.
    public func keepPrimed() async {
        var failures = 0
        while !Task.isCancelled {
            let wait: TimeAmount
            if await prime() {
                failures = 0
                let left = records.rrset(.root, .ns, now: clock.now())?.map(\.ttl).min() ?? 0
                // A little before expiry, so that the hints are not used in between.
                wait = .seconds(Int64(max(1, min(Int(left) - Int(left) / 10, 86_400))))
            } else {
                failures += 1
                wait = Self.primingBackoff(failures: failures)
                logger.warning(
                    "priming the root failed; resolving from the hints meanwhile",
                    metadata: ["attempt": "\(failures)", "retry_in_ms": "\(wait.nanoseconds / 1_000_000)"])
            }
            do { try await Task.sleep(nanoseconds: UInt64(wait.nanoseconds)) } catch { return }
        }
    }

    /// The wait before priming again after `failures` failures in a row: 1 s, doubling, at most 60 s.
    static func primingBackoff(failures: Int) -> TimeAmount {
        .seconds(Int64(min(60, 1 << min(max(failures - 1, 0), 6))))
    }

    /// `work`'s step, or a failure at `deadline` if it is not done by then. Transactions end at
    /// the deadline themselves; this also covers waiting on work shared with another client query
    /// (coalesced questions), which keeps that query's deadline. Late work runs on to its
    /// end but sends nothing more: the budget refuses every packet past the deadline.
    private func withDeadline(_ deadline: NIODeadline, _ work: @escaping @Sendable () async -> Step) async -> Step {
        await withCheckedContinuation { (continuation: CheckedContinuation<Step, Never>) in
            let once = ResumeOnce(continuation)
            let timer = transactions.client.schedule(in: deadline - clock.now()) {
                once.resume(.failure(.deadlinePassed))
            }
            Task {
                let step = await work()
                timer.cancel()
                once.resume(step)
            }
        }
    }

    // MARK: - Resolution

    /// Resolves `question`, following CNAMEs across zones; the record cache answers what it can.
    func lookup(_ question: Question, budget: ResolutionBudget, depth: Int) async -> Step {
        var chain: [ResourceRecord] = []
        var name = question.name
        for _ in 0...settings.maxCNAMEChain {
            let current = Question(name: name, type: question.type, recordClass: question.recordClass)
            let step: Step
            if let cached = fromCache(current) {
                step = cached
            } else {
                step = await iterate(current, budget: budget, depth: depth)
            }
            switch step {
            case .answer(let links, let found):
                return .answer(chain: chain + links, records: found)
            case .alias(let links, let target):
                chain += links
                guard !chain.contains(where: { $0.name == target && $0.type == .cname }) else {
                    return .failure(.cnameLoop(at: target))
                }
                name = target
            case .nxdomain(let links, let authority):
                return .nxdomain(chain: chain + links, authority: authority)
            case .noData(let links, let authority):
                return .noData(chain: chain + links, authority: authority)
            case .failure(let reason):
                return .failure(reason)
            }
        }
        return .failure(.cnameChainTooLong(limit: settings.maxCNAMEChain))
    }

    /// What the record cache says about `question`, if enough to answer it.
    private func fromCache(_ question: Question) -> Step? {
        let now = clock.now()
        // Glue and referral NS sets lead the way but never answer a client.
        if let found = records.rrset(question.name, question.type, now: now, atLeast: .nonAuthoritativeAnswer) {
            return .answer(chain: [], records: found)
        }
        if question.type != .cname, let cname = records.rrset(question.name, .cname, now: now)?.first,
            let target = cname.targetName
        {
            return .alias(chain: [cname], target: target)
        }
        if let authority = records.nxdomain(covering: question.name, now: now) {
            return .nxdomain(chain: [], authority: authority)
        }
        if let authority = records.noData(question.name, question.type, now: now) {
            return .noData(chain: [], authority: authority)
        }
        return nil
    }

    /// Iterates from the closest known zone cut down to the servers that answer `question`.
    private func iterate(_ question: Question, budget: ResolutionBudget, depth: Int) async -> Step {
        var cut = await closestCut(for: question, budget: budget)
        // A cut taken from the cache may be stale (the zone moved to other servers): when all its
        // servers fail, it is forgotten once and the parent asked for the delegation again.
        var cutFromCache = !cut.zone.isRoot
        // The deepest name known to exist below the cut (QNAME minimisation's progress).
        var known = cut.zone
        var minimise = settings.qnameMinimisation && question.type != .ds
        var minimised = 0
        for _ in 0..<settings.maxReferrals {
            let servers = await addresses(of: cut, budget: budget, depth: depth)
            guard !servers.isEmpty else { return .failure(.noNameserverAddress(zone: cut.zone)) }

            // Names below the cut already known to exist (earlier minimised queries) are skipped.
            while minimise, question.name.labelCount > known.labelCount + 1 {
                let next = question.name.keepingLast(known.labelCount + 1)
                let now = clock.now()
                guard records.noData(next, .a, now: now) != nil || records.rrset(next, .a, now: now) != nil else { break }
                known = next
            }
            var asked = question
            if minimise, minimised < settings.maxMinimisedQueries, question.name.labelCount > known.labelCount + 1 {
                asked = Question(
                    name: question.name.keepingLast(known.labelCount + 1), type: .a, recordClass: question.recordClass)
                minimised += 1
            }
            guard case .answer(let message) = await ask(asked, zone: cut.zone, servers: servers, budget: budget) else {
                // Relaxed minimisation (RFC 9156 §2.3): a server that fails the minimised query is
                // asked the full question.
                if asked != question {
                    minimise = false
                    continue
                }
                if cutFromCache {
                    records.remove(cut.zone, .ns)
                    cut = await closestCut(for: question, budget: budget)
                    known = cut.zone
                    cutFromCache = false
                    continue
                }
                return .failure(.noUsableAnswer(zone: cut.zone))
            }
            let now = clock.now()
            let response = ServerResponse.classify(message, question: asked, zone: cut.zone)
            let rank = Credibility.answer(authoritative: message.flags.contains(.aa))
            switch response {
            case .referral(let child, let ns, let glue):
                // Only the nameservers that will be used bring their glue (a referral to 200
                // names stores 13 names' addresses).
                let used = Set(ns.compactMap(\.targetName).prefix(settings.maxNameserversPerCut))
                records.insert(ns, credibility: .referral, now: now)
                records.insert(glue.filter { used.contains($0.name) }, credibility: .glue, now: now)
                cut = Cut(zone: child, nameservers: ns.compactMap(\.targetName), fixed: [])
                known = child
                cutFromCache = false
                continue
            case .lame(let reason):
                return .failure(.lame(zone: cut.zone, reason))
            case .nxdomain where asked != question:
                // A minimised name that does not exist: relaxed mode asks the full name before
                // believing it (some servers deny empty non-terminals).
                minimise = false
                continue
            case _ where asked != question:
                // The minimised name exists inside this zone; go one label further. What was
                // learned is kept, so the next name below it starts past it.
                switch response {
                case .noData(let chain, let authority) where chain.isEmpty:
                    records.insertNoData(asked.name, asked.type, authority: authority, now: now)
                case .answer(let chain, let found):
                    records.insert(chain + found, credibility: rank, now: now)
                default:
                    break
                }
                known = asked.name
                continue
            case .answer(let chain, let found):
                records.insert(chain + found, credibility: rank, now: now)
                return .answer(chain: chain, records: found)
            case .alias(let chain, let target):
                records.insert(chain, credibility: rank, now: now)
                return .alias(chain: chain, target: target)
            case .nxdomain(let chain, let authority):
                records.insert(chain, credibility: rank, now: now)
                records.insertNXDomain(chain.last?.targetName ?? question.name, authority: authority, now: now)
                return .nxdomain(chain: chain, authority: authority)
            case .noData(let chain, let authority):
                records.insert(chain, credibility: rank, now: now)
                records.insertNoData(
                    chain.last?.targetName ?? question.name, question.type, authority: authority, now: now)
                return .noData(chain: chain, authority: authority)
            }
        }
        return .failure(.tooManyReferrals(name: question.name, limit: settings.maxReferrals))
    }

    /// The deepest zone cut above `question` with a fresh NS set; at worst the (primed) root.
    private func closestCut(for question: Question, budget: ResolutionBudget) async -> Cut {
        let now = clock.now()
        // The DS RRset lives in the parent, above the cut at its own name (RFC 4035 §3.1.4.1).
        var candidate: DomainName? = question.type == .ds ? question.name.parent : question.name
        while let zone = candidate, !zone.isRoot {
            if let ns = records.rrset(zone, .ns, now: now) {
                return Cut(zone: zone, nameservers: ns.compactMap(\.targetName), fixed: [])
            }
            candidate = zone.parent
        }
        // Priming runs in the background (keepPrimed): until it has worked, the hints are the root.
        if let ns = records.rrset(.root, .ns, now: now) {
            return Cut(zone: .root, nameservers: ns.compactMap(\.targetName), fixed: settings.rootHints)
        }
        return Cut(zone: .root, nameservers: [], fixed: settings.rootHints)
    }

    /// Addresses of `cut`'s nameservers: cached ones (glue or looked up) if any; else a few
    /// nameserver names are looked up now. The fixed addresses (root hints) stand in when none is known.
    private func addresses(of cut: Cut, budget: ResolutionBudget, depth: Int) async -> [ServerAddress] {
        let now = clock.now()
        let (known, missing) = Self.candidates(cut.nameservers, settings: settings) { name in
            (records.rrset(name, .a, now: now) ?? [], records.rrset(name, .aaaa, now: now) ?? [])
        }
        var found = known
        if !found.isEmpty { return found }
        if !cut.fixed.isEmpty { return cut.fixed }
        guard depth < settings.maxDependencyDepth else { return [] }
        // An NS name inside the zone it serves can only be reached through glue; without it,
        // looking it up would ask this same zone (a loop), so it is skipped.
        for name in missing.filter({ !$0.isSubdomain(of: cut.zone) }).prefix(settings.maxNSLookupsPerReferral) {
            let question = Question(name: name, type: .a)
            guard budget.begin(question) else { continue }
            let step = await lookup(question, budget: budget, depth: depth + 1)
            budget.end(question)
            if case .answer(_, let addresses) = step {
                found += Self.candidates([name], settings: settings) { _ in
                    (addresses.filter { $0.type == .a }, addresses.filter { $0.type == .aaaa })
                }.found
            }
            if !found.isEmpty { break }
        }
        return found
    }

    /// The nameserver addresses A and AAAA records give (authoritative servers answer on 53).
    private static func servers(_ records: [ResourceRecord]) -> [ServerAddress] {
        records.compactMap(\.address).map { ServerAddress(ip: $0, port: 53) }
    }

    /// The server addresses of a zone cut's first `maxNameserversPerCut` NS names, at most
    /// `maxAddressesPerNameserver` each (IPv4 and IPv6 taken in turn), from what `known` gives
    /// for a name (its A and AAAA records); and the names among them with no address known.
    static func candidates(
        _ nameservers: [DomainName], settings: RecursionSettings,
        known: (DomainName) -> (a: [ResourceRecord], aaaa: [ResourceRecord])
    ) -> (found: [ServerAddress], missing: [DomainName]) {
        var found: [ServerAddress] = []
        var missing: [DomainName] = []
        var seen: Set<DomainName> = []
        func usable(_ server: ServerAddress) -> Bool {
            settings.queryLoopback || !server.ip.isThisHost
        }
        for name in nameservers where seen.insert(name).inserted {
            guard seen.count <= settings.maxNameserversPerCut else { break }
            let (a, aaaa) = known(name)
            let v4 = servers(a).filter(usable)
            let v6 = servers(aaaa).filter(usable)
            guard !v4.isEmpty || !v6.isEmpty else {
                // Records known but no address to query (on this host): not looked up again.
                if a.isEmpty, aaaa.isEmpty { missing.append(name) }
                continue
            }
            var mixed: [ServerAddress] = []
            for index in 0..<max(v4.count, v6.count) where mixed.count < settings.maxAddressesPerNameserver {
                if index < v4.count { mixed.append(v4[index]) }
                if index < v6.count, mixed.count < settings.maxAddressesPerNameserver { mixed.append(v6[index]) }
            }
            found += mixed
        }
        return (found, missing)
    }

    /// One upstream question to a zone's servers, shared with identical ones in flight. A lame
    /// response counts as that server's failure and the next server is asked, up to
    /// `maxServersPerQuestion`; every packet is taken from `budget`.
    private func ask(_ question: Question, zone: DomainName, servers: [ServerAddress], budget: ResolutionBudget) async
        -> MessageOutcome
    {
        if let exhausted = budget.exhausted(now: clock.now()) { return .failure(exhausted) }
        let outcome = await inFlight.run(UpstreamKey(zone: zone, question: question)) {
            await transactions.resolve(
                // DO: the zones' signatures and denial proofs come along (kept with negative
                // answers for clients that ask with DO, and the base for validation).
                UpstreamQuery(question: question, dnssecOK: true, recursionDesired: false), zone: zone, servers: servers,
                budget: budget, maxServers: settings.maxServersPerQuestion,
                accept: { ServerResponse.classify($0, question: question, zone: zone).isUsable })
        }
        switch outcome {
        case .answer(let answer): return .answer(answer.message)
        case .failure(let reason): return .failure(reason)
        }
    }

    enum MessageOutcome {
        case answer(DNSMessage)
        case failure(ResolutionFailure)
    }

    private func message(
        _ question: Question, _ rcode: ResponseCode, answers: [ResourceRecord], authorities: [ResourceRecord] = []
    ) -> DNSMessage {
        DNSMessage(
            id: 0, flags: [.qr, .ra], rcode: rcode, questions: [question], answers: answers, authorities: authorities)
    }
}

/// What one client query may still spend, shared by the nested lookups it causes: every upstream
/// packet is taken from it, and nothing leaves past its deadline.
final class ResolutionBudget: SendBudget {
    private struct State {
        var sent = 0
        /// Nameserver lookups under way (to detect loops).
        var lookups: Set<Question> = []
    }

    private let state = Mutex(State())
    private let maxQueries: Int
    private let clock: ResolverClock
    /// No upstream query leaves after this, and the client gets SERVFAIL then at the latest.
    let deadline: NIODeadline

    init(settings: RecursionSettings, now: NIODeadline, clock: ResolverClock = .system) {
        maxQueries = settings.maxUpstreamQueries
        deadline = now + settings.deadline
        self.clock = clock
    }

    /// Takes one packet; false when the budget is spent or the deadline has passed.
    func spend() -> Bool { spend(now: clock.now()) }

    func spend(now: NIODeadline) -> Bool {
        guard now < deadline else { return false }
        return state.withLock { state in
            guard state.sent < maxQueries else { return false }
            state.sent += 1
            return true
        }
    }

    /// Packets taken so far.
    var sent: Int { state.withLock { $0.sent } }

    /// Why no packet may leave any more, or nil while one may.
    func exhausted(now: NIODeadline) -> ResolutionFailure? {
        guard now < deadline else { return .deadlinePassed }
        return state.withLock { $0.sent < maxQueries } ? nil : .budgetSpent(maxQueries: maxQueries)
    }

    /// Marks a nameserver lookup as under way; false if it already is (a dependency loop).
    func begin(_ question: Question) -> Bool { state.withLock { $0.lookups.insert(question).inserted } }

    func end(_ question: Question) { _ = state.withLock { $0.lookups.remove(question) } }
}

/// Resumes a continuation once, from whichever of two racers comes first.
private final class ResumeOnce<Value: Sendable>: Sendable {
    private let continuation: Mutex<CheckedContinuation<Value, Never>?>

    init(_ continuation: CheckedContinuation<Value, Never>) { self.continuation = Mutex(continuation) }

    func resume(_ value: Value) {
        let taken = continuation.withLock { stored in
            defer { stored = nil }
            return stored
        }
        taken?.resume(returning: value)
    }
}
