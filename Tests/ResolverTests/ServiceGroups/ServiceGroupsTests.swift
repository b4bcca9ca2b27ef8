// ServiceGroups/: registration parsing, a member's life under a manual wall clock, the registry's
// one-writer rule over a store that can fail, SQLite round trips, and the cluster zone's answers.

import Foundation
import Synchronization
import Testing

@testable import Resolver

/// A wall clock the test moves by hand.
final class ManualWallClock: Sendable {
    private let millis = Atomic<Int64>(1_800_000_000_000)
    var clock: WallClock { WallClock { [self] in self.now } }
    var now: UnixMillis { millis.load(ordering: .relaxed) }
    func advance(seconds: Double) { millis.add(Int64(seconds * 1000), ordering: .relaxed) }
}

/// A store in memory that fails every save while `failing` is set.
final class MemoryStore: RegistryStore {
    let members = Mutex<[String: Member]>([:])
    let failing = Atomic<Bool>(false)
    let saves = Atomic<Int>(0)

    func loadAll() async throws(RegistryError) -> StoredMembers {
        if failing.load(ordering: .relaxed) { throw RegistryError("disk full") }
        return StoredMembers(members: members.withLock { Array($0.values) })
    }

    func save(_ changes: [RegistryChange]) async throws(RegistryError) {
        if failing.load(ordering: .relaxed) { throw RegistryError("disk full") }
        saves.add(1, ordering: .relaxed)
        members.withLock { members in
            for change in changes {
                switch change {
                case .put(let member): members["\(member.group)/\(member.id)"] = member
                case .delete(let group, let id): members["\(group)/\(id)"] = nil
                }
            }
        }
    }
}

@Suite("Registration")
struct RegistrationTests {
    static func parse(_ body: String, group: String = "web", id: String = "n1") throws(FieldError) -> Member {
        try Registration.member(group: group, id: id, body: Data(body.utf8), now: 1000)
    }

    @Test("a full body becomes a member; names are lower-cased, defaults filled in")
    func full() throws {
        let member = try Self.parse(
            #"{"address": "2001:DB8::1", "port": 443, "ttl_s": 30, "service": "HTTPS", "proto": "TCP", "tags": ["Blue", "blue", "v2"], "check": {"type": "http", "path": "/healthz", "timeout_ms": 750}}"#,
            group: "Web", id: "Node-7")
        #expect(member.group == "web" && member.id == "node-7")
        #expect(member.address == IPAddress("2001:db8::1"))
        #expect(member.port == 443 && member.service == "https" && member.proto == "tcp")
        #expect(member.tags == ["blue", "v2"])
        #expect(member.check == HealthCheck(kind: .http, path: "/healthz", timeoutMs: 750))
        #expect(member.registeredAt == 1000 && member.expiresAt == 31_000 && member.isHealthy)
        let minimal = try Self.parse(#"{"address": "192.0.2.1", "ttl_s": 5}"#)
        #expect(minimal.check.kind == .none && minimal.port == nil && minimal.proto == "tcp")
        let http = try Self.parse(#"{"address": "192.0.2.1", "ttl_s": 5, "port": 80, "check": {"type": "http"}}"#)
        #expect(http.check.path == "/" && http.check.timeoutMs == HealthCheck.defaultTimeoutMs)
    }

    @Test(
        "every bad field is named",
        arguments: [
            (#"{"ttl_s": 5}"#, "address"), (#"{"address": "example.com", "ttl_s": 5}"#, "address"),
            (#"{"address": 1, "ttl_s": 5}"#, "address"), (#"{"address": "192.0.2.1"}"#, "ttl_s"),
            (#"{"address": "192.0.2.1", "ttl_s": 86401}"#, "ttl_s"), (#"{"address": "192.0.2.1", "ttl_s": 1.5}"#, "ttl_s"),
            (#"{"address": "192.0.2.1", "ttl_s": 5, "port": 0}"#, "port"),
            (#"{"address": "192.0.2.1", "ttl_s": 5, "proto": "sctp"}"#, "proto"),
            (#"{"address": "192.0.2.1", "ttl_s": 5, "service": "_x"}"#, "service"),
            (#"{"address": "192.0.2.1", "ttl_s": 5, "tags": "a"}"#, "tags"),
            (#"{"address": "192.0.2.1", "ttl_s": 5, "tags": ["ok", "not ok"]}"#, "tags[1]"),
            (#"{"address": "192.0.2.1", "ttl_s": 5, "check": "tcp"}"#, "check"),
            (#"{"address": "192.0.2.1", "ttl_s": 5, "check": {}}"#, "check.type"),
            (#"{"address": "192.0.2.1", "ttl_s": 5, "check": {"type": "http"}}"#, "port"),
            (#"{"address": "192.0.2.1", "ttl_s": 5, "port": 1, "check": {"type": "tcp", "path": "/"}}"#, "check.path"),
            (#"{"address": "192.0.2.1", "ttl_s": 5, "port": 1, "check": {"type": "http", "path": "x"}}"#, "check.path"),
            (#"{"address": "192.0.2.1", "ttl_s": 5, "port": 1, "check": {"type": "tcp", "timeout_ms": 5}}"#, "check.timeout_ms"),
            (#"{"address": "192.0.2.1", "ttl_s": 5, "port": 1, "check": {"type": "tcp", "retries": 5}}"#, "check.retries"),
            (#"{"address": "192.0.2.1", "ttl_s": 5, "weight": 5}"#, "weight"), (#"[1]"#, "body"), (#"{"#, "body"),
        ])
    func badFields(body: String, field: String) {
        #expect(throws: FieldError.self) { try Self.parse(body) }
        do throws(FieldError) {
            _ = try Self.parse(body)
        } catch {
            #expect(error.field == field, "\(body): \(error)")
        }
    }

    @Test("group and id must be DNS labels", arguments: ["", "-a", "a-", "a.b", "a_b", String(repeating: "x", count: 64), "ü"])
    func badLabels(label: String) {
        #expect(ServiceLabel.normalize(label) == nil)
        #expect(throws: FieldError("group", "'\(label)' is not a DNS label (letters, digits, hyphens; 1 to 63)")) {
            try Self.parse(#"{"address": "192.0.2.1", "ttl_s": 5}"#, group: label)
        }
    }
}

@Suite("Member lifecycle")
struct MemberLifecycleTests {
    static func member(ttl: Int = 10, check: HealthCheck.Kind = .tcp, at time: UnixMillis = 0) -> Member {
        Member(group: "web", id: "a", address: .v4(0xC000_0201), port: 80, ttlSeconds: ttl, check: HealthCheck(kind: check), registeredAt: time)
    }

    @Test("a healthy member is due for its check when its TTL runs out; a check-less one expires instead")
    func due() {
        let policy = RegistryPolicy()
        let member = Self.member(ttl: 10)
        #expect(!policy.isDueForCheck(member, now: 9_999))
        #expect(policy.isDueForCheck(member, now: 10_000))
        #expect(!policy.isExpired(member, now: 1_000_000))
        let none = Self.member(ttl: 10, check: .none)
        #expect(!policy.isDueForCheck(none, now: 20_000))
        #expect(!policy.isExpired(none, now: 9_999) && policy.isExpired(none, now: 10_000))
    }

    @Test("a passing check renews the TTL from the check's time")
    func pass() {
        let policy = RegistryPolicy()
        let renewed = policy.applying(CheckResult(at: 12_000, healthy: true, detail: "connected"), to: Self.member(ttl: 10))
        #expect(renewed.isHealthy && renewed.expiresAt == 22_000 && renewed.lastCheck?.detail == "connected")
    }

    @Test("failures take the member out, re-check with doubling back-off up to the cap, and remove it after the grace time")
    func failures() {
        var policy = RegistryPolicy()
        policy.recheckMaxSeconds = 5
        policy.deregisterAfterSeconds = 60
        var member = Self.member(ttl: 10)
        var now: UnixMillis = 10_000
        var delays: [Int64] = []
        for _ in 0..<5 {
            member = policy.applying(CheckResult(at: now, healthy: false, detail: "refused"), to: member)
            guard case .unhealthy(let since, _, let next) = member.health else {
                Issue.record("not unhealthy")
                return
            }
            #expect(since == 10_000, "the first failure's time is kept")
            #expect(!policy.isDueForCheck(member, now: next - 1) && policy.isDueForCheck(member, now: next))
            delays.append(next - now)
            now = next
        }
        #expect(delays == [1000, 2000, 4000, 5000, 5000])
        #expect(policy.answerTTL(member, now: now) == 0)
        #expect(!policy.isExpired(member, now: 69_999) && policy.isExpired(member, now: 70_000))
        // A heartbeat revives it whatever the checks said.
        let revived = policy.renewing(member, now: now)
        #expect(revived.isHealthy && revived.expiresAt == now + 10_000)
    }

    @Test("answer TTLs never exceed answer_ttl_s nor what is left of the registration")
    func answerTTL() {
        var policy = RegistryPolicy()
        policy.answerTTLSeconds = 5
        let member = Self.member(ttl: 10)
        #expect(policy.answerTTL(member, now: 0) == 5)
        #expect(policy.answerTTL(member, now: 7_500) == 2)
        #expect(policy.answerTTL(member, now: 12_000) == 0)
    }
}

@Suite("ServiceRegistry")
struct ServiceRegistryTests {
    @Test("register creates then replaces; heartbeat and deregister of unknown members say so")
    func basics() async throws {
        let time = ManualWallClock()
        let registry = ServiceRegistry(store: MemoryStore(), policy: RegistryPolicy(), clock: time.clock)
        let member = MemberLifecycleTests.member(at: time.now)
        #expect(try await registry.register(member) == .created(member))
        #expect(try await registry.register(member) == .replaced(member))
        time.advance(seconds: 4)
        #expect(try await registry.heartbeat(group: "web", id: "a")?.expiresAt == time.now + 10_000)
        #expect(try await registry.heartbeat(group: "web", id: "b") == nil)
        #expect(try await registry.deregister(group: "web", id: "b") == false)
        #expect(try await registry.deregister(group: "web", id: "a") == true)
        #expect(registry.members(of: "web") == nil)
    }

    @Test("a failed save changes nothing in memory")
    func failedSave() async throws {
        let store = MemoryStore()
        let registry = ServiceRegistry(store: store, policy: RegistryPolicy(), clock: ManualWallClock().clock)
        let member = MemberLifecycleTests.member()
        _ = try await registry.register(member)
        store.failing.store(true, ordering: .relaxed)
        var moved = member
        moved.address = .v4(0xC000_0209)
        await #expect(throws: RegistryError.self) { try await registry.register(moved) }
        await #expect(throws: RegistryError.self) { try await registry.deregister(group: "web", id: "a") }
        #expect(registry.members(of: "web") == [member])
    }

    @Test("a check result is dropped when a heartbeat renewed the member meanwhile")
    func staleCheck() async throws {
        let time = ManualWallClock()
        let registry = ServiceRegistry(store: MemoryStore(), policy: RegistryPolicy(), clock: time.clock)
        let member = MemberLifecycleTests.member(ttl: 10, at: time.now)
        _ = try await registry.register(member)
        time.advance(seconds: 11)
        let due = registry.dueForCheck(now: time.now)
        #expect(due == [member])
        _ = try await registry.heartbeat(group: "web", id: "a")
        await registry.record(CheckResult(at: time.now, healthy: false, detail: "refused"), of: member)
        #expect(registry.members(of: "web")?.first?.isHealthy == true)
        // Without the heartbeat it counts.
        time.advance(seconds: 11)
        let now = try #require(registry.dueForCheck(now: time.now).first)
        await registry.record(CheckResult(at: time.now, healthy: false, detail: "refused"), of: now)
        #expect(registry.members(of: "web")?.first?.isHealthy == false)
    }

    @Test("on load, a member whose TTL ran out while the daemon was down is due for its check, not dropped")
    func loadHonoursTTLs() async throws {
        let time = ManualWallClock()
        let store = MemoryStore()
        var stale = MemberLifecycleTests.member(ttl: 10, at: time.now - 60_000)
        stale.id = "stale"
        let fresh = MemberLifecycleTests.member(ttl: 600, at: time.now - 60_000)
        try await store.save([.put(stale), .put(fresh)])
        let registry = ServiceRegistry(store: store, policy: RegistryPolicy(), clock: time.clock)
        try await registry.load()
        #expect(registry.members(of: "web")?.map(\.id) == ["a", "stale"])
        #expect(registry.dueForCheck(now: time.now).map(\.id) == ["stale"])
        #expect(await registry.removeExpired(now: time.now).removed.isEmpty)
        #expect(registry.members(of: "web")?.first?.expiresAt == fresh.expiresAt, "the remaining TTL is kept")
    }

    @Test("removeExpired takes out check-less members past their TTL in one save")
    func expiry() async throws {
        let time = ManualWallClock()
        let store = MemoryStore()
        let registry = ServiceRegistry(store: store, policy: RegistryPolicy(), clock: time.clock)
        for id in ["a", "b", "c"] {
            var member = MemberLifecycleTests.member(ttl: id == "c" ? 100 : 5, check: .none, at: time.now)
            member.id = id
            _ = try await registry.register(member)
        }
        time.advance(seconds: 6)
        let saves = store.saves.load(ordering: .relaxed)
        #expect(await registry.removeExpired(now: time.now).removed.map(\.id).sorted() == ["a", "b"])
        #expect(store.saves.load(ordering: .relaxed) == saves + 1)
        #expect(registry.members(of: "web")?.map(\.id) == ["c"])
    }
}

@Suite("SQLiteRegistryStore")
struct SQLiteRegistryStoreTests {
    @Test("members survive a reopen with every field, and deletes stick")
    func roundTrip() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("registry-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("nested/registry.sqlite").path
        var full = Member(
            group: "web", id: "a", address: IPAddress("2001:db8::5") ?? .v4(0), port: 8443, service: "https", proto: "udp",
            tags: ["x", "y"], ttlSeconds: 30, check: HealthCheck(kind: .http, path: "/h", timeoutMs: 900), registeredAt: 5_000)
        full.health = .unhealthy(since: 40_000, failures: 3, nextCheck: 44_000)
        full.lastCheck = CheckResult(at: 40_000, healthy: false, detail: "HTTP 503")
        let plain = Member(group: "db", id: "b", address: .v4(0x0A00_0001), ttlSeconds: 10, registeredAt: 7_000)
        do {
            let store = try SQLiteRegistryStore(path: path)
            try await store.save([.put(full), .put(plain)])
            try await store.save([.put(MemberLifecycleTests.member()), .delete(group: "web", id: "zzz")])
            try await store.save([.delete(group: "web", id: "a"), .put(full)])
        }
        let reopened = try SQLiteRegistryStore(path: path)
        let members = try await reopened.loadAll().members
        #expect(members.count == 2)
        #expect(members.first { $0.id == "a" } == full)
        #expect(members.first { $0.id == "b" } == plain)
    }

    @Test("an unusable path is an error naming registry.path")
    func badPath() {
        #expect(throws: RegistryError.self) { try SQLiteRegistryStore(path: "/proc/registry.sqlite") }
        do throws(RegistryError) {
            _ = try SQLiteRegistryStore(path: "/proc/registry.sqlite")
        } catch {
            #expect(error.message.hasPrefix("registry.path '/proc/registry.sqlite'"))
        }
    }
}

@Suite("ClusterAnswers")
struct ClusterAnswersTests {
    static let domain = DomainName("cluster.internal.") ?? .root

    static func registry(_ members: [Member], time: ManualWallClock) async throws -> ServiceRegistry {
        var policy = RegistryPolicy()
        policy.answerTTLSeconds = 5
        let registry = ServiceRegistry(store: MemoryStore(), policy: policy, clock: time.clock)
        for member in members { _ = try await registry.register(member) }
        return registry
    }

    static func question(_ name: String, _ type: RecordType = .a) -> Question {
        Question(name: DomainName(name) ?? .root, type: type, recordClass: .in)
    }

    @Test("names outside the zone, and other classes, are not answered here")
    func outside() async throws {
        let answers = ClusterAnswers(domain: Self.domain, registry: try await Self.registry([], time: ManualWallClock()))
        #expect(answers.answer(Self.question("example.com.")) == nil)
        #expect(answers.answer(Question(name: Self.domain, type: .a, recordClass: .ch)) == nil)
    }

    @Test("unhealthy members are left out; a group with none healthy is NODATA, TTLs follow the registration")
    func health() async throws {
        let time = ManualWallClock()
        var sick = Member(group: "web", id: "s", address: .v4(0xC000_0202), port: 80, ttlSeconds: 60, registeredAt: time.now)
        sick.health = .unhealthy(since: time.now, failures: 1, nextCheck: time.now + 1000)
        let short = Member(group: "web", id: "t", address: .v4(0xC000_0203), ttlSeconds: 3, registeredAt: time.now)
        let registry = try await Self.registry([sick, short], time: time)
        let answers = ClusterAnswers(domain: Self.domain, registry: registry)
        let reply = try #require(answers.answer(Self.question("web.cluster.internal.")))
        #expect(reply.answers.map(\.rdata) == [[192, 0, 2, 3]])
        #expect(reply.answers.first?.ttl == 3)
        time.advance(seconds: 2.5)
        #expect(answers.answer(Self.question("web.cluster.internal."))?.answers.first?.ttl == 0)
        _ = try await registry.deregister(group: "web", id: "t")
        let none = try #require(answers.answer(Self.question("web.cluster.internal.")))
        #expect(none.rcode == .noError && none.answers.isEmpty && none.authorities.first?.type == .soa)
        #expect(answers.answer(Self.question("s.web.cluster.internal."))?.answers.isEmpty == true)
    }

    @Test("SRV by service or tag and protocol, with targets answered in the additional section")
    func srv() async throws {
        let time = ManualWallClock()
        let members = [
            Member(group: "web", id: "a", address: .v4(0xC000_0201), port: 80, service: "http", ttlSeconds: 60, registeredAt: time.now),
            Member(group: "web", id: "b", address: .v4(0xC000_0202), port: 81, tags: ["http"], ttlSeconds: 60, registeredAt: time.now),
            Member(group: "web", id: "c", address: .v4(0xC000_0203), port: 53, service: "dns", proto: "udp", ttlSeconds: 60, registeredAt: time.now),
            Member(group: "web", id: "d", address: .v4(0xC000_0204), service: "http", ttlSeconds: 60, registeredAt: time.now),
        ]
        let answers = ClusterAnswers(domain: Self.domain, registry: try await Self.registry(members, time: time))
        let http = try #require(answers.answer(Self.question("_http._tcp.web.cluster.internal.", .srv)))
        #expect(http.answers.count == 2)
        #expect(Set(http.additionals.map(\.name.description)) == ["a.web.cluster.internal.", "b.web.cluster.internal."])
        #expect(answers.answer(Self.question("_dns._udp.web.cluster.internal.", .srv))?.answers.count == 1)
        #expect(answers.answer(Self.question("_dns._tcp.web.cluster.internal.", .srv))?.rcode == .nxDomain)
        #expect(answers.answer(Self.question("_http._tcp.web.cluster.internal.", .a))?.answers.isEmpty == true)
        // SRV at the group name: every healthy member with a port.
        #expect(answers.answer(Self.question("web.cluster.internal.", .srv))?.answers.count == 3)
    }
}
