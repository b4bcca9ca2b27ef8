// Frontend/: the DNS server side on SwiftNIO. UDP: one socket per event loop on each listen
// address, sharing the port with SO_REUSEPORT. TCP (RFC 7766): 2-byte framing, several queries
// per connection answered as they complete, an idle timeout, and caps on connections and on
// queries in flight per connection. Handlers catch their own errors: one bad client never
// closes a listener.

import Logging
import NIOCore
import NIOExtras
import NIOPosix
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Handles one UDP socket's datagrams.
final class UDPQueryHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    typealias OutboundOut = AddressedEnvelope<ByteBuffer>

    private let pipeline: QueryPipeline
    private let logger: Logger
    private var needsFlush = false
    private var logLimiter = LogRateLimiter(perSecond: 5)

    init(pipeline: QueryPipeline, logger: Logger) {
        self.pipeline = pipeline
        self.logger = logger
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        let client = envelope.remoteAddress
        switch pipeline.process(envelope.data, client: client, transport: .udp, allocator: context.channel.allocator) {
        case .reply(let reply):
            context.write(wrapOutboundOut(AddressedEnvelope(remoteAddress: client, data: reply)), promise: nil)
            needsFlush = true
        case .drop(let reason):
            if logLimiter.allow(nowNanoseconds: NIODeadline.now().uptimeNanoseconds) {
                logger.debug(
                    "dropped a packet",
                    metadata: ["client": "\(client)", "reason": "\(reason.rawValue)", "suppressed": "\(logLimiter.suppressed)"])
                logLimiter.resetSuppressed()
            }
        case .resolve(let pending):
            let channel = context.channel
            let pipeline = self.pipeline
            Task {
                let reply = await pipeline.resolve(pending, allocator: channel.allocator)
                channel.writeAndFlush(AddressedEnvelope(remoteAddress: client, data: reply), promise: nil)
            }
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if needsFlush {
            needsFlush = false
            context.flush()
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A UDP socket error (for example ICMP from a client that went away) concerns one
        // datagram; the socket stays open.
        if logLimiter.allow(nowNanoseconds: NIODeadline.now().uptimeNanoseconds) {
            logger.debug("udp socket error", metadata: ["error": "\(error)"])
        }
    }
}

/// Handles one TCP connection's framed queries.
final class TCPQueryHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let pipeline: QueryPipeline
    private let maxInFlight: Int
    private let logger: Logger
    private var inFlight = 0
    private var readHeld = false
    private var client: SocketAddress?

    init(pipeline: QueryPipeline, maxInFlight: Int, logger: Logger) {
        self.pipeline = pipeline
        self.maxInFlight = maxInFlight
        self.logger = logger
    }

    func channelActive(context: ChannelHandlerContext) {
        client = context.channel.remoteAddress
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let client else { return }
        switch pipeline.process(unwrapInboundIn(data), client: client, transport: .tcp, allocator: context.channel.allocator) {
        case .reply(let reply):
            context.writeAndFlush(wrapOutboundOut(reply), promise: nil)
        case .drop:
            // Unreadable framing or a response sent to us: this stream cannot be trusted further.
            context.close(promise: nil)
        case .resolve(let pending):
            inFlight += 1
            let pipeline = self.pipeline
            let allocator = context.channel.allocator
            let bound = NIOLoopBound((handler: self, context: context), eventLoop: context.eventLoop)
            let eventLoop = context.eventLoop
            Task {
                let reply = await pipeline.resolve(pending, allocator: allocator)
                eventLoop.execute {
                    let (handler, context) = bound.value
                    handler.finished(reply, context: context)
                }
            }
        }
    }

    private func finished(_ reply: ByteBuffer, context: ChannelHandlerContext) {
        inFlight -= 1
        guard context.channel.isActive else { return }
        context.writeAndFlush(wrapOutboundOut(reply), promise: nil)
        if readHeld, inFlight < maxInFlight {
            readHeld = false
            context.read()
        }
    }

    func read(context: ChannelHandlerContext) {
        // Back-pressure: stop reading while this connection has its share of queries in flight.
        if inFlight >= maxInFlight {
            readHeld = true
        } else {
            context.read()
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent, inFlight == 0 {
            context.close(promise: nil)  // RFC 7766 §6.2.3: the server closes idle connections
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        logger.debug("tcp connection error", metadata: ["client": "\(client.map { "\($0)" } ?? "?")", "error": "\(error)"])
        context.close(promise: nil)
    }
}

/// Binds the UDP and TCP listeners for every configured address.
public struct DNSListeners: Sendable {
    public let channels: [any Channel]
    /// The UDP fast path's sockets (when `server.udp_batch` is on).
    public let batchListeners: [UDPBatchListener]
    /// The addresses actually bound (port 0 resolved to the real port).
    public let addresses: [ServerAddress]

    public static func bind(
        _ settings: Config.Server, pipeline: QueryPipeline, group: MultiThreadedEventLoopGroup, logger: Logger
    ) async throws -> DNSListeners {
        var bound = DNSListeners(channels: [], batchListeners: [], addresses: [])
        let limiter = SlotLimiter(limit: settings.maxTCPConnections)
        do {
            for address in settings.listen {
                let part = try await bindAddress(
                    address, settings: settings, pipeline: pipeline, group: group, limiter: limiter, logger: logger)
                bound = DNSListeners(
                    channels: bound.channels + part.channels, batchListeners: bound.batchListeners + part.batchListeners,
                    addresses: bound.addresses + part.addresses)
            }
        } catch {
            await bound.close()
            throw error
        }
        return bound
    }

    /// Closes every socket.
    public func close() async {
        for channel in channels { try? await channel.close() }
        for listener in batchListeners { await listener.stop() }
    }

    /// Binds one address: a UDP socket per event loop and one TCP listener, all on one port.
    /// With port 0 the kernel picks the UDP port; when TCP cannot have the same one, try again.
    private static func bindAddress(
        _ address: ServerAddress, settings: Config.Server, pipeline: QueryPipeline, group: MultiThreadedEventLoopGroup,
        limiter: SlotLimiter, logger: Logger
    ) async throws -> DNSListeners {
        let loops = Array(group.makeIterator())
        var lastError: any Error = ChannelError.unknownLocalAddress
        for _ in 0..<(address.port == 0 ? 8 : 1) {
            var part = DNSListeners(channels: [], batchListeners: [], addresses: [])
            do {
                let boundAddress: ServerAddress
                if settings.udpBatch {
                    var listeners = [try UDPBatchListener(address: address, pipeline: pipeline, logger: logger)]
                    boundAddress = listeners[0].address
                    part = DNSListeners(channels: [], batchListeners: listeners, addresses: [])
                    for _ in loops.dropFirst() {
                        listeners.append(try UDPBatchListener(address: boundAddress, pipeline: pipeline, logger: logger))
                        part = DNSListeners(channels: [], batchListeners: listeners, addresses: [])
                    }
                } else {
                    var channels = [try await bindUDP(address, on: loops[0], pipeline: pipeline, logger: logger)]
                    part = DNSListeners(channels: channels, batchListeners: [], addresses: [])
                    guard let port = channels[0].localAddress?.port else { throw ChannelError.unknownLocalAddress }
                    boundAddress = ServerAddress(ip: address.ip, port: UInt16(port))
                    for loop in loops.dropFirst() {
                        channels.append(try await bindUDP(boundAddress, on: loop, pipeline: pipeline, logger: logger))
                        part = DNSListeners(channels: channels, batchListeners: [], addresses: [])
                    }
                }
                let tcp = try await bindTCP(
                    boundAddress, settings: settings, pipeline: pipeline, group: group, limiter: limiter, logger: logger)
                return DNSListeners(
                    channels: part.channels + [tcp], batchListeners: part.batchListeners, addresses: [boundAddress])
            } catch {
                lastError = error
                await part.close()
            }
        }
        throw lastError
    }

    private static func bindUDP(_ address: ServerAddress, on loop: any EventLoop, pipeline: QueryPipeline, logger: Logger)
        async throws -> any Channel
    {
        try await DatagramBootstrap(group: loop)
            .channelOption(.socketOption(.so_reuseaddr), value: 1)
            .channelOption(.socketOption(NIOBSDSocket.Option(rawValue: SO_REUSEPORT)), value: 1)
            // A burst of hundreds of queries must fit in the kernel's queue while we are busy.
            .channelOption(.socketOption(.so_rcvbuf), value: 4 << 20)
            .channelOption(.datagramVectorReadMessageCount, value: 32)
            .channelOption(.maxMessagesPerRead, value: 32)
            // Queries are small; 4 KiB holds any sane one (a longer datagram is cut and gets FORMERR).
            .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: 4096))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(UDPQueryHandler(pipeline: pipeline, logger: logger))
                }
            }
            .bind(to: address.socketAddress()).get()
    }

    private static func bindTCP(
        _ address: ServerAddress, settings: Config.Server, pipeline: QueryPipeline, group: MultiThreadedEventLoopGroup,
        limiter: SlotLimiter, logger: Logger
    ) async throws -> any Channel {
        let idle = TimeAmount.milliseconds(Int64(settings.tcpIdleTimeoutMs))
        let perConnection = settings.maxTCPQueriesPerConnection
        let perClient = settings.maxTCPConnectionsPerClient
        return try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            // Worker processes (server.workers) share the TCP port as they share UDP's.
            .serverChannelOption(.socketOption(NIOBSDSocket.Option(rawValue: SO_REUSEPORT)), value: 1)
            .serverChannelOption(.backlog, value: 256)
            .childChannelOption(.autoRead, value: true)
            .childChannelInitializer { channel in
                let client = channel.remoteAddress.flatMap(IPAddress.init(socketAddress:))
                guard limiter.tryAcquire(client: client, perClient: perClient) else {
                    return channel.close()
                }
                channel.closeFuture.whenComplete { _ in limiter.release(client: client) }
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandlers(
                        IdleStateHandler(readTimeout: idle),
                        ByteToMessageHandler(LengthFieldBasedFrameDecoder(lengthFieldBitLength: .twoBytes)),
                        LengthFieldPrepender(lengthFieldBitLength: .twoBytes),
                        TCPQueryHandler(pipeline: pipeline, maxInFlight: perConnection, logger: logger))
                }
            }
            .bind(to: address.socketAddress()).get()
    }
}
