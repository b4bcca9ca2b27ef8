// GET /metrics end to end: every metric family appears, and moves when its event happens —
// queries by type/rcode/transport, drops, cache hits and misses, upstream queries and SRTT per
// server, registry members, health checks, process figures; and GET /v1/stats with dig-lite stats.

import FakeDNS
import Foundation
import Resolver
import Testing

@Suite("Metrics", .timeLimit(.minutes(2)))
struct MetricsTests {
    /// The value of the sample line `name{labels}` (or `name` alone), or nil.
    func value(_ text: String, _ sample: String) -> Double? {
        for line in text.split(separator: "\n") where line.hasPrefix(sample + " ") {
            return Double(line.dropFirst(sample.count + 1))
        }
        return nil
    }

    @Test("every metric appears and moves with its event")
    func metricsMove() async throws {
        let (fake, upstream) = try await Fixtures.upstream()
        let daemon = try await Daemon(config: forwardingConfig([(".", [upstream])]))
        let api = daemon.api
        func scrape() async throws -> String {
            let response = try await api.send("GET", "/metrics")
            #expect(response.status == 200)
            return String(decoding: response.body, as: UTF8.self)
        }
        let before = try await scrape()
        #expect(value(before, "resolverd_cache_hits_total") == 0)
        #expect((value(before, "resolverd_process_resident_memory_bytes") ?? 0) > 1_000_000)
        #expect((value(before, "resolverd_process_open_sockets") ?? 0) >= 3)

        let client = try RawUDPClient(server: daemon.address)
        for _ in 0..<3 { _ = try client.ask(query("www.example.test")) }  // a miss, then two hits
        _ = try client.ask(query("nope.example.test"))
        client.send([1, 2, 3])  // too short for a header: dropped
        let tcp = try runCommand(["dig", "@127.0.0.1", "-p", "\(daemon.port)", "www.example.test", "AAAA", "+tcp", "+short"])
        #expect(tcp.stdout == "2001:db8::10\n")

        // A member whose TCP check fails: registered with a 1 s TTL on a closed port.
        try await api.register("web", "n1", #"{"address": "127.0.0.1", "port": 9, "ttl_s": 1, "check": {"type": "tcp", "timeout_ms": 200}}"#)
        var text = ""
        try await waitUntil("an unhealthy check counted", timeout: .seconds(10)) {
            text = try await scrape()
            return (value(text, "resolverd_health_checks_total{result=\"unhealthy\"}") ?? 0) >= 1
        }
        #expect(value(text, "resolverd_queries_total{type=\"A\",rcode=\"NOERROR\",transport=\"udp\"}") == 3)
        #expect(value(text, "resolverd_queries_total{type=\"A\",rcode=\"NXDOMAIN\",transport=\"udp\"}") == 1)
        #expect(value(text, "resolverd_queries_total{type=\"AAAA\",rcode=\"NOERROR\",transport=\"tcp\"}") == 1)
        #expect(value(text, "resolverd_queries_dropped_total") == 1)
        #expect(value(text, "resolverd_cache_hits_total") == 2)
        #expect(value(text, "resolverd_cache_misses_total").map { $0 >= 2 } == true)
        #expect(value(text, "resolverd_cache_entries").map { $0 >= 2 } == true)
        let server = "zone=\".\",server=\"\(upstream)\""
        #expect(value(text, "resolverd_upstream_queries_total{\(server)}").map { $0 >= 2 } == true, "\(text)")
        #expect(value(text, "resolverd_upstream_srtt_seconds{\(server)}").map { $0 > 0 && $0 < 1 } == true)
        #expect(value(text, "resolverd_upstream_errors_total{\(server),kind=\"timeout\"}") == 0)
        #expect(value(text, "resolverd_upstream_up{\(server)}") == 1)
        #expect(value(text, "resolverd_registry_members{state=\"unhealthy\"}") == 1)
        #expect(value(text, "resolverd_registry_members{state=\"healthy\"}") == 0)
        #expect(value(text, "resolverd_queries_in_flight") == 0)

        // GET /v1/stats and dig-lite stats: the same figures, summed up.
        let stats = try JSONDecoder().decode(StatsResponse.self, from: try await api.send("GET", "/v1/stats").body)
        #expect(stats.mode == "forward")
        #expect(stats.queriesTotal == 6)  // 5 answered (4 UDP, 1 TCP) and 1 dropped
        #expect(stats.droppedTotal == 1)
        #expect(stats.cache.hitRatio > 0 && stats.cache.hitRatio < 1)
        #expect(stats.upstream.servers == 1 && stats.upstream.down == 0)
        #expect(stats.registry.unhealthy == 1)
        #expect(stats.memoryBytes > 1_000_000)
        let digLite = try runCommand([Binaries.path("dig-lite"), "stats", "--api", daemon.apiURL, "--token-file", daemon.tokenFile ?? ""])
        #expect(digLite.status == 0, "\(digLite.stderr)")
        #expect(digLite.stdout.contains("mode        forward"))
        #expect(digLite.stdout.contains("queries     6 (1 dropped)"), "\(digLite.stdout)")
        #expect(digLite.stdout.contains("members     0 healthy, 1 unhealthy"))
        try await daemon.stop()
        await fake.stop()
    }
}

@Suite("QueryLog", .timeLimit(.minutes(1)))
struct QueryLogTests {
    @Test("log.queries: a JSON line per answer with client, name, type, rcode, latency and source, rate-bounded")
    func queryLines() async throws {
        let (fake, upstream) = try await Fixtures.upstream()
        let daemon = try await Daemon(config: """
            [server]
            listen = ["127.0.0.1:0"]
            [api]
            listen = "127.0.0.1:0"
            [log]
            level = "info"
            format = "json"
            queries = true
            queries_per_second = 5
            [[forward]]
            zone = "."
            servers = ["\(upstream)"]
            """)
        let client = try RawUDPClient(server: daemon.address)
        _ = try client.ask(query("www.example.test"))  // upstream
        _ = try client.ask(query("www.example.test"))  // from the cache
        func queryLines() -> [[String: Any]] {
            daemon.log.split(separator: "\n").compactMap { line in
                guard line.hasPrefix("{"), line.contains("\"msg\":\"query\"") else { return nil }
                return (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any]
            }
        }
        try await waitUntil("two query lines", timeout: .seconds(5)) { queryLines().count >= 2 }
        let lines = queryLines()
        #expect(lines[0]["name"] as? String == "www.example.test.")
        #expect(lines[0]["type"] as? String == "A")
        #expect(lines[0]["rcode"] as? String == "NOERROR")
        #expect(lines[0]["source"] as? String == "upstream")
        #expect(lines[0]["latency_us"] != nil)
        #expect((lines[0]["client"] as? String)?.hasPrefix("127.0.0.1:") == true)
        #expect(lines[1]["source"] as? String == "immediate")
        // Every line of the daemon's log is JSON now.
        #expect(daemon.log.split(separator: "\n").allSatisfy { $0.hasPrefix("{") })

        // A burst of 60 answers inside a second: at most 5 lines a second; the next line after
        // the limit says how many were skipped.
        for _ in 0..<60 { _ = try client.ask(query("www.example.test")) }
        let burst = queryLines().count - 2
        #expect(burst <= 10, "\(burst) lines")
        try await Task.sleep(for: .milliseconds(1100))  // the next second's window
        _ = try client.ask(query("www.example.test"))
        try await waitUntil("a line counting the skipped ones", timeout: .seconds(5)) {
            queryLines().contains { Int(($0["skipped"] as? String) ?? "") ?? 0 >= 40 }
        }
        try await daemon.stop()
        await fake.stop()
    }
}

@Suite("MetricsFailures", .timeLimit(.minutes(1)))
struct MetricsFailureTests {
    func value(_ text: String, _ sample: String) -> Double? {
        MetricsTests().value(text, sample)
    }

    @Test("timeouts, SERVFAIL answers, in-flight resolutions and evictions move their metrics")
    func failuresMove() async throws {
        let (normal, normalAddress) = try await Fixtures.upstream(
            behavior: Fixtures.behavior { $0.wildcardA = [192, 0, 2, 99] })
        let (silent, silentAddress) = try await Fixtures.upstream(behavior: Fixtures.behavior { $0.silent = true })
        let (slow, slowAddress) = try await Fixtures.upstream(Fixtures.corpZone, behavior: Fixtures.behavior { $0.delay = .milliseconds(600) })
        let daemon = try await Daemon(
            config: forwardingConfig(
                [(".", [normalAddress]), ("dead.test.", [silentAddress]), ("corp.test.", [slowAddress])], timeoutMs: 1000,
                cache: "max_bytes = 4096"))
        let api = daemon.api
        func scrape() async throws -> String { String(decoding: try await api.send("GET", "/metrics").body, as: UTF8.self) }

        // A resolution waiting on the slow server shows as in flight.
        let slowClient = try RawUDPClient(server: daemon.address, receiveTimeoutMs: 5000)
        slowClient.send(try DNSCodec.encode(try query("db.corp.test")))
        try await waitUntil("a resolution in flight", timeout: .seconds(3)) {
            value(try await scrape(), "resolverd_queries_in_flight") == 1
        }
        // The silent server: a timeout, and SERVFAIL to the client.
        let client = try RawUDPClient(server: daemon.address, receiveTimeoutMs: 5000)
        let dead = try query("www.dead.test")
        #expect(try await offPool { try client.ask(dead) }?.rcode == .servFail)
        // Many names through a 4 KiB cache: evictions.
        for index in 0..<60 { _ = try client.ask(query("n\(index).example.test")) }
        #expect(try await offPool { slowClient.receive() }.map { try DNSCodec.decode($0).rcode } == .noError)

        let text = try await scrape()
        #expect(value(text, "resolverd_upstream_errors_total{zone=\"dead.test.\",server=\"\(silentAddress)\",kind=\"timeout\"}") == 1, "\(text)")
        #expect(value(text, "resolverd_upstream_up{zone=\"dead.test.\",server=\"\(silentAddress)\"}") == 0)
        #expect(value(text, "resolverd_queries_total{type=\"A\",rcode=\"SERVFAIL\",transport=\"udp\"}") == 1)
        #expect((value(text, "resolverd_cache_evictions_total") ?? 0) > 0)
        #expect((value(text, "resolverd_cache_bytes") ?? .infinity) <= 4096)
        #expect(value(text, "resolverd_queries_in_flight") == 0)
        try await daemon.stop()
        await normal.stop()
        await silent.stop()
        await slow.stop()
    }
}
