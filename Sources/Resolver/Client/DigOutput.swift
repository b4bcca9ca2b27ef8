// Client/: dig-lite's output, in dig's shape, so that people and scripts used to dig can read it.

/// Formats an answer as dig does.
public enum DigOutput {
    /// The full report: header, flags, OPT pseudo-section, the four sections and the footer.
    public static func full(
        _ message: DigReply, commandLine: String
    ) -> String {
        let answer = message.message
        var lines: [String] = []
        lines.append("")
        lines.append("; <<>> dig-lite \(resolverdVersion) <<>> \(commandLine)")
        lines.append(";; Got answer:")
        lines.append(";; ->>HEADER<<- opcode: \(answer.opcode), status: \(answer.rcode), id: \(answer.id)")
        let additionalCount = answer.additionals.count + (answer.edns == nil ? 0 : 1)
        lines.append(
            ";; flags: \(answer.flags.names.joined(separator: " ")); QUERY: \(answer.questions.count), "
                + "ANSWER: \(answer.answers.count), AUTHORITY: \(answer.authorities.count), ADDITIONAL: \(additionalCount)")
        if let edns = answer.edns {
            lines.append("")
            lines.append(";; OPT PSEUDOSECTION:")
            lines.append("; EDNS: version: \(edns.version), flags:\(edns.dnssecOK ? " do" : ""); udp: \(edns.udpPayloadSize)")
        }
        if !answer.questions.isEmpty {
            lines.append("")
            lines.append(";; QUESTION SECTION:")
            for question in answer.questions {
                lines.append(";\(question.name)\t\t\t\(question.recordClass)\t\(question.type)")
            }
        }
        for (title, records) in [("ANSWER", answer.answers), ("AUTHORITY", answer.authorities), ("ADDITIONAL", answer.additionals)]
        where !records.isEmpty {
            lines.append("")
            lines.append(";; \(title) SECTION:")
            lines += records.map(DNSCodec.presentation(of:))
        }
        lines.append("")
        lines.append(";; Query time: \(message.milliseconds) msec")
        lines.append(";; SERVER: \(message.server.ip)#\(message.server.port)(\(message.server.ip)) (\(message.overTCP ? "TCP" : "UDP"))")
        lines.append(";; MSG SIZE  rcvd: \(message.size)")
        lines.append("")
        return lines.joined(separator: "\n")
    }

    /// `+short`: the RDATA of the answer records, one per line.
    public static func short(_ message: DNSMessage) -> String {
        message.answers.map(DNSCodec.rdataPresentation(of:)).map { $0 + "\n" }.joined()
    }
}

/// An answer as dig-lite received it.
public struct DigReply: Sendable {
    public var message: DNSMessage
    public var server: ServerAddress
    public var milliseconds: Int64
    public var size: Int
    public var overTCP: Bool

    public init(message: DNSMessage, server: ServerAddress, milliseconds: Int64, size: Int, overTCP: Bool) {
        self.message = message
        self.server = server
        self.milliseconds = milliseconds
        self.size = size
        self.overTCP = overTCP
    }
}
