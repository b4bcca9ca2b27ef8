// ServiceGroups/: the per-query builder the cluster zone had before its answers were rendered
// once per change (ClusterAnswers and QueryPipeline.encode at 63851d3), kept as the reference the
// rendered replies are compared with byte for byte. Only what it is told: the groups, the time,
// the registry's degraded state and where the rotation starts.

import NIOCore

@testable import Resolver

struct ReferenceClusterAnswers {
    let domain: DomainName
    /// group → members sorted by id (the registry's view).
    let groups: [String: [Member]]
    let answerTTLSeconds: Int
    let now: UnixMillis
    let degraded: Bool
    /// The rotation counter's value for this answer (the old registry's `nextRotation()`).
    let rotation: Int

    private var policy: RegistryPolicy {
        var policy = RegistryPolicy()
        policy.answerTTLSeconds = answerTTLSeconds
        return policy
    }

    private var ttl: UInt32 { UInt32(answerTTLSeconds) }

    /// The reply bytes to `query`, as the pipeline wrote them; nil when the name is not in the zone.
    func reply(_ query: [UInt8], transport: Transport) -> [UInt8]? {
        query.withUnsafeBytes { bytes -> [UInt8]? in
            guard let view = try? QueryReader.read(bytes), let name = try? WireNames.read(bytes, at: DNSHeader.length)
            else { return nil }
            let question = Question(name: name, type: view.type, recordClass: view.recordClass)
            guard let answer = answer(question) else { return nil }
            var flags: MessageFlags = [.qr, .ra, .aa]
            if view.recursionDesired { flags.insert(.rd) }
            if view.checkingDisabled { flags.insert(.cd) }
            let message = DNSMessage(
                id: view.id, flags: flags, opcode: .query, rcode: answer.rcode, questions: [question],
                answers: answer.answers,
                authorities: answer.authorities, additionals: answer.additionals,
                edns: view.edns.map { EDNS(udpPayloadSize: EDNS.advertisedPayloadSize, dnssecOK: $0.dnssecOK) })
            let allocator = ByteBufferAllocator()
            let buffer: ByteBuffer
            do {
                let encoded = try MessageWriter.encode(message, compression: .ignoringCase)
                if transport == .udp, encoded.count > ResponseBuilder.udpLimit(for: view.edns) {
                    buffer = ResponseBuilder.reply(
                        to: bytes, questionEnd: view.questionEnd, rcode: message.rcode, edns: view.edns,
                        truncated: true,
                        allocator: allocator)
                } else {
                    return encoded
                }
            } catch {
                buffer = ResponseBuilder.reply(
                    to: bytes, questionEnd: view.questionEnd, rcode: .servFail, edns: view.edns, allocator: allocator)
            }
            return buffer.getBytes(at: buffer.readerIndex, length: buffer.readableBytes)
        }
    }

    func answer(_ question: Question) -> LocalAnswer? {
        guard question.recordClass == .in, question.name.isSubdomain(of: domain) else { return nil }
        let relative = question.name.labels.dropLast(domain.labelCount).map {
            String(decoding: $0.map(DomainName.lower), as: UTF8.self)
        }
        if !relative.isEmpty, degraded, groups.isEmpty {
            return LocalAnswer(rcode: .servFail)
        }
        switch relative.count {
        case 0:
            return apex(question)
        case 1:
            guard let members = groups[relative[0]] else { return nxDomain }
            return group(question, members: members.filter(\.isHealthy))
        case 2 where !relative[0].hasPrefix("_"):
            guard let member = groups[relative[1]]?.first(where: { $0.id == relative[0] }) else { return nxDomain }
            return addresses(question, members: member.isHealthy ? [member] : [])
        case 2:
            return groups[relative[1]] == nil ? nxDomain : noData
        case 3 where relative[0].hasPrefix("_") && relative[1].hasPrefix("_"):
            let service = String(relative[0].dropFirst())
            let proto = String(relative[1].dropFirst())
            let offering = (groups[relative[2]] ?? []).filter { $0.offers(service: service, proto: proto) }
            guard !offering.isEmpty else { return nxDomain }
            guard question.type == .srv || question.type == .any else { return noData }
            return services(question, members: offering.filter(\.isHealthy))
        default:
            return nxDomain
        }
    }

    private func apex(_ question: Question) -> LocalAnswer {
        switch question.type {
        case .soa: LocalAnswer(answers: [soa])
        case .ns: LocalAnswer(answers: [ResourceRecord(name: domain, type: .ns, ttl: ttl, rdata: domain.wire)])
        case .any: LocalAnswer(answers: [soa, ResourceRecord(name: domain, type: .ns, ttl: ttl, rdata: domain.wire)])
        default: noData
        }
    }

    private func group(_ question: Question, members: [Member]) -> LocalAnswer {
        question.type == .srv ? services(question, members: members) : addresses(question, members: members)
    }

    private func addresses(_ question: Question, members: [Member]) -> LocalAnswer {
        let wanted: [Member]
        switch question.type {
        case .a: wanted = members.filter { !$0.address.isV6 }
        case .aaaa: wanted = members.filter(\.address.isV6)
        case .any: wanted = members
        default: return noData
        }
        guard !wanted.isEmpty else { return noData }
        return LocalAnswer(answers: rotated(wanted).map { address(of: $0, owner: question.name) })
    }

    private func services(_ question: Question, members: [Member]) -> LocalAnswer {
        let wanted = rotated(members.filter { $0.port != nil })
        guard !wanted.isEmpty else { return noData }
        var answers: [ResourceRecord] = []
        var additionals: [ResourceRecord] = []
        for member in wanted {
            guard let port = member.port, let target = targetName(member) else { continue }
            var rdata: [UInt8] = []
            rdata.appendU16(0)
            rdata.appendU16(1)
            rdata.appendU16(port)
            rdata += target.wire
            answers.append(
                ResourceRecord(name: question.name, type: .srv, ttl: policy.answerTTL(member, now: now), rdata: rdata))
            additionals.append(address(of: member, owner: target))
        }
        return LocalAnswer(answers: answers, additionals: additionals)
    }

    private func address(of member: Member, owner: DomainName) -> ResourceRecord {
        ResourceRecord(
            name: owner, type: member.address.isV6 ? .aaaa : .a, ttl: policy.answerTTL(member, now: now),
            rdata: member.address.bytes)
    }

    private func targetName(_ member: Member) -> DomainName? {
        var wire: [UInt8] = []
        for label in [member.id, member.group] {
            guard (1...DomainName.maxLabelLength).contains(label.utf8.count) else { return nil }
            wire.append(UInt8(label.utf8.count))
            wire += label.utf8
        }
        return DomainName(wire: wire + domain.wire)
    }

    private func rotated(_ members: [Member]) -> [Member] {
        guard members.count > 1 else { return members }
        let start = rotation % members.count
        return Array(members[start...] + members[..<start])
    }

    private var soa: ResourceRecord {
        var rdata = domain.wire
        rdata += [10] + Array("hostmaster".utf8) + domain.wire
        for value: UInt32 in [1, 3600, 600, 86400, ttl] { rdata.appendU32(value) }
        return ResourceRecord(name: domain, type: .soa, ttl: ttl, rdata: rdata)
    }

    private var nxDomain: LocalAnswer { LocalAnswer(rcode: .nxDomain, authorities: [soa]) }
    private var noData: LocalAnswer { LocalAnswer(authorities: [soa]) }
}
