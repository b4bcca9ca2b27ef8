// Upstream/: one query to one server. Each UDP query gets its own socket on a random source port
// and a random ID, both from the system CSPRNG (UDPExchanger), and accepts only an answer from the
// server's address and port with that ID and the same question (RFC 5452 §9). A truncated answer is
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
    public typealias Completion = @Sendable (Result<UpstreamAnswer, UpstreamError>) -> Void

    let group: any EventLoopGroup
    let timeout: TimeAmount
    let logger: Logger
    /// UDP queries; TCP goes through NIO.
    private let udp: UDPExchanger

    public init(group: any EventLoopGroup, timeout: TimeAmount, logger: Logger) {
        self.group = group
        self.timeout = timeout
        self.logger = logger
        udp = UDPExchanger()
    }

    /// Runs `action` after `delay` on the UDP answer thread (hedge timers), unless cancelled.
    public func schedule(in delay: TimeAmount, _ action: @escaping @Sendable () -> Void) -> UpstreamTimer {
        udp.schedule(in: delay, action)
    }

    /// Stops the UDP answer thread.
    public func shutdown() async {
        await udp.shutdown()
    }

    /// Asks `server` once; over UDP first, then TCP if the answer is truncated. `transport: .tcp`
    /// skips UDP (dig-lite's `+tcp`).
    public func exchange(_ query: UpstreamQuery, server: ServerAddress, transport: Transport = .udp, edns: Bool = true)
        async throws(UpstreamError) -> UpstreamAnswer
    {
        let result = await withCheckedContinuation { continuation in
            exchange(query, server: server, transport: transport, edns: edns) { continuation.resume(returning: $0) }
        }
        return try result.get()
    }

    /// The same with a callback, called once on whichever thread finished the exchange: the miss
    /// path skips a task and a hop to the concurrency pool per upstream query. A retry (over TCP,
    /// or without EDNS) is a packet of its own: it leaves only if `budget` allows it.
    public func exchange(
        _ query: UpstreamQuery, server: ServerAddress, transport: Transport = .udp, edns: Bool = true,
        budget: (any SendBudget)? = nil, completion: @escaping Completion
    ) {
        let wire: [UInt8]
        let expected: ExpectedAnswer
        do throws(UpstreamError) {
            (wire, expected) = try Self.encode(query, server: server, edns: edns)
        } catch {
            completion(.failure(error))
            return
        }
        guard transport == .udp else {
            sendTCP(wire, expected: expected, completion: completion)
            return
        }
        udp.send(wire, expected: expected, timeout: timeout) { [self] result in
            guard case .success(let answer) = result else { return completion(result) }
            // RFC 6891 §7: a server that does not know EDNS answers FORMERR without an OPT record;
            // ask it again without one.
            if edns, answer.message.rcode == .formErr, answer.message.edns == nil {
                guard budget?.spend() ?? true else { return completion(.failure(.overBudget)) }
                return exchange(query, server: server, transport: transport, edns: false, budget: budget, completion: completion)
            }
            guard answer.message.flags.contains(.tc) else { return completion(result) }
            guard budget?.spend() ?? true else { return completion(.failure(.overBudget)) }
            logger.debug("truncated answer, retrying over TCP", metadata: ["server": "\(server)"])
            sendTCP(wire, expected: expected, completion: completion)
        }
    }

    /// The query's wire form with a fresh random ID (system CSPRNG), and what its answer must match.
    private static func encode(_ query: UpstreamQuery, server: ServerAddress, edns: Bool) throws(UpstreamError)
        -> ([UInt8], ExpectedAnswer)
    {
        var random = SystemRandomNumberGenerator()
        let id = UInt16.random(in: 0...UInt16.max, using: &random)
        let message = DNSMessage.query(
            query.question, id: id, recursionDesired: query.recursionDesired, dnssecOK: query.dnssecOK,
            checkingDisabled: query.checkingDisabled, edns: edns)
        do {
            return (try MessageWriter.encode(message), ExpectedAnswer(id: id, question: query.question, server: server))
        } catch {
            throw .badQuery("\(error)")
        }
    }

    /// One query over a new TCP connection (RFC 7766 framing), on an event loop.
    private func sendTCP(_ wire: [UInt8], expected: ExpectedAnswer, completion: @escaping Completion) {
        let eventLoop = group.next()
        let remote: SocketAddress
        do {
            remote = try expected.server.socketAddress()
        } catch {
            return completion(.failure(.unreachable("\(error)")))
        }
        let promise = eventLoop.makePromise(of: UpstreamAnswer.self)
        promise.futureResult.whenComplete { result in
            completion(result.mapError { $0 as? UpstreamError ?? .unreachable("\($0)") })
        }
        let timeoutAmount = self.timeout
        let clock = SendClock()
        connectTCP(to: remote, on: eventLoop, expected: expected, clock: clock, promise: promise).whenComplete { result in
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
                // The round trip is timed from here: connecting is not the server's answer time.
                clock.markSent()
                channel.writeAndFlush(buffer).whenFailure { promise.fail(UpstreamError.unreachable("\($0)")) }
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

/// Checks received answers against the query (RFC 5452); the TCP handler completes its promise
/// with the first that matches. The UDP exchanger uses `match` alone.
struct AnswerMatcher {
    let expected: ExpectedAnswer
    let promise: EventLoopPromise<UpstreamAnswer>
    let clock: SendClock

    enum Match {
        case answer(DNSMessage)
        /// Not the answer to this query (an attacker's guesses end up here); keep waiting.
        case mismatch
        case malformed(String)
    }

    /// Whether `bytes` answer the query: the ID and QR bit first (cheap), then the whole message
    /// read once by DNSWire's reader (octets after the last record ignored, as ldns and Unbound
    /// do), whose question must be the one asked (RFC 5452 §4.2) — a server may leave it out
    /// only when it reports an error about the query itself.
    static func match(_ bytes: [UInt8], expected: ExpectedAnswer) -> Match {
        guard bytes.count >= DNSHeader.length, UInt16(bytes[0]) << 8 | UInt16(bytes[1]) == expected.id,
            bytes[2] & 0x80 != 0
        else { return .mismatch }
        let message: DNSMessage
        do {
            message = try MessageReader.decode(bytes, trailingData: .ignore)
        } catch {
            return .malformed(error.rawValue)
        }
        let questionMatches =
            message.questions == [expected.question]
            || (message.questions.isEmpty && message.rcode != .noError && message.rcode != .nxDomain)
        guard questionMatches, message.opcode == .query else { return .mismatch }
        return .answer(message)
    }

    func receive(_ buffer: ByteBuffer) {
        let bytes = Array(buffer.readableBytesView)
        switch Self.match(bytes, expected: expected) {
        case .mismatch:
            return
        case .malformed(let why):
            promise.fail(UpstreamError.malformed(why))
        case .answer(let message):
            promise.succeed(
                UpstreamAnswer(message: message, wire: bytes, server: expected.server, rtt: clock.elapsed, overTCP: true))
        }
    }

    func fail(_ error: any Error) {
        promise.fail(UpstreamError.unreachable("\(error)"))
    }
}

final class TCPAnswerHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    private let matcher: AnswerMatcher

    init(matcher: AnswerMatcher) { self.matcher = matcher }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        matcher.receive(unwrapInboundIn(data))
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
