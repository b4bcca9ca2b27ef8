// Upstream/UpstreamTransaction's moves after the first send, in-process against fake servers on
// loopback: a question waiting on a server that is marked down meanwhile (another question's
// failure) is sent to the next server at once, and the newest server failing moves the question
// on at once although an earlier one is still outstanding. Selection's state is set up by hand
// (recorded answers) so that who is asked first, and how long each is waited on, is known.

import FakeDNS
import Foundation
import Logging
import NIOCore
import NIOPosix
import Resolver
import Synchronization
import Testing

@Suite("HedgeTransactions", .serialized, .timeLimit(.minutes(2)))
struct HedgeTransactionTests {
    /// Collects the transaction's hedge reports.
    final class Reports: HedgeObserver {
        let sent = Mutex<[HedgeReason]>([])
        let waits = Mutex<[TimeAmount]>([])
        func hedgeSent(_ reason: HedgeReason) { sent.withLock { $0.append(reason) } }
        func hedgeWon(after wait: TimeAmount) { waits.withLock { $0.append(wait) } }
    }

    /// A selector whose table says: `order[0]` answers in 5 ms, the next in 20 ms, and so on
    /// (three answers each, past warm-up), with the hedge floor at `floor` so that each server is
    /// waited on at least that long, and no random probes.
    static func selector(order: [ServerAddress], floor: TimeAmount) -> AdaptiveSelector {
        var policy = SelectionPolicy()
        policy.hedgeFloor = floor
        policy.timeout = .seconds(5)
        policy.probeProbability = 0
        policy.probeInterval = .hours(1)
        let selector = AdaptiveSelector(policy: policy)
        let now = NIODeadline.now()
        _ = selector.plan(zone: .root, servers: order, now: now)
        for (index, server) in order.enumerated() {
            for _ in 0..<4 {
                selector.record(.answered(rtt: .milliseconds(5 + 15 * Int64(index))), server: server, zone: .root, now: now)
            }
        }
        return selector
    }

    static func question() throws -> UpstreamQuery {
        UpstreamQuery(question: Question(name: try #require(DomainName("q\(Int.random(in: 0..<1_000_000)).example.test.")), type: .a))
    }

    @Test("a server marked down while a question waits on it: the next server is asked at once, not at its RTO")
    func downMovesOn() async throws {
        let (silent, silentAddress) = try await Fixtures.upstream(behavior: Fixtures.behavior { $0.silent = true })
        let (live, liveAddress) = try await Fixtures.upstream()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let client = UpstreamClient(group: group, timeout: .seconds(5), logger: Logger(label: "test"))
        let selector = Self.selector(order: [silentAddress, liveAddress], floor: .seconds(2))
        let reports = Reports()
        let transactions = UpstreamTransactions(
            client: client, selector: selector, logger: Logger(label: "test"), observer: reports)

        let query = try Self.question()
        let clock = ContinuousClock()
        let start = clock.now
        async let outcome = transactions.resolve(query, zone: .root, servers: [silentAddress, liveAddress])
        // Another question's failure marks the silent server down 200 ms in (it would otherwise be
        // waited on for its 2 s retransmit time).
        try await Task.sleep(for: .milliseconds(200))
        selector.record(.unreachable, server: silentAddress, zone: .root, now: .now())
        guard case .answer(let answer) = await outcome else {
            Issue.record("no answer")
            return
        }
        let elapsed = clock.now - start
        #expect(answer.server == liveAddress)
        #expect(elapsed < .milliseconds(1_000), "answered after \(elapsed); the RTO was 2 s")
        #expect(reports.sent.withLock { $0 } == [.down])
        #expect(reports.waits.withLock { $0.count } == 1)
        #expect(selector.watchCount == 0, "the question's watches are gone with it")
        #expect(silent.queryCount == 1 && live.queryCount == 1)

        await client.shutdown()
        try await group.shutdownGracefully()
        await silent.stop()
        await live.stop()
    }

    @Test("the newest server failing moves the question on at once while the late first one is still out")
    func failureMovesOn() async throws {
        let (silent, silentAddress) = try await Fixtures.upstream(behavior: Fixtures.behavior { $0.silent = true })
        let (refusing, refusingAddress) = try await Fixtures.upstream(behavior: Fixtures.behavior { $0.rcode = .refused })
        let (live, liveAddress) = try await Fixtures.upstream()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let client = UpstreamClient(group: group, timeout: .seconds(5), logger: Logger(label: "test"))
        // Each server is waited on for 300 ms: silent first, the refusing one next, the live one last.
        let selector = Self.selector(order: [silentAddress, refusingAddress, liveAddress], floor: .milliseconds(300))
        let reports = Reports()
        let transactions = UpstreamTransactions(
            client: client, selector: selector, logger: Logger(label: "test"), observer: reports)

        let clock = ContinuousClock()
        let start = clock.now
        let outcome = await transactions.resolve(
            try Self.question(), zone: .root, servers: [silentAddress, refusingAddress, liveAddress])
        let elapsed = clock.now - start
        guard case .answer(let answer) = outcome else {
            Issue.record("no answer")
            return
        }
        #expect(answer.server == liveAddress)
        // 300 ms on the silent one, then REFUSED at once and the live one asked then: well under
        // the 600 ms that waiting out the refusing server's own timer would take.
        #expect(elapsed >= .milliseconds(300) && elapsed < .milliseconds(550), "answered after \(elapsed)")
        #expect(reports.sent.withLock { $0 } == [.late, .failed])
        let views = selector.report().first?.servers ?? []
        #expect(views.first { $0.server == silentAddress }?.stats.hedging.late == 1)
        #expect(views.first { $0.server == liveAddress }?.stats.hedging.won == 1)
        #expect(refusing.queryCount == 1)

        await client.shutdown()
        try await group.shutdownGracefully()
        await silent.stop()
        await refusing.stop()
        await live.stop()
    }
}
