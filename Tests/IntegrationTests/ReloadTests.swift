// Reload end to end: the config file is rewritten under a running resolverd and reloaded with
// POST /v1/reload and SIGHUP while queries flow — new forward zones and allow list take effect,
// the cache is kept, no query is lost; a bad file is refused with its key and line and the old
// config keeps running; a restart-only key is reported, not applied.

import FakeDNS
import Foundation
import Resolver
import Synchronization
import Testing

@Suite("Reload", .timeLimit(.minutes(2)))
struct ReloadTests {
    func config(forwardTo upstream: ServerAddress, allow: String = "127.0.0.0/8", extra: String = "") -> String {
        """
        [server]
        listen = ["127.0.0.1:0"]
        allow = ["\(allow)"]
        [api]
        listen = "127.0.0.1:0"
        [log]
        level = "debug"
        [[forward]]
        zone = "."
        servers = ["\(upstream)"]
        \(extra)
        """
    }

    @Test("POST /v1/reload and SIGHUP apply forward zones and the allow list while queries flow; bad files are refused")
    func reloads() async throws {
        let (first, firstAddress) = try await Fixtures.upstream()
        let (second, secondAddress) = try await Fixtures.upstream(Fixtures.corpZone)
        let daemon = try await Daemon(config: config(forwardTo: firstAddress))
        let file = daemon.directory.appendingPathComponent("resolverd.toml")
        let registry = "\n[registry]\npath = \"\(daemon.directory.appendingPathComponent("registry.sqlite").path)\"\n"
            + "allowed_networks = [\"127.0.0.0/8\", \"::1/128\"]\n"
        let api = daemon.api
        let client = try RawUDPClient(server: daemon.address)
        #expect(addresses(in: try client.ask(query("www.example.test"))) == ["192.0.2.10"])

        // Queries keep flowing (a cached name) through the reloads.
        let progress = FlowProgress()
        let address = daemon.address
        // On a thread of its own: a blocking loop on the cooperative pool would starve other tests.
        let flow = Task {
            try await offPool { () -> (asked: Int, answered: Int) in
                guard let flowClient = try? RawUDPClient(server: address, receiveTimeoutMs: 2000) else { return (0, 0) }
                var asked = 0
                var answered = 0
                while !progress.stop.load(ordering: .relaxed), asked < 5000 {
                    asked += 1
                    if let reply = try? flowClient.ask(query("www.example.test")), reply.rcode == .noError { answered += 1 }
                    progress.asked.store(asked, ordering: .relaxed)
                    usleep(2000)
                }
                return (asked, answered)
            }
        }
        try await waitUntil("the flow to be under way", timeout: .seconds(5)) { progress.asked.load(ordering: .relaxed) >= 20 }

        // 1. Forward everything to the second server instead.
        try (config(forwardTo: secondAddress) + registry).write(to: file, atomically: true, encoding: .utf8)
        let applied = try await api.send("POST", "/v1/reload")
        #expect(applied.status == 200, "\(applied.message)")
        let outcome = try JSONDecoder().decode(ReloadResponse.self, from: applied.body)
        #expect(outcome.reloaded && outcome.restartNeeded.isEmpty)
        #expect(addresses(in: try client.ask(query("db.corp.test"))) == ["198.51.100.7"])
        #expect(second.queryCount == 1)
        // The cache survived: the cached name is not asked again anywhere.
        #expect(addresses(in: try client.ask(query("www.example.test"))) == ["192.0.2.10"])
        #expect(first.queryCount == 1)

        // 2. A bad file: 400 with key and line, and the running config stays.
        try ("[server]\nlisen = 1\n" + registry).write(to: file, atomically: true, encoding: .utf8)
        let refused = try await api.send("POST", "/v1/reload")
        #expect(refused.status == 400)
        let refusal = try JSONDecoder().decode(ReloadResponse.self, from: refused.body)
        #expect(!refusal.reloaded && refusal.error?.contains("line 2: server.lisen") == true, "\(refusal)")
        #expect(addresses(in: try client.ask(query("db.corp.test"))) == ["198.51.100.7"])
        #expect(daemon.log.contains("reload refused"))

        // 3. [cluster] timings: the answer TTL of a registered member follows the reload.
        try await api.register("web", "n1", #"{"address": "127.0.2.77", "ttl_s": 300}"#)
        #expect(try client.ask(query("web.cluster.internal"))?.answers.first?.ttl == 5)
        try (config(forwardTo: secondAddress, extra: "[cluster]\nanswer_ttl_s = 1\n") + registry)
            .write(to: file, atomically: true, encoding: .utf8)
        let cluster = try JSONDecoder().decode(ReloadResponse.self, from: try await api.send("POST", "/v1/reload").body)
        #expect(cluster.reloaded && cluster.restartNeeded.isEmpty)
        #expect(try client.ask(query("web.cluster.internal"))?.answers.first?.ttl == 1)

        // 4. A restart-only key is reported and left as it was.
        try (config(forwardTo: secondAddress, extra: "[cluster]\nanswer_ttl_s = 1\n[cache]\nmax_bytes = 1000000\n") + registry)
            .write(to: file, atomically: true, encoding: .utf8)
        let partial = try runCommand([Binaries.path("dig-lite"), "reload", "--api", daemon.apiURL, "--token-file", daemon.tokenFile ?? ""])
        #expect(partial.status == 0, "\(partial.stderr)")
        #expect(partial.stdout == "reloaded\nchanged but only applied after a restart: cache.max_bytes\n")

        let reached = progress.asked.load(ordering: .relaxed)
        try await waitUntil("the flow to go on after the reloads", timeout: .seconds(5)) {
            progress.asked.load(ordering: .relaxed) >= reached + 20
        }
        progress.stop.store(true, ordering: .relaxed)
        let (asked, answered) = try await flow.value
        #expect(asked >= 40 && answered == asked, "\(answered) of \(asked) answered during the reloads")

        // A file switching to recursive mode: the mode is restart-only, so the daemon keeps
        // forwarding. With only corp.test. forwarded now, a private reverse name is refused, not
        // answered from RFC 6303's local zones (those belong to recursive mode).
        let recursive = [
            "[server]", "listen = [\"127.0.0.1:0\"]", "[api]", "listen = \"127.0.0.1:0\"", "[resolver]",
            "mode = \"recursive\"", "root_hints = [\"127.0.0.1\"]", "[[forward]]", "zone = \"corp.test.\"",
            "servers = [\"\(secondAddress)\"]", "[cluster]", "answer_ttl_s = 1", "[cache]", "max_bytes = 1000000",
        ].joined(separator: "\n")
        try (recursive + registry).write(to: file, atomically: true, encoding: .utf8)
        let modeChange = try JSONDecoder().decode(ReloadResponse.self, from: try await api.send("POST", "/v1/reload").body)
        #expect(modeChange.reloaded && modeChange.restartNeeded.contains("resolver.mode"), "\(modeChange)")
        #expect(try client.ask(query("3.2.1.10.in-addr.arpa", .ptr))?.rcode == .refused)
        #expect(addresses(in: try client.ask(query("db.corp.test"))) == ["198.51.100.7"])

        // 5. SIGHUP: an allow list without loopback refuses us from then on.
        try (config(forwardTo: secondAddress, allow: "10.0.0.0/8") + registry).write(to: file, atomically: true, encoding: .utf8)
        kill(daemon.process.processIdentifier, SIGHUP)
        try await waitUntil("the new allow list to refuse loopback", timeout: .seconds(5)) {
            (try? client.ask(query("www.example.test")))?.rcode == .refused
        }
        try await daemon.stop()
        await first.stop()
        await second.stop()
    }
}

/// The background query flow's progress and stop switch.
final class FlowProgress: Sendable {
    let asked = Atomic<Int>(0)
    let stop = Atomic<Bool>(false)
}
