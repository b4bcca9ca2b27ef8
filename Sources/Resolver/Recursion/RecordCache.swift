// Recursion/: what iteration has learned, by RRset — delegations (NS), their addresses (glue or
// looked up), and the records of answers along the way (CNAMEs, nameserver addresses) — each
// with its credibility (RFC 2181 §5.4.1), so glue never overwrites an authoritative answer. And
// the negative facts: a name that does not exist (with RFC 8020, nothing below it does either)
// and a type a name does not have (RFC 2308). The client-facing AnswerCache keeps whole replies;
// this keeps the pieces the next resolution starts from.

import NIOCore
import Synchronization

/// How much a record is believed, by where it came from (RFC 2181 §5.4.1, simplified). Data of
/// a higher rank replaces lower; lower never replaces higher while the higher is fresh.
public enum Credibility: Int, Comparable, Sendable {
    /// Additional-section data: glue for a referral's nameservers, or the addresses a root server
    /// sends with its NS set.
    case glue = 1
    /// The NS set of a referral (a parent's authority section, not authoritative for the child).
    case referral = 2
    /// The authority section of an authoritative answer (the zone's own NS and SOA).
    case authority = 3
    /// The answer section of an authoritative answer.
    case answer = 4

    public static func < (lhs: Credibility, rhs: Credibility) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// RRsets and negative facts learned by recursion, with TTLs counted down.
public final class RecordCache: Sendable {
    struct Key: Hashable {
        let name: DomainName
        let type: RecordType
    }

    struct Entry {
        var records: [ResourceRecord]
        var credibility: Credibility
        var stored: NIODeadline
        var expires: NIODeadline
    }

    struct Negative {
        /// The zone's SOA, for the client's authority section; nil when the server sent none.
        var soa: ResourceRecord?
        var stored: NIODeadline
        var expires: NIODeadline
    }

    struct Shard {
        var rrsets: [Key: Entry] = [:]
        /// Names that do not exist (RFC 8020: nor does anything below them).
        var nxdomains: [DomainName: Negative] = [:]
        /// Names without records of a type.
        var nodata: [Key: Negative] = [:]

        var count: Int { rrsets.count + nxdomains.count + nodata.count }
    }

    /// One lock per shard, in a class because a `Mutex` cannot sit in an array.
    private final class Locked: Sendable {
        let state = Mutex(Shard())
        func withLock<T>(_ body: (inout Shard) -> T) -> T { state.withLock { body(&$0) } }
    }

    private let shards: [Locked]
    private let maxEntriesPerShard: Int
    private let maxTTL: UInt32
    private let maxNegativeTTL: UInt32

    /// - Parameters:
    ///   - maxEntries: the most RRsets and negative facts kept; past it, expired ones go first.
    ///   - maxTTL, maxNegativeTTL: clamps, the same as the answer cache's.
    public init(maxEntries: Int, maxTTL: UInt32, maxNegativeTTL: UInt32, shardCount: Int = 8) {
        let count = max(1, shardCount)
        shards = (0..<count).map { _ in Locked() }
        maxEntriesPerShard = max(16, maxEntries / count)
        self.maxTTL = maxTTL
        self.maxNegativeTTL = maxNegativeTTL
    }

    private func shard(_ name: DomainName) -> Locked {
        shards[Int(UInt(bitPattern: name.hashValue) % UInt(shards.count))]
    }

    // MARK: RRsets

    /// Stores `records`, grouped into RRsets by owner and type, unless a fresh RRset of higher
    /// credibility is already there. An RRset lives as long as its shortest TTL (RFC 2181 §5.2),
    /// at most `maxTTL`; a TTL of 0 is not stored. A positive RRset ends a NODATA fact for its
    /// name and type.
    public func insert(_ records: [ResourceRecord], credibility: Credibility, now: NIODeadline) {
        var sets: [Key: [ResourceRecord]] = [:]
        for record in records {
            sets[Key(name: record.name.lowercased, type: record.type), default: []].append(record)
        }
        for (key, set) in sets {
            let ttl = min(set.map(\.ttl).min() ?? 0, maxTTL)
            guard ttl > 0 else { continue }
            let entry = Entry(
                records: Self.deduplicated(set), credibility: credibility, stored: now,
                expires: now + .seconds(Int64(ttl)))
            shard(key.name).withLock { shard in
                if let existing = shard.rrsets[key], existing.expires > now, existing.credibility > credibility { return }
                shard.rrsets[key] = entry
                shard.nodata[key] = nil
                Self.trim(&shard, limit: maxEntriesPerShard, now: now)
            }
        }
    }

    /// The fresh RRset of `name` and `type`, TTLs lowered by its age; nil when none is known, or
    /// when it is less credible than `atLeast`.
    public func rrset(_ name: DomainName, _ type: RecordType, now: NIODeadline, atLeast: Credibility = .glue)
        -> [ResourceRecord]?
    {
        let key = Key(name: name.lowercased, type: type)
        guard let entry = shard(key.name).withLock({ $0.rrsets[key] }), entry.expires > now, entry.credibility >= atLeast
        else { return nil }
        let age = UInt32(clamping: (now - entry.stored).nanoseconds / 1_000_000_000)
        return entry.records.map { record in
            var aged = record
            aged.ttl = record.ttl > age ? record.ttl - age : 0
            return aged
        }
    }

    /// Forgets one RRset (a delegation whose servers all failed, to be asked for again).
    func remove(_ name: DomainName, _ type: RecordType) {
        let key = Key(name: name.lowercased, type: type)
        shard(key.name).withLock { _ = $0.rrsets.removeValue(forKey: key) }
    }

    // MARK: Negative facts

    /// Records that `name` does not exist, for min(SOA TTL, SOA MINIMUM) (RFC 2308 §5), at most
    /// `maxNegativeTTL`, which is also the TTL the SOA is served with (§3); without an SOA
    /// nothing is stored.
    public func insertNXDomain(_ name: DomainName, soa: ResourceRecord?, now: NIODeadline) {
        guard let ttl = negativeTTL(soa), ttl > 0 else { return }
        let key = name.lowercased
        shard(key).withLock { shard in
            shard.nxdomains[key] = Negative(soa: soa?.withTTL(ttl), stored: now, expires: now + .seconds(Int64(ttl)))
            Self.trim(&shard, limit: maxEntriesPerShard, now: now)
        }
    }

    /// Records that `name` has no records of `type` (NODATA).
    public func insertNoData(_ name: DomainName, _ type: RecordType, soa: ResourceRecord?, now: NIODeadline) {
        guard let ttl = negativeTTL(soa), ttl > 0 else { return }
        let key = Key(name: name.lowercased, type: type)
        shard(key.name).withLock { shard in
            shard.nodata[key] = Negative(soa: soa?.withTTL(ttl), stored: now, expires: now + .seconds(Int64(ttl)))
            Self.trim(&shard, limit: maxEntriesPerShard, now: now)
        }
    }

    /// When `name` or one of its ancestors is known not to exist (RFC 8020 §2), the SOA that
    /// said so, with its TTL lowered by age. The outer optional is nil when nothing is known.
    public func nxdomain(covering name: DomainName, now: NIODeadline) -> ResourceRecord?? {
        var candidate: DomainName? = name.lowercased
        while let current = candidate, !current.isRoot {
            if let fact = shard(current).withLock({ $0.nxdomains[current] }), fact.expires > now {
                return .some(Self.aged(fact, now: now))
            }
            candidate = current.parent
        }
        return nil
    }

    /// When `name` is known to have no records of `type`, the SOA that said so.
    public func noData(_ name: DomainName, _ type: RecordType, now: NIODeadline) -> ResourceRecord?? {
        let key = Key(name: name.lowercased, type: type)
        guard let fact = shard(key.name).withLock({ $0.nodata[key] }), fact.expires > now else { return nil }
        return .some(Self.aged(fact, now: now))
    }

    // MARK: Upkeep

    /// Removes what `flush` names (the admin API's cache flush); returns how many entries went.
    @discardableResult
    public func flush(_ flush: CacheFlush) -> Int {
        func matches(_ name: DomainName) -> Bool {
            switch flush {
            case .all: true
            case .name(let target): name == target
            case .subtree(let zone): name.isSubdomain(of: zone)
            }
        }
        return shards.reduce(0) { total, shard in
            total + shard.withLock { shard in
                let before = shard.count
                shard.rrsets = shard.rrsets.filter { !matches($0.key.name) }
                shard.nxdomains = shard.nxdomains.filter { !matches($0.key) }
                shard.nodata = shard.nodata.filter { !matches($0.key.name) }
                return before - shard.count
            }
        }
    }

    /// RRsets and negative facts held (expired ones included until trimmed).
    public var count: Int { shards.reduce(0) { $0 + $1.withLock { $0.count } } }

    private func negativeTTL(_ soa: ResourceRecord?) -> UInt32? {
        guard let soa, soa.type == .soa, soa.rdata.count >= 4 else { return nil }
        let tail = soa.rdata.suffix(4)
        let minimum = tail.reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        return min(soa.ttl, minimum, maxNegativeTTL)
    }

    private static func aged(_ fact: Negative, now: NIODeadline) -> ResourceRecord? {
        guard var soa = fact.soa else { return nil }
        let age = UInt32(clamping: (now - fact.stored).nanoseconds / 1_000_000_000)
        soa.ttl = soa.ttl > age ? soa.ttl - age : 0
        return soa
    }

    private static func deduplicated(_ records: [ResourceRecord]) -> [ResourceRecord] {
        var seen: Set<[UInt8]> = []
        return records.filter { seen.insert($0.rdata).inserted }
    }

    /// Keeps a shard under `limit`: expired entries go first, then an arbitrary eighth.
    private static func trim(_ shard: inout Shard, limit: Int, now: NIODeadline) {
        guard shard.count > limit else { return }
        shard.rrsets = shard.rrsets.filter { $0.value.expires > now }
        shard.nxdomains = shard.nxdomains.filter { $0.value.expires > now }
        shard.nodata = shard.nodata.filter { $0.value.expires > now }
        guard shard.count > limit else { return }
        let excess = shard.count - limit + limit / 8
        for key in shard.rrsets.keys.prefix(excess) { shard.rrsets[key] = nil }
        for key in shard.nodata.keys.prefix(max(0, shard.count - limit)) { shard.nodata[key] = nil }
        for key in shard.nxdomains.keys.prefix(max(0, shard.count - limit)) { shard.nxdomains[key] = nil }
    }
}

extension ResourceRecord {
    fileprivate func withTTL(_ ttl: UInt32) -> ResourceRecord {
        var copy = self
        copy.ttl = ttl
        return copy
    }
}
