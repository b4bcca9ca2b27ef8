// Frontend/: the DNS server side on SwiftNIO. UDP: one socket per event loop on each listen
// address, sharing the port with SO_REUSEPORT. TCP (RFC 7766, TCPQueryHandler): 2-byte framing,
// several queries per connection answered as they complete, an idle timeout, a deadline for each
// query to arrive, caps on connections (all, per client network), on queries in flight and on
// reply bytes queued per connection and in total. Handlers catch their own errors: one bad client
// never closes a listener.

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
        let limiter = SlotLimiter(limit: settings.maxTCPConnections, prefixes: settings.clientPrefixes)
        let budget = StreamBudget(limit: settings.maxTCPQueuedBytes)
        do {
            for address in settings.listen {
                let part = try await bindAddress(
                    address, settings: settings, pipeline: pipeline, group: group, limiter: limiter, budget: budget,
                    logger: logger)
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
        limiter: SlotLimiter, budget: StreamBudget, logger: Logger
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
                    boundAddress, settings: settings, pipeline: pipeline, group: group, limiter: limiter, budget: budget,
                    logger: logger)
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
        limiter: SlotLimiter, budget: StreamBudget, logger: Logger
    ) async throws -> any Channel {
        let idle = TimeAmount.milliseconds(Int64(settings.tcpIdleTimeoutMs))
        let limits = TCPQueryHandler.Limits(
            maxInFlight: settings.maxTCPQueriesPerConnection, maxQueuedBytes: settings.maxTCPQueuedBytesPerConnection,
            queryTimeout: .milliseconds(Int64(settings.tcpQueryTimeoutMs)))
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
                        TCPQueryHandler(pipeline: pipeline, limits: limits, budget: budget, logger: logger))
                }
            }
            .bind(to: address.socketAddress()).get()
    }
}
