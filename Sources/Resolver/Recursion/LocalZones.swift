// Recursion/: the zones a recursive resolver answers itself instead of asking the root
// (RFC 6303): reverse zones of private, loopback, link-local and documentation addresses, whose
// queries would only burden the public servers and leak local addresses. Each is an empty zone
// — SOA and NS at the apex, NXDOMAIN below — except the loopback addresses, which map to
// `localhost.`. A forward zone covering the name wins (a site's own reverse DNS for 10/8).

/// RFC 6303's locally served zones.
public struct LocalZones: Sendable {
    let forwardZones: ForwardZones

    public init(forwardZones: ForwardZones) {
        self.forwardZones = forwardZones
    }

    /// The zones, as RFC 6303 §4 lists them (plus RFC 6598's shared address space, RFC 7793).
    static let zones: [DomainName] = {
        var names = ["10", "168.192", "0", "127", "254.169", "2.0.192", "100.51.198", "113.0.203", "255.255.255.255"]
        names += (16...31).map { "\($0).172" }
        names += (64...127).map { "\($0).100" }
        var zones = names.map { "\($0).in-addr.arpa." }
        zones += [
            String(repeating: "0.", count: 32) + "ip6.arpa.",  // ::/128
            "1." + String(repeating: "0.", count: 31) + "ip6.arpa.",  // ::1/128
            "d.f.ip6.arpa.",  // fd00::/8
            "8.e.f.ip6.arpa.", "9.e.f.ip6.arpa.", "a.e.f.ip6.arpa.", "b.e.f.ip6.arpa.",  // fe80::/10
            "8.b.d.0.1.0.0.2.ip6.arpa.",  // 2001:db8::/32
        ]
        return zones.compactMap { DomainName($0) }
    }()

    /// The loopback addresses' reverse names, answered with `localhost.`.
    static let loopbackNames: [DomainName] = [
        "1.0.0.127.in-addr.arpa.", "1." + String(repeating: "0.", count: 31) + "ip6.arpa.",
    ].compactMap { DomainName($0) }

    private static let localhost = DomainName("localhost.") ?? .root

    /// The answer for `question`, or nil when its name is in no local zone (or a forward zone
    /// covers it).
    public func answer(_ question: Question) -> LocalAnswer? {
        guard question.recordClass == .in,
            let zone = Self.zones.filter({ question.name.isSubdomain(of: $0) }).max(by: { $0.labelCount < $1.labelCount }),
            forwardZones.zone(for: question.name) == nil
        else { return nil }
        let soa = Self.soa(zone)
        if Self.loopbackNames.contains(question.name) {
            guard question.type == .ptr || question.type == .any else { return LocalAnswer(authorities: [soa]) }
            return LocalAnswer(answers: [
                ResourceRecord(name: question.name, type: .ptr, ttl: 10800, rdata: Self.localhost.wire)
            ])
        }
        guard question.name == zone else { return LocalAnswer(rcode: .nxDomain, authorities: [soa]) }
        switch question.type {
        case .soa: return LocalAnswer(answers: [soa])
        case .ns: return LocalAnswer(answers: [ResourceRecord(name: zone, type: .ns, ttl: 10800, rdata: zone.wire)])
        default: return LocalAnswer(authorities: [soa])
        }
    }

    /// RFC 6303 §3: `@ 10800 IN SOA @ nobody.invalid. 1 3600 1200 604800 10800`.
    static func soa(_ zone: DomainName) -> ResourceRecord {
        var rdata = zone.wire
        rdata += DomainName("nobody.invalid.")?.wire ?? [0]
        for value: UInt32 in [1, 3600, 1200, 604_800, 10800] { rdata.appendU32(value) }
        return ResourceRecord(name: zone, type: .soa, ttl: 10800, rdata: rdata)
    }
}
