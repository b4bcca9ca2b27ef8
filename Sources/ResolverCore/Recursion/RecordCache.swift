// Recursion/: what iteration has learned, by RRset — delegations (NS), their addresses (glue or
// looked up), and the records of answers along the way (CNAMEs, nameserver addresses) — each
// with its credibility (RFC 2181 §5.4.1), so glue never overwrites an authoritative answer. And
// the negative facts: a name that does not exist (with RFC 8020, nothing below it does either)
// and a type a name does not have (RFC 2308). The client-facing AnswerCache keeps whole replies;
// this keeps the pieces the next resolution starts from. Memory is bounded in bytes, not entries
// (one RRset may hold 64 KB): each entry's records and bookkeeping are counted, and a shard over
// its share drops expired entries, then the oldest.

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
    /// The answer section of a non-authoritative answer (AA clear): an answer still, ranked below
    /// authoritative data.
    case nonAuthoritativeAnswer = 3
    /// The authority section of an authoritative answer (the zone's own NS and SOA).
    case authority = 4
    /// The answer section of an authoritative answer.
    case answer = 5

    /// The rank of an answer section's records: authoritative or not.
    public static func answer(authoritative: Bool) -> Credibility {
        authoritative ? .answer : .nonAuthoritativeAnswer
    }

    public static func < (lhs: Credibility, rhs: Credibility) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// RRsets and negative facts learned by recursion, with TTLs counted down.
public final class RecordCache: Sendable {
    package struct Key: Hashable {
        package let name: DomainName
        package let type: RecordType
    }

    /// Bytes an entry costs beyond its names and data: the dictionary slot, the key, the entry
    /// and the record array's header.
    package static let entryOverhead = 128
    /// Bytes a record costs beyond its owner name and RDATA (the struct and the RDATA array's header).
    package static let recordOverhead = 64

    package struct Entry {
        package var records: [ResourceRecord]
        package var credibility: Credibility
        package var stored: NIODeadline
        package var expires: NIODeadline
        /// What it costs, counted once when made.
        package var bytes: Int

        package init(records: [ResourceRecord], credibility: Credibility, stored: NIODeadline, expires: NIODeadline) {
            self.records = records
            self.credibility = credibility
            self.stored = stored
            self.expires = expires
            bytes =
                RecordCache.entryOverhead + (records.first?.name.wire.count ?? 0)
                + records.reduce(0) { $0 + RecordCache.cost(of: $1) }
        }
    }

    package struct Negative {
        /// The client's authority section: the zone's SOA, then the proof records, as the zone
        /// sent them, TTLs capped at the negative TTL.
        package var authority: [ResourceRecord]
        package var stored: NIODeadline
        package var expires: NIODeadline
        package var bytes: Int

        package init(authority: [ResourceRecord], name: DomainName, stored: NIODeadline, expires: NIODeadline) {
            self.authority = authority
            self.stored = stored
            self.expires = expires
            bytes = RecordCache.entryOverhead + name.wire.count + authority.reduce(0) { $0 + RecordCache.cost(of: $1) }
        }
    }

    /// A record's bytes: its owner name, its RDATA and the overhead.
    package static func cost(of record: ResourceRecord) -> Int { recordOverhead + record.name.wire.count + record.rdata.count }

    /// One shard's entries and what they cost; every change goes through its methods, so `bytes`
    /// stays the sum of the entries' costs.
    package struct Shard {
        package private(set) var rrsets: [Key: Entry] = [:]
        /// Names that do not exist (RFC 8020: nor does anything below them).
        package private(set) var nxdomains: [DomainName: Negative] = [:]
        /// Names without records of a type.
        package private(set) var nodata: [Key: Negative] = [:]
        package private(set) var bytes = 0

        package var count: Int { rrsets.count + nxdomains.count + nodata.count }

        package mutating func setRRset(_ entry: Entry?, at key: Key) {
            if let old = rrsets.removeValue(forKey: key) { bytes -= old.bytes }
            if let entry {
                rrsets[key] = entry
                bytes += entry.bytes
            }
        }

        package mutating func setNXDomain(_ fact: Negative?, at name: DomainName) {
            if let old = nxdomains.removeValue(forKey: name) { bytes -= old.bytes }
            if let fact {
                nxdomains[name] = fact
                bytes += fact.bytes
            }
        }

        package mutating func setNoData(_ fact: Negative?, at key: Key) {
            if let old = nodata.removeValue(forKey: key) { bytes -= old.bytes }
            if let fact {
                nodata[key] = fact
                bytes += fact.bytes
            }
        }

        /// Removes every entry whose name (and, for RRsets, whose entry) `remove` picks.
        package mutating func removeAll(where remove: (DomainName, NIODeadline, NIODeadline) -> Bool) {
            for (key, entry) in rrsets where remove(key.name, entry.stored, entry.expires) { setRRset(nil, at: key) }
            for (name, fact) in nxdomains where remove(name, fact.stored, fact.expires) { setNXDomain(nil, at: name) }
            for (key, fact) in nodata where remove(key.name, fact.stored, fact.expires) { setNoData(nil, at: key) }
        }

        /// Keeps the shard within `limit` bytes: expired entries go first, then the oldest
        /// stored until an eighth of the limit is free again (so trimming is not paid per insert).
        package mutating func trim(limit: Int, now: NIODeadline) {
            guard bytes > limit else { return }
            removeAll { _, _, expires in expires <= now }
            guard bytes > limit else { return }
            let target = limit - limit / 8
            enum Slot { case rrset(Key), nxdomain(DomainName), nodata(Key) }
            var slots: [(stored: NIODeadline, slot: Slot)] = rrsets.map { ($0.value.stored, .rrset($0.key)) }
            slots += nxdomains.map { ($0.value.stored, .nxdomain($0.key)) }
            slots += nodata.map { ($0.value.stored, .nodata($0.key)) }
            slots.sort { $0.stored < $1.stored }
            for (_, slot) in slots {
                guard bytes > target else { break }
                switch slot {
                case .rrset(let key): setRRset(nil, at: key)
                case .nxdomain(let name): setNXDomain(nil, at: name)
                case .nodata(let key): setNoData(nil, at: key)
                }
            }
        }
    }

    /// One lock per shard, in a class because a `Mutex` cannot sit in an array.
    private final class Locked: Sendable {
        package let state = Mutex(Shard())
        package func withLock<T>(_ body: (inout Shard) -> T) -> T { state.withLock { body(&$0) } }
    }

    private let shards: [Locked]
    private let maxBytesPerShard: Int
    private let maxTTL: UInt32
    private let maxNegativeTTL: UInt32

    /// The smallest share of a shard: room for a 64 KB RRset and then some.
    package static let minimumShardBytes = 256 * 1024

    /// - Parameters:
    ///   - maxBytes: the most memory the entries may take, bookkeeping counted (each shard gets
    ///     its share, at least `minimumShardBytes`); past it, expired entries go first, then the
    ///     oldest. An RRset over a quarter of a shard's share is not kept.
    ///   - maxTTL, maxNegativeTTL: clamps, the same as the answer cache's.
    public init(maxBytes: Int, maxTTL: UInt32, maxNegativeTTL: UInt32, shardCount: Int = 8) {
        let count = max(1, shardCount)
        shards = (0..<count).map { _ in Locked() }
        maxBytesPerShard = max(Self.minimumShardBytes, maxBytes / count)
        self.maxTTL = maxTTL
        self.maxNegativeTTL = maxNegativeTTL
    }

    /// The most bytes the cache holds (the shards' shares together).
    public var maxBytes: Int { maxBytesPerShard * shards.count }

    private func shard(_ name: DomainName) -> Locked {
        shards[Int(UInt(bitPattern: name.hashValue) % UInt(shards.count))]
    }

    // MARK: RRsets

    /// Stores `records`, grouped into RRsets by owner and type, unless a fresh RRset of higher
    /// credibility is already there. An RRset lives as long as its shortest TTL (RFC 2181 §5.2),
    /// at most `maxTTL`, and every record in it is served with that TTL; a TTL of 0 is not
    /// stored. A positive RRset ends a NODATA fact for its name and type.
    ///
    /// An NS set replaced while the one held is fresh keeps the held one's expiry: a child's own
    /// NS set (asked for, more credible than the parent's referral) never makes a delegation
    /// outlive the TTL the parent gave it, so a domain moved or removed by its parent goes when
    /// that TTL runs out (the "ghost domain" attack, CVE-2012-1033; Unbound and BIND do the same).
    public func insert(_ records: [ResourceRecord], credibility: Credibility, now: NIODeadline) {
        var sets: [Key: [ResourceRecord]] = [:]
        for record in records {
            sets[Key(name: record.name.lowercased, type: record.type), default: []].append(record)
        }
        for (key, set) in sets {
            let ttl = min(set.map(\.ttl).min() ?? 0, maxTTL)
            guard ttl > 0 else { continue }
            let fresh = Entry(
                records: Self.deduplicated(set).map { $0.withTTL(ttl) }, credibility: credibility, stored: now,
                expires: now + .seconds(Int64(ttl)))
            guard fresh.bytes <= maxBytesPerShard / 4 else { continue }
            shard(key.name).withLock { shard in
                var entry = fresh
                if let existing = shard.rrsets[key], existing.expires > now {
                    if existing.credibility > credibility { return }
                    if key.type == .ns, existing.expires < entry.expires {
                        let left = UInt32(clamping: (existing.expires - now).nanoseconds / 1_000_000_000)
                        entry.records = entry.records.map { $0.withTTL(min($0.ttl, left)) }
                        entry.expires = existing.expires
                    }
                }
                shard.setRRset(entry, at: key)
                shard.setNoData(nil, at: key)
                shard.trim(limit: maxBytesPerShard, now: now)
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
        return Self.aged(entry.records, stored: entry.stored, now: now)
    }

    /// Forgets one RRset (a delegation whose servers all failed, to be asked for again).
    package func remove(_ name: DomainName, _ type: RecordType) {
        let key = Key(name: name.lowercased, type: type)
        shard(key.name).withLock { $0.setRRset(nil, at: key) }
    }

    // MARK: Negative facts

    /// Records that `name` does not exist, for min(SOA TTL, SOA MINIMUM) (RFC 2308 §5), at most
    /// `maxNegativeTTL`, which also caps the TTLs the authority records are served with (§3);
    /// `authority` starts with the SOA (ServerResponse's negative answers), and without one
    /// nothing is stored.
    public func insertNXDomain(_ name: DomainName, authority: [ResourceRecord], now: NIODeadline) {
        guard let fact = negative(name, authority, now: now) else { return }
        let key = name.lowercased
        shard(key).withLock { shard in
            shard.setNXDomain(fact, at: key)
            shard.trim(limit: maxBytesPerShard, now: now)
        }
    }

    /// Records that `name` has no records of `type` (NODATA).
    public func insertNoData(_ name: DomainName, _ type: RecordType, authority: [ResourceRecord], now: NIODeadline) {
        guard let fact = negative(name, authority, now: now) else { return }
        let key = Key(name: name.lowercased, type: type)
        shard(key.name).withLock { shard in
            shard.setNoData(fact, at: key)
            shard.trim(limit: maxBytesPerShard, now: now)
        }
    }

    /// When `name` or one of its ancestors is known not to exist (RFC 8020 §2), the authority
    /// records that said so, TTLs lowered by age; nil when nothing is known.
    public func nxdomain(covering name: DomainName, now: NIODeadline) -> [ResourceRecord]? {
        var candidate: DomainName? = name.lowercased
        while let current = candidate, !current.isRoot {
            if let fact = shard(current).withLock({ $0.nxdomains[current] }), fact.expires > now {
                return Self.aged(fact.authority, stored: fact.stored, now: now)
            }
            candidate = current.parent
        }
        return nil
    }

    /// When `name` is known to have no records of `type`, the authority records that said so.
    public func noData(_ name: DomainName, _ type: RecordType, now: NIODeadline) -> [ResourceRecord]? {
        let key = Key(name: name.lowercased, type: type)
        guard let fact = shard(key.name).withLock({ $0.nodata[key] }), fact.expires > now else { return nil }
        return Self.aged(fact.authority, stored: fact.stored, now: now)
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
                shard.removeAll { name, _, _ in matches(name) }
                return before - shard.count
            }
        }
    }

    /// RRsets and negative facts held (expired ones included until trimmed).
    public var count: Int { shards.reduce(0) { $0 + $1.withLock { $0.count } } }

    /// What the entries held cost, bookkeeping counted.
    public var bytes: Int { shards.reduce(0) { $0 + $1.withLock { $0.bytes } } }

    /// The negative fact `authority` makes: it lives min(SOA TTL, SOA MINIMUM, `maxNegativeTTL`),
    /// and no record in it is served with a longer TTL. Nil without an SOA first, or for TTL 0.
    private func negative(_ name: DomainName, _ authority: [ResourceRecord], now: NIODeadline) -> Negative? {
        guard let soa = authority.first, let minimum = soa.soaMinimum else { return nil }
        let ttl = min(soa.ttl, minimum, maxNegativeTTL)
        guard ttl > 0 else { return nil }
        let capped = authority.map { $0.withTTL(min($0.ttl, ttl)) }
        return Negative(authority: capped, name: name.lowercased, stored: now, expires: now + .seconds(Int64(ttl)))
    }

    /// `records` with their TTLs lowered by the time since `stored`.
    private static func aged(_ records: [ResourceRecord], stored: NIODeadline, now: NIODeadline) -> [ResourceRecord] {
        let age = UInt32(clamping: (now - stored).nanoseconds / 1_000_000_000)
        return records.map { $0.withTTL($0.ttl > age ? $0.ttl - age : 0) }
    }

    private static func deduplicated(_ records: [ResourceRecord]) -> [ResourceRecord] {
        var seen: Set<[UInt8]> = []
        return records.filter { seen.insert($0.rdata).inserted }
    }
}

extension ResourceRecord {
    fileprivate func withTTL(_ ttl: UInt32) -> ResourceRecord {
        var copy = self
        copy.ttl = ttl
        return copy
    }
}
