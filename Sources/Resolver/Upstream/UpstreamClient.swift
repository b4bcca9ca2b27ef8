// Upstream/: one query to one server. Each UDP query gets its own socket on a random source port
// and a random ID, both from the system CSPRNG, and accepts only an answer from the server's
// address and port with that ID and the same question (RFC 5452 §9). A truncated answer is
// fetched again over TCP (RFC 7766 §5); a FORMERR without OPT is asked again without EDNS.

import Logging
import NIOCore
import NIOExtras
import NIOPosix
import Synchronization

/// A query as sent upstream: the question and the client's DNSSEC wishes.
public struct UpstreamQuery: Sendable, Hashable {
    public var question: Question
    public var dnssecOK: Bool
    public var checkingDisabled: Bool
    public var recursionDesired: Bool

    public init(question: Question, dnssecOK: Bool = false, checkingDisabled: Bool = false, recursionDesired: Bool = true) {
        self.question = question
        self.dnssecOK = dnssecOK
        self.checkingDisabled = checkingDisabled
        self.recursionDesired = recursionDesired
    }
}

/// A matched answer from one server.
public struct UpstreamAnswer: Sendable {
    public var message: DNSMessage
    /// The answer exactly as received.
    public var wire: [UInt8]
    public var server: ServerAddress
    public var rtt: TimeAmount
    public var overTCP: Bool
}

/// Sends single queries to single servers over UDP (and TCP after truncation).
public struct UpstreamClient: Sendable {
    public enum Transport: Sendable { case udp, tcp }

    let group: any EventLoopGroup
    let timeout: TimeAmount
    let logger: Logger

    public init(group: any EventLoopGroup, timeout: TimeAmount, logger: Logger) {
        self.group = group
        self.timeout = timeout
        self.logger = logger
    }

    /// Asks `server` once; over UDP first, then TCP if the answer is truncated. `transport: .tcp`
    /// skips UDP (dig-lite's `+tcp`).
    public func exchange(_ query: UpstreamQuery, server: ServerAddress, transport: Transport = .udp, edns: Bool = true)
        async throws(UpstreamError) -> UpstreamAnswer
    {
        try await result(of: exchangeFuture(query, server: server, transport: transport, edns: edns))
    }

    /// The same as a future, completed on an event loop: callers that only need a callback skip
    /// a task and a hop to the concurrency pool (the miss path does, once per upstream query).
    public func exchangeFuture(
        _ query: UpstreamQuery, server: ServerAddress, transport: Transport = .udp, edns: Bool = true
    ) -> EventLoopFuture<UpstreamAnswer> {
        guard transport == .udp else { return send(query, to: server, overTCP: true, edns: edns) }
        let overUDP = send(query, to: server, overTCP: false, edns: edns)
        return overUDP.flatMap { answer in
            // RFC 6891 §7: a server that does not know EDNS answers FORMERR without an OPT record;
            // ask it again without one.
            if edns, answer.message.rcode == .formErr, answer.message.edns == nil {
                return exchangeFuture(query, server: server, transport: transport, edns: false)
            }
            guard answer.message.flags.contains(.tc) else { return overUDP.eventLoop.makeSucceededFuture(answer) }
            logger.debug("truncated answer, retrying over TCP", metadata: ["server": "\(server)"])
            return send(query, to: server, overTCP: true, edns: edns)
        }
    }

    private func send(_ query: UpstreamQuery, to server: ServerAddress, overTCP: Bool, edns: Bool)
        -> EventLoopFuture<UpstreamAnswer>
    {
        let eventLoop = group.next()
        var random = SystemRandomNumberGenerator()
        let id = UInt16.random(in: 0...UInt16.max, using: &random)
        let message = DNSMessage.query(
            query.question, id: id, recursionDesired: query.recursionDesired, dnssecOK: query.dnssecOK,
            checkingDisabled: query.checkingDisabled, edns: edns)
        let wire: [UInt8]
        do {
            wire = try DNSCodec.encode(message)
        } catch {
            return eventLoop.makeFailedFuture(UpstreamError.badQuery(error.message))
        }
        let remote: SocketAddress
        do {
            remote = try server.socketAddress()
        } catch {
            return eventLoop.makeFailedFuture(UpstreamError.unreachable("\(error)"))
        }
        let expected = ExpectedAnswer(id: id, question: query.question, server: server)
        let promise = eventLoop.makePromise(of: UpstreamAnswer.self)
        let timeoutAmount = self.timeout
        let clock = SendClock()
        // Everything from here to the answer runs on the channel's event loop as one chain of
        // futures.
        let opened: EventLoopFuture<any Channel> =
            overTCP
            ? connectTCP(to: remote, on: eventLoop, expected: expected, clock: clock, promise: promise)
            : openUDP(to: remote, on: eventLoop, expected: expected, clock: clock, promise: promise)
        opened.whenComplete { result in
            switch result {
            case .failure(let error):
                promise.fail(UpstreamError.unreachable("\(error)"))
            case .success(let channel):
                let timeout = eventLoop.scheduleTask(in: timeoutAmount) { promise.fail(UpstreamError.timeout) }
                promise.futureResult.whenComplete { _ in
                    timeout.cancel()
                    // Closed on the next tick: the answer handler is still inside its read.
                    eventLoop.execute { channel.close(promise: nil) }
                }
                var buffer = channel.allocator.buffer(capacity: wire.count)
                buffer.writeBytes(wire)
                // The round trip is timed from here: socket set-up is ours, not the server's.
                clock.markSent()
                let write: EventLoopFuture<Void> =
                    overTCP
                    ? channel.writeAndFlush(buffer)
                    : channel.writeAndFlush(AddressedEnvelope(remoteAddress: remote, data: buffer))
                write.whenFailure { promise.fail(UpstreamError.unreachable("\($0)")) }
            }
        }
        return promise.futureResult
    }

    private func result(of future: EventLoopFuture<UpstreamAnswer>) async throws(UpstreamError) -> UpstreamAnswer {
        do {
            return try await future.get()
        } catch let error as UpstreamError {
            throw error
        } catch {
            throw .unreachable("\(error)")
        }
    }

    /// A UDP socket on a random source port, connected to `remote`, with the answer handler.
    private func openUDP(
        to remote: SocketAddress, on eventLoop: any EventLoop, expected: ExpectedAnswer, clock: SendClock,
        promise: EventLoopPromise<UpstreamAnswer>
    ) -> EventLoopFuture<any Channel> {
        let wildcard = remote.protocol == .inet6 ? "::" : "0.0.0.0"
        // RFC 5452 §9.2: a random source port from the whole unprivileged range; on the rare
        // collision with a port in use, draw again, and only then let the kernel choose.
        @Sendable func bind(attempt: Int) -> EventLoopFuture<any Channel> {
            var random = SystemRandomNumberGenerator()
            let port = attempt < 8 ? Int.random(in: 1024...65535, using: &random) : 0
            // A numeric address: bind(host:port:) would run getaddrinfo for every query.
            let local: SocketAddress
            do {
                local = try SocketAddress(ipAddress: wildcard, port: port)
            } catch {
                return eventLoop.makeFailedFuture(error)
            }
            return DatagramBootstrap(group: eventLoop)
                // We advertise 1232 bytes upstream (EDNS); 4 KiB holds any honest UDP answer,
                // and a longer one arrives cut and fails to parse.
                .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: 4096))
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(
                            UDPAnswerHandler(matcher: AnswerMatcher(expected: expected, promise: promise, clock: clock)))
                    }
                }
                .bind(to: local)
                .flatMapError { error in
                    attempt < 8 ? bind(attempt: attempt + 1) : eventLoop.makeFailedFuture(error)
                }
        }
        // Connected: the kernel drops datagrams from other sources and reports ICMP errors.
        return bind(attempt: 0).flatMap { channel in
            channel.connect(to: remote).map { channel }.flatMapError { error in
                channel.close(promise: nil)
                return eventLoop.makeFailedFuture(error)
            }
        }
    }

    private func connectTCP(
        to remote: SocketAddress, on eventLoop: any EventLoop, expected: ExpectedAnswer, clock: SendClock,
        promise: EventLoopPromise<UpstreamAnswer>
    ) -> EventLoopFuture<any Channel> {
        ClientBootstrap(group: eventLoop)
            .connectTimeout(timeout)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandlers(
                        ByteToMessageHandler(LengthFieldBasedFrameDecoder(lengthFieldBitLength: .twoBytes)),
                        LengthFieldPrepender(lengthFieldBitLength: .twoBytes),
                        TCPAnswerHandler(matcher: AnswerMatcher(expected: expected, promise: promise, clock: clock)))
                }
            }
            .connect(to: remote)
    }
}

/// When the query left, set on the event loop just before the write, so the round trip does not
/// include setting up the socket.
final class SendClock: Sendable {
    private let sentAt = Atomic<UInt64>(0)

    func markSent() { sentAt.store(NIODeadline.now().uptimeNanoseconds, ordering: .relaxed) }

    var elapsed: TimeAmount { NIODeadline.now() - .uptimeNanoseconds(sentAt.load(ordering: .relaxed)) }
}

/// What a valid answer must match.
struct ExpectedAnswer: Sendable {
    let id: UInt16
    let question: Question
    let server: ServerAddress
}

/// Checks received datagrams or frames against the query and completes the promise once.
/// Lives on one channel's event loop.
struct AnswerMatcher {
    let expected: ExpectedAnswer
    let promise: EventLoopPromise<UpstreamAnswer>
    let clock: SendClock
    /// Packets that failed the match (counted for logs; an attacker's guesses end up here).
    private(set) var mismatches = 0

    init(expected: ExpectedAnswer, promise: EventLoopPromise<UpstreamAnswer>, clock: SendClock) {
        self.expected = expected
        self.promise = promise
        self.clock = clock
    }

    mutating func receive(_ buffer: ByteBuffer, from source: SocketAddress?, overTCP: Bool) {
        let bytes = Array(buffer.readableBytesView)
        if let source, ServerAddress(source) != expected.server {
            mismatches += 1
            return
        }
        // Cheap checks first: the ID and the QR bit.
        guard bytes.count >= DNSHeader.length, UInt16(bytes[0]) << 8 | UInt16(bytes[1]) == expected.id,
            bytes[2] & 0x80 != 0
        else {
            mismatches += 1
            return
        }
        let message: DNSMessage
        do {
            message = try DNSCodec.decode(bytes)
        } catch {
            promise.fail(UpstreamError.malformed(error.message))
            return
        }
        // RFC 5452 §4.2: the question must be the one asked. A server may leave it out only when
        // it reports an error about the query itself.
        let questionMatches =
            message.questions == [expected.question]
            || (message.questions.isEmpty && message.rcode != .noError && message.rcode != .nxDomain)
        guard questionMatches, message.opcode == .query else {
            mismatches += 1
            return
        }
        promise.succeed(
            UpstreamAnswer(
                message: message, wire: bytes, server: expected.server, rtt: clock.elapsed,
                overTCP: overTCP))
    }

    func fail(_ error: any Error) {
        promise.fail(UpstreamError.unreachable("\(error)"))
    }
}

final class UDPAnswerHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    private var matcher: AnswerMatcher

    init(matcher: AnswerMatcher) { self.matcher = matcher }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        matcher.receive(envelope.data, from: envelope.remoteAddress, overTCP: false)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // On a connected UDP socket this is an ICMP error: the server is unreachable.
        matcher.fail(error)
    }
}

final class TCPAnswerHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    private var matcher: AnswerMatcher

    init(matcher: AnswerMatcher) { self.matcher = matcher }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        matcher.receive(unwrapInboundIn(data), from: nil, overTCP: true)
    }

    func channelInactive(context: ChannelHandlerContext) {
        matcher.fail(ChannelError.eof)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        matcher.fail(error)
        context.close(promise: nil)
    }
}

extension ServerAddress {
    /// The NIO socket address of this server.
    public func socketAddress() throws -> SocketAddress {
        try SocketAddress(ipAddress: ip.description, port: Int(port))
    }

    /// The server address of a NIO socket address (nil for Unix sockets).
    public init?(_ address: SocketAddress) {
        guard let ip = IPAddress(socketAddress: address), let port = address.port else { return nil }
        self.init(ip: ip, port: UInt16(port))
    }
}

extension IPAddress {
    /// Reads the address straight from the sockaddr, with no text in between.
    public init?(socketAddress: SocketAddress) {
        switch socketAddress {
        case .v4(let v4):
            self = .v4(UInt32(bigEndian: v4.address.sin_addr.s_addr))
        case .v6(let v6):
            var raw = v6.address.sin6_addr
            self = .v6(withUnsafeBytes(of: &raw) { Array($0) })
        default:
            return nil
        }
    }
}
