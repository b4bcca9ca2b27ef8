// Recursion/: one client question's resolution as a value — Unbound's iterator states and Knot
// Resolver's layers as one type. The machine never sends, sleeps or reads a clock: it is told the
// time, reads and writes the record cache (a data structure that is itself told the time), and
// returns what to do next — send this question to these servers of that zone, or finish with this
// outcome. RecursiveResolver drives it over the network; unit tests drive it by hand.
//
// State: a stack of lookups. The client's question is at the bottom; a nameserver name without
// glue is looked up as a lookup of its own pushed on top of the one that needs its address (a
// question already on the stack is a dependency loop and skipped). A lookup follows its CNAME/DNAME
// chain name by name; for each name the record cache answers what it can, else an iteration
// starts at the deepest known zone cut and follows referrals down, minimising the question
// (RFC 9156, relaxed) on the way.
//
// Bounds (RecursionSettings): sends per name (`maxReferrals`), chain links (`maxCNAMEChain`),
// nameserver names looked up per cut (`maxNSLookupsPerReferral`), lookups nested
// (`maxDependencyDepth`), minimised questions per name, and the deadline, checked whenever the
// machine is told the time. Upstream packets are counted by the driver's budget: a send it
// cannot make comes back as a budget or deadline failure, which ends the whole resolution.

import NIOCore

/// One question's outcome inside a resolution.
package enum RecursionStep: Sendable, Equatable {
    case answer(chain: [ResourceRecord], records: [ResourceRecord])
    case alias(chain: [ResourceRecord], target: DomainName)
    /// `authority`: the zone's SOA and its proof records, as the zone sent them.
    case nxdomain(chain: [ResourceRecord], authority: [ResourceRecord])
    case noData(chain: [ResourceRecord], authority: [ResourceRecord])
    case failure(ResolutionFailure)
}

/// What came back for a question sent to a zone's servers.
package enum SendOutcome: Sendable, Equatable {
    case answer(DNSMessage)
    case failure(ResolutionFailure)
}

/// A zone cut and how to reach its servers.
package struct ZoneCut: Sendable, Equatable {
    package let zone: DomainName
    /// The NS names; their addresses are in the record cache or looked up.
    package let nameservers: [DomainName]
    /// Addresses used as they are (the root hints before priming).
    package let fixed: [ServerAddress]
}

/// One client question's recursion: consumes what servers said, returns the next action.
package struct RecursionMachine {
    package enum Action: Sendable, Equatable {
        /// Ask `question` of `servers`, the servers of `zone`; then call `receive`.
        case send(Question, zone: DomainName, servers: [ServerAddress])
        /// The resolution is over.
        case finish(RecursionStep)
    }

    /// Iterating one name from a zone cut down.
    private struct Iteration {
        /// The name (and the lookup's type) being resolved.
        package let question: Question
        package var cut: ZoneCut
        /// A cut from the cache may be stale (the zone moved): when all its servers fail, it is
        /// forgotten once and the parent asked for the delegation again.
        package var cutFromCache: Bool
        /// The deepest name known to exist below the cut (QNAME minimisation's progress).
        package var known: DomainName
        package var minimise: Bool
        package var minimised = 0
        /// Questions sent for this name (the referral cap).
        package var sent = 0
        /// The question sent, awaiting its outcome.
        package var asked: Question?
        /// Addresses of the cut's nameservers found by nested lookups (nameservers without glue).
        package var lookedUp: [ServerAddress] = []
        /// Nameserver names still to look up for this cut; nil until the first is needed.
        package var pendingLookups: [DomainName]?

        package init(question: Question, cut: ZoneCut, minimise: Bool) {
            self.question = question
            self.cut = cut
            cutFromCache = !cut.zone.isRoot
            known = cut.zone
            self.minimise = minimise
        }

        package mutating func enter(_ cut: ZoneCut, fromCache: Bool) {
            self.cut = cut
            cutFromCache = fromCache
            known = cut.zone
            lookedUp = []
            pendingLookups = nil
        }
    }

    /// One question followed along its CNAME chain: the client's, or a nameserver's address.
    private struct Lookup {
        package let question: Question
        package var chain: [ResourceRecord] = []
        /// The name on the chain being resolved.
        package var name: DomainName
        package var links = 0
        package var iteration: Iteration?

        package init(_ question: Question) {
            self.question = question
            name = question.name
        }
    }

    /// What the machine does next, internally.
    private enum Progress {
        case startName
        case needServers
        case nameResolved(RecursionStep)
        case lookupResolved(RecursionStep)
        case act(Action)
    }

    package let settings: RecursionSettings
    package let deadline: NIODeadline
    private let records: RecordCache
    private var lookups: [Lookup]

    package init(question: Question, settings: RecursionSettings, records: RecordCache, deadline: NIODeadline) {
        self.settings = settings
        self.records = records
        self.deadline = deadline
        lookups = [Lookup(question)]
    }

    /// Lookups under way: 1 for the client's question, more while nameservers are looked up.
    package var depth: Int { lookups.count }

    /// The first action.
    package mutating func start(now: NIODeadline) -> Action {
        guard now < deadline else { return finish(.failure(.deadlinePassed)) }
        return advance(.startName, now: now)
    }

    /// The next action, given what the last `send` brought.
    package mutating func receive(_ outcome: SendOutcome, now: NIODeadline) -> Action {
        guard now < deadline else { return finish(.failure(.deadlinePassed)) }
        guard let top = lookups.indices.last, var iteration = lookups[top].iteration, let asked = iteration.asked else {
            // Nothing was asked: a driver error, answered as a failure rather than a trap.
            return finish(.failure(.noUsableAnswer(zone: .root)))
        }
        iteration.asked = nil
        let progress: Progress
        switch outcome {
        case .failure(let reason) where Self.endsResolution(reason):
            return finish(.failure(reason))
        case .failure:
            progress = failed(asked, &iteration, now: now)
        case .answer(let message):
            progress = answered(message, asked, &iteration, now: now)
        }
        lookups[top].iteration = iteration
        return advance(progress, now: now)
    }

    /// Whether nothing more can be sent for the client query after this failure.
    private static func endsResolution(_ reason: ResolutionFailure) -> Bool {
        switch reason {
        case .deadlinePassed, .budgetSpent, .serversFailed(_, last: .budgetSpent): true
        default: false
        }
    }

    private mutating func finish(_ step: RecursionStep) -> Action {
        lookups.removeAll()
        return .finish(step)
    }

    /// Runs internal transitions until an action is due. Every transition either sends, ends a
    /// name or a lookup, or moves down a bounded structure; the loop's bound is never reached.
    private mutating func advance(_ start: Progress, now: NIODeadline) -> Action {
        var progress = start
        for _ in 0..<Self.maxTransitions {
            switch progress {
            case .act(let action):
                return action
            case .startName:
                progress = startName(now: now)
            case .needServers:
                progress = findServers(now: now)
            case .nameResolved(let step):
                progress = follow(step)
            case .lookupResolved(let step):
                let finished = lookups.removeLast()
                guard !lookups.isEmpty else { return .finish(step) }
                progress = nameserverFound(step, for: finished.question.name)
            }
        }
        return finish(.failure(.tooManyReferrals(name: lookups.first?.question.name ?? .root, limit: settings.maxReferrals)))
    }

    private static let maxTransitions = 100_000

    // MARK: Lookups

    /// The top lookup's current name: from the cache, or an iteration from the closest cut.
    private mutating func startName(now: NIODeadline) -> Progress {
        guard let top = lookups.indices.last else { return .act(finish(.failure(.noUsableAnswer(zone: .root)))) }
        let lookup = lookups[top]
        let current = Question(name: lookup.name, type: lookup.question.type, recordClass: lookup.question.recordClass)
        if let cached = fromCache(current, now: now) { return .nameResolved(cached) }
        lookups[top].iteration = Iteration(
            question: current, cut: closestCut(for: current, now: now),
            minimise: settings.qnameMinimisation && current.type != .ds)
        return .needServers
    }

    /// A name's outcome, for the lookup: follow an alias, or end the lookup.
    private mutating func follow(_ step: RecursionStep) -> Progress {
        guard let top = lookups.indices.last else { return .act(.finish(step)) }
        let chain = lookups[top].chain
        switch step {
        case .answer(let links, let found):
            return .lookupResolved(.answer(chain: chain + links, records: found))
        case .alias(let links, let target):
            lookups[top].chain += links
            guard !lookups[top].chain.contains(where: { $0.name == target && $0.type == .cname }) else {
                return .lookupResolved(.failure(.cnameLoop(at: target)))
            }
            lookups[top].links += 1
            guard lookups[top].links <= settings.maxCNAMEChain else {
                return .lookupResolved(.failure(.cnameChainTooLong(limit: settings.maxCNAMEChain)))
            }
            lookups[top].name = target
            lookups[top].iteration = nil
            return .startName
        case .nxdomain(let links, let authority):
            return .lookupResolved(.nxdomain(chain: chain + links, authority: authority))
        case .noData(let links, let authority):
            return .lookupResolved(.noData(chain: chain + links, authority: authority))
        case .failure(let reason):
            return .lookupResolved(.failure(reason))
        }
    }

    /// A nested lookup of a nameserver's address ended: its addresses serve the cut below it.
    private mutating func nameserverFound(_ step: RecursionStep, for name: DomainName) -> Progress {
        guard let top = lookups.indices.last, case .answer(_, let addresses) = step else { return .needServers }
        lookups[top].iteration?.lookedUp += Self.candidates([name], settings: settings) { _ in
            (addresses.filter { $0.type == .a }, addresses.filter { $0.type == .aaaa })
        }.found
        return .needServers
    }

    /// What the record cache says about `question`, if enough to answer it.
    private func fromCache(_ question: Question, now: NIODeadline) -> RecursionStep? {
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

    // MARK: Iteration

    /// Servers for the top iteration's cut — cached addresses, the fixed ones, or a nameserver
    /// looked up first — and the question to send them.
    private mutating func findServers(now: NIODeadline) -> Progress {
        guard let top = lookups.indices.last, var iteration = lookups[top].iteration else {
            return .act(finish(.failure(.noUsableAnswer(zone: .root))))
        }
        defer { lookups[top].iteration = iteration }
        let cut = iteration.cut
        guard iteration.sent < settings.maxReferrals else {
            return .nameResolved(.failure(.tooManyReferrals(name: iteration.question.name, limit: settings.maxReferrals)))
        }
        let (known, missing) = Self.candidates(cut.nameservers, settings: settings) { name in
            (records.rrset(name, .a, now: now) ?? [], records.rrset(name, .aaaa, now: now) ?? [])
        }
        var servers = known
        if servers.isEmpty { servers = cut.fixed }
        if servers.isEmpty { servers = iteration.lookedUp }
        if servers.isEmpty {
            // An NS name inside the zone it serves can only be reached through glue; looking it
            // up would ask this same zone (a loop), so it is skipped.
            if iteration.pendingLookups == nil {
                iteration.pendingLookups =
                    lookups.count > settings.maxDependencyDepth
                    ? [] : Array(missing.filter { !$0.isSubdomain(of: cut.zone) }.prefix(settings.maxNSLookupsPerReferral))
            }
            while let name = iteration.pendingLookups?.first {
                iteration.pendingLookups?.removeFirst()
                let question = Question(name: name, type: .a)
                // A question already being looked up below this one is a dependency loop.
                guard !lookups.contains(where: { $0.question == question }) else { continue }
                lookups.append(Lookup(question))
                return .startName
            }
            return .nameResolved(.failure(.noNameserverAddress(zone: cut.zone)))
        }

        // Names below the cut already known to exist (earlier minimised queries) are skipped.
        let question = iteration.question
        while iteration.minimise, question.name.labelCount > iteration.known.labelCount + 1 {
            let next = question.name.keepingLast(iteration.known.labelCount + 1)
            guard records.noData(next, .a, now: now) != nil || records.rrset(next, .a, now: now) != nil else { break }
            iteration.known = next
        }
        var asked = question
        if iteration.minimise, iteration.minimised < settings.maxMinimisedQueries,
            question.name.labelCount > iteration.known.labelCount + 1
        {
            asked = Question(
                name: question.name.keepingLast(iteration.known.labelCount + 1), type: .a,
                recordClass: question.recordClass)
            iteration.minimised += 1
        }
        iteration.sent += 1
        iteration.asked = asked
        return .act(.send(asked, zone: cut.zone, servers: servers))
    }

    /// The zone's servers gave nothing usable for `asked`.
    private func failed(_ asked: Question, _ iteration: inout Iteration, now: NIODeadline) -> Progress {
        // Relaxed minimisation (RFC 9156 §2.3): a server that fails the minimised query is asked
        // the full question.
        if asked != iteration.question {
            iteration.minimise = false
            return .needServers
        }
        if iteration.cutFromCache {
            records.remove(iteration.cut.zone, .ns)
            iteration.enter(closestCut(for: iteration.question, now: now), fromCache: false)
            return .needServers
        }
        return .nameResolved(.failure(.noUsableAnswer(zone: iteration.cut.zone)))
    }

    /// What a usable response to `asked` means for the iteration, and what of it is cached.
    private func answered(_ message: DNSMessage, _ asked: Question, _ iteration: inout Iteration, now: NIODeadline)
        -> Progress
    {
        let question = iteration.question
        let response = ServerResponse.classify(message, question: asked, zone: iteration.cut.zone)
        let rank = Credibility.answer(authoritative: message.flags.contains(.aa))
        switch response {
        case .referral(let child, let ns, let glue):
            // Only the nameservers that will be used bring their glue (a referral to 200 names
            // stores 13 names' addresses).
            let used = Set(ns.compactMap(\.targetName).prefix(settings.maxNameserversPerCut))
            records.insert(ns, credibility: .referral, now: now)
            records.insert(glue.filter { used.contains($0.name) }, credibility: .glue, now: now)
            iteration.enter(ZoneCut(zone: child, nameservers: ns.compactMap(\.targetName), fixed: []), fromCache: false)
            return .needServers
        case .lame(let reason):
            return .nameResolved(.failure(.lame(zone: iteration.cut.zone, reason)))
        case .nxdomain where asked != question:
            // A minimised name that does not exist: relaxed mode asks the full name before
            // believing it (some servers deny empty non-terminals).
            iteration.minimise = false
            return .needServers
        case _ where asked != question:
            // The minimised name exists inside this zone; go one label further. What was learned
            // is kept, so the next name below it starts past it.
            switch response {
            case .noData(let chain, let authority) where chain.isEmpty:
                records.insertNoData(asked.name, asked.type, authority: authority, now: now)
            case .answer(let chain, let found):
                records.insert(chain + found, credibility: rank, now: now)
            default:
                break
            }
            iteration.known = asked.name
            return .needServers
        case .answer(let chain, let found):
            records.insert(chain + found, credibility: rank, now: now)
            return .nameResolved(.answer(chain: chain, records: found))
        case .alias(let chain, let target):
            records.insert(chain, credibility: rank, now: now)
            return .nameResolved(.alias(chain: chain, target: target))
        case .nxdomain(let chain, let authority):
            records.insert(chain, credibility: rank, now: now)
            records.insertNXDomain(chain.last?.targetName ?? question.name, authority: authority, now: now)
            return .nameResolved(.nxdomain(chain: chain, authority: authority))
        case .noData(let chain, let authority):
            records.insert(chain, credibility: rank, now: now)
            records.insertNoData(chain.last?.targetName ?? question.name, question.type, authority: authority, now: now)
            return .nameResolved(.noData(chain: chain, authority: authority))
        }
    }

    /// The deepest zone cut above `question` with a fresh NS set; at worst the (primed) root.
    private func closestCut(for question: Question, now: NIODeadline) -> ZoneCut {
        // The DS RRset lives in the parent, above the cut at its own name (RFC 4035 §3.1.4.1).
        var candidate: DomainName? = question.type == .ds ? question.name.parent : question.name
        while let zone = candidate, !zone.isRoot {
            if let ns = records.rrset(zone, .ns, now: now) {
                return ZoneCut(zone: zone, nameservers: ns.compactMap(\.targetName), fixed: [])
            }
            candidate = zone.parent
        }
        // Priming runs in the background (keepPrimed): until it has worked, the hints are the root.
        let primed = records.rrset(.root, .ns, now: now)?.compactMap(\.targetName) ?? []
        return ZoneCut(zone: .root, nameservers: primed, fixed: settings.rootHints)
    }

    // MARK: Addresses

    /// The nameserver addresses A and AAAA records give (authoritative servers answer on 53).
    private static func servers(_ records: [ResourceRecord]) -> [ServerAddress] {
        records.compactMap(\.address).map { ServerAddress(ip: $0, port: 53) }
    }

    /// The server addresses of a zone cut's first `maxNameserversPerCut` NS names, at most
    /// `maxAddressesPerNameserver` each (IPv4 and IPv6 taken in turn), from what `known` gives
    /// for a name (its A and AAAA records); and the names among them with no address known.
    package static func candidates(
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
}
