// Frontend/: one DNS-over-TCP connection (RFC 7766): messages framed by StreamFramer, several
// queries in flight answered as they complete, and back-pressure in both directions. A client
// that pipelines thousands of queries and never reads its answers must cost a bounded number of
// bytes, not gigabytes: replies written and not yet taken by the kernel are counted per
// connection and for all connections together; past either cap the connection's queries wait
// unread in the kernel (reading stops) until its client reads. A query begun must arrive whole
// within `tcp_query_timeout_ms` (the idle timer restarts on every byte, so it alone would let a
// client trickling one byte a second hold a connection forever).

import Logging
import NIOCore
import NIOPosix
import Synchronization

/// Why resolverd closed a TCP connection.
enum TCPCloseReason: String, CaseIterable, Sendable {
    /// Unreadable framing, or a response sent to us.
    case malformed
    /// Nothing read for `tcp_idle_timeout_ms` with no query in flight.
    case idle
    /// A query begun did not arrive whole within `tcp_query_timeout_ms`.
    case slowQuery = "slow_query"
}

/// Reply bytes waiting in the TCP connections' outbound queues, all connections together.
final class StreamBudget: Sendable {
    let limit: Int
    private let queued = Atomic<Int>(0)

    init(limit: Int) {
        self.limit = limit
    }

    var bytes: Int { queued.load(ordering: .relaxed) }
    var isExhausted: Bool { bytes >= limit }

    func add(_ count: Int) { queued.wrappingAdd(count, ordering: .relaxed) }
    func remove(_ count: Int) { queued.wrappingSubtract(count, ordering: .relaxed) }
}

/// Handles one TCP connection's framed queries.
final class TCPQueryHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// What one connection may hold.
    struct Limits: Sendable {
        /// Queries waiting on upstream servers.
        var maxInFlight: Int
        /// Reply bytes written and not yet taken by the kernel.
        var maxQueuedBytes: Int
        /// How long a begun query may take to arrive whole.
        var queryTimeout: TimeAmount
    }

    private let pipeline: QueryPipeline
    private let limits: Limits
    private let budget: StreamBudget
    private let logger: Logger
    private var framer = StreamFramer()
    private var inFlight = 0
    private var queuedBytes = 0
    private var readHeld = false
    private var partialTimer: Scheduled<Void>?
    private var client: SocketAddress?

    init(pipeline: QueryPipeline, limits: Limits, budget: StreamBudget, logger: Logger) {
        self.pipeline = pipeline
        self.limits = limits
        self.budget = budget
        self.logger = logger
    }

    /// Whether another query may be taken now: its share of queries in flight and of reply bytes
    /// is free (a connection with nothing queued may always send one reply, so every connection
    /// makes progress while the total is exhausted).
    private var mayTakeQuery: Bool {
        inFlight < limits.maxInFlight && queuedBytes < limits.maxQueuedBytes && (queuedBytes == 0 || !budget.isExhausted)
    }

    func channelActive(context: ChannelHandlerContext) {
        client = context.channel.remoteAddress
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        partialTimer?.cancel()
        partialTimer = nil
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        framer.append(&bytes)
        serve(context: context)
    }

    /// Takes the messages the limits allow, times a partly received one, and reads again when
    /// nothing waits.
    private func serve(context: ChannelHandlerContext) {
        guard context.channel.isActive else { return }
        var taken = false
        while mayTakeQuery, let message = framer.next() {
            taken = true
            guard handle(message, context: context) else { return }
        }
        if taken {
            // The message timed so far is whole; what is left began with this read.
            partialTimer?.cancel()
            partialTimer = nil
        }
        // The rest of a begun query is timed only while resolverd reads: a connection paused by
        // its own limits is waiting on resolverd (or on its client reading), not trickling.
        if framer.hasPartialMessage, mayTakeQuery {
            if partialTimer == nil {
                partialTimer = context.eventLoop.assumeIsolated().scheduleTask(in: limits.queryTimeout) { [self] in
                    partialTimer = nil
                    close(context: context, .slowQuery)
                }
            }
        } else {
            partialTimer?.cancel()
            partialTimer = nil
        }
        if readHeld, mayTakeQuery, !framer.hasWholeMessage {
            readHeld = false
            context.read()
        }
    }

    /// Answers or starts one query; false when the connection was closed.
    private func handle(_ message: ByteBuffer, context: ChannelHandlerContext) -> Bool {
        guard let client else { return false }
        switch pipeline.process(message, client: client, transport: .tcp, allocator: context.channel.allocator) {
        case .reply(let reply):
            send(reply, context: context)
        case .drop:
            // Unreadable framing or a response sent to us: this stream cannot be trusted further.
            close(context: context, .malformed)
            return false
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
        return true
    }

    private func finished(_ reply: ByteBuffer, context: ChannelHandlerContext) {
        inFlight -= 1
        guard context.channel.isActive else { return }
        send(reply, context: context)
        serve(context: context)
    }

    /// Writes one reply with its length, counted as queued until the kernel has taken it.
    private func send(_ reply: ByteBuffer, context: ChannelHandlerContext) {
        guard let length = UInt16(exactly: reply.readableBytes) else {
            logger.warning("a reply too long for TCP was not sent", metadata: ["bytes": "\(reply.readableBytes)"])
            return
        }
        let size = reply.readableBytes + 2
        queuedBytes += size
        budget.add(size)
        var prefix = context.channel.allocator.buffer(capacity: 2)
        prefix.writeInteger(length)
        context.write(wrapOutboundOut(prefix), promise: nil)
        let written = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(reply), promise: written)
        written.futureResult.assumeIsolated().whenComplete { [self] _ in
            queuedBytes -= size
            budget.remove(size)
            serve(context: context)
        }
    }

    func read(context: ChannelHandlerContext) {
        // Back-pressure: stop reading while this connection has its share of queries in flight or
        // of replies unread, or has whole queries it could not take yet.
        if mayTakeQuery, !framer.hasWholeMessage {
            context.read()
        } else {
            readHeld = true
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // Idle: nothing read for tcp_idle_timeout_ms. With nothing in flight, the client is done
        // (RFC 7766 §6.2.3) or reads none of the replies waiting for it: either way it goes.
        if event is IdleStateHandler.IdleStateEvent, inFlight == 0 {
            close(context: context, .idle)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        logger.debug("tcp connection error", metadata: ["client": "\(clientText)", "error": "\(error)"])
        context.close(promise: nil)
    }

    private func close(context: ChannelHandlerContext, _ reason: TCPCloseReason) {
        logger.debug(
            "closing a tcp connection",
            metadata: ["client": "\(clientText)", "reason": "\(reason.rawValue)", "queued_bytes": "\(queuedBytes)"])
        pipeline.metrics?.countTCPClose(reason)
        context.close(promise: nil)
    }

    private var clientText: String { client.map { "\($0)" } ?? "?" }
}
