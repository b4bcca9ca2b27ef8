// Selection/: the pure selection state machine, driven by a manual clock and a seeded generator.
// Nothing here sleeps; "time" is a number we advance.

import NIOCore
import Synchronization
import Testing

@testable import Resolver
import WireTestSupport

/// A clock the test moves by hand.
struct ManualClock {
    private(set) var now = NIODeadline.uptimeNanoseconds(1_000_000_000)
    mutating func advance(_ amount: TimeAmount) { now = now + amount }
}

@Suite("SelectionState")
struct SelectionStateTests {
    static let zone = DomainName("example.") ?? .root
    static let servers: [ServerAddress] = (1...4).map { ServerAddress(ip: .v4(0xC000_0200 | UInt32($0)), port: 53) }

    /// Answers every plan's primary (and probe) with the given per-server RTT, `count` times.
    static func drive(
        _ state: inout SelectionState, clock: inout ManualClock, random: inout SplitMix64,
        rtt: [ServerAddress: TimeAmount], count: Int
    ) -> [SelectionPlan] {
        var plans: [SelectionPlan] = []
        for _ in 0..<count {
            let plan = state.plan(zone: zone, servers: servers, now: clock.now, random: &random)
            plans.append(plan)
            for server in [plan.order[0]] + (plan.probe.map { [$0] } ?? []) {
                state.record(.answered(rtt: rtt[server] ?? .milliseconds(100)), server: server, zone: zone, now: clock.now)
            }
            clock.advance(.milliseconds(100))
        }
        return plans
    }

    static let rtts: [ServerAddress: TimeAmount] = [
        servers[0]: .milliseconds(80), servers[1]: .milliseconds(20), servers[2]: .milliseconds(5),
        servers[3]: .milliseconds(150),
    ]

    @Test("the first query to a new zone picks at random, and every server is picked for some seed")
    func randomFirstChoice() {
        var firsts: [ServerAddress: Int] = [:]
        for seed in 0..<200 {
            var state = SelectionState(policy: SelectionPolicy())
            var random = SplitMix64(seed: UInt64(seed))
            let plan = state.plan(zone: Self.zone, servers: Self.servers, now: ManualClock().now, random: &random)
            firsts[plan.order[0], default: 0] += 1
            #expect(Set(plan.order) == Set(Self.servers), "every server appears once in the order")
            #expect(plan.order.count == Self.servers.count)
            #expect(plan.probe != nil && plan.probe != plan.order[0], "a cold zone probes an untried server")
        }
        #expect(Set(firsts.keys) == Set(Self.servers))
        for (_, count) in firsts { #expect(count > 20, "roughly uniform over 200 seeds: \(firsts)") }
    }

    @Test("it converges to the fastest server and keeps it", arguments: [1, 7, 42, 1234] as [UInt64])
    func convergence(seed: UInt64) {
        var state = SelectionState(policy: SelectionPolicy())
        var clock = ManualClock()
        var random = SplitMix64(seed: seed)
        let plans = Self.drive(&state, clock: &clock, random: &random, rtt: Self.rtts, count: 200)
        // Each cold query probes one untried server; after at most 4 queries all are measured.
        let settled = plans.firstIndex { $0.order[0] == Self.servers[2] } ?? Int.max
        #expect(settled <= Self.servers.count)
        #expect(plans[settled...].allSatisfy { $0.order[0] == Self.servers[2] })
        // The order follows the measured RTTs.
        #expect(plans.last?.order == [Self.servers[2], Self.servers[1], Self.servers[0], Self.servers[3]])
    }

    @Test("probes go out with the configured probability, never to the primary")
    func probeRate() {
        var policy = SelectionPolicy()
        policy.probeProbability = 0.05
        policy.probeInterval = .hours(1)
        var state = SelectionState(policy: policy)
        var clock = ManualClock()
        var random = SplitMix64(seed: 99)
        _ = Self.drive(&state, clock: &clock, random: &random, rtt: Self.rtts, count: 10)  // warm up
        let plans = Self.drive(&state, clock: &clock, random: &random, rtt: Self.rtts, count: 10_000)
        let probes = plans.compactMap(\.probe)
        let rate = Double(probes.count) / Double(plans.count)
        #expect(rate > 0.04 && rate < 0.06, "probe rate \(rate)")
        #expect(plans.allSatisfy { $0.probe != $0.order[0] })
        // Probes are spread over all the others, not stuck on one.
        #expect(Set(probes) == Set(Self.servers.filter { $0 != Self.servers[2] }))
    }

    @Test("a busy zone probes at least once per interval even with probability 0")
    func probeInterval() {
        var policy = SelectionPolicy()
        policy.probeProbability = 0
        policy.probeInterval = .seconds(30)
        var state = SelectionState(policy: policy)
        var clock = ManualClock()
        var random = SplitMix64(seed: 5)
        _ = Self.drive(&state, clock: &clock, random: &random, rtt: Self.rtts, count: 10)
        // 100 ms per query: 3,000 queries span 300 s, so 10 probes (one per 30 s) are due.
        let plans = Self.drive(&state, clock: &clock, random: &random, rtt: Self.rtts, count: 3_000)
        let probes = plans.enumerated().filter { $0.element.probe != nil }.map(\.offset)
        #expect(probes.count == 10)
        for (a, b) in zip(probes, probes.dropFirst()) { #expect(b - a == 300) }
    }

    @Test("hedge delays are SRTT + 4·RTTVAR, clamped to the floor and the timeout; unknown servers get the default")
    func hedgeDelays() {
        let policy = SelectionPolicy()
        var state = SelectionState(policy: policy)
        var clock = ManualClock()
        var random = SplitMix64(seed: 3)
        let cold = state.plan(zone: Self.zone, servers: Self.servers, now: clock.now, random: &random)
        #expect(cold.hedgeDelays == Array(repeating: policy.unknownRTO, count: 4))

        // One sample of 100 ms: SRTT 100, RTTVAR 50 → 300 ms.
        state.record(.answered(rtt: .milliseconds(100)), server: Self.servers[0], zone: Self.zone, now: clock.now)
        // One sample of 2 ms: 2 + 4·1 = 6 ms → the 50 ms floor.
        state.record(.answered(rtt: .milliseconds(2)), server: Self.servers[1], zone: Self.zone, now: clock.now)
        // One sample of 2 s: 2 + 4·1 = 6 s → the 3 s timeout.
        state.record(.answered(rtt: .seconds(2)), server: Self.servers[2], zone: Self.zone, now: clock.now)
        clock.advance(.milliseconds(1))
        let plan = state.plan(zone: Self.zone, servers: Self.servers, now: clock.now, random: &random)
        #expect(plan.order.prefix(3) == [Self.servers[1], Self.servers[0], Self.servers[2]])
        #expect(plan.hedgeDelays[0] == policy.hedgeFloor)
        #expect(plan.hedgeDelays[1] == .milliseconds(300))
        #expect(plan.hedgeDelays[2] == policy.timeout)
        #expect(plan.hedgeDelays[3] == policy.unknownRTO)
        #expect(plan.hedgeDelays.count == plan.order.count)
    }

    @Test("RTT arithmetic follows RFC 6298")
    func rttArithmetic() {
        var estimate = RTTEstimate(firstSample: .milliseconds(100))
        #expect(estimate.smoothedRTT == .milliseconds(100))
        #expect(estimate.rttVariance == .milliseconds(50))
        estimate.update(.milliseconds(20))
        // RTTVAR = 3/4·50 + 1/4·|100 − 20| = 57.5; SRTT = 7/8·100 + 1/8·20 = 90.
        #expect(estimate.rttVariance == .microseconds(57_500))
        #expect(estimate.smoothedRTT == .milliseconds(90))
        #expect(estimate.retransmitTimeout(floor: .zero, ceiling: .seconds(3)) == .milliseconds(320))
        // During warm-up SRTT is the best sample so far: a better one starts the estimate again
        // (RTTVAR = R/2), a worse one only updates the variance.
        var warming = RTTEstimate(firstSample: .milliseconds(100))
        warming.update(.milliseconds(20), warmUp: 3)
        #expect(warming.smoothedRTT == .milliseconds(20))
        #expect(warming.rttVariance == .milliseconds(10))
        warming.update(.milliseconds(60), warmUp: 3)
        #expect(warming.smoothedRTT == .milliseconds(20))
        #expect(warming.rttVariance == .microseconds(17_500))  // 3/4·10 + 1/4·|20 − 60|
        warming.update(.milliseconds(60), warmUp: 3)
        #expect(warming.smoothedRTT == .milliseconds(25))  // 7/8·20 + 1/8·60 once warm
        estimate.penalise(atLeast: .seconds(3))
        #expect(estimate.smoothedRTT == .seconds(3))
    }

    @Test("one slow first answer does not bury the fastest server: warm-up probes correct it", arguments: [2, 3, 4] as [UInt64])
    func warmUp(seed: UInt64) {
        var state = SelectionState(policy: SelectionPolicy())
        var clock = ManualClock()
        var random = SplitMix64(seed: seed)
        let fastest = Self.servers[2]
        var answered = 0
        var firstChoices: [ServerAddress] = []
        for _ in 0..<12 {
            let plan = state.plan(zone: Self.zone, servers: Self.servers, now: clock.now, random: &random)
            firstChoices.append(plan.order[0])
            for server in [plan.order[0]] + (plan.probe.map { [$0] } ?? []) {
                var rtt = Self.rtts[server] ?? .milliseconds(100)
                if server == fastest {
                    // Its first answer is slower than every other server's.
                    if answered == 0 { rtt = .milliseconds(300) }
                    answered += 1
                }
                state.record(.answered(rtt: rtt), server: server, zone: Self.zone, now: clock.now)
            }
            clock.advance(.milliseconds(100))
        }
        // 3 untried servers and 2 more warm-up samples each: the fastest leads within 6 queries.
        #expect(firstChoices.suffix(6).allSatisfy { $0 == fastest }, "\(firstChoices)")
        #expect(state.zones[Self.zone]?.servers[fastest]?.estimate?.smoothedRTT == .milliseconds(5))
    }

    @Test("a server that stops answering loses first place to the hedge before its first timeout")
    func lateLosesFirstPlace() {
        var state = SelectionState(policy: SelectionPolicy())
        var clock = ManualClock()
        var random = SplitMix64(seed: 11)
        _ = Self.drive(&state, clock: &clock, random: &random, rtt: Self.rtts, count: 20)
        var queries = 0
        while queries < 10 {
            let plan = state.plan(zone: Self.zone, servers: Self.servers, now: clock.now, random: &random)
            if plan.order[0] != Self.servers[2] { break }
            // The primary stays silent; the hedge fires and the next server answers.
            state.record(.late(after: plan.hedgeDelays[0]), server: plan.order[0], zone: Self.zone, now: clock.now)
            state.record(.answered(rtt: .milliseconds(20)), server: plan.order[1], zone: Self.zone, now: clock.now)
            clock.advance(.milliseconds(100))
            queries += 1
        }
        #expect(queries <= 5, "took \(queries) late answers to move away from the silent server")
        #expect(state.zones[Self.zone]?.servers[Self.servers[2]]?.errors.timeouts == 0)
    }

    @Test("timeouts mark a server down with doubling back-off up to the ceiling, and an answer revives it")
    func backoff() {
        var policy = SelectionPolicy()
        policy.backoffBase = .seconds(1)
        policy.backoffCeiling = .seconds(20)
        var state = SelectionState(policy: policy)
        var clock = ManualClock()
        var random = SplitMix64(seed: 21)
        _ = Self.drive(&state, clock: &clock, random: &random, rtt: Self.rtts, count: 20)
        let dead = Self.servers[2]
        var periods: [TimeAmount] = []
        for _ in 0..<7 {
            // Each timeout is of a query sent after the last answer or failure (news, not echoes),
            // and comes after the last back-off ran out (a failure while it runs adds nothing).
            clock.advance(max(policy.timeout, periods.last ?? .zero) + .milliseconds(1))
            state.record(.timeout, server: dead, zone: Self.zone, now: clock.now)
            guard case .down(let until, let estimate)? = state.zones[Self.zone]?.servers[dead]?.health else {
                Issue.record("not down after a timeout")
                return
            }
            periods.append(until - clock.now)
            #expect((estimate?.smoothedRTT ?? .zero) >= policy.timeout, "penalised to the timeout")
            // While down it is last in the order.
            let plan = state.plan(zone: Self.zone, servers: Self.servers, now: clock.now, random: &random)
            #expect(plan.order.last == dead)
            #expect(plan.order[0] == Self.servers[1])
        }
        #expect(periods == [1, 2, 4, 8, 16, 20, 20].map { TimeAmount.seconds($0) })
        #expect(state.zones[Self.zone]?.servers[dead]?.errors.timeouts == 7)
        #expect(state.report(now: clock.now).first?.servers.last?.state == .down)

        // A probe's answer: it competes again on fresh figures, and wins on its speed.
        state.record(.answered(rtt: .milliseconds(5)), server: dead, zone: Self.zone, now: clock.now)
        let stats = state.zones[Self.zone]?.servers[dead]
        #expect(stats?.consecutiveFailures == 0)
        #expect(stats?.estimate?.smoothedRTT == .milliseconds(5))
        let plan = state.plan(zone: Self.zone, servers: Self.servers, now: clock.now, random: &random)
        #expect(plan.order[0] == dead)
    }

    @Test("timeouts of queries sent before the server's last answer or failure change nothing")
    func staleTimeout() {
        let policy = SelectionPolicy()
        var state = SelectionState(policy: policy)
        var clock = ManualClock()
        var random = SplitMix64(seed: 5)
        _ = Self.drive(&state, clock: &clock, random: &random, rtt: Self.rtts, count: 20)
        let fastest = Self.servers[2]
        // Down after a real timeout; then a probe sent 1 s later is answered.
        clock.advance(policy.timeout)
        state.record(.timeout, server: fastest, zone: Self.zone, now: clock.now)
        // Queries that were in flight when it was marked down time out too: no doubling.
        clock.advance(.milliseconds(500))
        state.record(.timeout, server: fastest, zone: Self.zone, now: clock.now)
        #expect(state.zones[Self.zone]?.servers[fastest]?.consecutiveFailures == 1)
        clock.advance(.milliseconds(500))
        state.record(.answered(rtt: .milliseconds(5)), server: fastest, zone: Self.zone, now: clock.now)
        // Queries sent during the outage keep timing out for up to `timeout` after the answer:
        // old news, counted, but the server keeps first place.
        for _ in 0..<3 {
            clock.advance(.milliseconds(500))
            state.record(.timeout, server: fastest, zone: Self.zone, now: clock.now)
            let plan = state.plan(zone: Self.zone, servers: Self.servers, now: clock.now, random: &random)
            #expect(plan.order[0] == fastest)
        }
        #expect(state.zones[Self.zone]?.servers[fastest]?.errors.timeouts == 5)
        // A timeout of a query sent after that answer is news: down again.
        clock.advance(policy.timeout)
        state.record(.timeout, server: fastest, zone: Self.zone, now: clock.now)
        #expect(state.zones[Self.zone]?.servers[fastest]?.isDown(at: clock.now) == true)
    }

    @Test("a server waiting on a probe's answer gets no second probe until it answers", arguments: [3, 9, 27] as [UInt64])
    func oneProbeAtATime(seed: UInt64) {
        var state = SelectionState(policy: SelectionPolicy())
        var clock = ManualClock()
        var random = SplitMix64(seed: seed)
        // Nothing answers yet: each untried server is probed once, not once per query.
        var probed: [ServerAddress] = []
        for _ in 0..<10 {
            if let probe = state.plan(zone: Self.zone, servers: Self.servers, now: clock.now, random: &random).probe {
                #expect(!probed.contains(probe), "probed twice while outstanding")
                probed.append(probe)
            }
            clock.advance(.milliseconds(20))
        }
        #expect(!probed.isEmpty && probed.count <= Self.servers.count)
        // Its answer arrives: it is measured, and may be probed again (warm-up).
        let first = probed[0]
        state.record(.answered(rtt: .milliseconds(150)), server: first, zone: Self.zone, now: clock.now)
        #expect(state.zones[Self.zone]?.servers[first]?.probeSent == nil)
    }

    @Test("a down server is probed each back-off period from the last probe's send, doubling, answered or not")
    func probeWhenDue() {
        var policy = SelectionPolicy()
        policy.probeProbability = 0
        var state = SelectionState(policy: policy)
        var clock = ManualClock()
        var random = SplitMix64(seed: 13)
        _ = Self.drive(&state, clock: &clock, random: &random, rtt: Self.rtts, count: 20)
        let dead = Self.servers[0]
        func probe() -> ServerAddress? { state.plan(zone: Self.zone, servers: Self.servers, now: clock.now, random: &random).probe }
        func failures() -> Int? { state.zones[Self.zone]?.servers[dead]?.consecutiveFailures }
        clock.advance(policy.timeout)
        state.record(.timeout, server: dead, zone: Self.zone, now: clock.now)
        // Within the 1 s back-off: no probe to it.
        clock.advance(.milliseconds(900))
        #expect(probe() == nil)
        // Past it: the next query probes it, and the next back-off (2 s) starts as the probe leaves.
        clock.advance(.milliseconds(200))
        #expect(probe() == dead)
        #expect(failures() == 2)
        for _ in 0..<7 {
            clock.advance(.milliseconds(250))
            #expect(probe() == nil)
        }
        // 2 s after the first probe left, the second goes, though the first is still unanswered:
        // a server that came back meanwhile is found within one back-off period.
        clock.advance(.milliseconds(300))
        #expect(probe() == dead)
        #expect(failures() == 3)
        // The first probe's timeout (3 s after it left) is old news: no further doubling.
        clock.advance(.milliseconds(950))
        state.record(.timeout, server: dead, zone: Self.zone, now: clock.now)
        #expect(failures() == 3)
        // A REFUSED to the second probe while its back-off runs adds nothing either.
        state.record(.refused, server: dead, zone: Self.zone, now: clock.now)
        #expect(failures() == 3)
        // It answers a probe: first place back on its new figures.
        clock.advance(.seconds(4))
        #expect(probe() == dead)
        state.record(.answered(rtt: .milliseconds(60)), server: dead, zone: Self.zone, now: clock.now)
        #expect(failures() == 0)
        #expect(state.report(now: clock.now).first?.servers.first { $0.server == dead }?.state == .alive)
    }

    /// Answers every plan's primary with `rtts`, `count` times, so that all servers are measured
    /// many times (probe probability 1 while warming up).
    static func warmed(seed: UInt64) -> (SelectionState, ManualClock, SplitMix64) {
        var policy = SelectionPolicy()
        policy.probeProbability = 1
        var state = SelectionState(policy: policy)
        var clock = ManualClock()
        var random = SplitMix64(seed: seed)
        _ = drive(&state, clock: &clock, random: &random, rtt: rtts, count: 80)
        return (state, clock, random)
    }

    @Test("a late server's retransmit time is not stretched by its silence; it just drops down the order")
    func lateKeepsRTO() {
        var (state, clock, random) = Self.warmed(seed: 31)
        let fastest = Self.servers[2]
        let before = state.plan(zone: Self.zone, servers: Self.servers, now: clock.now, random: &random)
        #expect(before.order[0] == fastest)
        let estimate = state.zones[Self.zone]?.servers[fastest]?.estimate
        for _ in 0..<20 {
            // Every query's hedge fires on it; the old rule fed 2 × the wait back as a sample.
            state.record(.late(after: before.hedgeDelays[0]), server: fastest, zone: Self.zone, now: clock.now)
            clock.advance(.milliseconds(20))
        }
        #expect(state.zones[Self.zone]?.servers[fastest]?.estimate == estimate)
        #expect(state.zones[Self.zone]?.servers[fastest]?.hedging.late == 20)
        let after = state.plan(zone: Self.zone, servers: Self.servers, now: clock.now, random: &random)
        #expect(after.order[0] == Self.servers[1], "the next fastest leads while the fastest is late")
        let index = after.order.firstIndex(of: fastest) ?? 0
        #expect(after.hedgeDelays[index] == before.hedgeDelays[0], "its own hedge delay is unchanged")
        // One answer, and it is first again.
        state.record(.answered(rtt: .milliseconds(5)), server: fastest, zone: Self.zone, now: clock.now)
        #expect(state.plan(zone: Self.zone, servers: Self.servers, now: clock.now, random: &random).order[0] == fastest)
    }

    @Test("hedge planner, two slow servers: each hedge goes to the best server not yet asked, at that server's RTO")
    func twoSlowServers() {
        var (state, clock, random) = Self.warmed(seed: 41)
        let (fast, second, third) = (Self.servers[2], Self.servers[1], Self.servers[0])
        let plan = state.plan(zone: Self.zone, servers: Self.servers, now: clock.now, random: &random)
        #expect(plan.order.prefix(3) == [fast, second, third])
        // The fastest is late: the hedge goes to the second, waited on for the second's RTO.
        clock.advance(plan.hedgeDelays[0])
        state.record(.late(after: plan.hedgeDelays[0]), server: fast, zone: Self.zone, now: clock.now)
        let hedge = state.next(zone: Self.zone, servers: Self.servers, excluding: [fast], now: clock.now, random: &random)
        #expect(hedge == Hedge(server: second, delay: plan.hedgeDelays[1]))
        // The second is late too: the next goes to the third, at the third's RTO.
        clock.advance(plan.hedgeDelays[1])
        state.record(.late(after: plan.hedgeDelays[1]), server: second, zone: Self.zone, now: clock.now)
        let again = state.next(zone: Self.zone, servers: Self.servers, excluding: [fast, second], now: clock.now, random: &random)
        #expect(again == Hedge(server: third, delay: plan.hedgeDelays[2]))
        // The next question starts at the third: both slow ones are expected later than it.
        clock.advance(.milliseconds(20))
        let next = state.plan(zone: Self.zone, servers: Self.servers, now: clock.now, random: &random)
        #expect(next.order[0] == third)
        #expect(state.zones[Self.zone]?.servers[second]?.hedging.asked == 1)
    }

    @Test("hedge planner, all slow: every server once, fastest expected first, none twice, then nothing")
    func allSlow() {
        var (state, clock, random) = Self.warmed(seed: 43)
        let plan = state.plan(zone: Self.zone, servers: Self.servers, now: clock.now, random: &random)
        var asked: Set<ServerAddress> = [plan.order[0]]
        var order = [plan.order[0]]
        var delay = plan.hedgeDelays[0]
        var delays = [delay]
        var current = plan.order[0]
        while let hedge = state.next(zone: Self.zone, servers: Self.servers, excluding: asked, now: clock.now, random: &random) {
            clock.advance(delay)
            state.record(.late(after: delay), server: current, zone: Self.zone, now: clock.now)
            #expect(!asked.contains(hedge.server))
            asked.insert(hedge.server)
            order.append(hedge.server)
            delays.append(hedge.delay)
            (current, delay) = (hedge.server, hedge.delay)
            if order.count > Self.servers.count { break }
        }
        #expect(order == plan.order, "by expected answer time: \(order)")
        #expect(delays == plan.hedgeDelays, "each at its own RTO")
    }

    @Test("hedge planner: the fastest silent while the second is mid back-off → the hedge skips the second")
    func fastestSilentSecondDown() {
        var (state, clock, random) = Self.warmed(seed: 47)
        let (fast, second, third, fourth) = (Self.servers[2], Self.servers[1], Self.servers[0], Self.servers[3])
        clock.advance(.seconds(3))
        state.record(.timeout, server: second, zone: Self.zone, now: clock.now)
        clock.advance(.milliseconds(500))  // mid back-off (1 s)
        let plan = state.plan(zone: Self.zone, servers: Self.servers, now: clock.now, random: &random)
        #expect(plan.order == [fast, third, fourth, second])
        clock.advance(plan.hedgeDelays[0])
        state.record(.late(after: plan.hedgeDelays[0]), server: fast, zone: Self.zone, now: clock.now)
        let hedge = state.next(zone: Self.zone, servers: Self.servers, excluding: [fast], now: clock.now, random: &random)
        #expect(hedge?.server == third)
        let last = state.next(zone: Self.zone, servers: Self.servers, excluding: [fast, third, fourth], now: clock.now, random: &random)
        #expect(last?.server == second, "the down server only as the last resort")
        #expect(last?.delay == policy(state).timeout, "waited on for the whole timeout")
    }

    func policy(_ state: SelectionState) -> SelectionPolicy { state.policy }

    @Test("a question waiting on a server hears once when it goes down, not on old news, and the watch is freed")
    func downWatch() {
        let selector = AdaptiveSelector(policy: SelectionPolicy())
        let zone = Self.zone
        let server = Self.servers[0]
        let start = NIODeadline.uptimeNanoseconds(1_000_000_000)
        _ = selector.plan(zone: zone, servers: Self.servers, now: start)
        selector.record(.answered(rtt: .milliseconds(10)), server: server, zone: zone, now: start)
        let fired = Mutex(0)
        let watch = selector.watchDown(server: server, zone: zone) { fired.withLock { $0 += 1 } }
        let other = selector.watchDown(server: Self.servers[1], zone: zone) { fired.withLock { $0 += 100 } }
        #expect(selector.watchCount == 2)
        // A timeout of a query sent before its last answer: old news, no watch fires.
        selector.record(.timeout, server: server, zone: zone, now: start + .seconds(1))
        #expect(fired.withLock { $0 } == 0)
        // A real one: down, the watch fires once and is gone.
        selector.record(.timeout, server: server, zone: zone, now: start + .seconds(4))
        #expect(fired.withLock { $0 } == 1)
        selector.record(.refused, server: server, zone: zone, now: start + .seconds(4))
        #expect(fired.withLock { $0 } == 1)
        watch.cancel()
        other.cancel()
        #expect(selector.watchCount == 0)
    }

    @Test("a down server without an answer comes back in the ranking when its back-off ends")
    func backoffExpires() {
        var state = SelectionState(policy: SelectionPolicy())
        var clock = ManualClock()
        var random = SplitMix64(seed: 8)
        _ = Self.drive(&state, clock: &clock, random: &random, rtt: Self.rtts, count: 20)
        clock.advance(.seconds(3))
        state.record(.timeout, server: Self.servers[1], zone: Self.zone, now: clock.now)
        var plan = state.plan(zone: Self.zone, servers: Self.servers, now: clock.now, random: &random)
        #expect(plan.order.last == Self.servers[1])
        clock.advance(.seconds(2))
        plan = state.plan(zone: Self.zone, servers: Self.servers, now: clock.now, random: &random)
        // Back in the ranking, but on its penalised 3 s estimate: behind every live server.
        #expect(plan.order.last == Self.servers[1])
        // Still reported down: it has not answered since it failed.
        #expect(state.report(now: clock.now).first?.servers.last?.state == .down)
    }

    @Test("SERVFAIL, REFUSED, malformed and unreachable count against a server; mismatches do not")
    func failureKinds() {
        for feedback in [ServerFeedback.servFail, .refused, .malformed, .unreachable] {
            var state = SelectionState(policy: SelectionPolicy())
            var clock = ManualClock()
            var random = SplitMix64(seed: 2)
            _ = Self.drive(&state, clock: &clock, random: &random, rtt: Self.rtts, count: 20)
            state.record(feedback, server: Self.servers[2], zone: Self.zone, now: clock.now)
            let stats = state.zones[Self.zone]?.servers[Self.servers[2]]
            #expect(stats?.isDown(at: clock.now) == true, "\(feedback)")
            #expect(stats?.errors.total == 1)
        }
        var state = SelectionState(policy: SelectionPolicy())
        var clock = ManualClock()
        var random = SplitMix64(seed: 2)
        _ = Self.drive(&state, clock: &clock, random: &random, rtt: Self.rtts, count: 20)
        state.record(.mismatched, server: Self.servers[2], zone: Self.zone, now: clock.now)
        let stats = state.zones[Self.zone]?.servers[Self.servers[2]]
        #expect(stats?.isDown(at: clock.now) == false)
        #expect(stats?.errors.mismatched == 1)
    }

    @Test("statistics of unused servers expire, and idle zones are swept")
    func expiry() {
        var policy = SelectionPolicy()
        policy.expiry = .minutes(10)
        var state = SelectionState(policy: policy)
        var clock = ManualClock()
        var random = SplitMix64(seed: 17)
        _ = Self.drive(&state, clock: &clock, random: &random, rtt: Self.rtts, count: 20)
        // A slow server's bad figures are not final: once unused past expiry it is unknown again.
        clock.advance(policy.timeout)
        state.record(.timeout, server: Self.servers[3], zone: Self.zone, now: clock.now)
        let other = DomainName("other.") ?? .root
        _ = state.plan(zone: other, servers: [Self.servers[0]], now: clock.now, random: &random)

        // Keep only the fastest busy for 13 minutes (plans naming only it touch no other stats);
        // sweeps run every quarter of the expiry, so the idle zone is gone by then.
        for _ in 0..<13 {
            clock.advance(.minutes(1))
            _ = state.plan(zone: Self.zone, servers: [Self.servers[2]], now: clock.now, random: &random)
            state.record(.answered(rtt: .milliseconds(5)), server: Self.servers[2], zone: Self.zone, now: clock.now)
        }
        let plan = state.plan(zone: Self.zone, servers: Self.servers, now: clock.now, random: &random)
        #expect(plan.order[0] == Self.servers[2])
        for server in Self.servers where server != Self.servers[2] {
            #expect(state.zones[Self.zone]?.servers[server]?.health == .unknown, "\(server) forgotten")
        }
        #expect(state.zones[other] == nil, "a zone idle past expiry is swept")
        #expect(state.zones[Self.zone] != nil)
    }

    @Test("servers dropped from the configuration are not asked, and the order only holds given servers")
    func plansOnlyGivenServers() {
        var state = SelectionState(policy: SelectionPolicy())
        var clock = ManualClock()
        var random = SplitMix64(seed: 4)
        _ = Self.drive(&state, clock: &clock, random: &random, rtt: Self.rtts, count: 20)
        let subset = [Self.servers[0], Self.servers[3]]
        let plan = state.plan(zone: Self.zone, servers: subset, now: clock.now, random: &random)
        #expect(plan.order == [Self.servers[0], Self.servers[3]])
        #expect(plan.probe.map { subset.contains($0) } ?? true)
        let empty = state.plan(zone: Self.zone, servers: [], now: clock.now, random: &random)
        #expect(empty.order.isEmpty && empty.probe == nil)
        let single = state.plan(zone: Self.zone, servers: [Self.servers[1]], now: clock.now, random: &random)
        #expect(single.order == [Self.servers[1]] && single.probe == nil)
    }

    @Test("the admin report lists each zone's servers in selection order with their figures")
    func report() {
        var state = SelectionState(policy: SelectionPolicy())
        var clock = ManualClock()
        var random = SplitMix64(seed: 6)
        _ = Self.drive(&state, clock: &clock, random: &random, rtt: Self.rtts, count: 50)
        let report = state.report(now: clock.now)
        #expect(report.count == 1)
        #expect(report[0].zone == Self.zone)
        #expect(report[0].servers.map(\.server) == [Self.servers[2], Self.servers[1], Self.servers[0], Self.servers[3]])
        #expect(report[0].servers.allSatisfy { $0.state == .alive && $0.stats.queries > 0 })
        #expect(report[0].servers[0].stats.queries > 40)
    }

    @Test("the server tables stay within their byte bound: the zones asked least recently go first")
    func tablesStayWithinTheirByteBound() throws {
        var policy = SelectionPolicy()
        policy.maxTableBytes = 256 * 1024
        var state = SelectionState(policy: policy)
        var clock = ManualClock()
        var random = SplitMix64(seed: 99)
        let busy = DomainName("busy.") ?? .root
        let servers = (1...13).map { ServerAddress(ip: .v4(0x7F00_0100 | UInt32($0)), port: 53) }
        // 5,000 zones of 13 servers each (26 KiB each as estimated; 127 MiB unbounded).
        for index in 0..<5_000 {
            let zone = try #require(DomainName("z\(index).example."))
            _ = state.plan(zone: zone, servers: servers, now: clock.now, random: &random)
            if index % 4 == 0 { _ = state.plan(zone: busy, servers: servers, now: clock.now, random: &random) }
            clock.advance(.milliseconds(10))
            #expect(state.estimatedBytes <= policy.maxTableBytes, "\(state.estimatedBytes) bytes after \(index + 1) zones")
            #expect(state.zones[zone] != nil, "the zone just asked is kept")
        }
        // The estimate is the sum of the tables' costs, and the busy zone outlived thousands.
        let recount = state.zones.reduce(0) { $0 + SelectionState.cost($1.key, servers: $1.value.servers.count) }
        #expect(recount == state.estimatedBytes)
        #expect(state.zones[busy] != nil)
        #expect(state.zones.count < 12)
        #expect(state.zones[DomainName("z0.example.") ?? .root] == nil)
    }

    @Test("servers unused past the expiry leave their zone's table (and the byte count)")
    func idleServersLeaveTheirTables() {
        var policy = SelectionPolicy()
        policy.expiry = .minutes(10)
        var state = SelectionState(policy: policy)
        var clock = ManualClock()
        var random = SplitMix64(seed: 5)
        _ = state.plan(zone: Self.zone, servers: Self.servers, now: clock.now, random: &random)
        #expect(state.zones[Self.zone]?.servers.count == 4)
        let full = state.estimatedBytes
        // The zone's NS set changed: only the first server is named from now on.
        for _ in 0..<13 {
            clock.advance(.minutes(1))
            _ = state.plan(zone: Self.zone, servers: [Self.servers[0]], now: clock.now, random: &random)
            state.record(.answered(rtt: .milliseconds(5)), server: Self.servers[0], zone: Self.zone, now: clock.now)
        }
        #expect(state.zones[Self.zone]?.servers.keys.sorted { $0.description < $1.description } == [Self.servers[0]])
        #expect(state.estimatedBytes == full - 3 * SelectionPolicy.serverBytes)
    }
}
