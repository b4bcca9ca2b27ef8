// ServiceGroups/: faults that must not take DNS down. Records read back from a store are checked
// as registrations are (bad ones skipped, never trapped on); time arithmetic saturates; a damaged
// SQLite file leaves the registry degraded until an explicit reset sets it aside; health changes
// reach the answers even when the store cannot take them, and are saved when it can.

import Foundation
import GRDB
import Synchronization
import Testing

@testable import Resolver

#if canImport(Glibc)
import Glibc
#endif

/// A temporary folder removed by the test that made it.
private func temporaryFolder() -> URL {
    FileManager.default.temporaryDirectory.appendingPathComponent("registry-hardening-\(UUID().uuidString)")
}

@Suite("RegistryHardening")
struct RegistryHardeningTests {
    static func good(_ id: String = "a") -> MemberRecord {
        MemberRecord(Member(group: "web", id: id, address: .v4(0x7F00_0001), port: 80, ttlSeconds: 30, registeredAt: 1_000))
    }

    @Test(
        "a stored record is checked as a registration is: overflowing TTLs, long ids, bad fields are refused, never trapped on",
        arguments: [
            { (record: inout MemberRecord) in record.ttlS = 9_223_372_036_854_775 },
            { $0.ttlS = Int.max },
            { $0.ttlS = 0 },
            { $0.id = String(repeating: "x", count: 300) },
            { $0.group = "a.b" },
            { $0.address = "example.com" },
            { $0.proto = "sctp" },
            { $0.service = String(repeating: "s", count: 63) },
            { $0.tags = (0..<33).map { "t\($0)" } },
            { $0.checkType = "icmp" },
            { $0.checkType = "http"; $0.checkPath = "no-slash" },
            { $0.checkTimeoutMs = -1 },
            { $0.checkType = "tcp"; $0.port = nil },
            { $0.expiresAt = .max },
            { $0.registeredAt = .min },
            { $0.unhealthySince = 5_000; $0.failures = -3 },
            { $0.unhealthySince = 5_000; $0.nextCheck = .max },
        ] as [@Sendable (inout MemberRecord) -> Void])
    func storedRecordsChecked(damage: @Sendable (inout MemberRecord) -> Void) {
        var record = Self.good()
        #expect((try? record.member()) != nil)
        damage(&record)
        #expect(throws: RegistryError.self) { try record.member() }
    }

    @Test("SQLite: damaged rows are skipped and named, the good ones load")
    func damagedRows() async throws {
        let folder = temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("registry.sqlite").path
        let store = try SQLiteRegistryStore(path: path)
        try await store.save([.put(try Self.good("ok").member()), .put(try Self.good("b").member())])
        // Rows written behind the store's back, as a damaged disk or another tool would.
        let queue = try DatabaseQueue(path: path)
        try await queue.write { db in
            try db.execute(sql: "UPDATE members SET ttl_s = 9223372036854775 WHERE id = 'b'")
            let insert = """
                INSERT INTO members (grp, id, address, port, service, proto, tags, ttl_s, check_type, check_path,
                check_timeout_ms, registered_at, expires_at, unhealthy_since, failures)
                VALUES (?, ?, ?, ?, NULL, 'tcp', ?, ?, 'none', NULL, 2000, 1000, 31000, ?, ?)
                """
            for arguments: StatementArguments in [
                ["web", String(repeating: "x", count: 300), "127.0.0.1", 80, "[]", 30, nil, 0],
                ["web", "port", "127.0.0.1", 70_000, "[]", 30, nil, 0],
                ["web", "text", "127.0.0.1", 80, "[]", "thirty", nil, 0],
                ["web", "tags", "127.0.0.1", 80, "not json", 30, nil, 0],
                ["web", "addr", "bogus", 80, "[]", 30, nil, 0],
                ["web", "fails", "127.0.0.1", 80, "[]", 30, 5_000, -4],
            ] {
                try db.execute(sql: insert, arguments: arguments)
            }
        }
        let stored = try await store.loadAll()
        #expect(stored.members.map(\.id) == ["ok"])
        #expect(stored.damaged.count == 7)
        #expect(stored.damaged.allSatisfy { $0.message.contains("is damaged") })
        #expect(stored.damaged.allSatisfy { $0.message.count < 400 }, "names are cut short in messages")
    }

    @Test("time arithmetic saturates: extreme stored times and TTLs never trap")
    func saturating() {
        #expect(UnixMillis.max.adding(seconds: 10) == .max)
        #expect(UnixMillis.min.adding(seconds: -10) == .min)
        #expect(UnixMillis(0).adding(seconds: .max) == .max)
        #expect(UnixMillis.max.since(.min) == .max)
        #expect(UnixMillis.min.since(1) == .min)
        let policy = RegistryPolicy()
        var member = Member(group: "web", id: "a", address: .v4(1), ttlSeconds: .max, registeredAt: .max)
        #expect(member.expiresAt == .max)
        #expect(policy.answerTTL(member, now: .min) == 5)
        member.health = .unhealthy(since: .min, failures: .max, nextCheck: .max)
        #expect(policy.isExpired(member, now: .max))
        let next = policy.applying(CheckResult(at: .max, healthy: false, detail: "x"), to: member)
        #expect(next.health == .unhealthy(since: .min, failures: .max, nextCheck: .max))
        #expect(policy.renewing(member, now: .max).expiresAt == .max)
    }

    @Test("an SRV answer skips a member whose id is not a label instead of trapping")
    func longIdInAnswers() throws {
        let registry = ServiceRegistry(store: MirrorStore(), policy: RegistryPolicy(), clock: ManualWallClock().clock)
        let now = ManualWallClock().now
        let long = Member(
            group: "web", id: String(repeating: "x", count: 300), address: .v4(0x7F00_0001), port: 80, service: "http",
            ttlSeconds: 60, registeredAt: now)
        let fine = Member(group: "web", id: "b", address: .v4(0x7F00_0002), port: 81, service: "http", ttlSeconds: 60, registeredAt: now)
        registry.mirror(all: [long, fine])
        let answers = ClusterAnswers(domain: ClusterAnswersTests.domain, registry: registry)
        let reply = try #require(answers.answer(ClusterAnswersTests.question("_http._tcp.web.cluster.internal.", .srv)))
        #expect(reply.answers.count == 1)
    }

    // MARK: Degraded

    @Test("a damaged SQLite file: degraded (SERVFAIL, changes refused), kept as found until a reset sets it aside")
    func corruptFile() async throws {
        let folder = temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let path = folder.appendingPathComponent("registry.sqlite").path
        let garbage = Data((0..<16_384).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) })
        try garbage.write(to: URL(fileURLWithPath: path))
        #expect(throws: RegistryError.self) { try SQLiteRegistryStore(path: path) }

        let time = ManualWallClock()
        let registry = ServiceRegistry(store: UnavailableStore(), policy: RegistryPolicy(), clock: time.clock)
        registry.allowReset { () throws(RegistryError) -> (store: any RegistryStore, setAside: String) in
            let aside = try SQLiteRegistryStore.setAside(path: path, now: time.now)
            return (try SQLiteRegistryStore(path: path), aside)
        }
        await #expect(throws: ServiceRegistry.ResetRefusal.notDegraded) { _ = try await registry.reset() }
        registry.degrade("the registry store could not be opened or read", replacing: UnavailableStore())
        #expect(registry.isDegraded)
        let answers = ClusterAnswers(domain: ClusterAnswersTests.domain, registry: registry)
        #expect(answers.answer(ClusterAnswersTests.question("web.cluster.internal."))?.rcode == .servFail)
        #expect(answers.answer(ClusterAnswersTests.question("cluster.internal.", .soa))?.answers.count == 1)
        let member = try Self.good().member()
        await #expect(throws: RegistryError.self) { _ = try await registry.register(member) }
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == garbage, "not written while degraded")

        let aside = try await registry.reset()
        #expect(aside.hasPrefix(path + ".corrupt-"))
        #expect(try Data(contentsOf: URL(fileURLWithPath: aside)) == garbage, "kept, not deleted or overwritten")
        #expect(registry.status == .ready)
        #expect(try await registry.register(member) == .created(member))
        #expect(answers.answer(ClusterAnswersTests.question("web.cluster.internal."))?.answers.count == 1)
        // A second reset is refused: the registry works.
        await #expect(throws: ServiceRegistry.ResetRefusal.notDegraded) { _ = try await registry.reset() }
    }

    @Test("a damaged page in a real SQLite file is found at open")
    func damagedPage() async throws {
        let folder = temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("registry.sqlite").path
        do {
            let store = try SQLiteRegistryStore(path: path)
            try await store.save((0..<400).map { .put(try Self.good("m\($0)").member()) })
        }
        // Closed: the WAL is checkpointed into the file. Overwrite its third page.
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: path))
        try handle.seek(toOffset: 2 * 4096)
        try handle.write(contentsOf: Data(repeating: 0xA5, count: 4096))
        try handle.close()
        #expect(throws: RegistryError.self) { try SQLiteRegistryStore(path: path) }
    }

    // MARK: Health when the store fails

    @Test("a failed check takes the member out of the answers even when the store fails; saved with back-off later")
    func healthWithoutStore() async throws {
        let time = ManualWallClock()
        let store = MemoryStore()
        let registry = ServiceRegistry(store: store, policy: RegistryPolicy(), clock: time.clock)
        let member = Member(
            group: "web", id: "a", address: .v4(0x7F00_0001), port: 80, ttlSeconds: 10, check: HealthCheck(kind: .tcp),
            registeredAt: time.now)
        let checkless = Member(group: "web", id: "z", address: .v4(0x7F00_0003), ttlSeconds: 5, registeredAt: time.now)
        _ = try await registry.register(member)
        _ = try await registry.register(checkless)
        time.advance(seconds: 11)
        store.failing.store(true, ordering: .relaxed)
        let due = try #require(registry.dueForCheck(now: time.now).first)
        let outcome = await registry.record(CheckResult(at: time.now, healthy: false, detail: "refused"), of: due)
        guard case .deferred = outcome else { Issue.record("expected the save deferred, got \(outcome)"); return }
        let answers = ClusterAnswers(domain: ClusterAnswersTests.domain, registry: registry)
        #expect(answers.answer(ClusterAnswersTests.question("a.web.cluster.internal."))?.answers.isEmpty == true)
        #expect(registry.dueForCheck(now: time.now).isEmpty, "re-checked after its back-off, not every tick")
        // The check-less member's TTL ran out: it leaves too.
        #expect(await registry.removeExpired(now: time.now).removed.map(\.id) == ["z"])
        #expect(answers.answer(ClusterAnswersTests.question("web.cluster.internal."))?.answers.isEmpty == true)
        #expect(registry.pendingCount == 2)

        #expect(await registry.persistPending(now: time.now) == nil, "not before its retry time")
        time.advance(seconds: 1.5)
        #expect(await registry.persistPending(now: time.now) == .deferred(RegistryError("disk full")))
        time.advance(seconds: 1)
        #expect(await registry.persistPending(now: time.now) == nil, "the back-off doubled to 2 s")
        store.failing.store(false, ordering: .relaxed)
        time.advance(seconds: 1.5)
        #expect(await registry.persistPending(now: time.now) == .stored)
        #expect(registry.pendingCount == 0)
        let saved = store.members.withLock { $0 }
        #expect(saved["web/a"]?.isHealthy == false)
        #expect(saved["web/z"] == nil)
    }

    @Test("the checker against a failing store: the member leaves the answers at once and is not re-checked every tick")
    func checkerWithFailingStore() async throws {
        let time = ManualWallClock()
        let store = MemoryStore()
        let registry = ServiceRegistry(store: store, policy: RegistryPolicy(), clock: time.clock)
        let member = Member(
            group: "web", id: "a", address: .v4(0x7F00_0001), port: 80, ttlSeconds: 10, check: HealthCheck(kind: .tcp),
            registeredAt: time.now)
        _ = try await registry.register(member)
        time.advance(seconds: 11)
        store.failing.store(true, ordering: .relaxed)
        let probe = CountingProbe()
        let checker = HealthChecker(
            registry: registry, probe: probe, networks: AllowedNetworksTests.networks, concurrency: { 4 },
            logger: .init(label: "test"), tick: .milliseconds(5))
        let running = Task { try await checker.run() }
        defer { running.cancel() }
        try await waitFor("the member out of the answers") { registry.members(of: "web")?.first?.isHealthy == false }
        // 40 ticks: with the result kept in memory the next check waits for its back-off (the
        // wall clock is held still), where before every tick checked again.
        try await Task.sleep(for: .milliseconds(200))  // a window to count in, not a wait for a result
        let calls = probe.calls.load(ordering: .relaxed)
        #expect(calls == 1)
        #expect(store.members.withLock { $0["web/a"]?.isHealthy } == true, "the store had not taken it")
        store.failing.store(false, ordering: .relaxed)
        time.advance(seconds: 1.2)
        try await waitFor("the result stored") { store.members.withLock { $0["web/a"]?.isHealthy } == false }
    }
}

/// Every check fails; counts them.
private final class CountingProbe: HealthProbe {
    let calls = Atomic<Int>(0)

    func check(_ member: Member) async -> (healthy: Bool, detail: String) {
        calls.add(1, ordering: .relaxed)
        return (false, "connection refused")
    }
}

/// Waits for `condition`, at most 60 s (generous: the whole suite runs in parallel on two cores,
/// and CPU-bound tests can hold the test pool for seconds).
private func waitFor(_ what: String, _ condition: () -> Bool) async throws {
    let clock = ContinuousClock()
    let deadline = clock.now + .seconds(60)
    while !condition() {
        guard clock.now < deadline else {
            Issue.record("timed out waiting for \(what)")
            throw CancellationError()
        }
        try await Task.sleep(for: .milliseconds(2))
    }
}
