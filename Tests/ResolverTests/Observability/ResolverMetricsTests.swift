// Observability/ResolverMetrics: every (type, rcode, transport) has its own counter, a reply is
// counted from its own bytes, and the exposition is Prometheus text.

import Testing

@testable import Resolver

@Suite("ResolverMetrics")
struct ResolverMetricsTests {
    @Test func everyCombinationHasItsOwnCounter() {
        let metrics = ResolverMetrics()
        var seen: Set<Int> = []
        for type in ResolverMetrics.types.map(Optional.some) + [nil, RecordType(rawValue: 999)] {
            for rcode in ResolverMetrics.rcodes + [ResponseCode(rawValue: 9)] {
                for transport in [Transport.udp, .tcp] {
                    seen.insert(metrics.index(type: type, rcode: rcode, transport: transport))
                }
            }
        }
        // nil and TYPE999 share "other".
        #expect(seen.count == (ResolverMetrics.types.count + 1) * (ResolverMetrics.rcodes.count + 1) * 2)
        #expect(seen.max() == seen.count - 1)
    }

    @Test func repliesAreCountedFromTheirBytes() throws {
        let metrics = ResolverMetrics()
        let reply = try DNSCodec.encode(
            DNSMessage(id: 7, flags: [.qr], rcode: .nxDomain, questions: [Question(name: try name("x.test."), type: .aaaa)]))
        reply.withUnsafeBytes { metrics.countReply($0, transport: .tcp) }
        reply.withUnsafeBytes { metrics.countReply($0, transport: .tcp) }
        // A header-only FORMERR: no question, type "other".
        let formErr: [UInt8] = [0, 7, 0x80, 0x01] + [UInt8](repeating: 0, count: 8)
        formErr.withUnsafeBytes { metrics.countReply($0, transport: .udp) }
        [UInt8](repeating: 0, count: 5).withUnsafeBytes { metrics.countReply($0, transport: .udp) }  // too short: ignored
        metrics.countDrop()
        metrics.countCheck(healthy: false)
        let text = metrics.registry.emitToString()
        #expect(text.contains("resolverd_queries_total{type=\"AAAA\",rcode=\"NXDOMAIN\",transport=\"tcp\"} 2"), "\(text)")
        #expect(text.contains("resolverd_queries_total{type=\"other\",rcode=\"FORMERR\",transport=\"udp\"} 1"))
        #expect(text.contains("resolverd_queries_dropped_total 1"))
        #expect(text.contains("resolverd_health_checks_total{result=\"unhealthy\"} 1"))
        #expect(text.contains("# TYPE resolverd_queries_total counter"))
    }

    @Test func pulledCountersOnlyGrow() {
        let metrics = ResolverMetrics()
        metrics.advance("resolverd_test_total", to: 5)
        metrics.advance("resolverd_test_total", to: 3)  // a figure that shrank (a reset) is ignored
        metrics.advance("resolverd_test_total", to: 8)
        metrics.set("resolverd_test_gauge", [("zone", ".")], to: 2.5)
        let text = metrics.registry.emitToString()
        #expect(text.contains("resolverd_test_total 8"))
        #expect(text.contains("resolverd_test_gauge{zone=\".\"} 2.5"))
    }

    @Test func seriesOfForgottenServersAreRemoved() throws {
        let metrics = ResolverMetrics()
        let zone = try name("example.")
        func report(_ hosts: [UInt32]) -> [(zone: DomainName, servers: [ServerReport])] {
            [(zone, hosts.map { host in
                var stats = ServerStats(now: .now())
                stats.queries = 3
                stats.health = .alive(RTTEstimate(firstSample: .milliseconds(5)))
                return ServerReport(server: ServerAddress(ip: .v4(0xC000_0200 | host), port: 53), stats: stats, state: .alive)
            })]
        }
        metrics.exposeServers(report(Array(1...100)))
        #expect(metrics.pulledSeries == 100 * 12)
        #expect(metrics.registry.emitToString().contains("server=\"192.0.2.100:53\""))
        // 99 servers forgotten by selection (unused past server_expiry_s, or their zone evicted).
        metrics.exposeServers(report([1]))
        #expect(metrics.pulledSeries == 12)
        let text = metrics.registry.emitToString()
        #expect(!text.contains("192.0.2.100:53"))
        #expect(text.contains("resolverd_upstream_queries_total{zone=\"example.\",server=\"192.0.2.1:53\"} 3"), "\(text)")
        // A server met again starts a new series.
        metrics.exposeServers(report([1, 100]))
        #expect(metrics.pulledSeries == 24)
    }
}
