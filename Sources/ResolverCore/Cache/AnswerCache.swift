// Cache/: the answer cache. Entries are ready replies (CachedAnswer) keyed by the question's
// lower-cased name, type and class and the query's DO and CD bits. Shards, each behind its own
// short lock, hold a hash index into a slot array; a CLOCK hand over the slots evicts entries
// when a shard's bytes pass its share of `max_bytes`, taking expired ones first. The hit path
// hashes the name straight from the query bytes and writes the reply from inside the lock:
// nothing allocates but the reply buffer. Time comes in as an argument.

import NIOCore
import Synchronization

/// What an entry is looked up by.
public struct CacheKey: Hashable, Sendable {
    /// The question, name lower-cased.
    public let question: Question
    /// DO (1) and CD (2): an answer asked for with DNSSEC records, or without validation, is a
    /// different answer.
    package let flags: UInt8

    public init(question: Question, dnssecOK: Bool, checkingDisabled: Bool) {
        self.question = Question(name: question.name.lowercased, type: question.type, recordClass: question.recordClass)
        self.flags = Self.flags(dnssecOK: dnssecOK, checkingDisabled: checkingDisabled)
    }

    /// The key of `question` as a client asked it in `view` (its DO and CD bits).
    public init(question: Question, view: QueryView) {
        self.init(question: question, dnssecOK: view.edns?.dnssecOK ?? false, checkingDisabled: view.checkingDisabled)
    }

    public var dnssecOK: Bool { flags & 1 != 0 }
    public var checkingDisabled: Bool { flags & 2 != 0 }

    package static func flags(dnssecOK: Bool, checkingDisabled: Bool) -> UInt8 { (dnssecOK ? 1 : 0) | (checkingDisabled ? 2 : 0) }

    package static func flags(of view: QueryView) -> UInt8 {
        flags(dnssecOK: view.edns?.dnssecOK ?? false, checkingDisabled: view.checkingDisabled)
    }
}

/// Which entries a flush removes.
public enum CacheFlush: Sendable, Equatable {
    case all
    /// Every type of one name.
    case name(DomainName)
    /// A name and everything below it.
    case subtree(DomainName)
}

/// Counters and sizes for the admin view and metrics.
public struct CacheStatistics: Sendable, Equatable, Codable {
    /// All zero.
    public init() {}

    public var entries = 0
    public var bytes = 0
    public var maxBytes = 0
    public var hits = 0
    public var misses = 0
    public var staleHits = 0
    public var prefetches = 0
    public var inserts = 0
    public var evictions = 0

    package enum CodingKeys: String, CodingKey {
        case entries, bytes, hits, misses, prefetches, inserts, evictions
        case maxBytes = "max_bytes"
        case staleHits = "stale_hits"
    }

    /// Adds another part's figures (shards, or worker processes) to these.
    package mutating func add(_ other: CacheStatistics) {
        entries += other.entries
        bytes += other.bytes
        maxBytes += other.maxBytes
        hits += other.hits
        misses += other.misses
        staleHits += other.staleHits
        prefetches += other.prefetches
        inserts += other.inserts
        evictions += other.evictions
    }
}

/// A reply served from the cache.
public struct CacheHit: Sendable {
    public var reply: ByteBuffer
    /// The entry is in the last tenth of its TTL and nobody is refreshing it yet: the caller
    /// should resolve the question again in the background.
    public var refresh: Bool
}

/// The sharded answer cache.
public final class AnswerCache: Sendable {
    public let settings: CacheSettings
    private let shards: [Shard]
    private let shardShift: UInt64

    /// Per-entry memory beyond the answer's bytes: the slot, the array header (32) and malloc
    /// overhead (16) of the answer's storage, and the hash index's share with its power-of-two
    /// growth slack (56). Calibrated against RSS: `bench/cache.py --memory 1000000` measured
    /// 224 bytes per cached A answer, which this accounts as about the same.
    package static let entryOverhead = MemoryLayout<CacheShard.Slot>.stride + 32 + 16 + 56

    private final class Shard: Sendable {
        package let state: Mutex<CacheShard>
        package init(limit: Int) { state = Mutex(CacheShard(limit: limit)) }
    }

    /// `shardCount` is rounded up to a power of two.
    public init(settings: CacheSettings, shardCount: Int = 16) {
        self.settings = settings
        var count = 1
        var bits: UInt64 = 0
        while count < shardCount {
            count <<= 1
            bits += 1
        }
        shardShift = 64 - bits
        shards = (0..<count).map { _ in Shard(limit: settings.maxBytes / count) }
    }

    public var enabled: Bool { settings.maxBytes > 0 }

    private func shard(_ hash: UInt64) -> Shard { shards[shardShift == 64 ? 0 : Int(hash >> shardShift)] }

    // MARK: - Lookups

    /// The hit path: answers `query` (already read into `view`) from the cache, or nil.
    public func answer(
        query: UnsafeRawBufferPointer, view: QueryView, transport: Transport, now: NIODeadline, allocator: ByteBufferAllocator
    ) -> CacheHit? {
        guard enabled, let name = Self.plainName(in: query, end: view.nameEnd) else { return nil }
        return lookup(
            name: name, type: view.type.rawValue, recordClass: view.recordClass.rawValue,
            flags: CacheKey.flags(of: view),
            query: query, view: view, transport: transport, now: now, allocator: allocator)
    }

    /// The same, for a query whose key is already built: a second look on the miss path (for a
    /// compressed question name, or an answer stored since the first look), which does not count
    /// as another miss.
    public func answer(
        key: CacheKey, query: UnsafeRawBufferPointer, view: QueryView, transport: Transport, now: NIODeadline,
        allocator: ByteBufferAllocator
    ) -> CacheHit? {
        guard enabled else { return nil }
        return key.question.name.wire.withUnsafeBytes { name in
            lookup(
                name: name, type: key.question.type.rawValue, recordClass: key.question.recordClass.rawValue,
                flags: key.flags, query: query, view: view, transport: transport, now: now, allocator: allocator,
                countsMiss: false)
        }
    }

    private func lookup(
        name: UnsafeRawBufferPointer, type: UInt16, recordClass: UInt16, flags: UInt8, query: UnsafeRawBufferPointer,
        view: QueryView, transport: Transport, now: NIODeadline, allocator: ByteBufferAllocator, countsMiss: Bool = true
    ) -> CacheHit? {
        let hash = Self.hash(name: name, type: type, recordClass: recordClass, flags: flags)
        let settings = self.settings
        return shard(hash).state.withLock { state in
            state.hit(
                hash: hash, name: name, type: type, recordClass: recordClass, flags: flags,
                now: now.uptimeNanoseconds, settings: settings, countsMiss: countsMiss
            ) { answer, age, staleTTL in
                answer.render(query: query, view: view, age: age, staleTTL: staleTTL, transport: transport, allocator: allocator)
            }
        }
    }

    /// After every server failed: an expired entry's stale reply, if serve-stale allows one.
    /// Starts the failure-recheck period, during which the entry is served without asking.
    public func staleAnswer(
        key: CacheKey, query: UnsafeRawBufferPointer, view: QueryView, transport: Transport, now: NIODeadline,
        allocator: ByteBufferAllocator
    ) -> ByteBuffer? {
        guard enabled, settings.serveStale else { return nil }
        let settings = self.settings
        return key.question.name.wire.withUnsafeBytes { name in
            let type = key.question.type.rawValue
            let recordClass = key.question.recordClass.rawValue
            let hash = Self.hash(name: name, type: type, recordClass: recordClass, flags: key.flags)
            return shard(hash).state.withLock { state in
                state.stale(
                    hash: hash, name: name, type: type, recordClass: recordClass, flags: key.flags,
                    now: now.uptimeNanoseconds, settings: settings
                ) { answer in
                    answer.render(
                        query: query, view: view, age: 0, staleTTL: settings.staleAnswerTTL, transport: transport,
                        allocator: allocator)
                }
            }
        }
    }

    // MARK: - Changes

    /// Stores `answer` under `key` (nothing happens for a TTL of 0). A failure never replaces a
    /// fresh answer: a failed prefetch keeps what is there.
    public func insert(_ answer: CachedAnswer, key: CacheKey, now: NIODeadline) {
        guard enabled, answer.ttl > 0 else { return }
        key.question.name.wire.withUnsafeBytes { name in
            let hash = Self.hash(
                name: name, type: key.question.type.rawValue, recordClass: key.question.recordClass.rawValue, flags: key.flags)
            shard(hash).state.withLock { state in
                state.insert(answer, hash: hash, flags: key.flags, now: now.uptimeNanoseconds, settings: settings)
            }
        }
    }

    /// Removes entries; returns how many.
    @discardableResult
    public func flush(_ what: CacheFlush) -> Int {
        let target: DomainName? =
            switch what {
            case .all: nil
            case .name(let name), .subtree(let name): name.lowercased
            }
        var removed = 0
        for shard in shards {
            removed += shard.state.withLock { state in
                state.removeAll { answer in
                    guard let target else { return true }
                    if case .subtree = what { return answer.name.isSubdomain(of: target) }
                    return answer.nameLength == target.wire.count
                        && answer.storage[12..<(12 + Int(answer.nameLength))].elementsEqual(target.wire)
                }
            }
        }
        return removed
    }

    public func statistics() -> CacheStatistics {
        var total = CacheStatistics()
        for shard in shards {
            total.add(shard.state.withLock { $0.statistics })
        }
        total.maxBytes = settings.maxBytes
        return total
    }

    // MARK: - Keys

    /// The question name at offset 12 when it has no compression pointer (the usual case);
    /// nil sends the query to the slow path, which decompresses it.
    package static func plainName(in query: UnsafeRawBufferPointer, end: Int) -> UnsafeRawBufferPointer? {
        var offset = DNSHeader.length
        while offset < end {
            let length = Int(query[offset])
            if length == 0 { return offset + 1 == end ? UnsafeRawBufferPointer(rebasing: query[DNSHeader.length..<end]) : nil }
            if length & 0xC0 != 0 { return nil }
            offset += 1 + length
        }
        return nil
    }

    /// SipHash (Swift's Hasher, seeded per process, so collisions cannot be forced) over the
    /// lower-cased name, type, class and flags.
    package static func hash(name: UnsafeRawBufferPointer, type: UInt16, recordClass: UInt16, flags: UInt8) -> UInt64 {
        var hasher = Hasher()
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: DomainName.maxWireLength) { lower in
            let count = min(name.count, lower.count)
            for index in 0..<count { lower[index] = DomainName.lower(name[index]) }
            hasher.combine(bytes: UnsafeRawBufferPointer(UnsafeMutableBufferPointer(rebasing: lower[0..<count])))
        }
        hasher.combine(type)
        hasher.combine(recordClass)
        hasher.combine(flags)
        return UInt64(UInt(bitPattern: hasher.finalize()))
    }
}

/// One shard: a hash index into slots, and a CLOCK hand. Only touched under its lock.
package struct CacheShard {
    package struct Slot {
        package var answer: CachedAnswer?
        package var hash: UInt64 = 0
        /// Uptime nanoseconds when stored.
        package var storedAt: UInt64 = 0
        /// Until when a stale entry is served without asking upstream (uptime nanoseconds).
        package var recheckUntil: UInt64 = 0
        package var flags: UInt8 = 0
        /// Set on every hit; the CLOCK hand clears it, and evicts entries found without it.
        package var referenced = false
        package var refreshing = false

        package var cost: Int { (answer?.storedBytes ?? 0) + AnswerCache.entryOverhead }

        /// Nanoseconds since stored.
        package func elapsed(_ now: UInt64) -> UInt64 { now > storedAt ? now - storedAt : 0 }
    }

    package let limit: Int
    package var index: [UInt64: Int32] = [:]
    package var slots: [Slot] = []
    package var free: [Int32] = []
    package var hand = 0
    package var statistics = CacheStatistics()

    package init(limit: Int) { self.limit = limit }

    private static let second: UInt64 = 1_000_000_000

    private func find(hash: UInt64, name: UnsafeRawBufferPointer, type: UInt16, recordClass: UInt16, flags: UInt8) -> Int? {
        guard let found = index[hash] else { return nil }
        let slot = Int(found)
        guard slots[slot].flags == flags,
            slots[slot].answer?.matches(name: name, type: type, recordClass: recordClass) == true
        else { return nil }
        return slot
    }

    package mutating func hit(
        hash: UInt64, name: UnsafeRawBufferPointer, type: UInt16, recordClass: UInt16, flags: UInt8, now: UInt64,
        settings: CacheSettings, countsMiss: Bool = true,
        render: (CachedAnswer, _ age: UInt32, _ staleTTL: UInt32?) -> ByteBuffer
    ) -> CacheHit? {
        guard let slot = find(hash: hash, name: name, type: type, recordClass: recordClass, flags: flags),
            let answer = slots[slot].answer
        else {
            if countsMiss { statistics.misses += 1 }
            return nil
        }
        let elapsed = slots[slot].elapsed(now)
        let lifetime = UInt64(answer.ttl) * Self.second
        if elapsed < lifetime {
            statistics.hits += 1
            slots[slot].referenced = true
            var refresh = false
            // Prefetch in the last tenth of the TTL (Unbound's rule), for entries living long
            // enough for that to matter; once per entry.
            if settings.prefetch, answer.kind != .failure, answer.ttl >= 10, !slots[slot].refreshing,
                (lifetime - elapsed) * 10 <= lifetime
            {
                slots[slot].refreshing = true
                statistics.prefetches += 1
                refresh = true
            }
            return CacheHit(reply: render(answer, UInt32(elapsed / Self.second), nil), refresh: refresh)
        }
        if settings.serveStale, answer.kind != .failure,
            elapsed < lifetime + UInt64(settings.staleMaxSeconds) * Self.second
        {
            if now < slots[slot].recheckUntil {
                statistics.staleHits += 1
                return CacheHit(reply: render(answer, 0, settings.staleAnswerTTL), refresh: false)
            }
        } else {
            remove(slot)
        }
        if countsMiss { statistics.misses += 1 }
        return nil
    }

    package mutating func stale(
        hash: UInt64, name: UnsafeRawBufferPointer, type: UInt16, recordClass: UInt16, flags: UInt8, now: UInt64,
        settings: CacheSettings, render: (CachedAnswer) -> ByteBuffer
    ) -> ByteBuffer? {
        guard let slot = find(hash: hash, name: name, type: type, recordClass: recordClass, flags: flags),
            let answer = slots[slot].answer, answer.kind != .failure
        else { return nil }
        let elapsed = slots[slot].elapsed(now)
        let lifetime = UInt64(answer.ttl) * Self.second
        guard elapsed >= lifetime, elapsed < lifetime + UInt64(settings.staleMaxSeconds) * Self.second else { return nil }
        slots[slot].recheckUntil = now + UInt64(settings.staleRecheckSeconds) * Self.second
        statistics.staleHits += 1
        return render(answer)
    }

    package mutating func insert(_ answer: CachedAnswer, hash: UInt64, flags: UInt8, now: UInt64, settings: CacheSettings) {
        let entry = Slot(answer: answer, hash: hash, storedAt: now, flags: flags)
        guard entry.cost <= limit else { return }
        let slot: Int
        if let existing = index[hash] {
            slot = Int(existing)
            let old = slots[slot]
            if answer.kind == .failure, let previous = old.answer, previous.kind != .failure,
                old.elapsed(now) < UInt64(previous.ttl) * Self.second
                    || (settings.serveStale
                        && old.elapsed(now) < (UInt64(previous.ttl) + UInt64(settings.staleMaxSeconds)) * Self.second)
            {
                // Keep a fresh answer (a failed prefetch), or a stale one that may still serve.
                slots[slot].refreshing = false
                return
            }
            statistics.bytes -= old.cost
        } else if let reused = free.popLast() {
            slot = Int(reused)
            index[hash] = reused
            statistics.entries += 1
        } else {
            slot = slots.count
            slots.append(Slot())
            index[hash] = Int32(slot)
            statistics.entries += 1
        }
        slots[slot] = entry
        statistics.bytes += entry.cost
        statistics.inserts += 1
        evict(sparing: slot, now: now, settings: settings)
    }

    /// CLOCK: sweep the hand until the shard fits, clearing reference bits and evicting entries
    /// found without one, and every expired entry that can no longer be served stale.
    private mutating func evict(sparing kept: Int, now: UInt64, settings: CacheSettings) {
        var steps = 0
        let bound = 2 * slots.count + 1
        while statistics.bytes > limit, steps < bound {
            steps += 1
            if hand >= slots.count { hand = 0 }
            let slot = hand
            hand += 1
            guard slot != kept, let answer = slots[slot].answer else { continue }
            let servable = (UInt64(answer.ttl) + UInt64(settings.serveStale ? settings.staleMaxSeconds : 0)) * Self.second
            if slots[slot].referenced, slots[slot].elapsed(now) < servable {
                slots[slot].referenced = false
            } else {
                remove(slot)
                statistics.evictions += 1
            }
        }
    }

    private mutating func remove(_ slot: Int) {
        guard slots[slot].answer != nil else { return }
        statistics.bytes -= slots[slot].cost
        statistics.entries -= 1
        index[slots[slot].hash] = nil
        slots[slot] = Slot()
        free.append(Int32(slot))
    }

    /// Removes every entry `matches` selects; returns how many.
    package mutating func removeAll(where matches: (CachedAnswer) -> Bool) -> Int {
        var removed = 0
        for slot in slots.indices {
            if let answer = slots[slot].answer, matches(answer) {
                remove(slot)
                removed += 1
            }
        }
        return removed
    }
}
