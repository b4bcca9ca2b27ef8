// ServiceGroups/: the pre-rendered cluster zone. Replies are compared byte for byte with the
// per-query builder it replaced (ReferenceClusterAnswers), on hand-picked and on seeded random
// registries; every kind of registry change must show in the next answer; rotation, the TTL
// countdown on a manual clock, the TC / TCP / 65,535-octet limits, the degraded registry and the
// memory bound are checked one by one. Member addresses are loopback only: they are data here.

import NIOCore
import Testing
import WireTestSupport

@testable import Resolver

/// Builds queries and serves them from a `ClusterZone` or a `ClusterAnswers`.
enum ZoneProbe {
    static let domain = DomainName("cluster.internal.") ?? .root

    /// A query for `name` (as written: its letter case is kept) with optional EDNS.
    static func query(
        _ name: String, _ type: RecordType = .a, id: UInt16 = 0x4A4A, flags: UInt16 = DNSHeader.rdBit,
        edns: (size: UInt16, dnssecOK: Bool)? = nil
    ) -> [UInt8] {
        var query = TestQuery(id: id, flags: flags, name: TestWire.name(name), type: type.rawValue)
        if let edns { query.additionals = [TestWire.opt(udpSize: edns.size, dnssecOK: edns.dnssecOK)] }
        return query.bytes
    }

    /// The zone's reply to `query`; nil when the name is not in the zone.
    static func serve(
        _ zone: inout ClusterZone, _ query: [UInt8], transport: Transport = .tcp, now: UnixMillis,
        degraded: Bool = false
    ) -> [UInt8]? {
        query.withUnsafeBytes { bytes -> [UInt8]? in
            guard let view = try? QueryReader.read(bytes) else { return nil }
            let name = UnsafeRawBufferPointer(rebasing: bytes[DNSHeader.length..<view.nameEnd])
            guard
                case .inZone(let located) = ClusterName.locate(
                    name, in: zone.domain.wire, domainLabels: zone.domain.labelCount)
            else { return nil }
            let reply = zone.reply(
                name: name, located: located, query: bytes, view: view, now: now, degraded: degraded,
                transport: transport,
                allocator: ByteBufferAllocator())
            return reply.getBytes(at: reply.readerIndex, length: reply.readableBytes)
        }
    }

    static func serve(_ answers: ClusterAnswers, _ query: [UInt8], transport: Transport = .tcp) -> [UInt8]? {
        query.withUnsafeBytes { bytes -> [UInt8]? in
            guard let view = try? QueryReader.read(bytes),
                let reply = answers.reply(
                    query: bytes, view: view, transport: transport, allocator: ByteBufferAllocator())
            else { return nil }
            return reply.getBytes(at: reply.readerIndex, length: reply.readableBytes)
        }
    }

    /// The zone of `groups`; each group rendered over a rendering of `previous`'s (copying the
    /// members that did not change) when given.
    static func zone(
        _ groups: [String: [Member]], answerTTL: Int = 5, previous: [String: [Member]]? = nil
    ) -> ClusterZone {
        var zone = ClusterZone(domain: domain, answerTTLSeconds: answerTTL)
        for (group, members) in groups {
            // Sorted by id, as the registry's view keeps them.
            let sorted = members.sorted { $0.id < $1.id }
            let before = previous?[group].flatMap {
                RenderedGroup.render(group: group, members: $0.sorted { $0.id < $1.id }, domain: domain)
            }
            zone.install(RenderedGroup.render(group: group, members: sorted, domain: domain, reusing: before), for: group)
        }
        return zone
    }

    static func decode(_ bytes: [UInt8]?) throws -> DNSMessage {
        try MessageReader.decode(try #require(bytes))
    }

    static func member(
        _ group: String, _ id: String, _ address: IPAddress, port: UInt16? = nil, service: String? = nil,
        proto: String = "tcp", tags: [String] = [], ttl: Int = 60, at now: UnixMillis
    ) -> Member {
        Member(
            group: group, id: id, address: address, port: port, service: service, proto: proto, tags: tags,
            ttlSeconds: ttl,
            registeredAt: now)
    }

    static func loopback(_ last: Int) -> IPAddress { .v4(0x7F00_0000 | UInt32(last & 0xFF_FFFF)) }
    static let v6Loopback = IPAddress.v6([UInt8](repeating: 0, count: 15) + [1])
}

@Suite("ClusterZone")
struct ClusterZoneTests {
    static let now: UnixMillis = 1_800_000_000_000

    /// The reference for the `serve`-th answer of a fresh zone (rotation counter = serve).
    static func reference(
        _ groups: [String: [Member]], _ query: [UInt8], transport: Transport, rotation: Int, now: UnixMillis = now,
        degraded: Bool = false, answerTTL: Int = 5
    ) -> [UInt8]? {
        ReferenceClusterAnswers(
            domain: ZoneProbe.domain, groups: groups.mapValues { $0.sorted { $0.id < $1.id } },
            answerTTLSeconds: answerTTL,
            now: now, degraded: degraded, rotation: rotation
        ).reply(query, transport: transport)
    }

    static let sample: [String: [Member]] = {
        let now = ClusterZoneTests.now
        var sick = ZoneProbe.member("web", "s", ZoneProbe.loopback(9), port: 80, service: "http", at: now)
        sick.health = .unhealthy(since: now, failures: 1, nextCheck: now + 1000)
        return [
            "web": [
                ZoneProbe.member("web", "a", ZoneProbe.loopback(1), port: 80, service: "http", at: now),
                ZoneProbe.member("web", "b", ZoneProbe.loopback(2), port: 81, tags: ["http", "blue"], ttl: 3, at: now),
                ZoneProbe.member("web", "c", ZoneProbe.v6Loopback, port: 53, service: "dns", proto: "udp", at: now),
                ZoneProbe.member("web", "d", ZoneProbe.loopback(4), service: "http", at: now),
                sick,
            ],
            "db": [ZoneProbe.member("db", "x", ZoneProbe.loopback(5), at: now)],
        ]
    }()

    static let questions: [(String, RecordType)] = [
        ("web.cluster.internal.", .a), ("WeB.Cluster.Internal.", .a), ("web.cluster.internal.", .aaaa),
        ("web.cluster.internal.", .any), ("web.cluster.internal.", .srv), ("web.cluster.internal.", .txt),
        ("a.web.cluster.internal.", .a), ("c.web.cluster.internal.", .aaaa), ("c.web.cluster.internal.", .a),
        ("a.web.cluster.internal.", .any), ("s.web.cluster.internal.", .a), ("zz.web.cluster.internal.", .a),
        ("_http._tcp.web.cluster.internal.", .srv), ("_HTTP._tcp.WEB.cluster.internal.", .any),
        ("_blue._tcp.web.cluster.internal.", .srv), ("_http._tcp.web.cluster.internal.", .a),
        ("_dns._udp.web.cluster.internal.", .srv), ("_dns._tcp.web.cluster.internal.", .srv),
        ("_tcp.web.cluster.internal.", .srv), ("_tcp.nope.cluster.internal.", .srv), ("x.y.web.cluster.internal.", .a),
        ("a.b.c.d.cluster.internal.", .a), ("nope.cluster.internal.", .a), ("cluster.internal.", .soa),
        ("CLUSTER.internal.", .ns), ("cluster.internal.", .any), ("cluster.internal.", .a),
        ("db.cluster.internal.", .aaaa),
        ("_http._tcp.db.cluster.internal.", .srv),
    ]

    @Test("every question of a sample registry gets the per-query builder's reply, byte for byte")
    func sameAsReference() throws {
        for (name, type) in Self.questions {
            for transport in [Transport.udp, .tcp] {
                let choices: [(size: UInt16, dnssecOK: Bool)?] = [nil, (1232, true), (512, false)]
                for edns in choices {
                    var zone = ZoneProbe.zone(Self.sample)
                    for rotation in 0..<3 {
                        let query = ZoneProbe.query(name, type, flags: DNSHeader.rdBit | DNSHeader.cdBit, edns: edns)
                        let rendered = ZoneProbe.serve(&zone, query, transport: transport, now: Self.now + 1500)
                        let reference = Self.reference(
                            Self.sample, query, transport: transport, rotation: rotation, now: Self.now + 1500)
                        #expect(rendered != nil, "\(name) \(type)")
                        #expect(
                            rendered == reference,
                            "\(name) \(type) \(transport) \(String(describing: edns)) rotation \(rotation)")
                    }
                }
            }
        }
        var zone = ZoneProbe.zone(Self.sample)
        #expect(ZoneProbe.serve(&zone, ZoneProbe.query("example.com."), now: Self.now) == nil)
        #expect(ZoneProbe.serve(&zone, ZoneProbe.query("xcluster.internal."), now: Self.now) == nil)
        #expect(ZoneProbe.serve(&zone, ZoneProbe.query("internal."), now: Self.now) == nil)
    }

    @Test(
        "random registries and questions (seeded): the same bytes as the per-query builder",
        arguments: [1, 2, 3, 4] as [UInt64])
    func randomised(seed: UInt64) throws {
        var random = SplitMix64(seed: seed)
        let groupNames = ["web", "db", "cache", "q", String(repeating: "g", count: 63)]
        let labels = ["a", "b", "node-1", "node-2", "x9", "m", String(repeating: "n", count: 40), "z"]
        let services = ["http", "dns", "grpc", "blue"]
        for round in 0..<25 {
            var groups: [String: [Member]] = [:]
            for group in groupNames where Bool.random(using: &random) {
                var members: [Member] = []
                for id in labels where Int.random(in: 0..<3, using: &random) > 0 {
                    var member = ZoneProbe.member(
                        group, id,
                        Bool.random(using: &random)
                            ? ZoneProbe.loopback(Int.random(in: 1...0xFFFF, using: &random)) : ZoneProbe.v6Loopback,
                        port: Int.random(in: 0..<4, using: &random) == 0
                            ? nil : UInt16.random(in: 1...65535, using: &random),
                        service: Bool.random(using: &random) ? services.randomElement(using: &random) : nil,
                        proto: Bool.random(using: &random) ? "tcp" : "udp",
                        tags: services.filter { _ in Int.random(in: 0..<3, using: &random) == 0 },
                        ttl: Int.random(in: 1...20, using: &random),
                        at: Self.now - Int64.random(in: 0...15_000, using: &random))
                    if Int.random(in: 0..<4, using: &random) == 0 {
                        member.health = .unhealthy(since: Self.now, failures: 1, nextCheck: Self.now + 1000)
                    }
                    members.append(member)
                }
                if !members.isEmpty { groups[group] = members }
            }
            // A previous rendering to copy from: some members changed (address, port, health,
            // tags), some gone, some new since.
            var previous: [String: [Member]] = [:]
            for (group, members) in groups {
                previous[group] = members.compactMap { member -> Member? in
                    var old = member
                    switch Int.random(in: 0..<6, using: &random) {
                    case 0: return nil
                    case 1: old.address = ZoneProbe.loopback(Int.random(in: 1...0xFFFF, using: &random))
                    case 2: old.port = old.port == nil ? 1 : nil
                    case 3: old.health = old.isHealthy ? .unhealthy(since: Self.now, failures: 1, nextCheck: Self.now) : .healthy
                    case 4: old.tags = []
                    default: break
                    }
                    return old
                } + [ZoneProbe.member(group, "gone", ZoneProbe.loopback(99), port: 1, at: Self.now)]
            }
            let answerTTL = Int.random(in: 0...30, using: &random)
            let degraded = Int.random(in: 0..<5, using: &random) == 0
            for _ in 0..<40 {
                var parts: [String] = []
                switch Int.random(in: 0..<5, using: &random) {
                case 0: parts = []
                case 1: parts = [groupNames.randomElement(using: &random) ?? "web"]
                case 2:
                    parts = [
                        labels.randomElement(using: &random) ?? "a", groupNames.randomElement(using: &random) ?? "web",
                    ]
                case 3:
                    parts = [
                        "_" + (services.randomElement(using: &random) ?? "http"),
                        Bool.random(using: &random) ? "_tcp" : "_udp",
                        groupNames.randomElement(using: &random) ?? "web",
                    ]
                default: parts = ["_tcp", "x", "web", "y"].filter { _ in Bool.random(using: &random) }
                }
                var name = (parts + ["cluster", "internal"]).joined(separator: ".") + "."
                if Bool.random(using: &random) { name = name.uppercased() }
                let type = [RecordType.a, .aaaa, .any, .srv, .txt, .soa, .ns].randomElement(using: &random) ?? .a
                let transport: Transport = Bool.random(using: &random) ? .udp : .tcp
                let edns: (size: UInt16, dnssecOK: Bool)? =
                    Bool.random(using: &random)
                    ? nil : (UInt16.random(in: 512...4096, using: &random), Bool.random(using: &random))
                let query = ZoneProbe.query(
                    name, type, id: UInt16.random(in: 0...65535, using: &random),
                    flags: Bool.random(using: &random) ? DNSHeader.rdBit : DNSHeader.cdBit, edns: edns)
                var zone = ZoneProbe.zone(groups, answerTTL: answerTTL, previous: Bool.random(using: &random) ? previous : nil)
                for rotation in 0..<3 {
                    let rendered = ZoneProbe.serve(
                        &zone, query, transport: transport, now: Self.now, degraded: degraded)
                    let reference = Self.reference(
                        groups, query, transport: transport, rotation: rotation, degraded: degraded,
                        answerTTL: answerTTL)
                    #expect(
                        rendered == reference,
                        "seed \(seed) round \(round): \(name) \(type) \(transport) rotation \(rotation)")
                }
            }
        }
    }

    @Test("each answer starts one member further on, in A, SRV (targets in the same order) and service answers")
    func rotation() throws {
        let members = (1...3).map {
            ZoneProbe.member(
                "web", "n\($0)", ZoneProbe.loopback($0), port: UInt16(8080 + $0), service: "http", at: Self.now)
        }
        var zone = ZoneProbe.zone(["web": members])
        var firsts: [[UInt8]] = []
        for _ in 0..<4 {
            let reply = try ZoneProbe.decode(
                ZoneProbe.serve(&zone, ZoneProbe.query("web.cluster.internal."), now: Self.now))
            #expect(reply.answers.count == 3)
            firsts.append(reply.answers.first?.rdata ?? [])
        }
        #expect(firsts == [[127, 0, 0, 1], [127, 0, 0, 2], [127, 0, 0, 3], [127, 0, 0, 1]])
        for name in ["web.cluster.internal.", "_http._tcp.web.cluster.internal."] {
            var targets: [String] = []
            for _ in 0..<3 {
                let reply = try ZoneProbe.decode(ZoneProbe.serve(&zone, ZoneProbe.query(name, .srv), now: Self.now))
                #expect(
                    reply.additionals.map(\.name.description)
                        == reply.answers.map { DomainName(wire: Array($0.rdata.dropFirst(6)))?.description ?? "" })
                targets.append(reply.additionals.first?.name.description ?? "")
            }
            #expect(
                targets == ["n1.web.cluster.internal.", "n2.web.cluster.internal.", "n3.web.cluster.internal."],
                "\(name)")
        }
    }

    @Test("TTLs count down on the clock: min(answer TTL, what is left of the registration), 0 once it ran out")
    func ttlCountdown() throws {
        let members = [
            ZoneProbe.member("web", "a", ZoneProbe.loopback(1), port: 80, service: "http", ttl: 3, at: Self.now),
            ZoneProbe.member("web", "b", ZoneProbe.loopback(2), port: 81, service: "http", ttl: 60, at: Self.now),
        ]
        var zone = ZoneProbe.zone(["web": members], answerTTL: 5)
        func ttls(_ name: String, _ type: RecordType, at now: UnixMillis) throws -> [UInt32] {
            let reply = try ZoneProbe.decode(ZoneProbe.serve(&zone, ZoneProbe.query(name, type), now: now))
            return (reply.answers + reply.additionals + reply.authorities).map(\.ttl)
        }
        #expect(try ttls("a.web.cluster.internal.", .a, at: Self.now) == [3])
        #expect(try ttls("a.web.cluster.internal.", .a, at: Self.now + 1500) == [1])
        #expect(try ttls("a.web.cluster.internal.", .a, at: Self.now + 3000) == [0])
        #expect(try ttls("a.web.cluster.internal.", .a, at: Self.now + 99_000) == [0])
        #expect(try ttls("b.web.cluster.internal.", .a, at: Self.now + 40_000) == [5])
        #expect(try ttls("b.web.cluster.internal.", .a, at: Self.now + 57_500) == [2])
        #expect(try Set(ttls("_http._tcp.web.cluster.internal.", .srv, at: Self.now + 2000)) == [1, 5])
        #expect(try ttls("nope.cluster.internal.", .a, at: Self.now) == [5])
        // A heartbeat moves the expiry only; a reload moves the answer TTL.
        var renewed = members[0]
        renewed.expiresAt = Self.now + 100_000
        let renewedInPlace = zone.renew(renewed)
        #expect(renewedInPlace)
        #expect(try ttls("a.web.cluster.internal.", .a, at: Self.now + 99_000) == [1])
        zone.answerTTLSeconds = 1
        #expect(try ttls("b.web.cluster.internal.", .a, at: Self.now) == [1])
        #expect(try ttls("cluster.internal.", .soa, at: Self.now) == [1])
        var moved = members[0]
        moved.address = ZoneProbe.loopback(7)
        let movedInPlace = zone.renew(moved)
        #expect(!movedInPlace, "an address change needs a new rendering")
    }

    @Test(
        "too big for the client's UDP size: TC without records; over TCP whole; over 65,535 octets SERVFAIL, as before")
    func limits() throws {
        func group(_ count: Int) -> [String: [Member]] {
            [
                "big": (0..<count).map {
                    ZoneProbe.member(
                        "big", "member-\($0)", ZoneProbe.loopback($0 + 1), port: 9000, service: "http", at: Self.now)
                }
            ]
        }
        let big = group(200)
        var zone = ZoneProbe.zone(big)
        for (type, transport, edns) in [
            (RecordType.a, Transport.udp, (size: UInt16(1232), dnssecOK: false)),
            (.a, .tcp, (size: UInt16(1232), dnssecOK: false)),
            (.srv, .udp, (size: UInt16(4096), dnssecOK: true)), (.srv, .tcp, (size: UInt16(4096), dnssecOK: true)),
        ] {
            let query = ZoneProbe.query("big.cluster.internal.", type, edns: edns)
            let reply = try ZoneProbe.decode(ZoneProbe.serve(&zone, query, transport: transport, now: Self.now))
            #expect(reply.flags.contains(.tc) == (transport == .udp), "\(type) \(transport)")
            #expect(reply.answers.count == (transport == .udp ? 0 : 200), "\(type) \(transport)")
            #expect(reply.edns != nil)
        }
        // 2,000 SRV records and their targets pass 65,535 octets: SERVFAIL, as the writer refused it.
        let huge = group(2000)
        var hugeZone = ZoneProbe.zone(huge)
        for transport in [Transport.tcp, .udp] {
            let query = ZoneProbe.query("big.cluster.internal.", .srv)
            let reply = ZoneProbe.serve(&hugeZone, query, transport: transport, now: Self.now)
            #expect(try ZoneProbe.decode(reply).rcode == .servFail)
            #expect(reply == Self.reference(huge, query, transport: transport, rotation: 1), "\(transport)")
        }
        // Its A answer (2,000 × 16 octets) still fits TCP.
        let a = try ZoneProbe.decode(
            ZoneProbe.serve(&hugeZone, ZoneProbe.query("big.cluster.internal."), now: Self.now))
        #expect(a.answers.count == 2000)
    }

    @Test("a degraded registry that knows nobody: SERVFAIL below the apex; one that knows members answers from them")
    func degraded() throws {
        var empty = ZoneProbe.zone([:])
        let servFail = try ZoneProbe.decode(
            ZoneProbe.serve(&empty, ZoneProbe.query("web.cluster.internal."), now: Self.now, degraded: true))
        #expect(servFail.rcode == .servFail && servFail.flags.contains(.aa))
        let apex = try ZoneProbe.decode(
            ZoneProbe.serve(&empty, ZoneProbe.query("cluster.internal.", .soa), now: Self.now, degraded: true))
        #expect(apex.rcode == .noError && apex.answers.count == 1)
        #expect(
            try ZoneProbe.decode(ZoneProbe.serve(&empty, ZoneProbe.query("web.cluster.internal."), now: Self.now)).rcode
                == .nxDomain)
        var known = ZoneProbe.zone(Self.sample)
        let reply = try ZoneProbe.decode(
            ZoneProbe.serve(&known, ZoneProbe.query("db.cluster.internal."), now: Self.now, degraded: true))
        #expect(reply.answers.map(\.rdata) == [[127, 0, 0, 5]])
    }

    @Test("a member whose SRV target cannot be written is left out of SRV answers, not the answer")
    func unwritableTarget() throws {
        // 64 + 64 + the domain's 156 octets: the group's name fits 255 octets, a target under it does not.
        let long =
            DomainName((0..<5).map { _ in String(repeating: "d", count: 30) }.joined(separator: ".") + ".") ?? .root
        let group = String(repeating: "g", count: 63)
        let members = [
            ZoneProbe.member(group, String(repeating: "i", count: 63), ZoneProbe.loopback(1), port: 80, at: Self.now),
            ZoneProbe.member(group, "a", ZoneProbe.loopback(2), port: 81, at: Self.now),
        ]
        var zone = ClusterZone(domain: long, answerTTLSeconds: 5)
        zone.install(RenderedGroup.render(group: group, members: members, domain: long), for: group)
        let name = group + "." + long.description
        let srv = try ZoneProbe.decode(ZoneProbe.serve(&zone, ZoneProbe.query(name, .srv), now: Self.now))
        #expect(srv.rcode == .noError && srv.answers.count == 1 && srv.additionals.count == 1)
        let a = try ZoneProbe.decode(ZoneProbe.serve(&zone, ZoneProbe.query(name, .a), now: Self.now))
        #expect(a.answers.count == 2, "the address records stay")
    }

    @Test("memory: at most 1 KB per member and 0.4 KB per _service._proto name, with labels of the longest sizes")
    func memoryBound() throws {
        let tags = (0..<32).map { "t\($0)-" + String(repeating: "x", count: 55) }
        for (groups, perGroup) in [(1, 2000), (200, 1), (50, 20)] {
            var zone = ClusterZone(domain: ZoneProbe.domain, answerTTLSeconds: 5)
            var services = 0
            for g in 0..<groups {
                let group = "g\(g)-" + String(repeating: "g", count: 63 - "g\(g)-".count)
                let members = (0..<perGroup).map {
                    ZoneProbe.member(
                        group, "m\($0)-" + String(repeating: "i", count: 63 - "m\($0)-".count),
                        $0 % 2 == 0 ? ZoneProbe.loopback($0) : ZoneProbe.v6Loopback, port: 443,
                        service: "s-" + String(repeating: "s", count: 60), tags: tags, at: Self.now)
                }
                services += tags.count + 1
                zone.install(RenderedGroup.render(group: group, members: members, domain: ZoneProbe.domain), for: group)
            }
            let members = groups * perGroup
            let bound = 1024 * members + 400 * services
            #expect(zone.approximateBytes <= bound, "\(groups) × \(perGroup): \(zone.approximateBytes) > \(bound)")
        }
    }
}

@Suite("ClusterAnswers rendering")
struct ClusterRenderingTests {
    static func registry(time: ManualWallClock, store: MemoryStore = MemoryStore()) -> ServiceRegistry {
        var policy = RegistryPolicy()
        policy.answerTTLSeconds = 5
        return ServiceRegistry(store: store, policy: policy, clock: time.clock)
    }

    static func addresses(_ answers: ClusterAnswers, _ name: String = "web.cluster.internal.") throws -> Set<[UInt8]> {
        Set(try ZoneProbe.decode(ZoneProbe.serve(answers, ZoneProbe.query(name))).answers.map(\.rdata))
    }

    @Test("register, deregister, health changes, heartbeats, mirrored changes, load, reset and reloads all show")
    func everyChange() async throws {
        let time = ManualWallClock()
        let store = MemoryStore()
        let registry = Self.registry(time: time, store: store)
        let answers = ClusterAnswers(domain: ZoneProbe.domain, registry: registry)
        let a = ZoneProbe.member("web", "a", ZoneProbe.loopback(1), port: 80, ttl: 10, at: time.now)
        let b = ZoneProbe.member("web", "b", ZoneProbe.loopback(2), ttl: 10, at: time.now)

        _ = try await registry.register(a)
        _ = try await registry.register(b)
        #expect(try Self.addresses(answers) == [[127, 0, 0, 1], [127, 0, 0, 2]])
        let rendered = answers.renders

        // A heartbeat renews the TTL without writing the records again.
        time.advance(seconds: 8)
        #expect(
            try ZoneProbe.decode(ZoneProbe.serve(answers, ZoneProbe.query("a.web.cluster.internal."))).answers.first?
                .ttl == 2)
        _ = try await registry.heartbeat(group: "web", id: "a")
        #expect(
            try ZoneProbe.decode(ZoneProbe.serve(answers, ZoneProbe.query("a.web.cluster.internal."))).answers.first?
                .ttl == 5)
        #expect(answers.renders == rendered, "a heartbeat only moves the expiry")

        // A failed check takes the member out; a passing one brings it back.
        let current = try #require(registry.members(of: "web")?.first { $0.id == "b" })
        await registry.record(CheckResult(at: time.now, healthy: false, detail: "refused"), of: current)
        #expect(try Self.addresses(answers) == [[127, 0, 0, 1]])
        let sick = try #require(registry.members(of: "web")?.first { $0.id == "b" })
        await registry.record(CheckResult(at: time.now, healthy: true, detail: "connected"), of: sick)
        #expect(try Self.addresses(answers) == [[127, 0, 0, 1], [127, 0, 0, 2]])

        // Deregistration, and a group that goes away.
        #expect(try await registry.deregister(group: "web", id: "b"))
        #expect(try Self.addresses(answers) == [[127, 0, 0, 1]])
        #expect(try await registry.deregister(group: "web", id: "a"))
        #expect(
            try ZoneProbe.decode(ZoneProbe.serve(answers, ZoneProbe.query("web.cluster.internal."))).rcode == .nxDomain)

        // Mirrored changes (a worker, etcd) and a whole view (a worker's snapshot, load).
        let c = ZoneProbe.member("web", "c", ZoneProbe.loopback(3), ttl: 10, at: time.now)
        registry.mirror([.put(c)])
        #expect(try Self.addresses(answers) == [[127, 0, 0, 3]])
        registry.mirror([.delete(group: "web", id: "c")])
        #expect(
            try ZoneProbe.decode(ZoneProbe.serve(answers, ZoneProbe.query("web.cluster.internal."))).rcode == .nxDomain)
        let d = ZoneProbe.member("db", "d", ZoneProbe.loopback(4), ttl: 10, at: time.now)
        registry.mirror(all: [d])
        #expect(try Self.addresses(answers, "db.cluster.internal.") == [[127, 0, 0, 4]])
        try await store.save([.put(c)])
        try await registry.load()
        #expect(try Self.addresses(answers) == [[127, 0, 0, 3]])
        #expect(
            try ZoneProbe.decode(ZoneProbe.serve(answers, ZoneProbe.query("db.cluster.internal."))).rcode == .nxDomain)

        // A reload of cluster.answer_ttl_s shows in the next answer.
        var policy = registry.policy
        policy.answerTTLSeconds = 2
        registry.replacePolicy(policy)
        #expect(
            try ZoneProbe.decode(ZoneProbe.serve(answers, ZoneProbe.query("web.cluster.internal."))).answers.first?.ttl
                == 2)
        #expect(
            try ZoneProbe.decode(ZoneProbe.serve(answers, ZoneProbe.query("cluster.internal.", .soa))).answers.first?
                .ttl == 2)
    }

    @Test("a reset of a degraded registry: SERVFAIL while it knows nobody, then the fresh store's members")
    func reset() async throws {
        let time = ManualWallClock()
        let registry = Self.registry(time: time)
        let answers = ClusterAnswers(domain: ZoneProbe.domain, registry: registry)
        registry.degrade("registry file unreadable")
        #expect(
            try ZoneProbe.decode(ZoneProbe.serve(answers, ZoneProbe.query("web.cluster.internal."))).rcode == .servFail)
        let fresh = MemoryStore()
        try await fresh.save([.put(ZoneProbe.member("web", "a", ZoneProbe.loopback(1), ttl: 10, at: time.now))])
        registry.allowReset { () throws(RegistryError) -> (store: any RegistryStore, setAside: String) in
            (fresh, "aside")
        }
        #expect(try await registry.reset() == "aside")
        #expect(try Self.addresses(answers) == [[127, 0, 0, 1]])
    }

    @Test("names outside the zone and other classes are left to the rest of the pipeline")
    func outside() throws {
        let answers = ClusterAnswers(domain: ZoneProbe.domain, registry: Self.registry(time: ManualWallClock()))
        #expect(ZoneProbe.serve(answers, ZoneProbe.query("example.com.")) == nil)
        var chaos = TestQuery(name: TestWire.name("web.cluster.internal."), recordClass: 3)
        chaos.flags = 0
        #expect(ZoneProbe.serve(answers, chaos.bytes) == nil)
    }
}
