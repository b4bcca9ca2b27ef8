// ServiceGroups/: the cluster zone (`cluster.domain`, default `cluster.internal.`), answered from
// the registry's in-memory view, never upstream and never cached:
//   <domain>                         SOA, NS (the zone apex)
//   <group>.<domain>                 A / AAAA of the healthy members, rotated per answer; SRV of
//                                    those with a port
//   <id>.<group>.<domain>            A / AAAA of one member while healthy (the SRV targets)
//   _<service>._<proto>.<group>...   SRV of healthy members whose service or a tag is <service>
// An unknown name is NXDOMAIN, a known one without data NODATA, both with the zone's SOA; while
// the registry is degraded and knows no member, every name below the apex is SERVFAIL.
// TTLs are min(cluster.answer_ttl_s, what is left of the member's registration).

/// Answers for the cluster zone.
public struct ClusterAnswers: Sendable {
    public let domain: DomainName
    let registry: ServiceRegistry

    public init(domain: DomainName, registry: ServiceRegistry) {
        self.domain = domain.lowercased
        self.registry = registry
    }

    private var ttl: UInt32 { UInt32(registry.policy.answerTTLSeconds) }

    /// The answer for `question`, or nil when it is not in the cluster zone.
    public func answer(_ question: Question) -> LocalAnswer? {
        guard question.recordClass == .in, question.name.isSubdomain(of: domain) else { return nil }
        let relative = question.name.labels.dropLast(domain.labelCount).map {
            String(decoding: $0.map(DomainName.lower), as: UTF8.self)
        }
        let now = registry.clock.now()
        // A degraded registry knowing nothing cannot tell a name that does not exist from one
        // it cannot read: SERVFAIL (resolvers retry; NXDOMAIN would be cached as a fact).
        if !relative.isEmpty, registry.isDegraded, registry.isEmpty {
            return LocalAnswer(rcode: .servFail)
        }
        switch relative.count {
        case 0:
            return apex(question)
        case 1:
            guard let members = registry.members(of: relative[0]) else { return nxDomain }
            return group(question, members: members.filter(\.isHealthy), now: now)
        case 2 where !relative[0].hasPrefix("_"):
            guard let member = registry.members(of: relative[1])?.first(where: { $0.id == relative[0] }) else {
                return nxDomain
            }
            let healthy = member.isHealthy ? [member] : []
            return addresses(question, members: healthy, now: now)
        case 2:
            // `_tcp.<group>` and the like: names on the way to SRV owners exist, without data.
            return registry.members(of: relative[1]) == nil ? nxDomain : noData
        case 3 where relative[0].hasPrefix("_") && relative[1].hasPrefix("_"):
            let service = String(relative[0].dropFirst())
            let proto = String(relative[1].dropFirst())
            let offering = (registry.members(of: relative[2]) ?? []).filter { $0.offers(service: service, proto: proto) }
            guard !offering.isEmpty else { return nxDomain }
            guard question.type == .srv || question.type == .any else { return noData }
            return services(question, members: offering.filter(\.isHealthy), now: now)
        default:
            return nxDomain
        }
    }

    // MARK: Names

    private func apex(_ question: Question) -> LocalAnswer {
        switch question.type {
        case .soa: LocalAnswer(answers: [soa])
        case .ns: LocalAnswer(answers: [ResourceRecord(name: domain, type: .ns, ttl: ttl, rdata: domain.wire)])
        case .any: LocalAnswer(answers: [soa, ResourceRecord(name: domain, type: .ns, ttl: ttl, rdata: domain.wire)])
        default: noData
        }
    }

    private func group(_ question: Question, members: [Member], now: UnixMillis) -> LocalAnswer {
        question.type == .srv ? services(question, members: members, now: now) : addresses(question, members: members, now: now)
    }

    private func addresses(_ question: Question, members: [Member], now: UnixMillis) -> LocalAnswer {
        let wanted: [Member]
        switch question.type {
        case .a: wanted = members.filter { !$0.address.isV6 }
        case .aaaa: wanted = members.filter(\.address.isV6)
        case .any: wanted = members
        default: return noData
        }
        guard !wanted.isEmpty else { return noData }
        return LocalAnswer(answers: rotated(wanted).map { address(of: $0, owner: question.name, now: now) })
    }

    private func services(_ question: Question, members: [Member], now: UnixMillis) -> LocalAnswer {
        let wanted = rotated(members.filter { $0.port != nil })
        guard !wanted.isEmpty else { return noData }
        var answers: [ResourceRecord] = []
        var additionals: [ResourceRecord] = []
        for member in wanted {
            guard let port = member.port, let target = targetName(member) else { continue }
            var rdata: [UInt8] = []
            rdata.appendU16(0)  // priority: all equal
            rdata.appendU16(1)  // weight: all equal; the order rotates instead
            rdata.appendU16(port)
            rdata += target.wire
            let ttl = registry.policy.answerTTL(member, now: now)
            answers.append(ResourceRecord(name: question.name, type: .srv, ttl: ttl, rdata: rdata))
            additionals.append(address(of: member, owner: target, now: now))
        }
        return LocalAnswer(answers: answers, additionals: additionals)
    }

    // MARK: Records

    private func address(of member: Member, owner: DomainName, now: UnixMillis) -> ResourceRecord {
        ResourceRecord(
            name: owner, type: member.address.isV6 ? .aaaa : .a, ttl: registry.policy.answerTTL(member, now: now),
            rdata: member.address.bytes)
    }

    /// `<id>.<group>.<domain>`; nil when a label cannot be one (the registry validates them, but
    /// an answer must never trap on a long one).
    private func targetName(_ member: Member) -> DomainName? {
        var wire: [UInt8] = []
        for label in [member.id, member.group] {
            guard (1...DomainName.maxLabelLength).contains(label.utf8.count) else { return nil }
            wire.append(UInt8(label.utf8.count))
            wire += label.utf8
        }
        return DomainName(wire: wire + domain.wire)
    }

    /// The list turned by one more place each answer, so clients spread over the members.
    private func rotated(_ members: [Member]) -> [Member] {
        guard members.count > 1 else { return members }
        let start = registry.nextRotation() % members.count
        return Array(members[start...] + members[..<start])
    }

    /// The zone's SOA: its minimum (the negative TTL, RFC 2308) is the answer TTL.
    private var soa: ResourceRecord {
        var rdata = domain.wire  // MNAME
        rdata += [10] + Array("hostmaster".utf8) + domain.wire  // RNAME
        for value: UInt32 in [1, 3600, 600, 86400, ttl] { rdata.appendU32(value) }
        return ResourceRecord(name: domain, type: .soa, ttl: ttl, rdata: rdata)
    }

    private var nxDomain: LocalAnswer { LocalAnswer(rcode: .nxDomain, authorities: [soa]) }
    private var noData: LocalAnswer { LocalAnswer(authorities: [soa]) }
}
