// The DNS server side: bad input, access control, EDNS sizes and truncation, TCP framing and
// pipelining, and the TCP caps, all against the real resolverd binary.

import FakeDNS
import Foundation
import NIOCore
import NIOExtras
import NIOPosix
import Resolver
import Synchronization
import Testing

@Suite("Frontend", .timeLimit(.minutes(3)))
struct FrontendTests {
    @Test("2,000 malformed datagrams crash nothing, and a normal query is answered after them")
    func malformedFlood() async throws {
        let (fake, upstream) = try await Fixtures.upstream()
        let daemon = try await Daemon(config: forwardingConfig([(".", [upstream])]))
        let client = try RawUDPClient(server: daemon.address, receiveTimeoutMs: 1)
        var random = SystemRandomNumberGenerator()
        let valid = try DNSCodec.encode(try query("www.example.test"))
        for index in 0..<2_000 {
            var packet: [UInt8]
            if index.isMultiple(of: 2) {
                packet = (0..<Int.random(in: 0...300, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
            } else {
                packet = valid
                for _ in 0..<Int.random(in: 1...4, using: &random) {
                    packet[Int.random(in: 0..<packet.count, using: &random)] = UInt8.random(in: 0...255, using: &random)
                }
                if Bool.random(using: &random) { packet = Array(packet.prefix(Int.random(in: 0...packet.count, using: &random))) }
            }
            client.send(packet)
        }
        let checker = try RawUDPClient(server: daemon.address, receiveTimeoutMs: 3000)
        let reply = try #require(try checker.ask(query("www.example.test")))
        #expect(addresses(in: reply) == ["192.0.2.10"])
        #expect(daemon.process.isRunning)
        try await daemon.stop()
        await fake.stop()
    }

    @Test("malformed queries get FORMERR when the header is readable, responses are dropped")
    func malformedAnswers() async throws {
        let (fake, upstream) = try await Fixtures.upstream()
        let daemon = try await Daemon(config: forwardingConfig([(".", [upstream])]))
        let client = try RawUDPClient(server: daemon.address, receiveTimeoutMs: 500)
        // QDCOUNT 2 with one question: FORMERR, the ID echoed.
        var bad = try DNSCodec.encode(try query("www.example.test", edns: false))
        bad[0] = 0x12
        bad[1] = 0x34
        bad[5] = 2
        client.send(bad)
        let formErr = try DNSCodec.decode(try #require(client.receive()))
        #expect(formErr.rcode == .formErr)
        #expect(formErr.id == 0x1234)
        // A packet with QR set is never answered (no reflection loops).
        var response = try DNSCodec.encode(try query("www.example.test"))
        response[2] |= 0x80
        client.send(response)
        #expect(client.receive() == nil)
        // Too short for a header: dropped.
        client.send([1, 2, 3])
        #expect(client.receive() == nil)
        #expect(fake.queryCount == 0)
        try await daemon.stop()
        await fake.stop()
    }

    @Test("opcodes, classes and types a resolver does not serve")
    func unsupported() async throws {
        let (fake, upstream) = try await Fixtures.upstream()
        let daemon = try await Daemon(config: forwardingConfig([(".", [upstream])]))
        let client = try RawUDPClient(server: daemon.address)
        var status = try query("www.example.test")
        status.opcode = .status
        #expect(try client.ask(status)?.rcode == .notImp)
        var hesiod = try query("www.example.test")
        hesiod.questions[0].recordClass = .hs
        #expect(try client.ask(hesiod)?.rcode == .refused)
        #expect(try client.ask(try query("example.test", .axfr))?.rcode == .refused)
        var badVersion = try query("www.example.test")
        badVersion.edns?.version = 1
        #expect(try client.ask(badVersion)?.rcode == .badVers)
        let version = try runCommand(["dig", "@127.0.0.1", "-p", "\(daemon.port)", "version.bind", "CH", "TXT", "+short"])
        #expect(version.stdout.contains("resolverd"))
        #expect(fake.queryCount == 0)
        try await daemon.stop()
        await fake.stop()
    }

    @Test("clients outside server.allow get REFUSED")
    func accessControl() async throws {
        let (fake, upstream) = try await Fixtures.upstream()
        let daemon = try await Daemon(config: forwardingConfig([(".", [upstream])], server: #"allow = ["10.0.0.0/8"]"#))
        let client = try RawUDPClient(server: daemon.address)
        let reply = try #require(try client.ask(try query("www.example.test")))
        #expect(reply.rcode == .refused)
        #expect(fake.queryCount == 0)
        try await daemon.stop()
        await fake.stop()
    }

    @Test("an answer too big for the client's UDP size is truncated; dig's TCP retry gets it whole")
    func truncationToClient() async throws {
        let (fake, upstream) = try await Fixtures.upstream()
        let daemon = try await Daemon(config: forwardingConfig([(".", [upstream])]))
        let base = ["dig", "@127.0.0.1", "-p", "\(daemon.port)", "big.example.test", "TXT", "+tries=1"]
        let truncated = try runCommand(base + ["+bufsize=512", "+ignore"])
        #expect(truncated.stdout.contains(" tc "))
        #expect(truncated.stdout.contains("ANSWER: 0"))
        let noEDNS = try runCommand(base + ["+noedns", "+ignore"])
        #expect(noEDNS.stdout.contains(" tc "))
        let retried = try runCommand(base + ["+bufsize=512"])
        #expect(retried.stdout.contains("Truncated, retrying in TCP mode"))
        #expect(retried.stdout.contains("ANSWER: 30"))
        let client = try RawUDPClient(server: daemon.address)
        let small = try #require(try client.ask(try query("www.example.test", edns: false)))
        #expect(!small.flags.contains(.tc))
        try await daemon.stop()
        await fake.stop()
    }

    @Test("TCP: several queries on one connection, answered as they complete (out of order)")
    func tcpPipelining() async throws {
        let (slow, slowAddress) = try await Fixtures.upstream(Fixtures.corpZone, behavior: Fixtures.behavior { $0.delay = .milliseconds(1500) })
        let (fast, fastAddress) = try await Fixtures.upstream()
        let daemon = try await Daemon(
            config: forwardingConfig([(".", [fastAddress]), ("corp.test", [slowAddress])], timeoutMs: 3000))
        let connection = try await TCPTestClient.connect(to: daemon.address)
        var first = try query("db.corp.test")
        first.id = 1
        var second = try query("www.example.test")
        second.id = 2
        try await connection.send(first)
        try await connection.send(second)
        let replies = try await connection.receive(count: 2, timeout: .seconds(5))
        #expect(replies.map(\.id) == [2, 1])
        #expect(addresses(in: replies.first) == ["192.0.2.10"])
        #expect(addresses(in: replies.last) == ["198.51.100.7"])
        try await connection.close()
        try await daemon.stop()
        await slow.stop()
        await fast.stop()
    }

    @Test("TCP: idle connections are closed, and the connection cap holds")
    func tcpLimits() async throws {
        let (fake, upstream) = try await Fixtures.upstream()
        let daemon = try await Daemon(
            config: forwardingConfig(
                [(".", [upstream])], server: "tcp_idle_timeout_ms = 300\nmax_tcp_connections = 5"))
        let idle = try await TCPTestClient.connect(to: daemon.address)
        try await waitUntil("the idle connection to be closed", timeout: .seconds(5)) { !idle.channel.isActive }

        var open: [TCPTestClient] = []
        for _ in 0..<20 {
            open.append(try await TCPTestClient.connect(to: daemon.address))
        }
        // Connections over the cap are closed at once; the rest stay until idle.
        try await waitUntil("connections over the cap to be closed", timeout: .seconds(5)) {
            open.filter { $0.channel.isActive }.count <= 5
        }
        for connection in open { try? await connection.close() }
        // The daemon still takes new connections once the others are gone.
        try await waitUntil("a new TCP query to succeed", timeout: .seconds(5)) {
            let connection = try await TCPTestClient.connect(to: daemon.address)
            defer { Task { try? await connection.close() } }
            try await connection.send(try query("www.example.test"))
            return (try? await connection.receive(count: 1, timeout: .seconds(1)))?.count == 1
        }
        try await daemon.stop()
        await fake.stop()
    }

    @Test("RRL: a flooding network gets its rate, every second answer over it truncated; another network is answered")
    func responseRateLimiting() async throws {
        let (fake, upstream) = try await Fixtures.upstream()
        var config = forwardingConfig([(".", [upstream])])
        config += "\n[rate_limit]\nresponses_per_second = 20\nslip = 2\n"
        let daemon = try await Daemon(config: config)
        let flood = try RawUDPClient(server: daemon.address, receiveTimeoutMs: 300, source: "127.0.0.1")
        #expect(try flood.ask(query("www.example.test"))?.rcode == .noError)  // cached now
        for _ in 0..<200 { flood.send(try DNSCodec.encode(try query("www.example.test"))) }
        var full = 0
        var truncated = 0
        for _ in 0..<200 {
            guard let bytes = flood.receive() else { break }
            let reply = try DNSCodec.decode(bytes)
            if reply.flags.contains(.tc) { truncated += 1 } else if !reply.answers.isEmpty { full += 1 }
        }
        // About a second's worth (20, plus what refilled while sending) in full; about half of
        // the rest truncated; the others dropped.
        #expect(full >= 15 && full <= 60, "full \(full)")
        #expect(truncated >= 50 && truncated <= 100, "truncated \(truncated)")
        #expect(full + truncated < 160)
        // Another /24 is not limited by the flood.
        let other = try RawUDPClient(server: daemon.address, source: "127.0.1.9")
        let answer = try #require(try other.ask(query("www.example.test")))
        #expect(!answer.flags.contains(.tc) && addresses(in: answer) == ["192.0.2.10"])
        // dig over TCP (as a real client does after TC) is not limited either.
        let tcp = try runCommand(["dig", "@127.0.0.1", "-p", "\(daemon.port)", "www.example.test", "+tcp", "+short"])
        #expect(tcp.stdout == "192.0.2.10\n")
        let metrics = String(decoding: try await daemon.api.send("GET", "/metrics").body, as: UTF8.self)
        #expect(metrics.contains("resolverd_rate_limited_total{action=\"slip\"} \(truncated)"))
        try await daemon.stop()
        await fake.stop()
    }

    @Test("one client's queries waiting upstream are capped (SERVFAIL at once past it); another client still goes upstream")
    func pendingPerClientCap() async throws {
        let (fake, upstream) = try await Fixtures.upstream(behavior: Fixtures.behavior { $0.delay = .milliseconds(1500) })
        let daemon = try await Daemon(
            config: forwardingConfig([(".", [upstream])], timeoutMs: 3000, server: "max_pending_per_client = 5"))
        let flood = try RawUDPClient(server: daemon.address, receiveTimeoutMs: 5000, source: "127.0.0.1")
        for index in 0..<20 { flood.send(try DNSCodec.encode(try query("n\(index).example.test"))) }
        // The 15 over the cap come back at once as SERVFAIL, before any of the admitted five's
        // answers (the upstream takes 1.5 s).
        var early: [DNSMessage] = []
        for _ in 0..<15 {
            if let reply = try await offPool({ flood.receive() }) { early.append(try DNSCodec.decode(reply)) }
        }
        #expect(early.count == 15)
        #expect(early.allSatisfy { $0.rcode == .servFail })
        // Another address still gets its query upstream meanwhile.
        let other = try RawUDPClient(server: daemon.address, receiveTimeoutMs: 5000, source: "127.0.0.2")
        let question = try query("www.example.test")
        let answer = try #require(try await offPool { try other.ask(question) })
        #expect(answer.rcode == .noError)
        // The five admitted are answered too, and only six questions reached the upstream.
        var late: [DNSMessage] = []
        for _ in 0..<5 {
            if let reply = try await offPool({ flood.receive() }) { late.append(try DNSCodec.decode(reply)) }
        }
        #expect(late.count == 5 && late.allSatisfy { $0.rcode == .nxDomain })  // n0…n4 do not exist
        #expect(fake.queryCount == 6)
        try await daemon.stop()
        await fake.stop()
    }

    @Test("overload: past server.max_pending, new misses get SERVFAIL at once while cache hits keep flowing")
    func overload() async throws {
        // The upstream takes 4 s: the four misses must still hold their slots when the fifth asks,
        // however slowly a loaded machine runs the steps between.
        let (fake, upstream) = try await Fixtures.upstream(behavior: Fixtures.behavior { $0.delay = .milliseconds(4000) })
        let daemon = try await Daemon(
            config: forwardingConfig([(".", [upstream])], timeoutMs: 6000, server: "max_pending = 4"))
        // A cached name first (waits out the slow upstream once).
        let client = try RawUDPClient(server: daemon.address, receiveTimeoutMs: 10_000, source: "127.0.0.1")
        let warm = try query("www.example.test")
        #expect(try await offPool { try client.ask(warm) }?.rcode == .noError)
        // Four clients fill the cap; a fifth address's miss fails at once, its cache hit does not.
        var waiting: [RawUDPClient] = []
        for index in 1...4 {
            let other = try RawUDPClient(server: daemon.address, receiveTimeoutMs: 10_000, source: "127.0.2.\(index)")
            other.send(try DNSCodec.encode(try query("slow\(index).example.test")))
            waiting.append(other)
        }
        try await waitUntil("four misses upstream", timeout: .seconds(5)) { fake.queryCount >= 5 }
        let fifth = try RawUDPClient(server: daemon.address, receiveTimeoutMs: 1000, source: "127.0.2.9")
        #expect(try fifth.ask(query("new.example.test"))?.rcode == .servFail)
        #expect(addresses(in: try fifth.ask(query("www.example.test"))) == ["192.0.2.10"])
        #expect(fake.queryCount == 5)
        for other in waiting { #expect(try await offPool { other.receive() } != nil) }
        try await daemon.stop()
        await fake.stop()
    }

    @Test("TCP: one client opening hundreds of connections gets its per-client share; another is still answered")
    func tcpPerClientCap() async throws {
        let (fake, upstream) = try await Fixtures.upstream()
        let daemon = try await Daemon(
            config: forwardingConfig([(".", [upstream])], server: "max_tcp_connections_per_client = 10"))
        var flood: [TCPTestClient] = []
        for _ in 0..<300 {
            flood.append(try await TCPTestClient.connect(to: daemon.address, from: "127.0.0.1"))
        }
        try await waitUntil("the flood's connections over its share to be closed", timeout: .seconds(10)) {
            flood.filter { $0.channel.isActive }.count <= 10
        }
        #expect(flood.filter { $0.channel.isActive }.count == 10)
        // Another client address on the same host still gets a connection and an answer.
        let other = try await TCPTestClient.connect(to: daemon.address, from: "127.0.0.2")
        try await other.send(try query("www.example.test"))
        #expect(try await other.receive(count: 1, timeout: .seconds(5)).first?.rcode == .noError)
        // The flooding client gets slots back as its connections close.
        for connection in flood { try? await connection.close() }
        try await waitUntil("the flooding client to be answered again", timeout: .seconds(5)) {
            let connection = try await TCPTestClient.connect(to: daemon.address, from: "127.0.0.1")
            defer { Task { try? await connection.close() } }
            try await connection.send(try query("www.example.test"))
            return (try? await connection.receive(count: 1, timeout: .seconds(1)))?.count == 1
        }
        try await other.close()
        try await daemon.stop()
        await fake.stop()
    }
}

/// A DNS-over-TCP client on NIO: 2-byte length framing, replies collected as they arrive.
final class TCPTestClient: Sendable {
    let channel: any Channel
    private let collector: ReplyCollector

    private init(channel: any Channel, collector: ReplyCollector) {
        self.channel = channel
        self.collector = collector
    }

    /// Connects to `server`, from `source` (an address on this host) when given.
    static func connect(to server: ServerAddress, from source: String? = nil) async throws -> TCPTestClient {
        let collector = ReplyCollector()
        var bootstrap = ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        if let source { bootstrap = bootstrap.bind(to: try SocketAddress(ipAddress: source, port: 0)) }
        let channel = try await bootstrap
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandlers(
                        ByteToMessageHandler(LengthFieldBasedFrameDecoder(lengthFieldBitLength: .twoBytes)),
                        FrameCollectingHandler(collector: collector))
                }
            }
            .connect(to: server.socketAddress()).get()
        return TCPTestClient(channel: channel, collector: collector)
    }

    func send(_ message: DNSMessage) async throws {
        let wire = try DNSCodec.encode(message)
        var buffer = channel.allocator.buffer(capacity: wire.count + 2)
        buffer.writeInteger(UInt16(wire.count))
        buffer.writeBytes(wire)
        try await channel.writeAndFlush(buffer)
    }

    /// Waits for `count` replies in total, in arrival order.
    func receive(count: Int, timeout: Duration) async throws -> [DNSMessage] {
        try await waitUntil("\(count) TCP replies", timeout: timeout) { collector.frames.count >= count }
        return try collector.frames.prefix(count).map { try DNSCodec.decode($0) }
    }

    func close() async throws {
        try await channel.close()
    }
}

final class ReplyCollector: Sendable {
    private let storage = Mutex<[[UInt8]]>([])
    var frames: [[UInt8]] { storage.withLock { $0 } }
    func add(_ frame: [UInt8]) { storage.withLock { $0.append(frame) } }
}

final class FrameCollectingHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    let collector: ReplyCollector

    init(collector: ReplyCollector) { self.collector = collector }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        collector.add(Array(unwrapInboundIn(data).readableBytesView))
    }
}
