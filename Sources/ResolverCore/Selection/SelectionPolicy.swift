// Selection/: the tunable numbers of server selection, with their reasons.

import NIOCore

/// Settings for adaptive selection. Defaults follow the design; `resolver.*` keys set some.
public struct SelectionPolicy: Sendable, Equatable {
    /// A server silent this long has failed (`resolver.timeout_ms`).
    public var timeout: TimeAmount = .seconds(3)
    /// Share of queries that also go to a random other server (`resolver.probe_probability`).
    public var probeProbability: Double = 0.05
    /// A zone that keeps being asked probes at least this often (`resolver.probe_interval_s`).
    public var probeInterval: TimeAmount = .seconds(30)
    /// Statistics of a server not asked for this long are forgotten (`resolver.server_expiry_s`).
    public var expiry: TimeAmount = .minutes(15)
    /// The hedge never fires sooner than this: below it, jitter alone would double the traffic.
    public var hedgeFloor: TimeAmount = .milliseconds(50)
    /// The retransmit time of a server with no measurements yet (Unbound uses 376 ms).
    public var unknownRTO: TimeAmount = .milliseconds(400)
    /// First down period after a failure; doubles with each further failure in a row.
    public var backoffBase: TimeAmount = .seconds(1)
    /// A server is measured this many times before its estimate is averaged: until then its
    /// SRTT is its best sample, and it is probed in preference to others (see RTTEstimate).
    public var warmUpSamples = 3
    /// The longest down period.
    public var backoffCeiling: TimeAmount = .minutes(2)
    /// Memory the per-zone server tables may take, estimated (`zoneBytes` and `serverBytes`); past
    /// it, the zones asked least recently are forgotten. resolverd gives a sixteenth of
    /// `cache.max_bytes`.
    public var maxTableBytes = 16 << 20

    /// The least `maxTableBytes` resolverd gives (room for about 330 servers).
    public static let minimumTableBytes = 1 << 20
    /// A zone's table without its servers: the dictionary slot, the name and the table (plus the
    /// name's wire bytes, counted apart).
    public static let zoneBytes = 256
    /// One server's line in one zone's table, with the twelve metric series /metrics keeps for it
    /// (a counter of queries, six of errors, three of hedging, SRTT and up; about 200 bytes each
    /// in the exporter).
    public static let serverBytes = 3072

    public init() {}
}
