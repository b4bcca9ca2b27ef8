// Fault isolation end to end: resolverd with `server.workers = 2` (a supervisor and two worker
// processes sharing the DNS port), a worker trapping on a packet of death (the crash switch of
// test builds) and workers killed with SIGKILL, under dig and under a dnsperf load.

import Foundation
import Resolver
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Two workers forwarding `load.test.` to `upstream`; service groups in the cluster zone.
private func workersConfig(upstream: ServerAddress, workers: Int = 2) -> String {
    forwardingConfig([("load.test.", [upstream]), (".", [ServerAddress(ip: .v4(0x7F00_0001), port: 9)])], server: "workers = \(workers)")
}

/// GET /v1/workers, decoded.
private func workers(_ api: APIClient) async throws -> [WorkerView] {
    let response = try await api.send("GET", "/v1/workers")
    return try JSONDecoder().decode(WorkersResponse.self, from: response.body).workers
}

/// The A addresses of `name` as answered over a new UDP socket (so a new source port, and any
/// worker), or nil without an answer.
private func addresses(of name: String, at server: ServerAddress) throws -> Set<String>? {
    let client = try RawUDPClient(server: server, receiveTimeoutMs: 1000)
    guard let reply = try client.ask(query(name)) else { return nil }
    return Set(reply.answers.filter { $0.type == .a }.map { $0.rdata.map(String.init).joined(separator: ".") })
}

/// Waits until every worker is running again and `index` has restarted `restarts` times; returns
/// the supervisor's view of it.
private func waitForRestart(_ api: APIClient, index: Int, restarts: Int) async throws -> WorkerView {
    var seen: WorkerView?
    try await waitUntil("worker \(index) back after its restart \(restarts)", timeout: .seconds(10)) {
        let all = try await workers(api)
        seen = all.first { $0.index == index }
        return all.allSatisfy { $0.state == .running } && seen?.restarts == restarts
    }
    return try #require(seen)
}

@Suite("Workers", .serialized, .timeLimit(.minutes(3)))
struct WorkersTests {
    @Test("a worker that traps and one killed with SIGKILL are back within 1 s; the other answers meanwhile; no registration is lost")
    func crashAndKill() async throws {
        let (fake, upstream) = try await Fixtures.upstream(behavior: Fixtures.behavior { $0.wildcardA = [192, 0, 2, 99] })
        let daemon = try await Daemon(config: workersConfig(upstream: upstream), environment: ["RESOLVERD_CRASH_SWITCH": "1"])
        let api = daemon.api
        let started = try await workers(api)
        #expect(started.count == 2 && started.allSatisfy { $0.state == .running && $0.pid != nil })
        try await api.register("web", "a", #"{"address": "127.1.0.1", "ttl_s": 300}"#)
        try await api.register("web", "b", #"{"address": "127.1.0.2", "ttl_s": 300}"#)
        // Registrations reach both workers (queries from many source ports land on both).
        try await waitUntil("both members answered by every worker") {
            try (0..<8).allSatisfy { _ in try addresses(of: "web.cluster.internal", at: daemon.address) == ["127.1.0.1", "127.1.0.2"] }
        }

        // The packet of death: whichever worker reads it traps; only its own queries are lost.
        let victim = try RawUDPClient(server: daemon.address, receiveTimeoutMs: 300)
        victim.send(try DNSCodec.encode(DNSMessage.query(
            Question(name: try #require(DomainName("crash.resolverd.")), type: .txt, recordClass: .ch), id: 7, edns: false)))
        var crashed: WorkerView?
        try await waitUntil("a worker to restart after the trap") {
            crashed = try await workers(api).first { $0.restarts == 1 && $0.state == .running }
            return crashed != nil
        }
        let first = try #require(crashed)
        #expect(first.lastExit == "signal 4" || first.lastExit == "signal 5", "\(first.lastExit ?? "-")")
        #expect(try #require(first.lastRestartMs) < 1000)
        #expect(first.pid != started.first { $0.index == first.index }?.pid)

        // A registration after the restart reaches the new worker too.
        try await api.register("web", "c", #"{"address": "127.1.0.3", "ttl_s": 300}"#)
        try await waitUntil("the third member answered by every worker") {
            try (0..<8).allSatisfy { _ in
                try addresses(of: "web.cluster.internal", at: daemon.address) == ["127.1.0.1", "127.1.0.2", "127.1.0.3"]
            }
        }

        // SIGKILL the other worker while a query flow runs: the flow is answered throughout (a
        // query the dying worker held is asked again, as a stub resolver would).
        let other = try #require(try await workers(api).first { $0.index != first.index })
        try await offPool {
            kill(try #require(other.pid), SIGKILL)
            for index in 0..<200 {
                let reply = try addresses(of: "web.cluster.internal", at: daemon.address)
                    ?? addresses(of: "web.cluster.internal", at: daemon.address)
                #expect(reply?.count == 3, "query \(index)")
            }
        }
        let killed = try await waitForRestart(api, index: other.index, restarts: 1)
        #expect(killed.lastExit == "signal 9")
        #expect(try #require(killed.lastRestartMs) < 1000)
        #expect(try addresses(of: "x1.load.test", at: daemon.address) == ["192.0.2.99"])

        // The supervisor's API merges the workers: stats count their queries, metrics carry a
        // worker label and the restarts, a flush reaches every cache, a reload every worker.
        let stats = try await api.send("GET", "/v1/stats").json
        #expect((stats["queries_total"] as? Int ?? 0) > 0)
        #expect((stats["registry"] as? [String: Any])?["healthy"] as? Int == 3)
        let metrics = String(decoding: try await api.send("GET", "/metrics").body, as: UTF8.self)
        #expect(metrics.contains("worker=\"1\"") && metrics.contains("worker=\"2\""))
        #expect(metrics.contains("resolverd_worker_restarts_total 2"))
        #expect(metrics.contains("resolverd_registry_members{state=\"healthy\"} 3"))
        let flushed = try await api.send("POST", "/v1/cache/flush").json
        #expect((flushed["flushed"] as? Int ?? 0) >= 1)
        #expect(try await api.send("POST", "/v1/cache/flush", body: #"{"name": "bad..name"}"#).status == 400)
        #expect(try await api.send("POST", "/v1/reload").status == 200)
        try await waitUntil("both workers reloaded too") {
            let lines = daemon.log.split(separator: "\n").filter { $0.contains("msg=reloaded") }
            return lines.contains { $0.contains("worker=1") } && lines.contains { $0.contains("worker=2") }
        }
        try await daemon.stop()
        let pids = started.compactMap(\.pid) + [killed.pid, first.pid].compactMap { $0 }
        #expect(pids.allSatisfy { kill($0, 0) != 0 }, "every worker stopped with the supervisor")
        await fake.stop()
    }

    @Test("a worker that keeps dying soon after starting is restarted after a growing pause (0.5 s, then 1 s)")
    func backOff() async throws {
        let (fake, upstream) = try await Fixtures.upstream()
        let daemon = try await Daemon(
            config: workersConfig(upstream: upstream, workers: 1), environment: ["RESOLVERD_CRASH_SWITCH": "1"])
        let api = daemon.api
        let crash = try DNSCodec.encode(DNSMessage.query(
            Question(name: try #require(DomainName("crash.resolverd.")), type: .txt, recordClass: .ch), id: 9, edns: false))
        for round in 1...3 {
            try RawUDPClient(server: daemon.address, receiveTimeoutMs: 100).send(crash)
            let back = try await waitForRestart(api, index: 1, restarts: round)
            #expect(back.lastExit == "signal 4" || back.lastExit == "signal 5")
            // The first death is restarted at once; the next ones within 10 s of starting wait.
            let pause: Double = [0, 500, 1000][round - 1]
            #expect(try #require(back.lastRestartMs) >= pause, "round \(round): \(back.lastRestartMs ?? 0) ms")
        }
        #expect(daemon.log.contains("pause=\"0.5 seconds\"") && daemon.log.contains("pause=\"1.0 seconds\""))
        // Between the deaths it answered; after the last restart it answers again.
        #expect(try RawUDPClient(server: daemon.address).ask(query("localhost"))?.rcode == .noError)
        try await daemon.stop()
        await fake.stop()
    }

    @Test("dnsperf load of hits and misses while a worker is killed every 5 s: ≥ 99.5 % answered, workers back within 1 s, registrations kept")
    func killUnderLoad() async throws {
        let (fake, upstream) = try await Fixtures.upstream(behavior: Fixtures.behavior { $0.wildcardA = [192, 0, 2, 99] })
        let daemon = try await Daemon(config: workersConfig(upstream: upstream))
        let api = daemon.api
        for index in 1...3 {
            try await api.register("web", "n\(index)", #"{"address": "127.2.0.\#(index)", "ttl_s": 600}"#)
        }
        // Half hits (50 names asked again and again, and the service group), half misses (new names).
        var lines: [String] = []
        for index in 0..<20_000 {
            lines.append(index % 4 == 0 ? "web.cluster.internal A" : "h\(index % 50).load.test A")
            lines.append("m\(index).load.test A")
        }
        let data = daemon.directory.appendingPathComponent("queries.txt")
        try lines.joined(separator: "\n").write(to: data, atomically: true, encoding: .utf8)
        let port = daemon.port
        let load = Task {
            try await offPool {
                try runCommand(
                    ["dnsperf", "-s", "127.0.0.1", "-p", "\(port)", "-d", data.path, "-l", "20", "-Q", "2000", "-c", "8",
                     "-t", "2"],
                    timeout: .seconds(40))
            }
        }
        var restartTimes: [Double] = []
        for round in 1...3 {
            // The kills are paced by the clock (every 5 s), not waited on.
            try await Task.sleep(for: .seconds(5))
            let target = try #require(try await workers(api).first { $0.index == 1 + round % 2 })
            kill(try #require(target.pid), SIGKILL)
            let back = try await waitForRestart(api, index: target.index, restarts: (round + 1) / 2)
            restartTimes.append(try #require(back.lastRestartMs))
        }
        let result = try await load.value
        #expect(result.status == 0, "\(result.stderr)")
        func figure(_ label: String) -> Double? {
            guard let line = result.stdout.split(separator: "\n").first(where: { $0.contains(label) }) else { return nil }
            return line.split(separator: " ").dropFirst(2).first.flatMap { Double($0) }
        }
        let sent = try #require(figure("Queries sent:"))
        let completed = try #require(figure("Queries completed:"))
        #expect(sent > 20_000)
        #expect(completed / sent >= 0.995, "\(result.stdout)")
        #expect(restartTimes.allSatisfy { $0 < 1000 }, "restart times (ms): \(restartTimes)")
        // Nothing lost from the registry.
        let group = try await api.send("GET", "/v1/groups/web").json
        #expect((group["members"] as? [[String: Any]])?.count == 3)
        #expect(try addresses(of: "web.cluster.internal", at: daemon.address) == ["127.2.0.1", "127.2.0.2", "127.2.0.3"])
        try await daemon.stop()
        await fake.stop()
    }
}
