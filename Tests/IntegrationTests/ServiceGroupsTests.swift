// Service groups end to end: the real resolverd with its SQLite registry in a temporary folder,
// the HTTP API driven like a cluster node would, answers checked with dig and raw queries, health
// checks against TCP and HTTP servers the tests start and stop, and a kill -9 in the middle.

import Foundation
import Resolver
import Testing

/// A config for service group tests: the forward zone points at a loopback port nobody serves
/// (cluster names never go upstream).
func groupsConfig(cluster: String = "", api: String = "") -> String {
    forwardingConfig([(".", [ServerAddress(ip: .v4(0x7F00_0001), port: 9)])])
        .replacingOccurrences(of: "[api]\nlisten = \"127.0.0.1:0\"", with: "[api]\nlisten = \"127.0.0.1:0\"\n\(api)")
        + "\n[cluster]\n\(cluster)\n"
}

@Suite("ServiceGroups", .timeLimit(.minutes(3)))
struct ServiceGroupsTests {
    @Test("the API answers 201, 200, 204, 400 naming the field, 404 and 413, and a rejected call changes nothing")
    func apiContract() async throws {
        let daemon = try await Daemon(config: groupsConfig())
        let api = daemon.api
        let body = #"{"address": "127.0.2.1", "port": 8080, "ttl_s": 60, "tags": ["http"], "check": {"type": "tcp", "timeout_ms": 500}}"#
        let created = try await api.send("PUT", "/v1/groups/Web/members/Node-1", body: body)
        #expect(created.status == 201)
        #expect(created.json["group"] as? String == "web")
        #expect(created.json["id"] as? String == "node-1")
        #expect(created.json["health"] as? String == "healthy")
        #expect((created.json["check"] as? [String: Any])?["timeout_ms"] as? Int == 500)
        let replaced = try await api.send("PUT", "/v1/groups/web/members/node-1", body: body.replacingOccurrences(of: "127.0.2.1", with: "127.0.2.2"))
        #expect(replaced.status == 200)

        let bad: [(path: String, body: String, field: String)] = [
            ("/v1/groups/we_b/members/n1", body, "group:"),
            ("/v1/groups/web/members/-n1", body, "id:"),
            ("/v1/groups/web/members/node-1", #"{"address": "300.1.1.1", "ttl_s": 5}"#, "address:"),
            ("/v1/groups/web/members/node-1", #"{"address": "127.0.2.9"}"#, "ttl_s:"),
            ("/v1/groups/web/members/node-1", #"{"address": "127.0.2.9", "ttl_s": 0}"#, "ttl_s:"),
            ("/v1/groups/web/members/node-1", #"{"address": "127.0.2.9", "ttl_s": "60"}"#, "ttl_s:"),
            ("/v1/groups/web/members/node-1", #"{"address": "127.0.2.9", "ttl_s": 5, "port": 70000}"#, "port:"),
            ("/v1/groups/web/members/node-1", #"{"address": "127.0.2.9", "ttl_s": 5, "check": {"type": "tcp"}}"#, "port:"),
            ("/v1/groups/web/members/node-1", #"{"address": "127.0.2.9", "ttl_s": 5, "port": 1, "check": {"type": "ping"}}"#, "check.type:"),
            ("/v1/groups/web/members/node-1", #"{"address": "127.0.2.9", "ttl_s": 5, "tags": [1]}"#, "tags[0]:"),
            ("/v1/groups/web/members/node-1", #"{"adress": "127.0.2.9", "ttl_s": 5}"#, "adress:"),
            ("/v1/groups/web/members/node-1", #"{"address": "127.0.2.9", "ttl_s": 5"#, "body:"),
        ]
        for (path, text, field) in bad {
            let response = try await api.send("PUT", path, body: text)
            #expect(response.status == 400, "\(text)")
            #expect(response.message.hasPrefix(field), "\(text) → \(response.message)")
        }
        // Nothing half-written: the member is as the last good call left it.
        let group = try await api.send("GET", "/v1/groups/web")
        let members = group.json["members"] as? [[String: Any]] ?? []
        #expect(members.count == 1)
        #expect(members.first?["address"] as? String == "127.0.2.2")

        let big = #"{"address": "127.0.2.9", "ttl_s": 5, "tags": [""# + String(repeating: "a", count: 100_000) + #""]}"#
        #expect(try await api.send("PUT", "/v1/groups/web/members/n2", body: big).status == 413)

        let heartbeat = try await api.send("POST", "/v1/groups/web/members/node-1/heartbeat")
        #expect(heartbeat.status == 200)
        #expect((heartbeat.json["ttl_left_s"] as? Double ?? 0) > 59)
        #expect(try await api.send("POST", "/v1/groups/web/members/nobody/heartbeat").status == 404)
        #expect(try await api.send("GET", "/v1/groups/nogroup").status == 404)
        let list = try await api.send("GET", "/v1/groups")
        let groups = list.json["groups"] as? [[String: Any]] ?? []
        #expect(groups.count == 1 && groups.first?["members"] as? Int == 1 && groups.first?["healthy"] as? Int == 1)

        #expect(try await api.send("DELETE", "/v1/groups/web/members/node-1").status == 204)
        #expect(try await api.send("DELETE", "/v1/groups/web/members/node-1").status == 404)
        #expect(try await api.send("GET", "/v1/groups/web").status == 404)
        try await daemon.stop()
    }

    @Test("with api.token set, a missing or wrong bearer token is a 401")
    func token() async throws {
        let daemon = try await Daemon(config: groupsConfig(api: #"token = "s3cret-s3cret-s3cret""#))
        var api = daemon.api
        let body = #"{"address": "127.0.2.1", "ttl_s": 60}"#
        let missing = try await api.send("PUT", "/v1/groups/web/members/n1", body: body)
        #expect(missing.status == 401)
        api.token = "wrong"
        #expect(try await api.send("PUT", "/v1/groups/web/members/n1", body: body).status == 401)
        #expect(try await api.send("GET", "/v1/groups").status == 401)
        api.token = "s3cret-s3cret-s3cret"
        #expect(try await api.send("PUT", "/v1/groups/web/members/n1", body: body).status == 201)
        try await daemon.stop()
    }

    @Test("A and AAAA rotate over the healthy members; SRV carries ports and targets; NXDOMAIN and NODATA carry the SOA")
    func answers() async throws {
        let daemon = try await Daemon(config: groupsConfig(cluster: "answer_ttl_s = 5"))
        let api = daemon.api
        for index in 1...3 {
            try await api.register("web", "n\(index)", #"{"address": "127.0.2.\#(index)", "port": 808\#(index), "ttl_s": 60, "service": "http"}"#)
        }
        try await api.register("db", "main", #"{"address": "127.0.2.20", "ttl_s": 60}"#)
        let client = try RawUDPClient(server: daemon.address)

        var firsts = Set<[UInt8]>()
        for _ in 0..<3 {
            let reply = try #require(try client.ask(query("WEB.cluster.internal.")))
            #expect(reply.rcode == .noError && reply.flags.contains(.aa))
            #expect(Set(reply.answers.map(\.rdata)) == Set((1...3).map { [127, 0, 2, UInt8($0)] }))
            #expect(reply.answers.allSatisfy { $0.ttl == 5 })
            firsts.insert(reply.answers.first?.rdata ?? [])
        }
        #expect(firsts.count == 3, "each answer starts with another member")

        // Registered just before it is asked for: its 4 s TTL must not run out under a busy suite
        // (and with no check, nothing is ever sent to its address).
        try await api.register(
            "web", "n6", #"{"address": "::1", "port": 8086, "ttl_s": 4, "tags": ["http"], "check": {"type": "none"}}"#)
        let aaaa = try #require(try client.ask(query("web.cluster.internal.", .aaaa)))
        #expect(aaaa.answers.count == 1)
        #expect((aaaa.answers.first?.ttl ?? 99) <= 4, "TTL ≤ the registration's 4 s left")

        let srv = try #require(try client.ask(query("_http._tcp.web.cluster.internal.", .srv)))
        #expect(srv.answers.count == 4)
        #expect(srv.additionals.filter { $0.type == .a || $0.type == .aaaa }.count == 4)
        let srvOutput = try runCommand(["dig", "@127.0.0.1", "-p", "\(daemon.port)", "+short", "_http._tcp.web.cluster.internal", "SRV"])
        #expect(srvOutput.stdout.contains("0 1 8081 n1.web.cluster.internal."), "\(srvOutput.stdout)")
        let target = try #require(try client.ask(query("n2.web.cluster.internal.")))
        #expect(target.answers.map(\.rdata) == [[127, 0, 2, 2]])

        for (name, type, rcode) in [
            ("nope.cluster.internal.", RecordType.a, ResponseCode.nxDomain), ("x.nope.cluster.internal.", .a, .nxDomain),
            ("_ftp._tcp.web.cluster.internal.", .srv, .nxDomain), ("db.cluster.internal.", .aaaa, .noError),
            ("db.cluster.internal.", .txt, .noError), ("cluster.internal.", .a, .noError),
        ] {
            let reply = try #require(try client.ask(query(name, type)))
            #expect(reply.rcode == rcode, "\(name) \(type)")
            #expect(reply.answers.isEmpty, "\(name) \(type)")
            #expect(reply.authorities.first?.type == .soa, "\(name) \(type): the SOA")
        }
        let soa = try #require(try client.ask(query("cluster.internal.", .soa)))
        #expect(soa.answers.first?.type == .soa)
        let ns = try #require(try client.ask(query("cluster.internal.", .ns)))
        #expect(ns.answers.first?.type == .ns)
        // Never cached: a deregistration shows at once.
        #expect(try await api.send("DELETE", "/v1/groups/db/members/main").status == 204)
        #expect(try client.ask(query("db.cluster.internal."))?.rcode == .nxDomain)
        try await daemon.stop()
    }

    @Test("a big group over UDP is TC without records, and over TCP whole and rotated (dig)")
    func bigGroup() async throws {
        let daemon = try await Daemon(config: groupsConfig())
        do {
            let api = daemon.api
            for index in 1...150 {
                try await api.register(
                    "big", "m\(index)",
                    #"{"address": "127.0.3.\#(index)", "port": 9000, "service": "http", "ttl_s": 60, "check": {"type": "none"}}"#)
            }
            let dig = ["dig", "@127.0.0.1", "-p", "\(daemon.port)", "+time=2", "+tries=2"]
            // 150 A records (2,400 octets) do not fit dig's 1,232: TC and no records; dig's own
            // retry over TCP is kept out with +ignore.
            let udp = try runCommand(dig + ["+ignore", "+bufsize=1232", "big.cluster.internal", "A"])
            #expect(udp.stdout.contains(" tc"), "\(udp.stdout)")
            #expect(udp.stdout.contains("ANSWER: 0"), "\(udp.stdout)")
            var firsts = Set<String>()
            for _ in 0..<3 {
                let tcp = try runCommand(dig + ["+tcp", "+short", "big.cluster.internal", "A"])
                let lines = tcp.stdout.split(separator: "\n")
                #expect(Set(lines) == Set((1...150).map { "127.0.3.\($0)"[...] }), "\(tcp.stdout.prefix(200))")
                firsts.insert(String(lines.first ?? ""))
            }
            #expect(firsts.count == 3, "each TCP answer starts with another member")
            // dig without +ignore asks again over TCP by itself after the TC.
            let srv = try runCommand(dig + ["+short", "_http._tcp.big.cluster.internal", "SRV"])
            #expect(srv.stdout.split(separator: "\n").count == 150, "\(srv.stdout.prefix(200))")
            #expect(srv.stdout.contains("0 1 9000 m7.big.cluster.internal."))
            let full = try runCommand(dig + ["+tcp", "big.cluster.internal", "SRV"])
            #expect(full.stdout.contains("ANSWER: 150") && full.stdout.contains("ADDITIONAL: 151"), "\(full.stdout.prefix(400))")
        } catch {
            try await daemon.stop()
            throw error
        }
        try await daemon.stop()
    }

    @Test("kill -9 right after a burst of acknowledged registrations loses none of them")
    func killNine() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("resolverd-registry-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let registry = folder.appendingPathComponent("registry.sqlite").path
        let first = try await Daemon(config: groupsConfig(), registryPath: registry)
        let api = first.api
        let acknowledged = try await withThrowingTaskGroup(of: Int.self) { tasks in
            for worker in 0..<10 {
                tasks.addTask {
                    var count = 0
                    for index in 0..<30 {
                        let response = try await api.send(
                            "PUT", "/v1/groups/g\(worker)/members/m\(index)", body: #"{"address": "127.9.\#(worker).\#(index)", "ttl_s": 300}"#)
                        if response.status == 201 { count += 1 }
                    }
                    return count
                }
            }
            return try await tasks.reduce(0, +)
        }
        #expect(acknowledged == 300)
        first.kill9()

        let second = try await Daemon(config: groupsConfig(), registryPath: registry)
        let list = try await second.api.send("GET", "/v1/groups")
        let groups = list.json["groups"] as? [[String: Any]] ?? []
        #expect(groups.count == 10)
        #expect(groups.reduce(0) { $0 + ($1["members"] as? Int ?? 0) } == 300)
        let reply = try RawUDPClient(server: second.address).ask(query("g3.cluster.internal."))
        #expect(reply?.answers.count == 30)
        try await second.stop()
    }

    @Test("a member whose TCP check fails leaves the answers within TTL + check timeout, and returns when healthy")
    func tcpCheck() async throws {
        let target = try TCPTarget()
        let daemon = try await Daemon(config: groupsConfig())
        let api = daemon.api
        try await api.register(
            "svc", "a", #"{"address": "127.0.0.1", "port": \#(target.port), "ttl_s": 1, "check": {"type": "tcp", "timeout_ms": 500}}"#)
        try await api.register("svc", "b", #"{"address": "127.0.0.2", "ttl_s": 600}"#)
        // One second per try: a reply lost on a loaded machine must not stand for 5 s of waiting.
        let dig = ["dig", "@127.0.0.1", "-p", "\(daemon.port)", "+short", "+time=1", "+tries=3", "svc.cluster.internal"]

        // Listening: the TTL runs out, the check passes, the TTL is renewed.
        try await waitUntil("a passing check", timeout: .seconds(10)) {
            let member = try await Self.member(api, "svc", "a")
            return (member["last_check"] as? [String: Any])?["healthy"] as? Bool == true
        }
        #expect(try runCommand(dig).stdout.contains("127.0.0.1"))

        // Not listening: out of the answers within TTL (1 s) + timeout (0.5 s), plus the
        // checker's tick and a margin for a busy machine.
        target.close()
        let clock = ContinuousClock()
        let closed = clock.now
        var slowest: Duration = .zero
        try await waitUntil("the member to leave dig's answers", timeout: .seconds(8)) {
            let answer = try runCommand(dig)
            slowest = max(slowest, answer.elapsed)
            return answer.status == 0 && !answer.stdout.contains("127.0.0.1")
        }
        let gone = clock.now - closed
        #expect(gone < .seconds(4), "left after \(gone); the slowest dig took \(slowest)")
        #expect(try runCommand(dig).stdout.contains("127.0.0.2"), "the other member stays")
        let unhealthy = try await Self.member(api, "svc", "a")
        #expect(unhealthy["health"] as? String == "unhealthy")
        let detail = (unhealthy["last_check"] as? [String: Any])?["detail"] as? String ?? ""
        #expect(detail.lowercased().contains("refused"), "\(detail)")

        // Listening again: a re-check finds it and it is back.
        try target.listen()
        try await waitUntil("the member to return", timeout: .seconds(10)) {
            try runCommand(dig).stdout.contains("127.0.0.1")
        }
        try await daemon.stop()
    }

    @Test("HTTP checks expect 2xx; unhealthy members are removed after deregister_after_s; check-less ones expire")
    func httpCheckAndRemoval() async throws {
        let target = try await HTTPTarget()
        let daemon = try await Daemon(config: groupsConfig(cluster: "deregister_after_s = 3"))
        let api = daemon.api
        try await api.register(
            "api", "h1",
            #"{"address": "127.0.0.1", "port": \#(target.port), "ttl_s": 1, "check": {"type": "http", "path": "/healthz", "timeout_ms": 500}}"#)
        try await api.register("api", "gone", #"{"address": "127.0.0.3", "ttl_s": 1}"#)
        let client = try RawUDPClient(server: daemon.address)
        func addresses() throws -> Set<[UInt8]> { Set(try client.ask(query("api.cluster.internal."))?.answers.map(\.rdata) ?? []) }

        try await waitUntil("a passing HTTP check", timeout: .seconds(10)) { target.requests > 0 }
        #expect(try addresses().contains([127, 0, 0, 1]))
        // A check-less member simply expires with its TTL.
        try await waitUntil("the check-less member to expire", timeout: .seconds(10)) {
            try await api.send("GET", "/v1/groups/api").json["members"].map { ($0 as? [Any])?.count == 1 } ?? false
        }

        target.answer(503)
        try await waitUntil("the member to leave the answers", timeout: .seconds(8)) { try client.ask(query("api.cluster.internal."))?.rcode == .noError && (try addresses()).isEmpty }
        let member = try await Self.member(api, "api", "h1")
        #expect((member["last_check"] as? [String: Any])?["detail"] as? String == "HTTP 503")
        // Unhealthy for deregister_after_s: removed; the group is gone.
        try await waitUntil("the unhealthy member's removal", timeout: .seconds(10)) {
            try await api.send("GET", "/v1/groups/api").status == 404
        }
        #expect(try client.ask(query("api.cluster.internal."))?.rcode == .nxDomain)
        await target.stop()
        try await daemon.stop()
    }

    @Test("1,000 members across 50 groups registered by parallel clients are all present, and answered consistently")
    func thousandMembers() async throws {
        let daemon = try await Daemon(config: groupsConfig())
        let api = daemon.api
        let statuses = try await withThrowingTaskGroup(of: [Int].self) { tasks in
            for worker in 0..<20 {
                tasks.addTask {
                    var statuses: [Int] = []
                    for index in stride(from: worker, to: 1000, by: 20) {
                        let response = try await api.send(
                            "PUT", "/v1/groups/grp\(index % 50)/members/m\(index)",
                            body: #"{"address": "127.\#(index / 250).\#(index % 250).1", "port": 80, "ttl_s": 600}"#)
                        statuses.append(response.status)
                    }
                    return statuses
                }
            }
            return try await tasks.reduce([], +)
        }
        #expect(statuses.count == 1000 && statuses.allSatisfy { $0 == 201 })
        let groups = try await api.send("GET", "/v1/groups").json["groups"] as? [[String: Any]] ?? []
        #expect(groups.count == 50)
        #expect(groups.allSatisfy { $0["members"] as? Int == 20 && $0["healthy"] as? Int == 20 })
        let client = try RawUDPClient(server: daemon.address)
        for group in 0..<50 {
            let reply = try #require(try client.ask(query("grp\(group).cluster.internal.")))
            let expected = Set(stride(from: group, to: 1000, by: 50).map { [127, UInt8($0 / 250), UInt8($0 % 250), 1] as [UInt8] })
            #expect(Set(reply.answers.map(\.rdata)) == expected, "grp\(group)")
        }
        try await daemon.stop()
    }

    static func member(_ api: APIClient, _ group: String, _ id: String) async throws -> [String: Any] {
        let members = try await api.send("GET", "/v1/groups/\(group)").json["members"] as? [[String: Any]] ?? []
        return members.first { $0["id"] as? String == id } ?? [:]
    }
}
