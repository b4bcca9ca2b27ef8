// Workers/: the registry over the control channel in short lines, at 100,000 members, and the
// crash-loop bookkeeping that decides whether systemd's watchdog is fed.

import Foundation
import Testing

@testable import Resolver

@Suite("ControlChannelStreaming")
struct ControlChannelStreamingTests {
    @Test("a snapshot of 100,000 members crosses the channel in short lines; the whole would pass maxLine")
    func hundredThousand() async throws {
        let (supervisor, childEnd) = try #require(ControlChannel.pair())
        let worker = ControlChannel(descriptor: childEnd)
        defer {
            supervisor.close()
            worker.close()
        }
        var template = Member(
            group: "web", id: "a", address: .v4(0x7F00_0001), port: 8080, service: "http", tags: ["blue", "v2"],
            ttlSeconds: 30, check: HealthCheck(kind: .http, path: "/healthz"), registeredAt: 1_800_000_000_000)
        template.lastCheck = CheckResult(at: 1_800_000_000_000, healthy: true, detail: "HTTP 200")
        let members = (0..<100_000).map { index -> MemberRecord in
            var member = template
            member.group = "g\(index % 100)"
            member.id = "member-\(index)"
            return MemberRecord(member)
        }
        let one = try JSONEncoder().encode(members[0]).count
        #expect(one * members.count > ControlChannel.maxLine, "as one line it would be refused")
        // Both ends block: each on a thread of its own, off the test pool.
        let received = Collected<ReceivedSnapshot?>(nil)
        let sent = Collected<Bool?>(nil)
        let clock = ContinuousClock()
        let start = clock.now
        Thread { received.mutate { $0 = worker.receiveSnapshot(timeoutMs: 60_000) } }.start()
        Thread { sent.mutate { $0 = supervisor.sendSnapshot(members, status: .degraded(reason: "test")) } }.start()
        let deadline = clock.now + .seconds(60)
        while received.value == nil || sent.value == nil, clock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
        #expect(sent.value == true)
        let snapshot = try #require(received.value)
        #expect(snapshot.members.count == 100_000)
        #expect(snapshot.members.last == members.last)
        #expect(snapshot.status == .degraded(reason: "test"))
        print("100,000 members through the control channel in \(clock.now - start)")
    }

    @Test("a snapshot cut short or holding more than announced is refused")
    func badSnapshots() throws {
        let (supervisor, childEnd) = try #require(ControlChannel.pair())
        let worker = ControlChannel(descriptor: childEnd)
        defer {
            supervisor.close()
            worker.close()
        }
        let record = RegistryHardeningTests.good()
        #expect(supervisor.send(ControlMessage(snapshotBegin: SnapshotBegin(count: 1))))
        #expect(supervisor.send(ControlMessage(members: [record, record])))
        #expect(worker.receiveSnapshot(timeoutMs: 1_000) == nil)
        #expect(supervisor.send(ControlMessage(snapshotBegin: SnapshotBegin(count: 2))))
        #expect(supervisor.send(ControlMessage(members: [record])))
        #expect(supervisor.send(ControlMessage(snapshotEnd: true)))
        #expect(worker.receiveSnapshot(timeoutMs: 1_000) == nil)
    }
}

@Suite("CrashLoop")
struct CrashLoopTests {
    @Test("three quick deaths in a row make a loop; a worker ready for 10 s or a slow death ends it")
    func loop() {
        let zero = ContinuousClock().now
        func at(_ seconds: Double) -> ContinuousClock.Instant { zero + .milliseconds(Int(seconds * 1000)) }
        var slot = CrashLoop()
        slot.died(started: at(0), at: at(1))
        slot.died(started: at(1), at: at(2))
        #expect(slot.looping(now: at(2), readySince: nil) == nil)
        slot.died(started: at(2), at: at(3))
        #expect(slot.looping(now: at(3), readySince: nil) == at(3))
        slot.died(started: at(3), at: at(4))
        #expect(slot.looping(now: at(100), readySince: nil) == at(3), "the loop's start stays")
        #expect(slot.looping(now: at(100), readySince: at(50)) == nil, "ready for 50 s: not looping")
        #expect(slot.looping(now: at(55), readySince: at(50)) == at(3), "ready for 5 s: still suspect")
        slot.died(started: at(100), at: at(200))
        #expect(slot.looping(now: at(200), readySince: nil) == nil)
    }

    @Test("the watchdog sees a loop only when every worker loops, from the latest loop's start")
    func all() {
        let zero = ContinuousClock().now
        #expect(WorkerPool.allLoopingSince([]) == nil)
        #expect(WorkerPool.allLoopingSince([zero, nil]) == nil)
        #expect(WorkerPool.allLoopingSince([zero, zero + .seconds(5)]) == zero + .seconds(5))
    }
}
