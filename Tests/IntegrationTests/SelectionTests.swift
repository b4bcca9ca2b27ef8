// Adaptive selection end to end: three fake servers with set delays (5, 40 and 150 ms, ±10 %),
// one query every 20 ms through the real resolverd, and what each server received first. The
// phases follow issue 3: cold start, steady state, the fastest falling silent, its return, and
// the fastest becoming slow. Timing-sensitive: scripts/test.sh runs this suite on its own.

import FakeDNS
import Foundation
import Resolver
import Testing

@Suite("SelectionTiming", .serialized, .timeLimit(.minutes(3)))
struct SelectionTimingTests {
    /// One client query's fate.
    struct Sample {
        var name: String
        var sent: ContinuousClock.Instant
        var latency: Duration
        var rcode: ResponseCode?
    }

    final class Harness {
        let fakes: [FakeDNSServer]
        let addresses: [ServerAddress]
        let daemon: Daemon
        let client: RawUDPClient
        private var counter = 0

        init(delays: [Int]) async throws {
            var fakes: [FakeDNSServer] = []
            var addresses: [ServerAddress] = []
            for delay in delays {
                let (fake, address) = try await Fixtures.upstream(
                    behavior: Fixtures.behavior {
                        $0.delay = .milliseconds(delay) * 0.95
                        $0.jitter = .milliseconds(delay) * 0.1
                    })
                fakes.append(fake)
                addresses.append(address)
            }
            self.fakes = fakes
            self.addresses = addresses
            // The fastest last in the config: order must come from measurement, not the file.
            daemon = try await Daemon(
                config: forwardingConfig([(".", addresses.reversed())], timeoutMs: 3000, resolver: "probe_probability = 0.05"))
            client = try RawUDPClient(server: daemon.address, receiveTimeoutMs: 4000)
        }

        /// Sends `count` queries, one every 20 ms (each waits for its answer), for new names.
        func run(_ count: Int) async throws -> [Sample] {
            var samples: [Sample] = []
            let clock = ContinuousClock()
            for _ in 0..<count {
                counter += 1
                let name = "q\(counter).example.test"
                let start = clock.now
                let reply = try client.ask(query(name))
                samples.append(Sample(name: name + ".", sent: start, latency: clock.now - start, rcode: reply?.rcode))
                try await Task.sleep(until: start + .milliseconds(20), clock: clock)
            }
            return samples
        }

        /// For each sample, the indices of the servers that received its query first (within
        /// 1 ms of the earliest arrival: a probe sent at the same moment may tie).
        func firstSends(_ samples: [Sample]) -> [Set<Int>] {
            var arrivals: [String: [(Int, ContinuousClock.Instant)]] = [:]
            for (index, fake) in fakes.enumerated() {
                for arrival in fake.arrivals {
                    arrivals[arrival.question.name.description.lowercased(), default: []].append((index, arrival.at))
                }
            }
            return samples.map { sample in
                guard let list = arrivals[sample.name.lowercased()], let first = list.map(\.1).min() else { return [] }
                return Set(list.filter { $0.1 - first <= .milliseconds(1) }.map(\.0))
            }
        }

        func share(_ samples: [Sample], to server: Int) -> Double {
            let firsts = firstSends(samples)
            return Double(firsts.filter { $0.contains(server) }.count) / Double(max(1, firsts.count))
        }

        /// How many queries until every later query went first to `server`.
        func settledAfter(_ samples: [Sample], on server: Int) -> Int {
            let firsts = firstSends(samples)
            return (firsts.lastIndex { !$0.contains(server) }).map { $0 + 1 } ?? 0
        }

        /// resolverd's view of the root zone's servers, by server index.
        func servers() async throws -> [Int: ServersResponse.Server] {
            let view = try JSONDecoder().decode(ServersResponse.self, from: try await daemon.api.send("GET", "/v1/servers").body)
            let zone = try #require(view.zones.first { $0.zone == "." })
            var byIndex: [Int: ServersResponse.Server] = [:]
            for server in zone.servers {
                if let index = addresses.firstIndex(where: { $0.description == server.address }) { byIndex[index] = server }
            }
            return byIndex
        }

        func setDelay(_ server: Int, _ delay: Int) {
            var behavior = fakes[server].behavior
            behavior.delay = .milliseconds(delay) * 0.95
            behavior.jitter = .milliseconds(delay) * 0.1
            fakes[server].behavior = behavior
        }

        func setSilent(_ server: Int, _ silent: Bool) {
            var behavior = fakes[server].behavior
            behavior.silent = silent
            fakes[server].behavior = behavior
        }

        func stop() async throws {
            try await daemon.stop()
            for fake in fakes { await fake.stop() }
        }
    }

    @Test("fastest first, probes in parallel, hedged failover and recovery")
    func adaptiveSelection() async throws {
        let harness = try await Harness(delays: [5, 40, 150])
        let (fast, medium) = (0, 1)

        // Cold start: every server is measured within a few queries (untried ones are probed
        // in parallel), and the fastest takes over.
        let cold = try await harness.run(30)
        let coldSettle = harness.settledAfter(cold, on: fast)
        #expect(
            coldSettle <= 10,
            "cold start settled after \(coldSettle) queries; first sends \(harness.firstSends(cold)), latencies \(cold.map(\.latency))")

        // Steady state: ≥ 97 % of first sends to the fastest.
        let steady = try await harness.run(200)
        let steadyShare = harness.share(steady, to: fast)
        #expect(steadyShare >= 0.97, "steady share to the fastest: \(steadyShare)")
        #expect(steady.allSatisfy { $0.rcode == .nxDomain })
        let sorted = steady.map(\.latency).sorted()
        #expect(sorted[sorted.count / 2] < .milliseconds(30), "median latency \(sorted[sorted.count / 2])")
        // GET /v1/servers says what the servers saw: the fastest first, alive, with the queries
        // it received, and SRTTs in the servers' order.
        let view = try JSONDecoder().decode(
            ServersResponse.self, from: try await harness.daemon.api.send("GET", "/v1/servers").body)
        let zone = try #require(view.zones.first { $0.zone == "." })
        #expect(zone.servers.map(\.address) == harness.addresses.map(\.description))
        #expect(zone.servers.allSatisfy { $0.state == .alive })
        #expect(zone.servers.first?.queries == harness.fakes[fast].queryCount)
        let srtts = zone.servers.compactMap(\.srttMs)
        #expect(srtts.count == 3 && srtts == srtts.sorted(), "SRTTs \(srtts)")

        // The fastest falls silent: the hedge goes to the next server after the fastest's
        // retransmit time, so nobody waits anywhere near the 3 s timeout, and nobody gets SERVFAIL.
        var silent = harness.fakes[fast].behavior
        silent.silent = true
        harness.fakes[fast].behavior = silent
        let outage = try await harness.run(150)
        let worst = outage.map(\.latency).max() ?? .zero
        #expect(worst < .milliseconds(400), "worst latency while the fastest was silent: \(worst)")
        #expect(outage.allSatisfy { $0.rcode == .nxDomain }, "no SERVFAIL while a server lives")

        // It comes back fast: probes find it, and within 5 s it is first again.
        silent.silent = false
        harness.fakes[fast].behavior = silent
        _ = try await harness.run(200)  // about 5 s at one query per ~25 ms
        let recovered = try await harness.run(50)
        let recoveredShare = harness.share(recovered, to: fast)
        #expect(recoveredShare >= 0.90, "share to the recovered server: \(recoveredShare); first sends \(harness.firstSends(recovered))")

        // The fastest becomes slow (300 ms): first place moves to the 40 ms server within 10 queries.
        var slow = harness.fakes[fast].behavior
        slow.delay = .milliseconds(300)
        slow.jitter = .milliseconds(30)
        harness.fakes[fast].behavior = slow
        let shifted = try await harness.run(40)
        let shiftSettle = harness.settledAfter(shifted, on: medium)
        #expect(shiftSettle <= 10, "after the shift, settled after \(shiftSettle) queries")
        print(
            "selection: cold settle \(coldSettle), steady share \(steadyShare), median \(sorted[sorted.count / 2]), "
                + "worst while silent \(worst), recovered share \(recoveredShare), shift settle \(shiftSettle)")
        try await harness.stop()
    }

    /// Issue 20's harness, shortened: the fastest turns slow (300 ms), then the new fastest (40 ms)
    /// falls silent for longer than the 3 s timeout, then returns. While it is silent, a query that
    /// went to it first is hedged after its own retransmit time to the best live server, so no
    /// client waits longer than that RTO plus the live server's round trip (+ 20 %); once it
    /// answers a probe again it has first place back within a second.
    @Test("no client waits for the slowest server: hedge at the silent server's RTO to the best live one")
    func failoverNeverWaitsForTheSlowest() async throws {
        let harness = try await Harness(delays: [5, 40, 150])
        let (slow, silent, live) = (0, 1, 2)
        _ = try await harness.run(100)  // cold start and steady state (~2 s)
        harness.setDelay(slow, 300)
        _ = try await harness.run(50)  // the 40 ms server takes over

        let before = try await harness.servers()
        let rto = try #require(before[silent]?.rtoMs)
        let liveRTT = try #require(before[live]?.srttMs)
        let bound = Duration.milliseconds((rto + liveRTT) * 1.2)

        harness.setSilent(silent, true)
        let outage = try await harness.run(225)  // ~4.5 s: past the 3 s timeout that marks it down
        let returned = ContinuousClock.now
        harness.setSilent(silent, false)
        let back = try await harness.run(175)  // its next probe (one back-off, 2 s) and a second more
        let views = try await harness.servers()
        let metrics = String(decoding: try await harness.daemon.api.send("GET", "/metrics").body, as: UTF8.self)
        try await harness.stop()

        let worst = outage.max { $0.latency < $1.latency }
        let slowAnswers = (outage + back).filter { $0.latency > bound }.map { "\($0.name) \($0.latency)" }
        #expect(slowAnswers.isEmpty, "bound \(bound) (RTO \(rto) ms + live SRTT \(liveRTT) ms, + 20 %): \(slowAnswers)")
        #expect((outage + back).allSatisfy { $0.rcode == .nxDomain }, "no SERVFAIL, no lost answer")

        // It is found within one back-off period (2 s by then: the first probe after the timeout
        // went unanswered), and leads again within a second of its first answer.
        let firstAnswer = try #require(harness.fakes[silent].arrivals.map(\.at).filter { $0 > returned }.min())
        #expect(firstAnswer - returned < .milliseconds(2_300), "found \(firstAnswer - returned) after it returned")
        let settled = back.filter { $0.sent > firstAnswer + .seconds(1) }
        #expect(settled.count >= 20)
        let firsts = harness.firstSends(settled)
        #expect(firsts.allSatisfy { $0.contains(silent) }, "first sends a second after its first answer: \(firsts)")

        // The decisions are visible: the silent server's late count, the live server's hedges and
        // wins, and the metrics.
        #expect((views[silent]?.late ?? 0) > 0)
        #expect((views[live]?.hedged ?? 0) > 0 && (views[live]?.hedgesWon ?? 0) > 0)
        #expect(metrics.contains("resolverd_upstream_hedges_total{reason=\"late\"}"))
        #expect(metrics.contains("resolverd_upstream_failover_wait_seconds_count"))
        print("failover: bound \(bound), worst while silent \(worst?.latency ?? .zero), found after \(firstAnswer - returned)")
    }
}
