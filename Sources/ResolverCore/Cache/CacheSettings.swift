// Cache/: the cache's tunable numbers (`[cache]` keys) and the TTL rules that use them. Pure:
// given an answer's rcode and its records, how long it lives and what each TTL becomes.

/// Settings of the answer cache.
public struct CacheSettings: Sendable, Equatable {
    /// Memory for entries, counting each entry's overhead as well as its bytes (0: no cache).
    public var maxBytes = 256 << 20
    /// TTLs below this are raised (positive answers only).
    public var minTTL: UInt32 = 0
    /// TTLs above this are lowered (a day, as Unbound's cache-max-ttl).
    public var maxTTL: UInt32 = 86_400
    /// Negative answers live at most this long (RFC 2308 §5 suggests 1–3 hours).
    public var maxNegativeTTL: UInt32 = 3_600
    /// Failed resolutions answer SERVFAIL from the cache this long (RFC 9520 §3.2: at least 1 s,
    /// at most 5 minutes).
    public var failureTTL: UInt32 = 5
    /// Refresh an entry asked for in the last 10 % of its TTL, in the background.
    public var prefetch = true
    /// RFC 8767: when every server fails, answer from an expired entry.
    public var serveStale = false
    /// How long past its expiry an entry may still be served stale (RFC 8767 §5: 1–3 days).
    public var staleMaxSeconds: UInt32 = 86_400
    /// The TTL of a stale answer (RFC 8767 §4: 30 s).
    public var staleAnswerTTL: UInt32 = 30
    /// After a failure, stale answers are served without asking upstream for this long (RFC 8767
    /// §5, the "failure recheck timer").
    public var staleRecheckSeconds: UInt32 = 30

    public init() {}

    /// How long an answer lives and how its TTL fields are rewritten.
    package struct Lifetime {
        package var kind: CachedKind
        /// 0: do not store (the TTL fields are then left as they came).
        package var ttl: UInt32
        package var floor: UInt32
        package var ceiling: UInt32

        package func clamp(_ field: AnswerTTLs.Field) -> UInt32 { min(max(field.ttl, floor), ceiling) }
    }

    /// RFC 2181 §5.2 and §7.2, RFC 2308 §5: a positive answer lives as long as its shortest
    /// (clamped) TTL; NXDOMAIN and NODATA for min(SOA TTL, SOA MINIMUM, `maxNegativeTTL`), and
    /// not at all without an SOA; anything else (a referral, an odd rcode) is not stored.
    package func lifetime(rcode: ResponseCode, ttls scan: AnswerTTLs) -> Lifetime {
        let negative = rcode == .nxDomain || (rcode == .noError && scan.answerCount == 0)
        if negative {
            guard let soa = scan.soa else { return Lifetime(kind: .negative, ttl: 0, floor: 0, ceiling: .max) }
            let ttl = min(soa.ttl, soa.minimum, maxNegativeTTL)
            return Lifetime(kind: .negative, ttl: ttl, floor: 0, ceiling: ttl)
        }
        guard rcode == .noError else { return Lifetime(kind: .positive, ttl: 0, floor: 0, ceiling: .max) }
        let ceiling = max(maxTTL, minTTL)
        let shortest = scan.records.lazy.map { min(max($0.ttl, minTTL), ceiling) }.min() ?? 0
        return Lifetime(kind: .positive, ttl: shortest, floor: minTTL, ceiling: ceiling)
    }
}
