// Faults in the registry's store must not take DNS down: a corrupt SQLite file, an etcd that is
// down at start, damaged members written into etcd by someone else. resolverd keeps answering
// DNS, says what is wrong (log, metric, 503 with a generic reason), never trusts a bad record,
// and replaces a damaged file only on an explicit `dig-lite registry-reset`. Members point at
// 127.0.x.x only.

import Foundation
import Resolver
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The answer's rcode and A addresses for `name`, or nil without an answer.
private func ask(_ name: String, at daemon: Daemon) throws -> (rcode: ResponseCode, addresses: [String])? {
    let client = try RawUDPClient(server: daemon.address, receiveTimeoutMs: 1000)
    guard let reply = try client.ask(query(name)) else { return nil }
    return (reply.rcode, addresses(in: reply))
}

/// The value of an unlabelled metric.
private func metric(_ name: String, at daemon: Daemon) async throws -> Double? {
    let text = String(decoding: try await daemon.api.send("GET", "/metrics").body, as: UTF8.self)
    return MetricsTests().value(text, name)
}

@Suite("RegistryFaults", .serialized, .timeLimit(.minutes(3)))
struct RegistryFaultsTests {
    @Test(
        "a corrupt registry file: DNS answers, the registry is degraded, registry-reset sets the file aside",
        arguments: [0, 1])
    func corruptFile(workers: Int) async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("corrupt-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("registry.sqlite").path
        let garbage = Data((0..<16_384).map { UInt8(truncatingIfNeeded: $0 &* 131 &+ 17) })
        try garbage.write(to: URL(fileURLWithPath: path))
        let config = forwardingConfig([(".", [ServerAddress(ip: .v4(0x7F00_0001), port: 9)])], server: "workers = \(workers)")
        let daemon = try await Daemon(config: config, registryPath: path)
        let api = daemon.api

        #expect(try ask("localhost", at: daemon)?.addresses == ["127.0.0.1"], "DNS is up")
        #expect(try ask("web.cluster.internal", at: daemon)?.rcode == .servFail)
        let refused = try await api.send("PUT", "/v1/groups/web/members/n1", body: #"{"address": "127.0.1.1", "ttl_s": 600}"#)
        #expect(refused.status == 503)
        #expect(refused.message.contains("degraded"), "\(refused.message)")
        #expect(!refused.message.lowercased().contains("sqlite") && !refused.message.contains(path), "\(refused.message)")
        #expect(try await api.send("GET", "/v1/groups").status == 503)
        #expect(try await metric("resolverd_registry_degraded", at: daemon) == 1)
        #expect(daemon.log.contains("registry degraded"))
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == garbage)

        let reset = try runCommand([Binaries.path("dig-lite"), "registry-reset"] + daemon.adminArguments)
        #expect(reset.status == 0, "\(reset.stderr)")
        let aside = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasPrefix("registry.sqlite.corrupt-") }
        #expect(aside.count == 1)
        #expect(reset.stdout.contains(aside.first ?? "?"), "\(reset.stdout)")
        #expect(try Data(contentsOf: folder.appendingPathComponent(aside.first ?? "?")) == garbage, "kept as it was")
        #expect(try await api.send("POST", "/v1/registry/reset").status == 409, "a working registry is not reset")

        try await api.register("web", "n1", #"{"address": "127.0.1.1", "ttl_s": 600}"#)
        try await waitUntil("the new member answered") { try ask("web.cluster.internal", at: daemon)?.addresses == ["127.0.1.1"] }
        #expect(try await metric("resolverd_registry_degraded", at: daemon) == 0)
        try await daemon.stop()
    }

    @Test("etcd: damaged members and members outside the allowed networks are skipped at load and in the watch; etcd down at start leaves DNS up; 503s say nothing of etcd")
    func etcdFaults() async throws {
        let cluster = try await EtcdCluster(count: 1)
        defer { cluster.remove() }
        let prefix = "/test-\(UUID().uuidString.prefix(8))/"
        let etcd = APIClient(base: try #require(cluster.endpoints.first))
        func put(_ key: String, _ value: String) async throws {
            let body = #"{"key": "\#(Data((prefix + key).utf8).base64EncodedString())", "value": "\#(Data(value.utf8).base64EncodedString())"}"#
            #expect(try await etcd.send("POST", "/v3/kv/put", body: body).status == 200)
        }
        func record(_ id: String, address: String = "127.0.2.1", ttl: String = "600") -> String {
            #"{"group": "web", "id": "\#(id)", "address": "\#(address)", "port": 80, "service": "http", "proto": "tcp", "tags": [], "ttl_s": \#(ttl), "check_type": "none", "check_timeout_ms": 2000, "registered_at": 1800000000000, "expires_at": 1900000000000}"#
        }
        try await put("groups/web/members/good", record("good"))
        try await put("groups/web/members/huge", record("huge", ttl: "9223372036854775"))
        let config = forwardingConfig([(".", [ServerAddress(ip: .v4(0x7F00_0001), port: 9)])]) + """

            [cluster]

            [registry]
            backend = "etcd"
            endpoints = ["\(cluster.endpoints[0])"]
            prefix = "\(prefix)"
            election_ttl_s = 2

            """
        let daemon = try await Daemon(config: config)
        #expect(try ask("web.cluster.internal", at: daemon)?.addresses == ["127.0.2.1"])
        #expect(daemon.log.contains("damaged member"))
        // Through the watch: a member id far past a label's 63 octets, and one turning bad.
        let long = String(repeating: "x", count: 300)
        try await put("groups/web/members/\(long)", record(long, address: "127.0.2.2"))
        try await put("groups/web/members/later", record("later", address: "127.0.2.3"))
        try await waitUntil("the watch to show the good one after the bad") {
            try ask("web.cluster.internal", at: daemon)?.addresses.sorted() == ["127.0.2.1", "127.0.2.3"]
        }
        // Another instance with a wider registry.allowed_networks wrote a member this one does not
        // allow (it is never checked: type none, and the address is refused): left out of the view.
        try await put("groups/web/members/outside", record("outside", address: "169.254.169.254"))
        try await put("groups/web/members/marker", record("marker", address: "127.0.2.4"))
        try await waitUntil("the watch to pass the marker after the outside member") {
            try ask("web.cluster.internal", at: daemon)?.addresses.sorted() == ["127.0.2.1", "127.0.2.3", "127.0.2.4"]
        }
        #expect(daemon.log.contains("stored member skipped"))
        try await put("groups/web/members/marker", record("marker", address: "169.254.169.253"))
        try await waitUntil("a member moved outside the allowed networks to leave the answers") {
            try ask("web.cluster.internal", at: daemon)?.addresses.sorted() == ["127.0.2.1", "127.0.2.3"]
        }
        try await put("groups/web/members/later", record("later", address: "127.0.2.3", ttl: "-5"))
        try await waitUntil("a member turned bad to leave the answers") {
            try ask("web.cluster.internal", at: daemon)?.addresses == ["127.0.2.1"]
        }
        let srv = try RawUDPClient(server: daemon.address, receiveTimeoutMs: 1000).ask(query("_http._tcp.web.cluster.internal", .srv))
        #expect(srv?.answers.count == 1)

        // etcd down: a change is a 503 that names neither etcd's URL nor its words.
        cluster.stop()
        let refused = try await daemon.api.send(
            "PUT", "/v1/groups/web/members/n9", body: #"{"address": "127.0.2.9", "ttl_s": 60}"#)
        #expect(refused.status == 503)
        #expect(!refused.message.contains("127.0.0.1") && !refused.message.contains("http"), "\(refused.message)")
        #expect(try ask("web.cluster.internal", at: daemon)?.addresses == ["127.0.2.1"], "the last state known still answers")

        // A second instance starting while etcd is down comes up degraded, and ready once it is back.
        let second = try await Daemon(config: config)
        #expect(try ask("localhost", at: second)?.addresses == ["127.0.0.1"])
        #expect(try ask("web.cluster.internal", at: second)?.rcode == .servFail)
        #expect(try await metric("resolverd_registry_degraded", at: second) == 1)
        try await cluster.start()
        try await waitUntil("the second instance to read etcd", timeout: .seconds(20)) {
            try ask("web.cluster.internal", at: second)?.addresses == ["127.0.2.1"]
        }
        #expect(try await metric("resolverd_registry_degraded", at: second) == 0)
        try await second.stop()
        try await daemon.stop()
    }
}
