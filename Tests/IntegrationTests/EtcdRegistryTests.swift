// The shared registry end to end: a real three-member etcd cluster on loopback and two resolverd
// instances using it (`registry.backend = "etcd"`): a registration on one is answered by the
// other within a second; killing the instance that runs the health checks moves them to the
// other; killing an etcd member loses nothing; stopping everything and starting it again finds
// the registry intact. Members point at 127.0.0.x only.

import Foundation
import Resolver
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A config for an instance of the shared registry under `prefix`.
private func etcdConfig(_ cluster: EtcdCluster, prefix: String) -> String {
    groupsConfig() + """

        [registry]
        backend = "etcd"
        endpoints = [\(cluster.endpoints.map { "\"\($0)\"" }.joined(separator: ", "))]
        prefix = "\(prefix)"
        election_ttl_s = 2

        """
}

/// A fresh etcd cluster and a key prefix of its own; `instance()` starts a resolverd on them.
private struct SharedRegistryFixture {
    let cluster: EtcdCluster
    let prefix = "/test-\(UUID().uuidString.prefix(8))/"

    static func start() async throws -> SharedRegistryFixture { SharedRegistryFixture(cluster: try await EtcdCluster()) }

    func instance() async throws -> Daemon { try await Daemon(config: etcdConfig(cluster, prefix: prefix)) }
}

/// The A addresses of `name` answered by `daemon`, or nil without an answer.
private func groupAddresses(_ name: String, at daemon: Daemon) throws -> Set<String>? {
    let client = try RawUDPClient(server: daemon.address, receiveTimeoutMs: 1000)
    guard let reply = try client.ask(query(name)) else { return nil }
    return Set(reply.answers.filter { $0.type == .a }.map { $0.rdata.map(String.init).joined(separator: ".") })
}

/// Whether `daemon` runs the health checks now (GET /v1/stats).
private func runsChecks(_ daemon: Daemon) async throws -> Bool {
    let stats = try await daemon.api.send("GET", "/v1/stats").json
    return (stats["registry"] as? [String: Any])?["runs_checks"] as? Bool == true
}

@Suite("EtcdRegistry", .serialized, .timeLimit(.minutes(3)))
struct EtcdRegistryTests {
    @Test("two instances share one registry: a write on either is answered by the other within 1 s")
    func sharedAnswers() async throws {
        let shared = try await SharedRegistryFixture.start()
        let cluster = shared.cluster
        defer { cluster.remove() }
        let a = try await shared.instance()
        let b = try await shared.instance()
        let apiA = a.api
        let apiB = b.api
        let clock = ContinuousClock()

        try await apiA.register("web", "n1", #"{"address": "127.0.1.1", "ttl_s": 600}"#)
        var start = clock.now
        try await waitUntil("B to answer A's registration", timeout: .seconds(5), interval: .milliseconds(5)) {
            try groupAddresses("web.cluster.internal", at: b) == ["127.0.1.1"]
        }
        #expect(clock.now - start < .seconds(1), "took \(clock.now - start)")

        try await apiB.register("web", "n2", #"{"address": "127.0.1.2", "ttl_s": 600}"#)
        start = clock.now
        try await waitUntil("A to answer B's registration", timeout: .seconds(5), interval: .milliseconds(5)) {
            try groupAddresses("web.cluster.internal", at: a) == ["127.0.1.1", "127.0.1.2"]
        }
        #expect(clock.now - start < .seconds(1), "took \(clock.now - start)")

        #expect(try await apiB.send("DELETE", "/v1/groups/web/members/n1").status == 204)
        start = clock.now
        try await waitUntil("A to drop B's deregistration", timeout: .seconds(5), interval: .milliseconds(5)) {
            try groupAddresses("web.cluster.internal", at: a) == ["127.0.1.2"]
        }
        #expect(clock.now - start < .seconds(1), "took \(clock.now - start)")
        // Both show the same group through the API too; exactly one runs the checks.
        let groupA = try await apiA.send("GET", "/v1/groups/web").json["members"] as? [[String: Any]]
        #expect(groupA?.compactMap { $0["id"] as? String } == ["n2"])
        try await waitUntil("one instance to lead the checks") {
            try await runsChecks(a) != runsChecks(b)
        }
        try await a.stop()
        try await b.stop()
    }

    @Test("killing the instance that runs the checks moves them to the other; killing an etcd member loses nothing")
    func failover() async throws {
        let shared = try await SharedRegistryFixture.start()
        let cluster = shared.cluster
        defer { cluster.remove() }
        let first = try await shared.instance()
        let second = try await shared.instance()
        var leader = first
        var follower = second
        try await waitUntil("one instance to lead the checks") {
            let (one, two) = (try await runsChecks(first), try await runsChecks(second))
            if one != two, two { (leader, follower) = (second, first) }
            return one != two
        }
        let closed = try TCPTarget()
        closed.close()  // connections to its port are refused: a failing TCP check
        let apiFollower = follower.api
        try await apiFollower.register(
            "svc", "before", #"{"address": "127.0.0.1", "port": \#(closed.port), "ttl_s": 1, "check": {"type": "tcp", "timeout_ms": 300}}"#)
        try await apiFollower.register("svc", "steady", #"{"address": "127.0.2.2", "ttl_s": 600}"#)
        // The leader checks (the follower never does) and writes the result back: both see it.
        try await waitUntil("the leader's check result on the follower", timeout: .seconds(10)) {
            try await ServiceGroupsTests.member(apiFollower, "svc", "before")["health"] as? String == "unhealthy"
        }

        // The leader dies: within the election TTL (2 s) the follower runs the checks.
        leader.kill9()
        try await waitUntil("the follower to take over the checks", timeout: .seconds(10)) {
            try await runsChecks(follower)
        }
        try await apiFollower.register(
            "svc", "after", #"{"address": "127.0.0.1", "port": \#(closed.port), "ttl_s": 1, "check": {"type": "tcp", "timeout_ms": 300}}"#)
        try await waitUntil("a check of a member registered after the failover", timeout: .seconds(10)) {
            try await ServiceGroupsTests.member(apiFollower, "svc", "after")["health"] as? String == "unhealthy"
        }

        // One etcd member dies: writes and answers go on through the others, nothing is lost.
        cluster.kill(0)
        try await apiFollower.register("svc", "late", #"{"address": "127.0.2.3", "ttl_s": 600}"#)
        let newcomer = try await shared.instance()
        try await waitUntil("a new instance to see every member", timeout: .seconds(10)) {
            try groupAddresses("svc.cluster.internal", at: newcomer) == ["127.0.2.2", "127.0.2.3"]
        }
        let members = try await newcomer.api.send("GET", "/v1/groups/svc").json["members"] as? [[String: Any]]
        #expect(Set(members?.compactMap { $0["id"] as? String } ?? []) == ["before", "steady", "after", "late"])
        try await follower.stop()
        try await newcomer.stop()
    }

    @Test("stopping everything (both instances and the etcd cluster) and starting it again finds the registry intact")
    func restartEverything() async throws {
        let shared = try await SharedRegistryFixture.start()
        let cluster = shared.cluster
        defer { cluster.remove() }
        var a = try await shared.instance()
        var b = try await shared.instance()
        let api = a.api
        for index in 1...20 {
            try await api.register("g\(index % 4)", "m\(index)", #"{"address": "127.0.3.\#(index)", "ttl_s": 600}"#)
        }
        try await a.stop()
        try await b.stop()
        cluster.stop()

        try await cluster.start()
        a = try await shared.instance()
        b = try await shared.instance()
        for daemon in [a, b] {
            let groups = try await daemon.api.send("GET", "/v1/groups").json["groups"] as? [[String: Any]] ?? []
            #expect(groups.reduce(0) { $0 + ($1["members"] as? Int ?? 0) } == 20)
            #expect(try groupAddresses("g1.cluster.internal", at: daemon)?.count == 5)
        }
        try await a.stop()
        try await b.stop()
    }
}

extension EtcdRegistryTests {
    @Test("an instance that was away while etcd compacted its history lists again and catches up")
    func catchUpAfterCompaction() async throws {
        let shared = try await SharedRegistryFixture.start()
        let cluster = shared.cluster
        defer { cluster.remove() }
        let away = try await shared.instance()
        let writer = try await shared.instance()
        let api = writer.api
        try await api.register("web", "old", #"{"address": "127.0.4.1", "ttl_s": 600}"#)
        try await waitUntil("the first member everywhere") { try groupAddresses("web.cluster.internal", at: away) == ["127.0.4.1"] }

        // Frozen, it loses its connection (etcd restarts) and misses changes, which etcd then
        // forgets (compaction): its watch must start again from a revision that is gone.
        kill(away.process.processIdentifier, SIGSTOP)
        cluster.stop()
        try await cluster.start()
        try await api.register("web", "new", #"{"address": "127.0.4.2", "ttl_s": 600}"#)
        #expect(try await api.send("DELETE", "/v1/groups/web/members/old").status == 204)
        try await etcdCompact(cluster)
        kill(away.process.processIdentifier, SIGCONT)
        try await waitUntil("the frozen instance to catch up", timeout: .seconds(15)) {
            try groupAddresses("web.cluster.internal", at: away) == ["127.0.4.2"]
        }
        #expect(away.log.contains("compacted"))
        try await writer.stop()
        try await away.stop()
    }
}

/// Compacts etcd's history up to its current revision.
private func etcdCompact(_ cluster: EtcdCluster) async throws {
    let base = try #require(cluster.endpoints.first)
    let range = APIClient(base: base)
    let current = try await range.send("POST", "/v3/kv/range", body: #"{"key": "AA=="}"#).json
    let revision = try #require((current["header"] as? [String: Any])?["revision"] as? String)
    let compacted = try await range.send("POST", "/v3/kv/compaction", body: #"{"revision": "\#(revision)", "physical": true}"#)
    #expect(compacted.status == 200, "\(String(decoding: compacted.body, as: UTF8.self))")
}

extension EtcdRegistryTests {
    @Test("with etcd's authentication on: the right user and password work; a wrong password leaves DNS up, the registry degraded and named")
    func authentication() async throws {
        let shared = try await SharedRegistryFixture.start()
        let cluster = shared.cluster
        defer { cluster.remove() }
        try await cluster.enableAuth(password: "s3cret")
        let credentials = "username = \"root\"\npassword = \"s3cret\"\n"
        let config = etcdConfig(cluster, prefix: shared.prefix) + credentials
        let a = try await Daemon(config: config)
        let b = try await Daemon(config: config)
        try await a.api.register("web", "n1", #"{"address": "127.0.5.1", "ttl_s": 600}"#)
        try await waitUntil("B to answer A's registration") { try groupAddresses("web.cluster.internal", at: b) == ["127.0.5.1"] }
        try await a.stop()
        try await b.stop()

        // A wrong password is refused at once, but DNS comes up all the same (before: exit 1, and
        // systemd's restart limit then left the host without a resolver); the registry is
        // degraded, the log names the refusal, etcd is asked again in the background.
        let clock = ContinuousClock()
        let start = clock.now
        let wrong = try await Daemon(config: config.replacingOccurrences(of: "s3cret", with: "wrong"))
        #expect(clock.now - start < .seconds(10))
        let client = try RawUDPClient(server: wrong.address, receiveTimeoutMs: 1000)
        #expect(try client.ask(query("localhost"))?.rcode == .noError)
        #expect(try client.ask(query("web.cluster.internal"))?.rcode == .servFail)
        #expect(wrong.log.contains("registry (etcd)") && wrong.log.contains("authentication failed"), "\(wrong.log.suffix(600))")
        try await wrong.stop()
    }
}

extension EtcdRegistryTests {
    @Test("over TLS: etcd's certificate checked against tls_ca_file, resolverd's client certificate accepted")
    func tls() async throws {
        let cluster = try await EtcdCluster(tls: true)
        defer { cluster.remove() }
        let config = etcdConfig(cluster, prefix: "/tls/") + """
            tls_ca_file = "\(cluster.file("ca.pem"))"
            tls_cert_file = "\(cluster.file("client.pem"))"
            tls_key_file = "\(cluster.file("client.key"))"

            """
        let a = try await Daemon(config: config)
        let b = try await Daemon(config: config)
        try await a.api.register("web", "n1", #"{"address": "127.0.6.1", "ttl_s": 600}"#)
        try await waitUntil("B to answer A's registration") { try groupAddresses("web.cluster.internal", at: b) == ["127.0.6.1"] }
        try await a.stop()
        try await b.stop()
    }
}
