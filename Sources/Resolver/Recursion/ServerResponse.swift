// Recursion/: what one authoritative server's response means, read with suspicion. A server
// asked as the server of `zone` is believed only about names in `zone` (its bailiwick): records
// outside it are dropped however they arrived, a referral must lead strictly down towards the
// question, glue must be for the referral's own nameservers and lie under the zone that sent it,
// and an answer or a negative answer must carry AA. Anything else — an upward or sideways
// referral, a non-authoritative answer — is a lame server, and the next server is asked.

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
    /// The name at the end of `chain` does not exist.
    case nxdomain(chain: [ResourceRecord], soa: ResourceRecord?)
    /// The name at the end of `chain` exists without records of the asked type.
    case noData(chain: [ResourceRecord], soa: ResourceRecord?)
    /// Not an answer this server may give: ask another.
    case lame(String)

    /// Whether the transaction may end with this response (a lame one sends it to the next server).
    public var isUsable: Bool {
        if case .lame = self { false } else { true }
    }

    /// CNAMEs and DNAMEs followed within one response, at most (the whole resolution has its own cap).
    static let maxChainInResponse = 12

    /// Classifies `message`, the response of a server of `zone` to `question`.
    public static func classify(_ message: DNSMessage, question: Question, zone: DomainName) -> ServerResponse {
        guard message.rcode == .noError || message.rcode == .nxDomain else { return .lame("rcode \(message.rcode)") }
        guard question.name.isSubdomain(of: zone) else { return .lame("asked outside its zone") }
        let authoritative = message.flags.contains(.aa)
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
            if chain.contains(where: { $0.type == .cname && $0.name == name }) { return .lame("CNAME loop at \(name)") }
            if !name.isSubdomain(of: zone) {
                leftZone = true
                break
            }
        }
        if !records.isEmpty || !chain.isEmpty {
            guard authoritative else { return .lame("answer without AA") }
            if !records.isEmpty { return .answer(chain: chain, records: records) }
            if message.rcode == .nxDomain, !leftZone {
                return .nxdomain(chain: chain, soa: soa(in: message, for: name, zone: zone))
            }
            // The chain leaves the zone, or ends without data here (the target may be delegated
            // further down): its end is resolved as a question of its own.
            return .alias(chain: chain, target: name)
        }

        // No answer: a referral, or a negative answer.
        let soa = soa(in: message, for: question.name, zone: zone)
        if message.rcode == .noError, soa == nil,
            let cut = message.authorities.first(where: { $0.type == .ns })?.name,
            cut != zone, cut.isSubdomain(of: zone), question.name.isSubdomain(of: cut)
        {
            let ns = message.authorities.filter { $0.type == .ns && $0.name == cut && inZone($0) }
            let names = Set(ns.compactMap(\.targetName))
            let glue = message.additionals.filter {
                ($0.type == .a || $0.type == .aaaa) && names.contains($0.name) && inZone($0)
            }
            guard !names.isEmpty else { return .lame("referral without nameserver names") }
            return .referral(cut: cut, ns: ns, glue: glue)
        }
        guard authoritative else {
            let upward = message.authorities.contains { $0.type == .ns }
            return .lame(upward ? "upward or sideways referral" : "empty answer without AA")
        }
        return message.rcode == .nxDomain ? .nxdomain(chain: [], soa: soa) : .noData(chain: [], soa: soa)
    }

    /// The zone's SOA in the authority section, when it is in bailiwick and covers `name`.
    private static func soa(in message: DNSMessage, for name: DomainName, zone: DomainName) -> ResourceRecord? {
        message.authorities.first {
            $0.type == .soa && $0.name.isSubdomain(of: zone) && name.isSubdomain(of: $0.name)
        }
    }
}
