// Recursion/: resolving a name from the root. The decisions are RecursionMachine's (a value type
// fed replies and the time, tested without sockets); this file drives it over the network, primes
// the root, and keeps the deadline while waiting. For each question:
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
            await run(query.question, budget: budget)
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
    private func withDeadline(_ deadline: NIODeadline, _ work: @escaping @Sendable () async -> RecursionStep) async -> RecursionStep {
        await withCheckedContinuation { (continuation: CheckedContinuation<RecursionStep, Never>) in
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

    /// Drives a RecursionMachine for `question` over the network: every question it asks goes to
    /// the zone's servers (shared with identical ones in flight), its outcome back into the
    /// machine. Bounded by the budget: each send spends packets or fails, and a spent budget or a
    /// passed deadline ends the machine.
    func run(_ question: Question, budget: ResolutionBudget) async -> RecursionStep {
        var machine = RecursionMachine(
            question: question, settings: settings, records: records, deadline: budget.deadline)
        var action = machine.start(now: clock.now())
        while case .send(let asked, let zone, let servers) = action {
            let outcome = await ask(asked, zone: zone, servers: servers, budget: budget)
            action = machine.receive(outcome, now: clock.now())
        }
        guard case .finish(let step) = action else { return .failure(.noUsableAnswer(zone: .root)) }
        return step
    }

    /// One upstream question to a zone's servers, shared with identical ones in flight. A lame
    /// response counts as that server's failure and the next server is asked, up to
    /// `maxServersPerQuestion`; every packet is taken from `budget`.
    private func ask(_ question: Question, zone: DomainName, servers: [ServerAddress], budget: ResolutionBudget) async
        -> SendOutcome
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

    private func message(
        _ question: Question, _ rcode: ResponseCode, answers: [ResourceRecord], authorities: [ResourceRecord] = []
    ) -> DNSMessage {
        DNSMessage(
            id: 0, flags: [.qr, .ra], rcode: rcode, questions: [question], answers: answers, authorities: authorities)
    }
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
