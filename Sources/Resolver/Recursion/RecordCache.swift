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

    /// Bytes an entry costs beyond its names and data: the dictionary slot, the key, the entry
    /// and the record array's header.
    static let entryOverhead = 128
    /// Bytes a record costs beyond its owner name and RDATA (the struct and the RDATA array's header).
    static let recordOverhead = 64

    struct Entry {
        var records: [ResourceRecord]
        var credibility: Credibility
        var stored: NIODeadline
        var expires: NIODeadline
        /// What it costs, counted once when made.
        var bytes: Int

        init(records: [ResourceRecord], credibility: Credibility, stored: NIODeadline, expires: NIODeadline) {
            self.records = records
            self.credibility = credibility
            self.stored = stored
            self.expires = expires
            bytes =
                RecordCache.entryOverhead + (records.first?.name.wire.count ?? 0)
                + records.reduce(0) { $0 + RecordCache.cost(of: $1) }
        }
    }

    struct Negative {
        /// The zone's SOA, for the client's authority section; nil when the server sent none.
        var soa: ResourceRecord?
        var stored: NIODeadline
        var expires: NIODeadline
        var bytes: Int

        init(soa: ResourceRecord?, name: DomainName, stored: NIODeadline, expires: NIODeadline) {
            self.soa = soa
            self.stored = stored
            self.expires = expires
            bytes = RecordCache.entryOverhead + name.wire.count + (soa.map(RecordCache.cost(of:)) ?? 0)
        }
    }

    /// A record's bytes: its owner name, its RDATA and the overhead.
    static func cost(of record: ResourceRecord) -> Int { recordOverhead + record.name.wire.count + record.rdata.count }

    /// One shard's entries and what they cost; every change goes through its methods, so `bytes`
    /// stays the sum of the entries' costs.
    struct Shard {
        private(set) var rrsets: [Key: Entry] = [:]
        /// Names that do not exist (RFC 8020: nor does anything below them).
        private(set) var nxdomains: [DomainName: Negative] = [:]
        /// Names without records of a type.
        private(set) var nodata: [Key: Negative] = [:]
        private(set) var bytes = 0

        var count: Int { rrsets.count + nxdomains.count + nodata.count }

        mutating func setRRset(_ entry: Entry?, at key: Key) {
            if let old = rrsets.removeValue(forKey: key) { bytes -= old.bytes }
            if let entry {
                rrsets[key] = entry
                bytes += entry.bytes
            }
        }

        mutating func setNXDomain(_ fact: Negative?, at name: DomainName) {
            if let old = nxdomains.removeValue(forKey: name) { bytes -= old.bytes }
            if let fact {
                nxdomains[name] = fact
                bytes += fact.bytes
            }
        }

        mutating func setNoData(_ fact: Negative?, at key: Key) {
            if let old = nodata.removeValue(forKey: key) { bytes -= old.bytes }
            if let fact {
                nodata[key] = fact
                bytes += fact.bytes
            }
        }

        /// Removes every entry whose name (and, for RRsets, whose entry) `remove` picks.
        mutating func removeAll(where remove: (DomainName, NIODeadline, NIODeadline) -> Bool) {
            for (key, entry) in rrsets where remove(key.name, entry.stored, entry.expires) { setRRset(nil, at: key) }
            for (name, fact) in nxdomains where remove(name, fact.stored, fact.expires) { setNXDomain(nil, at: name) }
            for (key, fact) in nodata where remove(key.name, fact.stored, fact.expires) { setNoData(nil, at: key) }
        }

        /// Keeps the shard within `limit` bytes: expired entries go first, then the oldest
        /// stored until an eighth of the limit is free again (so trimming is not paid per insert).
        mutating func trim(limit: Int, now: NIODeadline) {
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
        let state = Mutex(Shard())
        func withLock<T>(_ body: (inout Shard) -> T) -> T { state.withLock { body(&$0) } }
    }

    private let shards: [Locked]
    private let maxBytesPerShard: Int
    private let maxTTL: UInt32
    private let maxNegativeTTL: UInt32

    /// The smallest share of a shard: room for a 64 KB RRset and then some.
    static let minimumShardBytes = 256 * 1024

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
            guard entry.bytes <= maxBytesPerShard / 4 else { continue }
            shard(key.name).withLock { shard in
                if let existing = shard.rrsets[key], existing.expires > now, existing.credibility > credibility { return }
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
        shard(key.name).withLock { $0.setRRset(nil, at: key) }
    }

    // MARK: Negative facts

    /// Records that `name` does not exist, for min(SOA TTL, SOA MINIMUM) (RFC 2308 §5), at most
    /// `maxNegativeTTL`, which is also the TTL the SOA is served with (§3); without an SOA
    /// nothing is stored.
    public func insertNXDomain(_ name: DomainName, soa: ResourceRecord?, now: NIODeadline) {
        guard let ttl = negativeTTL(soa), ttl > 0 else { return }
        let key = name.lowercased
        shard(key).withLock { shard in
            shard.setNXDomain(
                Negative(soa: soa?.withTTL(ttl), name: key, stored: now, expires: now + .seconds(Int64(ttl))), at: key)
            shard.trim(limit: maxBytesPerShard, now: now)
        }
    }

    /// Records that `name` has no records of `type` (NODATA).
    public func insertNoData(_ name: DomainName, _ type: RecordType, soa: ResourceRecord?, now: NIODeadline) {
        guard let ttl = negativeTTL(soa), ttl > 0 else { return }
        let key = Key(name: name.lowercased, type: type)
        shard(key.name).withLock { shard in
            shard.setNoData(
                Negative(soa: soa?.withTTL(ttl), name: key.name, stored: now, expires: now + .seconds(Int64(ttl))), at: key)
            shard.trim(limit: maxBytesPerShard, now: now)
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
                shard.removeAll { name, _, _ in matches(name) }
                return before - shard.count
            }
        }
    }

    /// RRsets and negative facts held (expired ones included until trimmed).
    public var count: Int { shards.reduce(0) { $0 + $1.withLock { $0.count } } }

    /// What the entries held cost, bookkeeping counted.
    public var bytes: Int { shards.reduce(0) { $0 + $1.withLock { $0.bytes } } }

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
}

extension ResourceRecord {
    fileprivate func withTTL(_ ttl: UInt32) -> ResourceRecord {
        var copy = self
        copy.ttl = ttl
        return copy
    }
}
