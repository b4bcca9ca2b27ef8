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
        let api = APIClient(base: daemon.apiURL)
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
        let digLite = try runCommand([Binaries.path("dig-lite"), "stats", "--api", daemon.apiURL])
        #expect(digLite.status == 0, "\(digLite.stderr)")
        #expect(digLite.stdout.contains("mode        forward"))
        #expect(digLite.stdout.contains("queries     6 (1 dropped)"), "\(digLite.stdout)")
        #expect(digLite.stdout.contains("members     0 healthy, 1 unhealthy"))
        try await daemon.stop()
        await fake.stop()
    }
}
