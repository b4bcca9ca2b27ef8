// ServiceGroups/: the registry. An in-memory view (behind one short lock) serves DNS answers and
// API reads; every change goes through one writer at a time: decide from the view, save to the
// store (durable), then update the view. So the view always equals what is stored, an API call
// is acknowledged only once its change is on disk, and a failed save changes nothing.
// Observers hear every change after it is shown, in order (the supervisor feeds worker
// processes this way); a worker's registry is a mirror that only applies what it is told.

import Synchronization

/// Registered members by group, and the one way to change them.
public final class ServiceRegistry: Sendable {
    /// The timing of answers, checks and removals (a reload replaces it).
    public var policy: RegistryPolicy { currentPolicy.withLock { $0 } }
    private let currentPolicy: Mutex<RegistryPolicy>
    let clock: WallClock
    private let store: any RegistryStore
    /// group → members sorted by id.
    private let view = Mutex<[String: [Member]]>([:])
    private let writer = AsyncLock()
    private let rotation = Atomic<Int>(0)
    private let observers = Mutex<[@Sendable ([RegistryChange]) -> Void]>([])

    public init(store: any RegistryStore, policy: RegistryPolicy, clock: WallClock = .system) {
        self.store = store
        currentPolicy = Mutex(policy)
        self.clock = clock
    }

    /// Puts a reloaded `[cluster]` timing in place; members keep their registrations.
    public func replacePolicy(_ policy: RegistryPolicy) { currentPolicy.withLock { $0 = policy } }

    /// Loads the stored members. Remaining TTLs are honoured as stored: a member whose TTL ran
    /// out while the daemon was down is due for its check at once, not dropped.
    public func load() async throws(RegistryError) {
        let members = try await store.loadAll()
        view.withLock { view in
            view = Self.grouped(members)
        }
    }

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

    /// One group's members sorted by id, or nil for an unknown group.
    public func members(of group: String) -> [Member]? {
        view.withLock { $0[group] }
    }

    /// A number that grows by one per call: where the next answer's rotation starts.
    func nextRotation() -> Int {
        rotation.wrappingAdd(1, ordering: .relaxed).oldValue
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
    /// member was replaced, removed or renewed by a heartbeat meanwhile: that news is newer.
    public func record(_ result: CheckResult, of checked: Member) async throws(RegistryError) {
        _ = try await change(group: checked.group, id: checked.id) { existing -> (RegistryChange?, Void) in
            guard let existing, existing == checked else { return (nil, ()) }
            return (.put(policy.applying(result, to: existing)), ())
        }
    }

    /// Removes expired members (check-less ones past their TTL, unhealthy ones past the grace
    /// time) in one transaction; returns them.
    public func removeExpired(now: UnixMillis) async throws(RegistryError) -> [Member] {
        try await writer.withLock { () async throws(RegistryError) -> [Member] in
            let expired = view.withLock { view in view.values.flatMap { $0.filter { policy.isExpired($0, now: now) } } }
            guard !expired.isEmpty else { return [] }
            let changes = expired.map { RegistryChange.delete(group: $0.group, id: $0.id) }
            try await store.save(changes)
            show(changes)
            return expired
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
            try await store.save([change])
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
