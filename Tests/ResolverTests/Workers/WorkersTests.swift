// Workers/: the pure parts of fault isolation — the registry's JSON form carried to workers, the
// registry's observers and mirrors, the control channel's framing, and how the supervisor merges
// its workers' admin answers. Processes are started and killed in IntegrationTests/WorkersTests.

import Foundation
import Testing

@testable import Resolver

#if canImport(Glibc)
import Glibc
#endif

@Suite("Workers")
struct WorkersUnitTests {
    static func member(_ id: String = "a") -> Member {
        var member = Member(
            group: "web", id: id, address: .v4(0xC000_0201), port: 8080, service: "http", proto: "tcp", tags: ["x", "y"],
            ttlSeconds: 30, check: HealthCheck(kind: .http, path: "/healthz", timeoutMs: 700), registeredAt: 1_000)
        member.expiresAt = 31_500
        return member
    }

    @Test("a member round-trips through its record, healthy or unhealthy with a last check")
    func memberRecord() throws {
        var member = Self.member()
        #expect(try MemberRecord(member).member() == member)
        member.health = .unhealthy(since: 40_000, failures: 3, nextCheck: 48_000)
        member.lastCheck = CheckResult(at: 40_000, healthy: false, detail: "connection refused")
        let json = try JSONEncoder().encode(MemberRecord(member))
        #expect(try JSONDecoder().decode(MemberRecord.self, from: json).member() == member)
        var damaged = MemberRecord(member)
        damaged.address = "300.1.1.1"
        #expect(throws: RegistryError.self) { try damaged.member() }
        for change in [RegistryChange.put(member), .delete(group: "web", id: "a")] {
            #expect(try RegistryChangeRecord(change).change() == change)
        }
        #expect(throws: RegistryError.self) { try RegistryChangeRecord.decodeEmpty().change() }
    }

    @Test("observers hear every stored change in order; a mirror shows changes without storing them")
    func observeAndMirror() async throws {
        let registry = ServiceRegistry(store: MemoryStore(), policy: RegistryPolicy(), clock: ManualWallClock().clock)
        let heard = Collected<[RegistryChange]>([])
        registry.observe { changes in heard.mutate { $0 += changes } }
        let member = Self.member()
        _ = try await registry.register(member)
        _ = try await registry.deregister(group: "web", id: "a")
        _ = try await registry.deregister(group: "web", id: "a")  // nothing changed: nothing heard
        #expect(heard.value == [.put(member), .delete(group: "web", id: "a")])

        let mirror = ServiceRegistry(store: MirrorStore(), policy: RegistryPolicy())
        mirror.mirror(all: [Self.member("b"), member])
        #expect(mirror.members(of: "web")?.map(\.id) == ["a", "b"])
        mirror.mirror([.delete(group: "web", id: "a"), .put(Self.member("c"))])
        #expect(mirror.members(of: "web")?.map(\.id) == ["b", "c"])
        mirror.mirror([.delete(group: "web", id: "b"), .delete(group: "web", id: "c")])
        #expect(mirror.members(of: "web") == nil)
        await #expect(throws: RegistryError.self) { _ = try await mirror.register(member) }
    }

    @Test("the control channel carries whole messages in order, big ones too, and reports the peer closing")
    func controlChannel() throws {
        let (supervisor, childEnd) = try #require(ControlChannel.pair())
        let worker = ControlChannel(descriptor: childEnd)
        let many = (0..<5_000).map { MemberRecord(Self.member("m\($0)")) }  // about 2 MB of JSON
        // The sender blocks until the reader drains (a socket buffer is smaller than the
        // snapshot): the reader runs on a thread of its own.
        let received = Collected<(ReceivedSnapshot?, [ControlMessage])>((nil, []))
        let reader = Thread {
            let snapshot = worker.receiveSnapshot(timeoutMs: 5_000)
            received.mutate { $0.0 = snapshot }
            if case .message(let message) = worker.receive(timeoutMs: 5_000) { received.mutate { $0.1.append(message) } }
        }
        reader.start()
        #expect(supervisor.sendSnapshot(many, status: .ready))
        #expect(supervisor.sendChanges([RegistryChangeRecord(.delete(group: "web", id: "m1"))]))
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(10)
        while received.value.1.isEmpty, clock.now < deadline { usleep(1_000) }
        #expect(received.value.0?.members == many)
        #expect(received.value.0?.status == .ready)
        #expect(received.value.1.last?.changes?.first?.delete == ["web", "m1"])
        if case .timedOut = worker.receive(timeoutMs: 20) {} else { Issue.record("expected a timeout") }
        supervisor.close()
        if case .closed = worker.receive(timeoutMs: 1_000) {} else { Issue.record("expected the channel closed") }
        worker.close()
    }

    @Test("metrics: workers' series get a worker label; the registry's come once, from the supervisor")
    func mergeExpositions() {
        func exposition(queries: Int, descriptors: Int) -> String {
            """
            # TYPE resolverd_queries_total counter
            resolverd_queries_total{type="A",rcode="NOERROR",transport="udp"} \(queries)
            # TYPE resolverd_registry_members gauge
            resolverd_registry_members{state="healthy"} 2
            # TYPE resolverd_process_open_fds gauge
            resolverd_process_open_fds \(descriptors)

            """
        }
        let worker = exposition(queries: 5, descriptors: 20)
        let supervisor = exposition(queries: 0, descriptors: 9)
        let merged = WorkerAdmin.mergeExpositions(supervisor: supervisor, workers: [("1", worker), ("2", worker)])
        #expect(merged == """
            # TYPE resolverd_queries_total counter
            resolverd_queries_total{type="A",rcode="NOERROR",transport="udp",worker="1"} 5
            resolverd_queries_total{type="A",rcode="NOERROR",transport="udp",worker="2"} 5
            # TYPE resolverd_process_open_fds gauge
            resolverd_process_open_fds{worker="1"} 20
            resolverd_process_open_fds{worker="2"} 20
            resolverd_process_open_fds{worker="supervisor"} 9
            # TYPE resolverd_registry_members gauge
            resolverd_registry_members{state="healthy"} 2

            """)
        #expect(WorkerAdmin.labelled("a 1", worker: "3") == "a{worker=\"3\"} 1")
        #expect(WorkerAdmin.labelled("a{} 1", worker: "3") == "a{worker=\"3\"} 1")
    }

    @Test("servers: counts add up; timing and order come from the worker that asked most")
    func mergeServers() throws {
        func server(_ address: String, queries: Int, srtt: Double) -> ServersResponse.Server {
            ServersResponse.Server(
                address: address, state: .alive, srttMs: srtt, rttvarMs: 1, rtoMs: 50, queries: queries, timeouts: 1,
                errors: 1, consecutiveFailures: 0, downForMs: nil, lastUsedMsAgo: Double(queries), late: 1, hedged: 2,
                hedgesWon: 1, lateForMs: nil)
        }
        let one = ServersResponse(zones: [.init(zone: ".", servers: [server("a", queries: 10, srtt: 5), server("b", queries: 1, srtt: 9)])])
        let two = ServersResponse(zones: [
            .init(zone: ".", servers: [server("b", queries: 30, srtt: 4), server("a", queries: 2, srtt: 6)]),
            .init(zone: "corp.", servers: [server("c", queries: 1, srtt: 1)]),
        ])
        let merged = WorkerAdmin.merge([one, two])
        #expect(merged.zones.map(\.zone) == [".", "corp."])
        let root = try #require(merged.zones.first)
        #expect(root.servers.map(\.address) == ["b", "a"])
        #expect(root.servers.map(\.queries) == [31, 12])
        #expect(root.servers.map(\.srttMs) == [4, 5])
        #expect(root.servers.map(\.timeouts) == [2, 2])
        #expect(root.servers.map(\.hedged) == [4, 4])
        #expect(root.servers.map(\.hedgesWon) == [2, 2])
        var a = CacheStatistics()
        a.entries = 2
        a.hits = 5
        a.maxBytes = 10
        #expect(WorkerAdmin.sum([a, a]).entries == 4 && WorkerAdmin.sum([a, a]).hits == 10 && WorkerAdmin.sum([a, a]).maxBytes == 20)
    }

    @Test("port 0 becomes one port free for UDP and TCP, held until released (others cannot take it, workers can join it); fixed ports stay")
    func reservingPorts() throws {
        let fixed = try #require(ServerAddress("127.0.0.1:5353"))
        let (chosen, reservation) = WorkerLaunch.reservingPorts([try #require(ServerAddress("127.0.0.1:0")), fixed])
        #expect(chosen[0].port != 0 && chosen[0].ip == fixed.ip)
        #expect(chosen[1] == fixed)
        let address = try chosen[0].socketAddress()
        func bindUDP(reusePort: Bool) -> Bool {
            let descriptor = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
            defer { close(descriptor) }
            var one: Int32 = 1
            if reusePort { setsockopt(descriptor, SOL_SOCKET, SO_REUSEPORT, &one, socklen_t(MemoryLayout<Int32>.size)) }
            return address.withSockAddr { bind(descriptor, $0, socklen_t($1)) } == 0
        }
        #expect(!bindUDP(reusePort: false), "reserved: another socket cannot take the port")
        #expect(bindUDP(reusePort: true), "a worker (SO_REUSEPORT) can join it")
        reservation.release()
        #expect(bindUDP(reusePort: false), "released")
    }
}

extension RegistryChangeRecord {
    /// A record with neither field (what a damaged line would decode to).
    static func decodeEmpty() throws -> RegistryChangeRecord {
        try JSONDecoder().decode(RegistryChangeRecord.self, from: Data("{}".utf8))
    }
}

/// A value behind a lock, for collecting from other threads in tests.
final class Collected<Value: Sendable>: @unchecked Sendable {
    private var stored: Value
    private let lock = NSLock()

    init(_ value: Value) { stored = value }

    var value: Value { lock.withLock { stored } }

    func mutate(_ body: (inout Value) -> Void) { lock.withLock { body(&stored) } }
}

@Suite("EtcdPieces")
struct EtcdPiecesTests {
    @Test("a prefix's range ends at its last byte plus one")
    func rangeEnd() {
        #expect(EtcdClient.rangeEnd("/resolverd/groups/") == "/resolverd/groups0")
        #expect(EtcdClient.rangeEnd("a") == "b")
    }

    @Test("the gateway's key-values decode: base64 keys and values, 64-bit numbers as strings")
    func keyValue() throws {
        let object: [String: Any] = [
            "key": Data("/r/groups/web/members/a".utf8).base64EncodedString(),
            "value": Data("{}".utf8).base64EncodedString(), "mod_revision": "42", "lease": "7587889381138442532",
        ]
        let item = try #require(EtcdClient.keyValue(object))
        #expect(item.key == "/r/groups/web/members/a" && item.value == Array("{}".utf8))
        #expect(item.modRevision == 42 && item.lease == 7_587_889_381_138_442_532)
        #expect(EtcdClient.keyValue(["value": "e30="]) == nil)
        #expect(EtcdClient.revision(["header": ["revision": "9"]]) == 9)
    }

    @Test("listing again shows the difference: observers hear what went and what changed")
    func mirrorAllDiff() {
        let registry = ServiceRegistry(store: MirrorStore(), policy: RegistryPolicy())
        let a = WorkersUnitTests.member("a")
        var b = WorkersUnitTests.member("b")
        registry.mirror(all: [a, b])
        let heard = Collected<[RegistryChange]>([])
        registry.observe { changes in heard.mutate { $0 += changes } }
        b.ttlSeconds = 99
        let c = WorkersUnitTests.member("c")
        registry.mirror(all: [b, c])
        #expect(Set(heard.value.map { "\($0)" }) == Set([RegistryChange.delete(group: "web", id: "a"), .put(b), .put(c)].map { "\($0)" }))
        #expect(registry.members(of: "web")?.map(\.id) == ["b", "c"])
    }
}
