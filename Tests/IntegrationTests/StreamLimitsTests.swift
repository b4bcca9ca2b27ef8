// Stream transports under attack: a client that pipelines thousands of queries and never reads
// its answers, and one that trickles a query a byte at a time. Both against the real binary.

import FakeDNS
import Foundation
import NIOCore
import NIOPosix
import Resolver
import Synchronization
import Testing

@Suite("Stream limits", .timeLimit(.minutes(3)))
struct StreamLimitsTests {
    @Test("TCP: 40,000 pipelined queries for a 2.4 KB answer, never read, cost a bounded amount of memory; read later, all are answered")
    func pipelinedWithoutReading() async throws {
        let (fake, upstream) = try await Fixtures.upstream()
        let daemon = try await Daemon(config: forwardingConfig([(".", [upstream])]))
        // The answer (30 TXT records, about 2.4 KB) is cached first.
        let primer = try await TCPTestClient.connect(to: daemon.address)
        try await primer.send(try query("big.example.test", .txt))
        let primed = try await primer.receive(count: 1, timeout: .seconds(5))
        #expect(primed.first?.answers.count == 30)
        try await primer.close()
        let before = try residentBytes(of: daemon)

        let count = 40_000
        let reader = StalledReader()
        let client = try await reader.connect(to: daemon.address)
        var burst = client.allocator.buffer(capacity: count * 40)
        for index in 0..<count {
            var message = try query("big.example.test", .txt)
            message.id = UInt16(truncatingIfNeeded: index)
            let wire = try DNSCodec.encode(message)
            burst.writeInteger(UInt16(wire.count))
            burst.writeBytes(wire)
        }
        // Not awaited: the daemon stops reading, so the last of the burst stays in this process.
        client.writeAndFlush(burst, promise: nil)
        // Without back-pressure the daemon answers all 40,000 into its own memory (about 100 MB);
        // with it, it stops reading once the connection's replies wait unread. Wait until the
        // resident size stops moving for a second (or 15 s pass).
        var peak = before
        var last = before
        var stableSince = ContinuousClock.now
        let deadline = ContinuousClock.now + .seconds(15)
        while ContinuousClock.now < deadline, ContinuousClock.now - stableSince < .seconds(1) {
            try await Task.sleep(for: .milliseconds(100))
            let now = try residentBytes(of: daemon)
            peak = max(peak, now)
            if abs(now - last) > 256 << 10 { stableSince = .now }
            last = now
        }
        let growth = peak - before
        print("resident growth with 40,000 unread answers queued: \(growth >> 10) KiB (before \(before >> 20) MiB)")
        #expect(growth < 32 << 20, "grew by \(growth >> 20) MiB")
        #expect(client.isActive)

        // The client reads now: every query is answered, none lost to the pause.
        try await client.setOption(.autoRead, value: true).get()
        client.read()
        do {
            try await waitUntil("all \(count) replies", timeout: .seconds(60)) { reader.replies >= count }
        } catch {
            Issue.record("\(reader.replies) replies, connection active: \(client.isActive)\n\(daemon.log.suffix(3000))")
        }
        #expect(reader.replies == count)
        try await client.close()
        try await daemon.stop()
        await fake.stop()
    }

    @Test("TCP: a client that never reads is closed after the idle timeout, and others are answered meanwhile")
    func stalledClientClosed() async throws {
        let (fake, upstream) = try await Fixtures.upstream()
        let daemon = try await Daemon(
            config: forwardingConfig([(".", [upstream])], server: "tcp_idle_timeout_ms = 1000"))
        let reader = StalledReader()
        let client = try await reader.connect(to: daemon.address)
        var burst = client.allocator.buffer(capacity: 400_000)
        for _ in 0..<10_000 {
            let wire = try DNSCodec.encode(try query("big.example.test", .txt))
            burst.writeInteger(UInt16(wire.count))
            burst.writeBytes(wire)
        }
        client.writeAndFlush(burst, promise: nil)
        // Another client over TCP meanwhile (dig connects and asks at once: a test task starved
        // by a loaded machine could sit idle past the 1 s timeout between the two).
        let other = try runCommand(["dig", "@127.0.0.1", "-p", "\(daemon.port)", "www.example.test", "+tcp", "+short"])
        #expect(other.stdout == "192.0.2.10\n")
        let started = ContinuousClock.now
        try await waitUntil("the stalled connection to be closed", timeout: .seconds(10)) { !client.isActive }
        print("stalled connection closed after \(ContinuousClock.now - started)")
        try await daemon.stop()
        await fake.stop()
    }

    @Test("TCP: a query trickled a byte at a time is cut off after tcp_query_timeout_ms, though every byte resets the idle timer")
    func trickledQuery() async throws {
        let (fake, upstream) = try await Fixtures.upstream()
        let daemon = try await Daemon(
            config: forwardingConfig(
                [(".", [upstream])], server: "tcp_idle_timeout_ms = 5000\ntcp_query_timeout_ms = 1000"))
        let reader = StalledReader()
        let client = try await reader.connect(to: daemon.address)
        let wire = try DNSCodec.encode(try query("www.example.test"))
        let framed = [UInt8(wire.count >> 8), UInt8(wire.count & 0xFF)] + wire
        let started = ContinuousClock.now
        var sent = 0
        // One byte every 200 ms: the whole query would take about 6 s.
        while client.isActive, sent < framed.count, ContinuousClock.now - started < .seconds(10) {
            var byte = client.allocator.buffer(capacity: 1)
            byte.writeInteger(framed[sent])
            try? await client.writeAndFlush(byte)
            sent += 1
            try await Task.sleep(for: .milliseconds(200))
        }
        let elapsed = ContinuousClock.now - started
        print("trickling client cut off after \(elapsed), \(sent) of \(framed.count) bytes sent")
        #expect(!client.isActive)
        #expect(sent < framed.count)
        #expect(elapsed < .seconds(5))
        // A whole query sent at once on a new connection is answered.
        let normal = try await TCPTestClient.connect(to: daemon.address)
        try await normal.send(try query("www.example.test"))
        #expect(try await normal.receive(count: 1, timeout: .seconds(5)).first?.rcode == .noError)
        try await normal.close()
        try await daemon.stop()
        await fake.stop()
    }
}

/// The resident memory of the daemon's process, from /proc.
private func residentBytes(of daemon: Daemon) throws -> Int {
    let status = try String(contentsOfFile: "/proc/\(daemon.process.processIdentifier)/status", encoding: .utf8)
    guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
        let kilobytes = Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "")
    else { throw WaitTimeout(description: "VmRSS in /proc/\(daemon.process.processIdentifier)/status") }
    return kilobytes << 10
}

/// A TCP client that reads nothing until told to (autoRead off), then counts the replies.
final class StalledReader: Sendable {
    private let count = Atomic<Int>(0)
    var replies: Int { count.load(ordering: .relaxed) }

    func connect(to server: ServerAddress) async throws -> any Channel {
        try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(.autoRead, value: false)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ReplyCounter(reader: self))
                }
            }
            .connect(to: server.socketAddress()).get()
    }

    fileprivate func add(_ replies: Int) { count.wrappingAdd(replies, ordering: .relaxed) }
}

/// Counts length-framed messages in the byte stream without keeping them.
private final class ReplyCounter: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    let reader: StalledReader
    private var pending = 0  // bytes of the current message still to come
    private var lengthBytes: [UInt8] = []

    init(reader: StalledReader) { self.reader = reader }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        var complete = 0
        while buffer.readableBytes > 0 {
            if pending > 0 {
                let take = min(pending, buffer.readableBytes)
                buffer.moveReaderIndex(forwardBy: take)
                pending -= take
                if pending == 0 { complete += 1 }
            } else if let byte = buffer.readInteger(as: UInt8.self) {
                lengthBytes.append(byte)
                if lengthBytes.count == 2 {
                    pending = Int(lengthBytes[0]) << 8 | Int(lengthBytes[1])
                    lengthBytes = []
                    if pending == 0 { complete += 1 }
                }
            }
        }
        reader.add(complete)
    }
}

@Suite("Upstream AD bit", .timeLimit(.minutes(1)))
struct UpstreamADTests {
    @Test("forward mode: an upstream's AD bit is not passed on (resolverd validated nothing), from the network or the cache")
    func adCleared() async throws {
        let (fake, upstream) = try await Fixtures.upstream(behavior: Fixtures.behavior { $0.authenticData = true })
        let daemon = try await Daemon(config: forwardingConfig([(".", [upstream])]))
        for attempt in ["upstream", "cache"] {
            let dig = try runCommand(["dig", "@127.0.0.1", "-p", "\(daemon.port)", "www.example.test", "+dnssec", "+adflag"])
            #expect(dig.stdout.contains("ANSWER: 1"), "\(attempt): \(dig.stdout)")
            let flags = dig.stdout.split(separator: "\n").first { $0.contains(";; flags:") } ?? ""
            #expect(!flags.contains(" ad"), "\(attempt): \(flags)")
        }
        #expect(fake.queryCount == 1)
        try await daemon.stop()
        await fake.stop()
    }
}
