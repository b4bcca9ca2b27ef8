// Recursion/: what one authoritative server's response means, read with suspicion. A server
// asked as the server of `zone` is believed only about names in `zone` (its bailiwick): records
// outside it are dropped however they arrived, a referral must lead strictly down towards the
// question, and glue must be for the referral's own nameservers and lie under the zone that sent
// it. An answer or a negative answer is taken with or without AA (RFC 2181 §5.4.1: a
// non-authoritative answer ranks lower, it is still an answer; Unbound and Knot Resolver use
// them too). A lame server — the next one is asked — is one that answers with an rcode other
// than NOERROR/NXDOMAIN, refers upwards, sideways or to its own zone, or answers only with data
// for other names or zones.
//
// Where this departs from Unbound (iter_resptype.c): Unbound takes an NS set for the asked zone
// itself in an answer without SOA as a NODATA answer; here it is a referral to itself, lame (a
// server that no longer serves the zone and says so the only way it knows).

/// One server's response to one question, classified.
public enum ServerResponse: Equatable, Sendable {
    /// Records of the asked type at the end of `chain` (CNAME and DNAME records, and the CNAMEs
    /// synthesised from DNAMEs, leading from the question's name to theirs).
    case answer(chain: [ResourceRecord], records: [ResourceRecord])
    /// `chain` leads to `target`, which this server did not answer for: resolve it anew.
    case alias(chain: [ResourceRecord], target: DomainName)
    /// The zone `cut` is delegated to the nameservers `ns`; `glue` holds their addresses that
    /// lie in the sending zone.
    case referral(cut: DomainName, ns: [ResourceRecord], glue: [ResourceRecord])
    /// The name at the end of `chain` does not exist; `authority` is the zone's SOA and the
    /// records of its proof (NSEC, NSEC3, their RRSIGs) as the zone sent them (empty without SOA).
    case nxdomain(chain: [ResourceRecord], authority: [ResourceRecord])
    /// The name at the end of `chain` exists without records of the asked type.
    case noData(chain: [ResourceRecord], authority: [ResourceRecord])
    /// Not an answer this server may give: ask another.
    case lame(LameReason)

    /// Whether the transaction may end with this response (a lame one sends it to the next server).
    public var isUsable: Bool {
        if case .lame = self { false } else { true }
    }

    /// CNAMEs and DNAMEs followed within one response, at most (the whole resolution has its own cap).
    package static let maxChainInResponse = 12

    /// Classifies `message`, the response of a server of `zone` to `question`.
    public static func classify(_ message: DNSMessage, question: Question, zone: DomainName) -> ServerResponse {
        guard message.rcode == .noError || message.rcode == .nxDomain else { return .lame(.rcode(message.rcode)) }
        guard question.name.isSubdomain(of: zone) else { return .lame(.askedOutsideZone) }
        func inZone(_ record: ResourceRecord) -> Bool {
            record.name.isSubdomain(of: zone) && record.recordClass == question.recordClass
        }

        // Follow the answer section from the question's name; records off the chain are ignored.
        var chain: [ResourceRecord] = []
        var name = question.name
        var records: [ResourceRecord] = []
        var leftZone = false
        chainLoop: for _ in 0..<maxChainInResponse {
            let matching = message.answers.filter {
                $0.name == name && ($0.type == question.type || question.type == .any) && inZone($0)
            }
            if !matching.isEmpty {
                records = matching
                break
            }
            guard question.type != .cname else { break }
            if let dname = message.answers.first(where: {
                $0.type == .dname && name != $0.name && name.isSubdomain(of: $0.name) && inZone($0)
            }), let target = dname.targetName, let synthesized = name.replacingSuffix(dname.name, with: target) {
                // RFC 6672 §3.2: the CNAME is synthesised here rather than trusted from the packet.
                chain.append(dname)
                chain.append(ResourceRecord(name: name, type: .cname, ttl: dname.ttl, rdata: synthesized.wire))
                name = synthesized
            } else if let cname = message.answers.first(where: { $0.name == name && $0.type == .cname && inZone($0) }),
                let target = cname.targetName
            {
                chain.append(cname)
                name = target
            } else {
                break chainLoop
            }
            if chain.contains(where: { $0.type == .cname && $0.name == name }) { return .lame(.cnameLoop(at: name)) }
            if !name.isSubdomain(of: zone) {
                leftZone = true
                break
            }
        }
        if !records.isEmpty || !chain.isEmpty {
            if !records.isEmpty { return .answer(chain: chain, records: records) }
            if message.rcode == .nxDomain, !leftZone {
                return .nxdomain(chain: chain, authority: negative(in: message, for: name, zone: zone))
            }
            // The chain leaves the zone, or ends without data here (the target may be delegated
            // further down): its end is resolved as a question of its own.
            return .alias(chain: chain, target: name)
        }

        // No answer: a negative answer (an SOA of the zone above the name), a referral, or lame.
        let authority = negative(in: message, for: question.name, zone: zone)
        if !authority.isEmpty {
            return message.rcode == .nxDomain
                ? .nxdomain(chain: [], authority: authority) : .noData(chain: [], authority: authority)
        }
        if let cut = message.authorities.first(where: { $0.type == .ns && $0.recordClass == question.recordClass })?.name {
            if message.rcode == .nxDomain { return .nxdomain(chain: [], authority: []) }
            guard cut != zone else { return .lame(.referralToOwnZone(zone)) }
            guard cut.isSubdomain(of: zone) else { return .lame(.upwardOrSidewaysReferral(to: cut)) }
            guard question.name.isSubdomain(of: cut) else { return .lame(.referralAwayFromQuestion(to: cut)) }
            let ns = message.authorities.filter { $0.type == .ns && $0.name == cut && inZone($0) }
            let names = Set(ns.compactMap(\.targetName))
            let glue = message.additionals.filter {
                ($0.type == .a || $0.type == .aaaa) && names.contains($0.name) && inZone($0)
            }
            guard !names.isEmpty else { return .lame(.referralWithoutNameservers) }
            return .referral(cut: cut, ns: ns, glue: glue)
        }
        // Records in the answer section, none of them for the question: data for another name or
        // zone, not an answer.
        if !message.answers.isEmpty { return .lame(.answerForAnotherName) }
        // An empty non-authoritative answer from a server offering recursion: a recursive
        // resolver answering from its cache, not a server of the zone (Unbound's REC_LAME).
        if message.rcode == .noError, !message.flags.contains(.aa), message.flags.contains(.ra) {
            return .lame(.recursiveServer)
        }
        // NXDOMAIN, or NOERROR with nothing at all: a negative answer that cannot be cached.
        return message.rcode == .nxDomain ? .nxdomain(chain: [], authority: []) : .noData(chain: [], authority: [])
    }

    /// The negative answer's authority records: the zone's SOA (in bailiwick, at or above `name`)
    /// first, then the NSEC and NSEC3 records and the RRSIGs over them and the SOA, in zone, as
    /// sent. Empty without such an SOA.
    private static func negative(in message: DNSMessage, for name: DomainName, zone: DomainName) -> [ResourceRecord] {
        guard
            let soa = message.authorities.first(where: {
                $0.type == .soa && $0.name.isSubdomain(of: zone) && name.isSubdomain(of: $0.name)
            })
        else { return [] }
        let proofTypes: Set<RecordType> = [.nsec, .nsec3, .soa]
        let proof = message.authorities.filter { record in
            guard record.name.isSubdomain(of: zone), record.recordClass == soa.recordClass else { return false }
            switch record.type {
            case .nsec, .nsec3: return true
            case .rrsig: return record.coveredType.map(proofTypes.contains) ?? false
            default: return false
            }
        }
        return [soa] + proof
    }
}
