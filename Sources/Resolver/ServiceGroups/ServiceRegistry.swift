// ServiceGroups/: the registry. An in-memory view (behind one short lock) serves DNS answers and
// API reads; every change goes through one writer at a time: decide from the view, save to the
// store (durable), then update the view. So an API call is acknowledged only once its change is
// on disk, and a failed API change changes nothing. The one exception is the health checker's
// news: a failed check takes the member out of the answers even when the store cannot be
// written (disk full, etcd down); such changes are kept and saved again with back-off until the
// store takes them (`persistPending`).
// A store that cannot be opened or read at start leaves the registry degraded: DNS still runs
// (cluster names SERVFAIL while nothing is known), changes are refused, and the damaged store is
// replaced only by an explicit reset (`reset`, POST /v1/registry/reset).
// Observers hear every change after it is shown, in order (the supervisor feeds worker
// processes this way); a worker's registry is a mirror that only applies what it is told.

import Synchronization

/// Whether the registry's store works.
public enum RegistryStatus: Sendable, Equatable {
    case ready
    /// The store could not be opened or read: changes are refused, cluster names answer from the
    /// last state known (SERVFAIL without one). `reason` is generic (the detail is logged).
    case degraded(reason: String)

    public var isDegraded: Bool { self != .ready }
}

/// A registry change the checker made in memory that the store has not taken yet.
public enum Persisted: Sendable, Equatable {
    case stored
    /// Shown in memory, not stored; saved again later.
    case deferred(RegistryError)
}

/// Registered members by group, and the one way to change them.
public final class ServiceRegistry: Sendable {
    /// The timing of answers, checks and removals (a reload replaces it).
    public var policy: RegistryPolicy { currentPolicy.withLock { $0 } }
    private let currentPolicy: Mutex<RegistryPolicy>
    let clock: WallClock
    private let store: Mutex<any RegistryStore>
    private let currentStatus = Mutex<RegistryStatus>(.ready)
    /// `currentStatus.isDegraded`, read on the DNS path without the lock.
    private let degraded = Atomic<Bool>(false)
    /// Sets the damaged store aside and opens a fresh one (nil: this store cannot be reset).
    private let resetter = Mutex<Resetter?>(nil)
    /// Checker changes not stored yet, by `group/id`, and when to try again.
    private let pending = Mutex<PendingChanges>(PendingChanges())
    private let statusObservers = Mutex<[@Sendable (RegistryStatus) -> Void]>([])
    /// group → members sorted by id.
    private let view = Mutex<[String: [Member]]>([:])
    private let writer = AsyncLock()
    private let observers = Mutex<[@Sendable ([RegistryChange]) -> Void]>([])
    private let policyObservers = Mutex<[@Sendable (RegistryPolicy) -> Void]>([])

    public init(store: any RegistryStore, policy: RegistryPolicy, clock: WallClock = .system) {
        self.store = Mutex(store)
        currentPolicy = Mutex(policy)
        self.clock = clock
    }

    /// Puts a reloaded `[cluster]` timing in place; members keep their registrations. Policy
    /// observers hear it (the rendered cluster zone takes its answer TTL from it).
    public func replacePolicy(_ policy: RegistryPolicy) {
        currentPolicy.withLock { $0 = policy }
        for observer in policyObservers.withLock({ $0 }) { observer(policy) }
    }

    /// Calls `observer` with every later policy put in place by `replacePolicy`.
    public func observePolicy(_ observer: @escaping @Sendable (RegistryPolicy) -> Void) {
        policyObservers.withLock { $0.append(observer) }
    }

    /// Loads the stored members and leaves a degraded state; returns the damaged records skipped.
    /// Remaining TTLs are honoured as stored: a member whose TTL ran out while the daemon was down
    /// is due for its check at once, not dropped.
    @discardableResult
    public func load() async throws(RegistryError) -> [RegistryError] {
        try await writer.withLock { () async throws(RegistryError) -> [RegistryError] in
            let stored = try await currentStore.loadAll()
            mirror(all: stored.members)
            setStatus(.ready)
            return stored.damaged
        }
    }

    // MARK: Degraded

    /// Whether the store works, or why not.
    public var status: RegistryStatus { currentStatus.withLock { $0 } }

    /// Whether the registry is degraded (cheap: read per DNS answer).
    public var isDegraded: Bool { degraded.load(ordering: .relaxed) }

    /// Marks the registry degraded (the store failed at start) or ready again; status observers
    /// hear the change.
    public func setStatus(_ status: RegistryStatus) {
        let changed = currentStatus.withLock { current in
            defer { current = status }
            return current != status
        }
        degraded.store(status.isDegraded, ordering: .relaxed)
        if changed { for observer in statusObservers.withLock({ $0 }) { observer(status) } }
    }

    /// Marks the registry degraded; `replacing` takes the failed store's place, so nothing more
    /// is written to it (a damaged file stays as it was found).
    public func degrade(_ reason: String, replacing: (any RegistryStore)? = nil) {
        if let replacing { store.withLock { $0 = replacing } }
        setStatus(.degraded(reason: reason))
    }

    /// Calls `observer` with every later change of the status.
    public func observeStatus(_ observer: @escaping @Sendable (RegistryStatus) -> Void) {
        statusObservers.withLock { $0.append(observer) }
    }

    /// How `reset` replaces a damaged store: set it aside, open a fresh one.
    public func allowReset(_ reset: @escaping Resetter) {
        resetter.withLock { $0 = reset }
    }

    /// Sets a damaged store aside and opens a fresh one; returns it and where the old one went.
    public typealias Resetter = @Sendable () async throws(RegistryError) -> (store: any RegistryStore, setAside: String)

    /// Why a reset was refused.
    public enum ResetRefusal: Error, Sendable, Equatable {
        /// The store works: nothing to reset (a reset would throw registrations away).
        case notDegraded
        /// This backend is not reset here (etcd: the cluster is repaired by its operators).
        case notSupported
        case failed(RegistryError)
    }

    /// Sets the damaged store aside and starts a fresh, empty one; only while degraded. Returns
    /// where the damaged store went.
    public func reset() async throws(ResetRefusal) -> String {
        try await writer.withLock { () async throws(ResetRefusal) -> String in
            guard isDegraded else { throw .notDegraded }
            guard let reset = resetter.withLock({ $0 }) else { throw .notSupported }
            let fresh: (store: any RegistryStore, setAside: String)
            let stored: StoredMembers
            do throws(RegistryError) {
                fresh = try await reset()
                stored = try await fresh.store.loadAll()
            } catch {
                throw .failed(error)
            }
            store.withLock { $0 = fresh.store }
            pending.withLock { $0 = PendingChanges() }
            mirror(all: stored.members)
            setStatus(.ready)
            return fresh.setAside
        }
    }

    private var currentStore: any RegistryStore { store.withLock { $0 } }

    /// Calls `observer` with every later change, in order, after the view shows it (inside the
    /// writer: keep it short and non-blocking).
    public func observe(_ observer: @escaping @Sendable ([RegistryChange]) -> Void) {
        observers.withLock { $0.append(observer) }
    }

    // MARK: A mirror's changes

    /// Replaces the whole view with `members` (a worker's first snapshot, a shared store listed
    /// again). Nothing is stored; observers hear the difference.
    public func mirror(all members: [Member]) {
        let fresh = Self.grouped(members)
        let changes = view.withLock { view -> [RegistryChange] in
            var changes: [RegistryChange] = []
            for (group, old) in view {
                for member in old where !(fresh[group]?.contains { $0.id == member.id } ?? false) {
                    changes.append(.delete(group: group, id: member.id))
                }
            }
            for member in members where view[member.group]?.first(where: { $0.id == member.id }) != member {
                changes.append(.put(member))
            }
            view = fresh
            return changes
        }
        if !changes.isEmpty { notify(changes) }
    }

    /// Shows changes someone else stored (a worker hearing its supervisor, an instance hearing
    /// the others through a shared store). Nothing is stored; observers hear them too.
    public func mirror(_ changes: [RegistryChange]) {
        guard !changes.isEmpty else { return }
        show(changes)
    }

    // MARK: Reads

    /// Every group's members, groups and members sorted by name.
    public func snapshot() -> [(group: String, members: [Member])] {
        view.withLock { $0 }.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
    }

    /// Whether no member is known.
    public var isEmpty: Bool { view.withLock { $0.isEmpty } }

    /// One group's members sorted by id, or nil for an unknown group.
    public func members(of group: String) -> [Member]? {
        view.withLock { $0[group] }
    }

    // MARK: Changes from the API

    public enum Registered: Sendable, Equatable {
        case created(Member)
        case replaced(Member)
    }

    /// Adds or replaces a member (healthy, its TTL starting now).
    public func register(_ member: Member) async throws(RegistryError) -> Registered {
        try await change(group: member.group, id: member.id) { existing in
            (.put(member), existing == nil ? .created(member) : .replaced(member))
        }
    }

    /// Renews a member's TTL; nil when it is not registered.
    public func heartbeat(group: String, id: String) async throws(RegistryError) -> Member? {
        let now = clock.now()
        return try await change(group: group, id: id) { existing in
            guard let existing else { return (nil, nil) }
            let renewed = policy.renewing(existing, now: now)
            return (.put(renewed), renewed)
        }
    }

    /// Removes a member; false when it was not registered.
    public func deregister(group: String, id: String) async throws(RegistryError) -> Bool {
        try await change(group: group, id: id) { existing in
            existing == nil ? (nil, false) : (.delete(group: group, id: id), true)
        }
    }

    // MARK: Changes from the health checker

    /// Members whose check is due now.
    public func dueForCheck(now: UnixMillis) -> [Member] {
        view.withLock { view in view.values.flatMap { $0.filter { policy.isDueForCheck($0, now: now) } } }
    }

    /// Applies a check of `checked` (the member as it was when the check began). Ignored when the
    /// member was replaced, removed or renewed by a heartbeat meanwhile: that news is newer. The
    /// answers follow the check even when the store fails (`.deferred`: saved again later).
    @discardableResult
    public func record(_ result: CheckResult, of checked: Member) async -> Persisted {
        await writer.withLock { () async -> Persisted in
            let existing = view.withLock { $0[checked.group]?.first { $0.id == checked.id } }
            guard let existing, existing == checked else { return .stored }
            return await saveOrDefer([.put(policy.applying(result, to: existing))])
        }
    }

    /// Removes expired members (check-less ones past their TTL, unhealthy ones past the grace
    /// time) in one transaction; returns them. They leave the answers even when the store fails.
    public func removeExpired(now: UnixMillis) async -> (removed: [Member], persisted: Persisted) {
        await writer.withLock { () async -> ([Member], Persisted) in
            let expired = view.withLock { view in view.values.flatMap { $0.filter { policy.isExpired($0, now: now) } } }
            guard !expired.isEmpty else { return ([], .stored) }
            return (expired, await saveOrDefer(expired.map { RegistryChange.delete(group: $0.group, id: $0.id) }))
        }
    }

    /// Checker changes shown in memory and not stored yet.
    public var pendingCount: Int { pending.withLock { $0.changes.count } }

    /// Saves the checker's changes the store did not take, when their retry time has come (1 s
    /// after a failure, doubling to 30 s); nil when nothing was due.
    public func persistPending(now: UnixMillis) async -> Persisted? {
        await writer.withLock { () async -> Persisted? in
            let due = pending.withLock { pending -> [RegistryChange]? in
                guard !pending.changes.isEmpty, now >= pending.retryAt else { return nil }
                return pending.changes.sorted { $0.key < $1.key }.map(\.value)
            }
            guard let due, !isDegraded else { return nil }
            do throws(RegistryError) {
                try await currentStore.save(due)
                pending.withLock { $0 = PendingChanges() }
                return .stored
            } catch {
                pending.withLock { $0.failed(now: now) }
                return .deferred(error)
            }
        }
    }

    /// Inside the writer: shows `changes`, then saves them or keeps them to save later. Health is
    /// soft state (the checks find it again after a restart), so the answers follow a check at
    /// once rather than after the disk's fsync, which a busy host can make take seconds.
    private func saveOrDefer(_ changes: [RegistryChange]) async -> Persisted {
        show(changes)
        var outcome = Persisted.stored
        do throws(RegistryError) {
            guard !isDegraded else { throw RegistryError("registry degraded") }
            try await currentStore.save(changes)
            pending.withLock { pending in
                for change in changes { pending.changes[Self.key(change)] = nil }
                if pending.changes.isEmpty { pending = PendingChanges() }  // the back-off starts anew
            }
        } catch {
            pending.withLock { pending in
                for change in changes { pending.changes[Self.key(change)] = change }
                if pending.retryAt == 0 { pending.failed(now: clock.now()) }
            }
            outcome = .deferred(error)
        }
        return outcome
    }

    private static func key(_ change: RegistryChange) -> String {
        switch change {
        case .put(let member): "\(member.group)/\(member.id)"
        case .delete(let group, let id): "\(group)/\(id)"
        }
    }

    // MARK: The writer

    /// Decides a change from the current member (nil when absent), saves it, then shows it.
    private func change<Result: Sendable>(
        group: String, id: String, _ decide: (Member?) -> (RegistryChange?, Result)
    ) async throws(RegistryError) -> Result {
        try await writer.withLock { () async throws(RegistryError) -> Result in
            let existing = view.withLock { $0[group]?.first { $0.id == id } }
            let (change, result) = decide(existing)
            guard let change else { return result }
            if case .degraded(let reason) = status { throw RegistryError(reason, unreachable: true) }
            try await currentStore.save([change])
            // Saved whole: it supersedes a checker change of the same member still waiting.
            pending.withLock { $0.changes[Self.key(change)] = nil }
            show([change])
            return result
        }
    }

    /// Applies stored changes to the view, then tells the observers.
    private func show(_ changes: [RegistryChange]) {
        view.withLock { view in
            for change in changes { Self.apply(change, to: &view) }
        }
        notify(changes)
    }

    /// Members by group, each group sorted by id (the view's shape).
    private static func grouped(_ members: [Member]) -> [String: [Member]] {
        Dictionary(grouping: members, by: \.group).mapValues { $0.sorted { $0.id < $1.id } }
    }

    private func notify(_ changes: [RegistryChange]) {
        for observer in observers.withLock({ $0 }) { observer(changes) }
    }

    private static func apply(_ change: RegistryChange, to view: inout [String: [Member]]) {
        switch change {
        case .put(let member):
            var members = view[member.group] ?? []
            if let index = members.firstIndex(where: { $0.id == member.id }) {
                members[index] = member
            } else {
                let index = members.firstIndex { $0.id > member.id } ?? members.endIndex
                members.insert(member, at: index)
            }
            view[member.group] = members
        case .delete(let group, let id):
            guard var members = view[group] else { return }
            members.removeAll { $0.id == id }
            view[group] = members.isEmpty ? nil : members
        }
    }
}

/// Checker changes waiting for the store, and the back-off of the attempts to save them.
struct PendingChanges {
    var changes: [String: RegistryChange] = [:]
    /// 0: no failure yet.
    var retryAt: UnixMillis = 0
    var backoffMillis: Int64 = 0

    static let firstBackoffMillis: Int64 = 1000
    static let maxBackoffMillis: Int64 = 30_000

    mutating func failed(now: UnixMillis) {
        backoffMillis = backoffMillis == 0 ? Self.firstBackoffMillis : min(backoffMillis * 2, Self.maxBackoffMillis)
        retryAt = now.adding(millis: backoffMillis)
    }
}

/// A lock for async code: one holder at a time, waiters served in arrival order.
final class AsyncLock: Sendable {
    private struct State {
        var locked = false
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    private let state = Mutex(State())

    func withLock<Value: Sendable, Failure: Error>(_ body: () async throws(Failure) -> Value) async throws(Failure) -> Value {
        await lock()
        defer { unlock() }
        return try await body()
    }

    private func lock() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let acquired = state.withLock { state in
                if state.locked {
                    state.waiters.append(continuation)
                    return false
                }
                state.locked = true
                return true
            }
            if acquired { continuation.resume() }
        }
    }

    private func unlock() {
        let next = state.withLock { state -> CheckedContinuation<Void, Never>? in
            if state.waiters.isEmpty {
                state.locked = false
                return nil
            }
            return state.waiters.removeFirst()
        }
        next?.resume()  // the lock passes straight to it
    }
}
