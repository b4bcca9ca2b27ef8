// Selection/: adaptive server choice as a pure state machine. Per zone it keeps each server's
// statistics and plans every query: the server expected to answer soonest goes first; servers
// never tried are tried in parallel until each has been measured; now and then (a probability
// per query, and at least once per interval) a random other server is asked in parallel.
//
// The hedging rule: a server's retransmit time (RFC 6298's RTO, from its answers only) is how long
// a query waits on it; when it is late, the next server asked is the best *other* one by expected
// answer time at that moment (`next`), and further hedges follow at that server's retransmit time.
// Lateness is kept apart from the RTT estimate: a late server is ranked as answering no sooner
// than twice the time it has been silent, so it loses first place within a few queries, but its
// retransmit time is not stretched by its silence (a stretched RTO is what made clients wait for
// a silent server before). Failures mark a server down with exponential back-off; only probes
// reach it then, spaced by the back-off from each probe's send (not from its timeout), and its
// next answer starts its figures anew. Owners of queries in flight learn of a server going down
// (`record` returns it) and ask the next server at once.
//
// Time and randomness come in as arguments, so tests drive it with a manual clock and a seed.
// Memory is bounded: servers unused past `expiry` leave their tables, zones unasked that long go
// whole, and past `maxTableBytes` (estimated per zone and per server) the zones asked least
// recently are forgotten.

import NIOCore

/// One zone's server table.
public struct ZoneSelection: Sendable, Equatable {
    public var servers: [ServerAddress: ServerStats] = [:]
    /// When a probe last went out for this zone.
    public var lastProbe: NIODeadline
    public var lastQuery: NIODeadline

    package init(now: NIODeadline) {
        lastProbe = now
        lastQuery = now
    }
}

/// A server's state as the admin view shows it.
public enum ServerState: String, Codable, Sendable, Equatable {
    /// Not asked yet, or its figures expired.
    case unknown
    case alive
    /// Failed; down until it answers again, even once its back-off has passed and it may be
    /// asked: it has not shown it works.
    case down
}

/// A server's line in the admin view.
public struct ServerReport: Sendable, Equatable {
    public var server: ServerAddress
    public var stats: ServerStats
    public var state: ServerState

    public init(server: ServerAddress, stats: ServerStats, state: ServerState) {
        self.server = server
        self.stats = stats
        self.state = state
    }
}

/// All zones' statistics and the planning logic.
public struct SelectionState: Sendable {
    public let policy: SelectionPolicy
    public private(set) var zones: [DomainName: ZoneSelection] = [:]
    private var lastSweep: NIODeadline?
    /// The tables' estimated memory (`SelectionPolicy.zoneBytes` and `serverBytes`).
    public private(set) var estimatedBytes = 0

    public init(policy: SelectionPolicy) { self.policy = policy }

    /// What one zone's table is estimated to cost.
    package static func cost(_ zone: DomainName, servers: Int) -> Int {
        SelectionPolicy.zoneBytes + zone.wire.count + servers * SelectionPolicy.serverBytes
    }

    /// Plans one query to `zone` (servers in configured order).
    public mutating func plan(
        zone: DomainName, servers: [ServerAddress], now: NIODeadline, random: inout some RandomNumberGenerator
    ) -> SelectionPlan {
        sweepIfDue(now: now)
        guard !servers.isEmpty else { return SelectionPlan(order: [], hedgeDelays: []) }
        var table = zones[zone] ?? ZoneSelection(now: now)
        for server in servers {
            if let stats = table.servers[server], now - stats.lastUsed <= policy.expiry { continue }
            // New, or unused for longer than `expiry`: nothing is known any more.
            table.servers[server] = ServerStats(now: now)
        }

        let ranked = rank(servers, in: table, now: now, random: &random)
        let primary = ranked.order[0]

        // Probe: an untried server while any is left (so a cold zone learns all its servers
        // within a few queries), else a down server whose back-off has run out (so a server that
        // returns is found within its back-off), else one measured fewer than `warmUpSamples`
        // times (so one unlucky first sample is corrected at once), else a random one with
        // `probeProbability` or when the zone has gone `probeInterval` without a probe.
        var probe: ServerAddress? = nil
        let others = servers.filter { $0 != primary }
        if !others.isEmpty {
            // Servers already waiting on a probe are left out of the untried and warm-up kinds: a
            // server that answers in 150 ms would otherwise get a probe from every query until then.
            func notProbed(_ condition: (ServerStats) -> Bool) -> [ServerAddress] {
                others.filter { server in
                    guard let stats = table.servers[server], !stats.isProbed(at: now, timeout: policy.timeout) else { return false }
                    return condition(stats)
                }
            }
            if let server = notProbed({ $0.health == .unknown }).randomElement(using: &random) {
                probe = server
            } else if let server = others.filter({ server in
                // Its back-off has run out. Not gated on an earlier probe's answer: the back-off
                // is pushed on when the probe leaves (below), so probes go out one back-off period
                // apart even while the last is unanswered, and a server that returns is found
                // within one back-off period instead of one timeout plus one.
                if case .down(let until, _)? = table.servers[server]?.health { return now >= until }
                return false
            }).randomElement(using: &random) {
                probe = server
                if var stats = table.servers[server] {
                    Self.backOffAgain(&stats, now: now, policy: policy)
                    table.servers[server] = stats
                }
            } else if let server = notProbed({ stats in
                if case .alive(let estimate) = stats.health { return estimate.samples < policy.warmUpSamples }
                return false
            }).randomElement(using: &random) {
                probe = server
            } else if Double.random(in: 0..<1, using: &random) < policy.probeProbability
                || now - table.lastProbe >= policy.probeInterval
            {
                probe = others.randomElement(using: &random)
            }
        }
        if let probe {
            table.servers[probe]?.probeSent = now
            table.lastProbe = now
        }
        table.lastQuery = now
        estimatedBytes += Self.cost(zone, servers: table.servers.count)
            - (zones[zone].map { Self.cost(zone, servers: $0.servers.count) } ?? 0)
        zones[zone] = table
        if estimatedBytes > policy.maxTableBytes { evictLeastRecentlyUsed(keeping: zone) }
        return SelectionPlan(
            order: ranked.order, probe: probe, hedgeDelays: ranked.order.map { retransmitTimeout(table.servers[$0]) })
    }

    /// The servers in the order they would be tried: alive ones by expected answer time, then
    /// untried ones in random order, then those that are down, soonest back first. With none
    /// alive, an untried server is picked at random first.
    private func rank(
        _ servers: [ServerAddress], in table: ZoneSelection, now: NIODeadline, random: inout some RandomNumberGenerator
    ) -> (order: [ServerAddress], alive: Int) {
        var alive: [(ServerAddress, Int64, Int)] = []
        var unknown: [ServerAddress] = []
        var down: [(ServerAddress, NIODeadline)] = []
        for (index, server) in servers.enumerated() {
            guard let stats = table.servers[server] else { continue }
            switch stats.health {
            case .unknown:
                unknown.append(server)
            case .alive:
                alive.append((server, Self.expectedAnswerTime(stats, now: now).nanoseconds, index))
            case .down(let until, let estimate):
                if now < until {
                    down.append((server, until))
                } else if estimate != nil {
                    alive.append((server, Self.expectedAnswerTime(stats, now: now).nanoseconds, index))
                } else {
                    unknown.append(server)
                }
            }
        }
        alive.sort { ($0.1, $0.2) < ($1.1, $1.2) }
        unknown.shuffle(using: &random)
        down.sort { $0.1 < $1.1 }
        return (alive.map(\.0) + unknown + down.map(\.0), alive.count)
    }

    /// How soon a server can be counted on to answer, for ranking: SRTT + 4·RTTVAR (its RTO before
    /// clamping — Unbound ranks by the same figure, so a server whose answers swing widely is not
    /// preferred for a lucky average), and while a query to it is late, no less than twice the
    /// time since that query left. Zero for a server never measured (ranked apart).
    package static func expectedAnswerTime(_ stats: ServerStats, now: NIODeadline) -> TimeAmount {
        guard let estimate = stats.estimate else { return .zero }
        let bound = estimate.smoothed + 4 * estimate.variance
        guard let since = stats.lateSince else { return .nanoseconds(bound) }
        return .nanoseconds(max(bound, 2 * (now - since).nanoseconds))
    }

    /// The next server to ask for a question already sent to `asked`: the best of the others by
    /// expected answer time now (not the next of the order planned when the question started —
    /// the one it named may have gone down or turned late since), with how long to wait on it
    /// before the next. Nil when every server has been asked.
    public mutating func next(
        zone: DomainName, servers: [ServerAddress], excluding asked: Set<ServerAddress>, now: NIODeadline,
        random: inout some RandomNumberGenerator
    ) -> Hedge? {
        let candidates = servers.filter { !asked.contains($0) }
        guard var table = zones[zone] else {
            // The zone's table was evicted since the plan (the byte bound): nothing is known, so
            // the next server in the caller's order, waited on as an unknown one.
            return candidates.first.map { Hedge(server: $0, delay: retransmitTimeout(nil)) }
        }
        guard let server = rank(candidates, in: table, now: now, random: &random).order.first
            ?? candidates.first
        else { return nil }
        table.servers[server]?.hedging.asked += 1
        table.servers[server]?.lastUsed = now
        let delay = retransmitTimeout(table.servers[server])
        zones[zone] = table
        return Hedge(server: server, delay: delay)
    }

    /// Counts an answer from a server asked as a hedge or failover that the client got.
    public mutating func recordHedgeWin(server: ServerAddress, zone: DomainName) {
        zones[zone]?.servers[server]?.hedging.won += 1
    }

    /// When to ask the next server if this one is still silent.
    package func retransmitTimeout(_ stats: ServerStats?) -> TimeAmount {
        guard let estimate = stats?.estimate else { return min(policy.unknownRTO, policy.timeout) }
        return estimate.retransmitTimeout(floor: policy.hedgeFloor, ceiling: policy.timeout)
    }

    /// Records the outcome of one attempt; true when it took the server down just now (queries
    /// still waiting on it should move on).
    @discardableResult
    public mutating func record(_ feedback: ServerFeedback, server: ServerAddress, zone: DomainName, now: NIODeadline) -> Bool {
        guard var table = zones[zone], var stats = table.servers[server] else { return false }
        var wentDown = false
        stats.lastUsed = now
        switch feedback {
        case .late, .mismatched: break  // not heard back from yet
        default: stats.probeSent = nil  // heard back, or given up on: it may be probed again
        }
        switch feedback {
        case .answered(let rtt):
            stats.queries += 1
            stats.consecutiveFailures = 0
            let sent = now - rtt
            stats.newsSince = max(stats.newsSince ?? sent, sent)
            stats.lateSince = nil
            if case .alive(var estimate) = stats.health {
                estimate.update(rtt, warmUp: policy.warmUpSamples)
                stats.health = .alive(estimate)
            } else {
                // First answer, or the first since it was down: it competes on new figures.
                stats.health = .alive(RTTEstimate(firstSample: rtt))
            }
        case .late(let after):
            // Silent past its retransmit time: ranked lower from now on (expectedAnswerTime), so
            // a server that stops answering loses first place within a few queries instead of
            // after the full timeout. Not an RTT sample: feeding the wait back into the estimate
            // stretched the silent server's RTO with every late query (40 ms → over 700 ms in
            // four queries), and clients that still went to it first waited that long.
            stats.hedging.late += 1
            let sent = now - after
            stats.lateSince = min(stats.lateSince ?? sent, sent)
        case .mismatched:
            // Packets that failed the match prove nothing about the server (they may be forged).
            stats.errors.mismatched += 1
        case .timeout:
            stats.errors.timeouts += 1
            // A timeout is reported `timeout` after its query went out. If that was before the
            // server's last answer or its last failure, it changes nothing (the hedge's `.late`
            // already ranked it lower); otherwise the server has failed.
            if let since = stats.newsSince, since >= now - policy.timeout {
                stats.queries += 1
            } else {
                wentDown = markDown(&stats, now: now)
            }
        case .refused:
            stats.errors.refused += 1
            wentDown = markDown(&stats, now: now)
        case .servFail:
            stats.errors.servFail += 1
            wentDown = markDown(&stats, now: now)
        case .malformed:
            stats.errors.malformed += 1
            wentDown = markDown(&stats, now: now)
        case .unreachable:
            stats.errors.unreachable += 1
            wentDown = markDown(&stats, now: now)
        }
        table.servers[server] = stats
        zones[zone] = table
        return wentDown
    }

    /// A failure counts as a query, penalises the estimate to the timeout and takes the server
    /// out of first place for a back-off period that doubles with each failure in a row; true
    /// when the server was up until now. A failure while its back-off still runs (a probe's,
    /// or a last-resort query's) adds nothing more: the probe doubled the back-off when it left.
    private func markDown(_ stats: inout ServerStats, now: NIODeadline) -> Bool {
        stats.queries += 1
        stats.lateSince = nil
        stats.newsSince = now
        guard !stats.isDown(at: now) else { return false }
        stats.consecutiveFailures += 1
        var estimate = stats.estimate ?? RTTEstimate(firstSample: policy.timeout)
        estimate.penalise(atLeast: policy.timeout)
        stats.health = .down(until: now + Self.backoff(failures: stats.consecutiveFailures, policy: policy), estimate: estimate)
        return true
    }

    /// A probe leaves for a down server whose back-off has run out: the next back-off (doubled)
    /// starts now, so the next probe follows one period later whether or not this one is
    /// answered; its timeout is then old news and does not double it again.
    private static func backOffAgain(_ stats: inout ServerStats, now: NIODeadline, policy: SelectionPolicy) {
        guard case .down(_, let estimate) = stats.health else { return }
        stats.consecutiveFailures += 1
        stats.health = .down(until: now + backoff(failures: stats.consecutiveFailures, policy: policy), estimate: estimate)
        stats.newsSince = now
    }

    /// The back-off after `failures` in a row: the base, doubled per further failure, capped.
    private static func backoff(failures: Int, policy: SelectionPolicy) -> TimeAmount {
        let exponent = min(max(failures - 1, 0), 20)
        return .nanoseconds(min(policy.backoffBase.nanoseconds << exponent, policy.backoffCeiling.nanoseconds))
    }

    /// Forgets zones not asked for `expiry`, and servers of the others not used for that long
    /// (bounded memory; their metric series go with them). Runs every quarter of `expiry`, so an
    /// idle zone or server is gone within 1.25 × `expiry`.
    private mutating func sweepIfDue(now: NIODeadline) {
        if let lastSweep, now - lastSweep < .nanoseconds(policy.expiry.nanoseconds / 4) { return }
        lastSweep = now
        var kept: [DomainName: ZoneSelection] = [:]
        var bytes = 0
        for (zone, table) in zones where now - table.lastQuery <= policy.expiry {
            var table = table
            table.servers = table.servers.filter { now - $0.value.lastUsed <= policy.expiry }
            kept[zone] = table
            bytes += Self.cost(zone, servers: table.servers.count)
        }
        zones = kept
        estimatedBytes = bytes
    }

    /// Forgets the zones asked least recently until an eighth of `maxTableBytes` is free (so
    /// eviction is not paid per plan); `keeping` is the zone being planned, kept whatever it costs.
    private mutating func evictLeastRecentlyUsed(keeping: DomainName) {
        let target = policy.maxTableBytes - policy.maxTableBytes / 8
        let oldestFirst = zones.filter { $0.key != keeping }.map { ($0.key, $0.value.lastQuery, $0.value.servers.count) }
            .sorted { $0.1 < $1.1 }
        for (zone, _, servers) in oldestFirst {
            guard estimatedBytes > target else { break }
            zones[zone] = nil
            estimatedBytes -= Self.cost(zone, servers: servers)
        }
    }

    /// Every zone's servers in selection order, for the admin view.
    public func report(now: NIODeadline) -> [(zone: DomainName, servers: [ServerReport])] {
        zones.keys.sorted().compactMap { zone in
            guard let table = zones[zone] else { return nil }
            var random = SystemRandomNumberGenerator()
            let order = rank(Array(table.servers.keys).sorted { $0.description < $1.description }, in: table, now: now, random: &random).order
            return (zone, order.compactMap { server in
                guard let stats = table.servers[server] else { return nil }
                let state: ServerState
                switch stats.health {
                case .unknown: state = .unknown
                case .alive: state = .alive
                case .down: state = .down
                }
                return ServerReport(server: server, stats: stats, state: state)
            })
        }
    }
}
