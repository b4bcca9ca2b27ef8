// Frontend/: what happens to a query, top to bottom. Read it with DESIGN.md's pipeline beside:
//   fast parse → FORMERR/NOTIMP/BADVERS or drop → access check → class and type checks
//   → the service groups' cluster zone (replies written from pre-rendered records)
//   → cache hit (reply patched from stored bytes) → local answers (localhost, CH identity,
//   RFC 6303's private reverse zones when recursive) → coalesced miss
//   → a forward zone's servers, else recursion from the root (async) → cached → reply,
//   truncated with TC when too big for UDP.
// The cluster zone is asked first: its answers are never cached, so asking the cache would only
// count a miss, and telling a name outside it costs one suffix comparison. The cache is asked
// before the other local answers because nothing local is ever stored in it, and the hit path
// must not parse the name into an allocated value. `process` is synchronous and runs on
// the event loop; only a query that must go upstream leaves it, as a `PendingQuery` that
// `resolve` finishes.

import Logging
import NIOCore

/// A query that needs an upstream answer.
public struct PendingQuery: Sendable {
    public let view: QueryView
    public let question: Question
    /// The query as received, for replies built from its bytes.
    public let wire: [UInt8]
    public let transport: Transport
    /// When it arrived, and who sent it.
    public let received: NIODeadline
    public var client: ServerAddress?
}

/// The query pipeline shared by every listener.
public final class QueryPipeline: Sendable {
    public enum Outcome: Sendable {
        case reply(ByteBuffer)
        case drop(MalformedReason)
        case resolve(PendingQuery)
    }

    /// What the one resolution of a coalesced miss gives everyone waiting on it.
    enum Fetched: Sendable {
        case answer(CachedAnswer)
        case failure(ResolutionFailure)
        case noZone
    }

    /// What a reload replaces: access, forward and local zones, rate limits, the query log.
    let policy: Live<RuntimePolicy>
    let forwarder: Forwarder
    /// Resolution from the root for names no forward zone covers; nil in forward mode.
    let recursor: RecursiveResolver?
    let local: LocalAnswers
    /// The service groups' zone; nil in tests that need none.
    let cluster: ClusterAnswers?
    public let cache: AnswerCache
    /// Prometheus counters; nil in tests that need none.
    public let metrics: ResolverMetrics?
    /// Queries waiting on upstream servers: all together (`server.max_pending`, fixed until a
    /// restart) and each client's (`server.max_pending_per_client`, from the policy).
    let pendingLimiter: SlotLimiter
    let inFlight = Coalescer<CacheKey, Fetched>()
    let logger: Logger
    /// TTL countdown, serve-stale windows and latencies are read from it.
    let clock: ResolverClock

    public init(
        policy: RuntimePolicy, forwarder: Forwarder, recursor: RecursiveResolver? = nil, local: LocalAnswers,
        cluster: ClusterAnswers?, cache: AnswerCache, metrics: ResolverMetrics? = nil, maxPending: Int = 10_000,
        clientPrefixes: ClientPrefixes = ClientPrefixes(), logger: Logger, clock: ResolverClock = .system
    ) {
        self.clock = clock
        self.policy = Live(policy)
        pendingLimiter = SlotLimiter(limit: maxPending, prefixes: clientPrefixes)
        self.forwarder = forwarder
        self.recursor = recursor
        self.local = local
        self.cluster = cluster
        self.cache = cache
        self.metrics = metrics
        self.logger = logger
    }

    /// Puts a reloaded config's policy in place; queries already past their checks finish under
    /// the old one.
    public func replacePolicy(_ new: RuntimePolicy) { policy.replace(with: new) }

    /// Everything that can be decided without waiting.
    public func process(_ packet: ByteBuffer, client: SocketAddress, transport: Transport, allocator: ByteBufferAllocator)
        -> Outcome
    {
        packet.withUnsafeReadableBytes {
            process(
                $0, permitted: policy.current.access.permits(client), transport: transport, allocator: allocator,
                client: { ServerAddress(client) })
        }
    }

    /// The same for raw bytes; `permitted` is the access check's verdict on the sender. Every
    /// reply and drop decided here is counted.
    public func process(
        _ bytes: UnsafeRawBufferPointer, permitted: Bool, transport: Transport, allocator: ByteBufferAllocator,
        client: () -> ServerAddress? = { nil }
    ) -> Outcome {
        let policy = self.policy.current
        // The client's address is made at most once, and only when a cap, RRL or the log needs it.
        var clientAddress: ServerAddress?? = nil
        func sender() -> ServerAddress? {
            if clientAddress == nil { clientAddress = .some(client()) }
            return clientAddress ?? nil
        }
        var outcome = decide(bytes, permitted: permitted, transport: transport, policy: policy, allocator: allocator)
        if case .resolve(var pending) = outcome {
            pending.client = sender()
            // Queries waiting on upstream servers are capped, all together and per client: past
            // either cap, SERVFAIL at once (overload), while cache hits keep flowing.
            outcome =
                pendingLimiter.tryAcquire(client: pending.client?.ip, perClient: policy.maxPendingPerClient)
                ? .resolve(pending) : .reply(errorReply(pending, .servFail, allocator: allocator))
        }
        if let rateLimiter = policy.rateLimiter, transport == .udp, case .reply = outcome, let ip = sender()?.ip {
            switch rateLimiter.verdict(for: ip, now: clock.now().uptimeNanoseconds) {
            case .send:
                break
            case .drop:
                metrics?.countRateLimited(.drop)
                return .drop(.rateLimited)
            case .slip:
                metrics?.countRateLimited(.slip)
                if let view = try? QueryReader.read(bytes) {
                    outcome = .reply(ResponseBuilder.reply(
                        to: bytes, questionEnd: view.questionEnd, rcode: .noError, edns: view.edns, truncated: true,
                        allocator: allocator))
                }
            }
        }
        switch outcome {
        case .reply(let reply):
            reply.withUnsafeReadableBytes { bytes in
                metrics?.countReply(bytes, transport: transport)
                policy.queryLog?.record(
                    reply: bytes, client: { sender()?.description ?? "?" }, transport: transport, latency: nil, upstream: false)
            }
        case .drop:
            metrics?.countDrop()
        case .resolve:
            break
        }
        return outcome
    }

    private func decide(
        _ bytes: UnsafeRawBufferPointer, permitted: Bool, transport: Transport, policy: RuntimePolicy,
        allocator: ByteBufferAllocator
    ) -> Outcome {
        let view: QueryView
        do throws(QueryRejection) {
            view = try QueryReader.read(bytes)
        } catch {
            return rejection(error, bytes: bytes, allocator: allocator)
        }
        func reply(_ rcode: ResponseCode) -> Outcome {
            .reply(ResponseBuilder.reply(
                to: bytes, questionEnd: view.questionEnd, rcode: rcode, edns: view.edns, allocator: allocator))
        }
        guard permitted else { return reply(.refused) }
        guard view.recordClass == .in || view.recordClass == .ch else { return reply(.refused) }
        // A resolver serves no zone transfers (RFC 5936 §6 leaves them to authoritative servers).
        guard !view.type.isZoneTransfer else { return reply(.refused) }

        if let cluster, let answer = cluster.reply(query: bytes, view: view, transport: transport, allocator: allocator) {
            return .reply(answer)
        }
        if view.recordClass == .in,
            let hit = cache.answer(query: bytes, view: view, transport: transport, now: clock.now(), allocator: allocator)
        {
            if hit.refresh { prefetch(bytes, view: view) }
            return .reply(hit.reply)
        }

        let name: DomainName
        do throws(MalformedReason) {
            name = try WireNames.read(bytes, at: DNSHeader.length)
        } catch {
            return reply(.formErr)
        }
        let question = Question(name: name, type: view.type, recordClass: view.recordClass)
        let wire = Array(bytes)
        if let localAnswer = local.answer(question) ?? policy.localZones?.answer(question) {
            let message = response(
                to: view, question: question, rcode: localAnswer.rcode, answers: localAnswer.answers,
                authorities: localAnswer.authorities, additionals: localAnswer.additionals, authenticated: false,
                authoritative: true)
            return .reply(encode(message, view: view, wire: wire, transport: transport, allocator: allocator))
        }
        return .resolve(PendingQuery(view: view, question: question, wire: wire, transport: transport, received: clock.now()))
    }

    /// Finishes a query that needed upstream servers (and counts its reply). Identical questions
    /// in flight share one resolution; each client gets the shared answer with its own ID, letter
    /// case and EDNS.
    public func resolve(_ pending: PendingQuery, allocator: ByteBufferAllocator) async -> ByteBuffer {
        await withCheckedContinuation { continuation in
            resolve(pending, allocator: allocator) { continuation.resume(returning: $0) }
        }
    }

    /// The same with a callback, called once: on the UDP answer thread for a forwarded answer, so
    /// that the reply leaves from there with no hop to a task (each hop wakes a thread; without
    /// them a forwarded miss to a 0 ms upstream went from ~840 to ~740 µs); on a task for recursion.
    public func resolve(
        _ pending: PendingQuery, allocator: ByteBufferAllocator, completion: @escaping @Sendable (ByteBuffer) -> Void
    ) {
        finish(pending, allocator: allocator) { [self] reply in
            pendingLimiter.release(client: pending.client?.ip)
            reply.withUnsafeReadableBytes { bytes in
                metrics?.countReply(bytes, transport: pending.transport)
                policy.current.queryLog?.record(
                    reply: bytes, client: { pending.client?.description ?? "?" }, transport: pending.transport,
                    latency: clock.now() - pending.received, upstream: true)
            }
            completion(reply)
        }
    }

    private func finish(
        _ pending: PendingQuery, allocator: ByteBufferAllocator, completion: @escaping @Sendable (ByteBuffer) -> Void
    ) {
        let view = pending.view
        let key = CacheKey(question: pending.question, view: view)
        // A second look: a compressed question name missed the fast path, or the answer arrived
        // since `process` looked.
        if let hit = pending.wire.withUnsafeBytes({
            cache.answer(key: key, query: $0, view: view, transport: pending.transport, now: clock.now(), allocator: allocator)
        }) {
            return completion(hit.reply)
        }
        inFlight.run(key, work: { [self] done in fetch(key, completion: done) }) { [self] fetched in
            switch fetched {
            case .answer(let answer):
                completion(pending.wire.withUnsafeBytes {
                    answer.render(query: $0, view: view, age: 0, transport: pending.transport, allocator: allocator)
                })
            case .failure:
                let stale = pending.wire.withUnsafeBytes {
                    cache.staleAnswer(key: key, query: $0, view: view, transport: pending.transport, now: clock.now(), allocator: allocator)
                }
                completion(stale ?? errorReply(pending, .servFail, allocator: allocator))
            case .noZone:
                completion(errorReply(pending, .refused, allocator: allocator))
            }
        }
    }

    /// Resolves `key` upstream and stores the outcome: the answer, or a short-lived failure.
    func fetch(_ key: CacheKey, completion: @escaping @Sendable (Fetched) -> Void) {
        let query = UpstreamQuery(question: key.question, dnssecOK: key.dnssecOK, checkingDisabled: key.checkingDisabled)
        resolveUpstream(query) { [self] resolution in completion(store(resolution, key: key)) }
    }

    /// What a resolution leaves in the cache, and what the clients waiting on it get.
    private func store(_ resolution: Resolution, key: CacheKey) -> Fetched {
        switch resolution {
        case .answer(let upstream):
            do {
                // resolverd does not validate DNSSEC yet: an upstream's AD bit is its own claim,
                // made over a path nobody checked, and is never passed on (as dnsmasq does).
                let answer = try CachedAnswer.make(
                    answer: upstream, question: key.question, authenticated: false, settings: cache.settings)
                cache.insert(answer, key: key, now: clock.now())
                return .answer(answer)
            } catch {
                logger.warning("could not store an answer", metadata: ["question": "\(key.question)", "error": "\(error)"])
                return .failure(error)
            }
        case .failure(let reason):
            logger.info("resolution failed", metadata: ["question": "\(key.question)", "reason": "\(reason)"])
            // RFC 9520: remember the failure briefly so the clients' retries do not hammer the
            // servers (the cache keeps a fresh or still servable stale answer instead).
            cache.insert(.failure(question: key.question, ttl: cache.settings.failureTTL), key: key, now: clock.now())
            return .failure(reason)
        case .noZone:
            return .noZone
        }
    }

    /// Forward zones first (the longest match wins, even in recursive mode); other names are
    /// resolved from the root in recursive mode (on a task) and refused in forward mode.
    private func resolveUpstream(_ query: UpstreamQuery, completion: @escaping @Sendable (Resolution) -> Void) {
        forwarder.resolve(query, zones: policy.current.forwardZones) { [recursor] forwarded in
            guard case .noZone = forwarded, let recursor else { return completion(forwarded) }
            Task { completion(await recursor.resolve(query)) }
        }
    }

    /// Refreshes an entry in the last tenth of its TTL, in the background; the client already
    /// has its answer.
    private func prefetch(_ bytes: UnsafeRawBufferPointer, view: QueryView) {
        guard let name = try? WireNames.read(bytes, at: DNSHeader.length) else { return }
        let key = CacheKey(question: Question(name: name, type: view.type, recordClass: view.recordClass), view: view)
        inFlight.run(key, work: { [self] done in fetch(key, completion: done) }, completion: { _ in })
    }

    // MARK: - Replies

    private func rejection(_ rejection: QueryRejection, bytes: UnsafeRawBufferPointer, allocator: ByteBufferAllocator)
        -> Outcome
    {
        switch rejection {
        case .drop(let reason):
            return .drop(reason)
        case .formErr(_, let questionEnd):
            return .reply(ResponseBuilder.reply(to: bytes, questionEnd: questionEnd, rcode: .formErr, edns: nil, allocator: allocator))
        case .notImplemented:
            return .reply(ResponseBuilder.reply(to: bytes, questionEnd: nil, rcode: .notImp, edns: nil, allocator: allocator))
        case .badVersion(let view):
            return .reply(ResponseBuilder.reply(
                to: bytes, questionEnd: view.questionEnd, rcode: .badVers, edns: view.edns, allocator: allocator))
        }
    }

    private func errorReply(_ pending: PendingQuery, _ rcode: ResponseCode, allocator: ByteBufferAllocator) -> ByteBuffer {
        pending.wire.withUnsafeBytes {
            ResponseBuilder.reply(
                to: $0, questionEnd: pending.view.questionEnd, rcode: rcode, edns: pending.view.edns, allocator: allocator)
        }
    }

    private func response(
        to view: QueryView, question: Question, rcode: ResponseCode, answers: [ResourceRecord],
        authorities: [ResourceRecord], additionals: [ResourceRecord], authenticated: Bool, authoritative: Bool
    ) -> DNSMessage {
        var flags: MessageFlags = [.qr, .ra]
        if view.recursionDesired { flags.insert(.rd) }
        if view.checkingDisabled { flags.insert(.cd) }
        if authenticated { flags.insert(.ad) }
        if authoritative { flags.insert(.aa) }
        return DNSMessage(
            id: view.id, flags: flags, opcode: .query, rcode: rcode, questions: [question], answers: answers,
            authorities: authorities, additionals: additionals,
            edns: view.edns.map { EDNS(udpPayloadSize: EDNS.advertisedPayloadSize, dnssecOK: $0.dnssecOK) })
    }

    /// Encodes `message`; over UDP, a reply larger than the client takes becomes header,
    /// question and OPT with TC set, and the client retries over TCP (RFC 7766 §5).
    private func encode(
        _ message: DNSMessage, view: QueryView, wire: [UInt8], transport: Transport, allocator: ByteBufferAllocator
    ) -> ByteBuffer {
        let bytes: [UInt8]
        do {
            bytes = try MessageWriter.encode(message, compression: .ignoringCase)
        } catch {
            logger.warning("could not encode a reply", metadata: ["error": "\(error)"])
            return wire.withUnsafeBytes {
                ResponseBuilder.reply(to: $0, questionEnd: view.questionEnd, rcode: .servFail, edns: view.edns, allocator: allocator)
            }
        }
        if transport == .udp, bytes.count > ResponseBuilder.udpLimit(for: view.edns) {
            return wire.withUnsafeBytes {
                ResponseBuilder.reply(
                    to: $0, questionEnd: view.questionEnd, rcode: message.rcode, edns: view.edns, truncated: true,
                    allocator: allocator)
            }
        }
        var buffer = allocator.buffer(capacity: bytes.count)
        buffer.writeBytes(bytes)
        return buffer
    }
}
