// Recursion/: the knobs of recursion and what each bounds; the defaults are what `[resolver]` gives.

import NIOCore

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
