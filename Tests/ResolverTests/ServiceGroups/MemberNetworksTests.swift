// ServiceGroups/MemberNetworks: which addresses members may have (registry.allowed_networks),
// the store wrapper that skips stored members outside them, and the checker that never probes one.

import Foundation
import Logging
import NIOCore
import Synchronization
import Testing

@testable import Resolver

@Suite("MemberNetworks")
struct MemberNetworksTests {
    static func networks(_ texts: [String], configured: Bool = true) -> MemberNetworks {
        MemberNetworks(networks: texts.compactMap(IPNetwork.init), configured: configured)
    }

    @Test(
        "special addresses need a configured network inside their range; 0.0.0.0/0 and interface networks never admit them",
        arguments: [
            (["127.0.0.0/8"], "127.0.0.1", true),
            (["127.0.0.1/32"], "127.0.0.2", false),
            (["0.0.0.0/0"], "127.0.0.1", false),
            (["0.0.0.0/0"], "169.254.169.254", false),
            (["0.0.0.0/0"], "192.0.2.1", true),
            (["0.0.0.0/0"], "224.0.0.1", false),
            (["0.0.0.0/0"], "0.0.0.0", false),
            (["0.0.0.0/0"], "255.255.255.255", false),
            (["0.0.0.0/0"], "::ffff:169.254.169.254", false),
            (["0.0.0.0/0"], "::ffff:192.0.2.1", true),
            (["169.254.169.254/32"], "169.254.169.254", true),
            (["::/0"], "::1", false),
            (["::/0"], "fe80::1", false),
            (["::/0"], "ff02::1", false),
            (["::/0"], "::", false),
            (["::/0"], "2001:db8::1", true),
            (["::1/128"], "::1", true),
            (["10.0.0.0/8"], "10.0.0.1", true),
            (["10.0.0.0/8"], "11.0.0.1", false),
        ])
    func admits(_ allowed: [String], _ address: String, _ admitted: Bool) throws {
        #expect(Self.networks(allowed).admits(try #require(IPAddress(address))) == admitted)
    }

    @Test("interface networks (the default) never admit loopback or link-local even when one contains them")
    func interfaceDefault() throws {
        let defaults = Self.networks(["0.0.0.0/0", "::/0", "127.0.0.0/8", "169.254.0.0/16"], configured: false)
        #expect(!defaults.admits(try #require(IPAddress("127.0.0.1"))))
        #expect(!defaults.admits(try #require(IPAddress("169.254.169.254"))))
        #expect(defaults.admits(try #require(IPAddress("192.0.2.1"))))
        #expect(defaults.refusal(try #require(IPAddress("169.254.169.254")))?.contains("link-local") == true)
        // The host's own interfaces never include loopback.
        #expect(MemberNetworks.interfaceNetworks().allSatisfy { !$0.address.isLoopback })
    }
}


/// A probe that records whom it was asked to check and says healthy.
final class RecordingProbe: HealthProbe {
    let asked = Mutex<[IPAddress]>([])
    func check(_ member: Member) async -> (healthy: Bool, detail: String) {
        asked.withLock { $0.append(member.address) }
        return (true, "connected")
    }
}

@Suite("AllowedNetworks")
struct AllowedNetworksTests {
    static let networks = MemberNetworks(networks: [IPNetwork("127.0.0.1/32")].compactMap { $0 }, configured: true)

    static func member(_ id: String, _ address: String, at time: UnixMillis) -> Member {
        Member(
            group: "web", id: id, address: IPAddress(address) ?? .v4(0), port: 9, ttlSeconds: 1,
            check: HealthCheck(kind: .tcp), registeredAt: time)
    }

    @Test("a stored member outside the allowed networks is skipped at load; the others load")
    func storeSkips() async throws {
        let store = MemoryStore()
        try await store.save([.put(Self.member("inside", "127.0.0.1", at: 0)), .put(Self.member("outside", "127.0.9.9", at: 0))])
        let admitting = AdmittingStore(store: store, networks: Self.networks, logger: Logger(label: "test"))
        #expect(try await admitting.loadAll().members.map(\.id) == ["inside"])
        // Saves pass through.
        try await admitting.save([.delete(group: "web", id: "inside")])
        #expect(store.members.withLock { $0.count } == 1)
    }

    @Test("the checker never probes a member outside the allowed networks: it is recorded unhealthy, not checked")
    func checkerSkips() async throws {
        let time = ManualWallClock()
        let registry = ServiceRegistry(store: MemoryStore(), policy: RegistryPolicy(), clock: time.clock)
        _ = try await registry.register(Self.member("inside", "127.0.0.1", at: time.now))
        _ = try await registry.register(Self.member("outside", "127.0.9.9", at: time.now))
        time.advance(seconds: 2)  // both TTLs ran out: both are due
        let probe = RecordingProbe()
        let checker = HealthChecker(
            registry: registry, probe: probe, networks: Self.networks, concurrency: { 8 }, logger: Logger(label: "test"),
            tick: .milliseconds(5))
        let running = Task { try await checker.run() }
        defer { running.cancel() }
        let clock = ContinuousClock()
        // A generous deadline: the full suite's blocking tests can starve this task for seconds.
        let deadline = clock.now + .seconds(30)
        func checked(_ id: String) -> Member? { registry.members(of: "web")?.first { $0.id == id && $0.lastCheck != nil } }
        while clock.now < deadline, checked("inside") == nil || checked("outside") == nil {
            try await Task.sleep(for: .milliseconds(5))
        }
        #expect(probe.asked.withLock { $0 } == [IPAddress("127.0.0.1")])
        let outside = try #require(checked("outside"))
        #expect(!outside.isHealthy && outside.lastCheck?.detail == HealthChecker.notChecked)
        #expect(checked("inside")?.isHealthy == true)
    }

    @Test("a failed check's detail is a fixed phrase, never the error's text")
    func summary() {
        struct Chatty: Error, CustomStringConvertible { var description: String { "SECRET-BODY from the target" } }
        #expect(NetworkHealthProbe.summary(Chatty()) == "check failed")
        #expect(NetworkHealthProbe.summary(IOError(errnoCode: ECONNREFUSED, reason: "connect")) == "connection refused")
    }
}
