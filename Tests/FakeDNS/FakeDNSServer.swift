// FakeDNS: a small authoritative-style DNS server for tests and benchmarks, with set delays,
// losses and misbehaviour (silence, wrong IDs, answers from the wrong port, truncation). It
// listens on UDP and TCP on one loopback address and counts what it receives.

import NIOCore
import NIOExtras
import NIOPosix
import Resolver
import Synchronization

/// How a fake server behaves; change it while it runs with `FakeDNSServer.behavior`.
public struct FakeBehavior: Sendable {
    /// Added before every answer.
    public var delay: Duration = .zero
    /// Up to this much more, drawn per answer (uniformly).
    public var jitter: Duration = .zero
    /// Never answers.
    public var silent = false
    /// Share of UDP queries dropped (0…1).
    public var loss = 0.0
    /// Before the real answer, sends a forged one with a wrong ID.
    public var forgeWrongID = false
    /// Before the real answer, sends a forged one from another port.
    public var forgeWrongPort = false
    /// Sends only the forged answers, never the real one.
    public var onlyForged = false
    /// UDP answers longer than this go out truncated (TC, no records); nil: the query's EDNS
    /// payload size, or 512 without EDNS.
    public var truncateUDPAbove: Int? = nil
    /// Answers every query with this rcode and no records.
    public var rcode: ResponseCode? = nil
    /// Answers an A query for any name without records with this IPv4 address (a wildcard).
    public var wildcardA: [UInt8]? = nil
    /// A lame server: answers every query without AA, referring to the root's servers.
    public var upwardReferral = false
    /// Appended to the answer section of every answer (a poisoning attempt).
    public var extraAnswers: [ResourceRecord] = []
    /// A server from before EDNS: FORMERR without OPT to any query with an OPT record.
    public var noEDNS = false
    /// Answers UDP with the query's ID and the QR bit followed by random bytes (garbage).
    public var garbage = false
    /// Over TCP: accepts the connection, reads the query, never answers.
    public var tcpSilent = false
    /// Sends the forgery (see forgeWrongID) from another loopback address, same port as the server.
    public var forgeWrongAddress = false
    /// Over TCP: sends the answer one byte at a time, this far apart (a trickling server).
    public var tcpTrickle: Duration? = nil
    /// Answers A queries for names without records with this many A records (a huge answer).
    public var hugeAnswer: Int? = nil
    /// Sends UDP answers whole whatever their size (up to 65,507 bytes), never truncated.
    public var oversizeUDP = false
    /// Sets AD in every answer (an upstream claiming data it validated, or a forger saying so).
    public var authenticData = false
    /// Scripted replies (Scenario.swift): the first entry matching a question answers it instead
    /// of the records.
    public var script: [ScriptEntry] = []

    public init() {}
}

/// A fake DNS server holding a fixed set of records.
public final class FakeDNSServer: Sendable {
    /// The IPv4 address the forged answers carry for A queries.
    public static let forgedAddress: [UInt8] = [203, 0, 113, 66]

    public let records: [ResourceRecord]
    private let state = Mutex(FakeBehavior())
    private let counter = Atomic<Int>(0)
    private let tcpCounter = Atomic<Int>(0)
    private let group: MultiThreadedEventLoopGroup
    private let channels = Mutex<[any Channel]>([])
    private let forgeChannel = Mutex<(any Channel)?>(nil)
    private let otherAddressChannel = Mutex<(any Channel)?>(nil)
    private let log = Mutex<[(question: Question, at: ContinuousClock.Instant)]>([])

    /// Called for every question received (the fake-dns process logs arrivals with it).
    public let observer: (@Sendable (Question) -> Void)?

    public init(
        records: [ResourceRecord], behavior: FakeBehavior = FakeBehavior(),
        observer: (@Sendable (Question) -> Void)? = nil
    ) {
        self.observer = observer
        self.records = records
        self.group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        state.withLock { $0 = behavior }
    }

    /// Parses records from presentation lines (`www.example. 300 IN A 192.0.2.1`).
    public convenience init(
        zone lines: [String], behavior: FakeBehavior = FakeBehavior(), observer: (@Sendable (Question) -> Void)? = nil
    ) throws {
        let records = try lines.map { line throws(CodecError) in try DNSCodec.record(fromPresentation: line) }
        self.init(records: records, behavior: behavior, observer: observer)
    }

    public var behavior: FakeBehavior {
        get { state.withLock { $0 } }
        set { state.withLock { $0 = newValue } }
    }

    /// Queries received (UDP and TCP).
    public var queryCount: Int { counter.load(ordering: .relaxed) }
    /// Queries received over TCP.
    public var tcpQueryCount: Int { tcpCounter.load(ordering: .relaxed) }
    /// Every question received, in order.
    public var questions: [Question] { log.withLock { $0.map(\.question) } }
    /// Every question received with the time it arrived.
    public var arrivals: [(question: Question, at: ContinuousClock.Instant)] { log.withLock { $0 } }

    /// Starts UDP and TCP listeners on `host` (port 0: any free port, the same for both).
    public func start(host: String = "127.0.0.1", port: Int = 0) async throws -> ServerAddress {
        var lastError: any Error = ChannelError.unknownLocalAddress
        for _ in 0..<8 {
            do {
                let udp = try await bindUDP(host: host, port: port)
                guard let boundPort = udp.localAddress?.port else { throw ChannelError.unknownLocalAddress }
                do {
                    let tcp = try await bindTCP(host: host, port: boundPort)
                    let forge = try await DatagramBootstrap(group: group).bind(host: host, port: 0).get()
                    // Another loopback address with the server's own port, for forgeries that
                    // get the port right and the address wrong.
                    let otherHost = host == "127.0.0.253" ? "127.0.0.254" : "127.0.0.253"
                    let other = try? await DatagramBootstrap(group: group)
                        .channelOption(.socketOption(.so_reuseaddr), value: 1)
                        .bind(host: otherHost, port: boundPort).get()
                    channels.withLock { $0 += [udp, tcp, forge] + (other.map { [$0] } ?? []) }
                    forgeChannel.withLock { $0 = forge }
                    otherAddressChannel.withLock { $0 = other }
                    guard let ip = IPAddress(host) else { throw ChannelError.unknownLocalAddress }
                    return ServerAddress(ip: ip, port: UInt16(boundPort))
                } catch {
                    try? await udp.close()
                    throw error
                }
            } catch {
                lastError = error
                if port != 0 { break }
            }
        }
        throw lastError
    }

    /// Starts plain UDP and TCP listeners (no forgers) on each of `hosts` at `port`: one server
    /// with one set of records and one count answering on many addresses (a zone with hundreds
    /// of nameservers).
    public func listen(on hosts: [String], port: Int) async throws {
        for host in hosts {
            let udp = try await bindUDP(host: host, port: port)
            channels.withLock { $0.append(udp) }
            let tcp = try await bindTCP(host: host, port: port)
            channels.withLock { $0.append(tcp) }
        }
    }

    private func bindUDP(host: String, port: Int) async throws -> any Channel {
        try await DatagramBootstrap(group: group)
            .channelOption(.socketOption(.so_reuseaddr), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(FakeUDPHandler(server: self))
                }
            }
            .bind(host: host, port: port).get()
    }

    private func bindTCP(host: String, port: Int) async throws -> any Channel {
        try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandlers(
                        ByteToMessageHandler(LengthFieldBasedFrameDecoder(lengthFieldBitLength: .twoBytes)),
                        FakeTCPHandler(server: self))
                }
            }
            .bind(host: host, port: port).get()
    }

    public func stop() async {
        let open = channels.withLock { channels in
            defer { channels = [] }
            return channels
        }
        for channel in open { try? await channel.close() }
        try? await group.shutdownGracefully()
    }

    // MARK: Answering

    /// Builds the answer to `query` from the records: the records of the name and type (with a
    /// CNAME chased and a DNAME applied inside the data), NODATA or NXDOMAIN with the closest SOA
    /// otherwise; below a zone's delegations (NS sets under an SOA's name), a referral.
    public func answer(to query: DNSMessage) -> DNSMessage {
        if let entry = scripted(for: query) { return entry.reply(to: query) }
        var reply = zoneAnswer(to: query)
        // The forged extras go into authoritative answers only, after the rcode is decided.
        if reply.flags.contains(.aa), reply.rcode == .noError || reply.rcode == .nxDomain {
            reply.answers += behavior.extraAnswers
        }
        if behavior.authenticData { reply.flags.insert(.ad) }
        return reply
    }

    /// The script entry that answers `query`, if any (a server without EDNS refuses EDNS first).
    private func scripted(for query: DNSMessage) -> ScriptEntry? {
        let behavior = self.behavior
        guard !behavior.script.isEmpty, !(behavior.noEDNS && query.edns != nil), let question = query.questions.first
        else { return nil }
        return behavior.script.first { $0.matches(question) }
    }

    private func zoneAnswer(to query: DNSMessage) -> DNSMessage {
        var reply = DNSMessage(id: query.id, flags: [.qr, .aa, .ra], questions: query.questions)
        if query.flags.contains(.rd) { reply.flags.insert(.rd) }
        if behavior.noEDNS, query.edns != nil {
            reply.rcode = .formErr
            return reply
        }
        if let edns = query.edns { reply.edns = EDNS(udpPayloadSize: 1232, dnssecOK: edns.dnssecOK) }
        if let rcode = behavior.rcode {
            reply.rcode = rcode
            return reply
        }
        guard let question = query.questions.first, query.questions.count == 1 else {
            reply.rcode = .formErr
            return reply
        }
        if behavior.upwardReferral {
            reply.flags.remove(.aa)
            reply.authorities = [ResourceRecord(name: .root, type: .ns, ttl: 3600, rdata: DomainName("a.root-servers.net.")?.wire ?? [0])]
            return reply
        }
        if let count = behavior.hugeAnswer, question.type == .a, !records.contains(where: { $0.name == question.name }) {
            reply.answers = (0..<count).map { (index: Int) -> ResourceRecord in
                let rdata: [UInt8] = [10, UInt8(truncatingIfNeeded: index >> 16), UInt8(truncatingIfNeeded: index >> 8), UInt8(truncatingIfNeeded: index)]
                return ResourceRecord(name: question.name, type: .a, ttl: 300, rdata: rdata)
            }
            return reply
        }
        if let wildcard = behavior.wildcardA, question.type == .a, !records.contains(where: { $0.name == question.name }) {
            reply.answers.append(ResourceRecord(name: question.name, type: .a, ttl: 300, rdata: wildcard))
            return reply
        }
        // Inside a zone with an SOA, delegations below it are answered with referrals, as an
        // authoritative server does. Other records answer as they are.
        if let apex = records.filter({ $0.type == .soa && question.name.isSubdomain(of: $0.name) }).map(\.name)
            .max(by: { $0.labelCount < $1.labelCount }),
            let referral = referral(for: question, below: apex, reply: reply)
        {
            return referral
        }
        var name = question.name
        for _ in 0..<8 {
            if let dname = records.first(where: { $0.type == .dname && name != $0.name && name.isSubdomain(of: $0.name) }),
                let target = dname.targetName, let synthesized = name.replacingSuffix(dname.name, with: target)
            {
                reply.answers += [dname, ResourceRecord(name: name, type: .cname, ttl: dname.ttl, rdata: synthesized.wire)]
                name = synthesized
                continue
            }
            let atName = records.filter { $0.name == name }
            let matching = atName.filter { $0.type == question.type || question.type == .any }
            if !matching.isEmpty {
                reply.answers += matching
                // Like a real server: the addresses of an NS set's names that it holds.
                let targets = Set(matching.filter { $0.type == .ns }.compactMap(\.targetName))
                reply.additionals = records.filter { ($0.type == .a || $0.type == .aaaa) && targets.contains($0.name) }
                return reply
            }
            if let cname = atName.first(where: { $0.type == .cname }),
                let target = try? cname.rdata.withUnsafeBytes({ bytes throws(MalformedReason) in try WireNames.read(bytes, at: 0) })
            {
                reply.answers.append(cname)
                name = target
                continue
            }
            let exists = !atName.isEmpty || records.contains { $0.name.isSubdomain(of: name) }
            if !exists, reply.answers.isEmpty { reply.rcode = .nxDomain }
            if let soa = records.filter({ $0.type == .soa && name.isSubdomain(of: $0.name) })
                .max(by: { $0.name.labelCount < $1.name.labelCount })
            {
                reply.authorities.append(soa)
            }
            return reply
        }
        return reply
    }

    /// The referral for `question` when a delegation below `apex` covers it: no AA, the cut's
    /// NS set in the authority section and the addresses of its nameservers we hold as glue.
    private func referral(for question: Question, below apex: DomainName, reply: DNSMessage) -> DNSMessage? {
        let cuts = records.filter {
            $0.type == .ns && $0.name != apex && $0.name.isSubdomain(of: apex) && question.name.isSubdomain(of: $0.name)
        }.map(\.name)
        // The DS of a cut is the parent's own data (RFC 4035 §3.1.4.1).
        guard let cut = cuts.min(by: { $0.labelCount < $1.labelCount }), !(question.type == .ds && question.name == cut)
        else { return nil }
        var referral = reply
        referral.flags.remove(.aa)
        referral.authorities = records.filter { $0.type == .ns && $0.name == cut }
        let names = Set(referral.authorities.compactMap(\.targetName))
        referral.additionals = records.filter { ($0.type == .a || $0.type == .aaaa) && names.contains($0.name) }
        return referral
    }

    /// What to send for one received query: zero or more (delay, bytes, forged-port) items.
    /// Where a reply goes out from: the server's socket, or (forgeries) another port or address.
    enum Source: Sendable { case server, otherPort, otherAddress }

    func respond(to bytes: [UInt8], overTCP: Bool) -> [(delay: Duration, wire: [UInt8], source: Source)] {
        counter.wrappingAdd(1, ordering: .relaxed)
        if overTCP { tcpCounter.wrappingAdd(1, ordering: .relaxed) }
        guard let query = try? DNSCodec.decode(bytes) else { return [] }
        if let question = query.questions.first {
            let now = ContinuousClock.now
            log.withLock { $0.append((question, now)) }
            observer?(question)
        }
        let behavior = self.behavior
        if behavior.silent || (overTCP && behavior.tcpSilent) { return [] }
        if behavior.garbage, !overTCP, bytes.count >= 2 {
            let noise = (0..<Int.random(in: 10...200)).map { _ in UInt8.random(in: 0...255) }
            return [(behavior.delay, [bytes[0], bytes[1], 0x84, 0x00] + noise, .server)]
        }
        if !overTCP, behavior.loss > 0, Double.random(in: 0..<1) < behavior.loss { return [] }
        if scripted(for: query)?.drop == true { return [] }
        var delay = behavior.delay
        if behavior.jitter > .zero {
            delay += behavior.jitter * Double.random(in: 0...1)
        }
        var reply = answer(to: query)
        var out: [(Duration, [UInt8], Source)] = []
        if behavior.forgeWrongID || behavior.forgeWrongPort || behavior.forgeWrongAddress {
            var forged = reply
            forged.answers = reply.questions.map {
                ResourceRecord(name: $0.name, type: .a, ttl: 3600, rdata: Self.forgedAddress)
            }
            forged.rcode = .noError
            if behavior.forgeWrongID {
                forged.id = query.id &+ 1
                if let wire = try? DNSCodec.encode(forged) { out.append((delay, wire, .server)) }
            }
            if behavior.forgeWrongPort, let wire = try? DNSCodec.encode(forged) {
                out.append((delay, wire, .otherPort))
            }
            if behavior.forgeWrongAddress, let wire = try? DNSCodec.encode(forged) {
                out.append((delay, wire, .otherAddress))
            }
            if behavior.onlyForged { return out }
            delay += .milliseconds(20)
        }
        guard var wire = try? DNSCodec.encode(reply) else { return out }
        // Like a real server: a UDP answer larger than the client's EDNS size (or 512) is truncated.
        let limit = behavior.oversizeUDP ? 65_507 : behavior.truncateUDPAbove ?? Int(max(512, query.edns?.udpPayloadSize ?? 512))
        if !overTCP, wire.count > limit {
            reply.answers = []
            reply.authorities = []
            reply.additionals = []
            reply.flags.insert(.tc)
            wire = (try? DNSCodec.encode(reply)) ?? wire
        }
        out.append((delay, wire, .server))
        return out
    }

    func sendForged(_ wire: [UInt8], to address: SocketAddress, from source: Source) {
        let forger = source == .otherAddress ? otherAddressChannel.withLock { $0 } : forgeChannel.withLock { $0 }
        guard let channel = forger else { return }
        var buffer = channel.allocator.buffer(capacity: wire.count)
        buffer.writeBytes(wire)
        channel.writeAndFlush(AddressedEnvelope(remoteAddress: address, data: buffer), promise: nil)
    }
}

final class FakeUDPHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    typealias OutboundOut = AddressedEnvelope<ByteBuffer>
    let server: FakeDNSServer

    init(server: FakeDNSServer) { self.server = server }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        let client = envelope.remoteAddress
        let channel = context.channel
        for item in server.respond(to: Array(envelope.data.readableBytesView), overTCP: false) {
            let send: @Sendable () -> Void = { [server] in
                if item.source != .server {
                    server.sendForged(item.wire, to: client, from: item.source)
                } else {
                    var buffer = channel.allocator.buffer(capacity: item.wire.count)
                    buffer.writeBytes(item.wire)
                    channel.writeAndFlush(AddressedEnvelope(remoteAddress: client, data: buffer), promise: nil)
                }
            }
            if item.delay == .zero {
                send()
            } else {
                context.eventLoop.scheduleTask(in: .nanoseconds(Int64(item.delay.nanoseconds))) { send() }
            }
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {}
}

final class FakeTCPHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    let server: FakeDNSServer

    init(server: FakeDNSServer) { self.server = server }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let channel = context.channel
        let trickle = server.behavior.tcpTrickle
        for item in server.respond(to: Array(unwrapInboundIn(data).readableBytesView), overTCP: true)
        where item.source == .server {
            // RFC 1035 §4.2.2 framing: a two-byte length, then the message.
            let framed = [UInt8(item.wire.count >> 8), UInt8(item.wire.count & 0xFF)] + item.wire
            let send: @Sendable () -> Void = {
                guard let trickle else {
                    var buffer = channel.allocator.buffer(capacity: framed.count)
                    buffer.writeBytes(framed)
                    channel.writeAndFlush(buffer, promise: nil)
                    return
                }
                // One byte per interval until the connection closes.
                for (index, byte) in framed.enumerated() {
                    channel.eventLoop.scheduleTask(in: .nanoseconds(trickle.nanoseconds * Int64(index))) {
                        guard channel.isActive else { return }
                        var buffer = channel.allocator.buffer(capacity: 1)
                        buffer.writeInteger(byte)
                        channel.writeAndFlush(buffer, promise: nil)
                    }
                }
            }
            if item.delay == .zero {
                send()
            } else {
                context.eventLoop.scheduleTask(in: .nanoseconds(Int64(item.delay.nanoseconds))) { send() }
            }
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

extension Duration {
    var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}
