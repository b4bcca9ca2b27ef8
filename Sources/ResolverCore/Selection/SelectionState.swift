// Selection/: adaptive server choice as a pure state machine. Per zone it keeps each server's
// statistics and plans every query: the lowest smoothed RTT that is not down goes first; servers
// never tried are tried in parallel until each has been measured; now and then (a probability
// per query, and at least once per interval) a random other server is asked in parallel; each
// server's retransmit time sets when the next one is asked too. Failures mark a server down with
// exponential back-off; only probes reach it then, and its next answer starts its figures anew.
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
            // Servers already waiting on a probe are left out of the first three kinds: a server
            // that answers in 150 ms would otherwise get a probe from every query until then.
            func notProbed(_ condition: (ServerStats) -> Bool) -> [ServerAddress] {
                others.filter { server in
                    guard let stats = table.servers[server], !stats.isProbed(at: now, timeout: policy.timeout) else { return false }
                    return condition(stats)
                }
            }
            if let server = notProbed({ $0.health == .unknown }).randomElement(using: &random) {
                probe = server
            } else if let server = notProbed({ stats in
                if case .down(let until, _) = stats.health { return now >= until }
                return false
            }).randomElement(using: &random) {
                probe = server
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

    /// The servers in the order they would be tried: alive ones by smoothed RTT, then untried
    /// ones in random order, then those that are down, soonest back first. With none alive, an
    /// untried server is picked at random first.
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
            case .alive(let estimate):
                alive.append((server, estimate.smoothed, index))
            case .down(let until, let estimate):
                if now < until {
                    down.append((server, until))
                } else if let estimate {
                    alive.append((server, estimate.smoothed, index))
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

    /// When to ask the next server if this one is still silent.
    package func retransmitTimeout(_ stats: ServerStats?) -> TimeAmount {
        guard let estimate = stats?.estimate else { return min(policy.unknownRTO, policy.timeout) }
        return estimate.retransmitTimeout(floor: policy.hedgeFloor, ceiling: policy.timeout)
    }

    /// Records the outcome of one attempt.
    public mutating func record(_ feedback: ServerFeedback, server: ServerAddress, zone: DomainName, now: NIODeadline) {
        guard var table = zones[zone], var stats = table.servers[server] else { return }
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
            if case .alive(var estimate) = stats.health {
                estimate.update(rtt, warmUp: policy.warmUpSamples)
                stats.health = .alive(estimate)
            } else {
                // First answer, or the first since it was down: it competes on new figures.
                stats.health = .alive(RTTEstimate(firstSample: rtt))
            }
        case .late(let after):
            // Silent past its retransmit time: count that as a slow sample (twice the wait, as
            // the answer is at least that late), so a server that stops answering loses first
            // place within a few queries instead of after the full timeout.
            if case .alive(var estimate) = stats.health {
                estimate.update(after * 2)
                stats.health = .alive(estimate)
            }
        case .mismatched:
            // Packets that failed the match prove nothing about the server (they may be forged).
            stats.errors.mismatched += 1
        case .timeout:
            stats.errors.timeouts += 1
            // A timeout is reported `timeout` after its query went out. If that was before the
            // server's last answer or its last failure, it changes nothing (the hedge's `.late`
            // sample already told against it); otherwise the server has failed.
            if let since = stats.newsSince, since >= now - policy.timeout {
                stats.queries += 1
            } else {
                markDown(&stats, now: now)
            }
        case .refused:
            stats.errors.refused += 1
            markDown(&stats, now: now)
        case .servFail:
            stats.errors.servFail += 1
            markDown(&stats, now: now)
        case .malformed:
            stats.errors.malformed += 1
            markDown(&stats, now: now)
        case .unreachable:
            stats.errors.unreachable += 1
            markDown(&stats, now: now)
        }
        table.servers[server] = stats
        zones[zone] = table
    }

    /// A failure counts as a query, penalises the estimate to the timeout and takes the server
    /// out of first place for a back-off period that doubles with each failure in a row.
    private func markDown(_ stats: inout ServerStats, now: NIODeadline) {
        stats.queries += 1
        stats.consecutiveFailures += 1
        let exponent = min(stats.consecutiveFailures - 1, 20)
        let backoff = min(policy.backoffBase.nanoseconds << exponent, policy.backoffCeiling.nanoseconds)
        var estimate = stats.estimate ?? RTTEstimate(firstSample: policy.timeout)
        estimate.penalise(atLeast: policy.timeout)
        stats.health = .down(until: now + .nanoseconds(backoff), estimate: estimate)
        stats.newsSince = now
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
