// Frontend/: names answered without asking anyone: `localhost.` and everything below it
// (RFC 6761 §6.3), and the CHAOS-class identity names (`version.bind`, `id.server`).

#if canImport(Glibc)
import Glibc
#endif

/// An answer resolverd gives from what it knows itself (authoritative, never cached).
public struct LocalAnswer: Sendable, Equatable {
    public var rcode: ResponseCode
    public var answers: [ResourceRecord]
    public var authorities: [ResourceRecord]
    public var additionals: [ResourceRecord]

    public init(
        rcode: ResponseCode = .noError, answers: [ResourceRecord] = [], authorities: [ResourceRecord] = [],
        additionals: [ResourceRecord] = []
    ) {
        self.rcode = rcode
        self.answers = answers
        self.authorities = authorities
        self.additionals = additionals
    }
}

/// Answers for names resolverd owns itself.
public struct LocalAnswers: Sendable {
    public let version: String
    public let identity: String

    public init(version: String, identity: String) {
        self.version = version
        self.identity = identity
    }

    private static let localhost = DomainName("localhost.") ?? .root
    #if RESOLVERD_CRASH_SWITCH
    private static let crashName = DomainName("crash.resolverd.") ?? .root
    private static let crashSwitchArmed = getenv("RESOLVERD_CRASH_SWITCH").map { String(cString: $0) == "1" } ?? false
    #endif
    private static let chaosVersionNames = ["version.bind.", "version.server."].compactMap { DomainName($0) }
    private static let chaosIdentityNames = ["id.server.", "hostname.bind."].compactMap { DomainName($0) }

    /// The answer for `question`, or nil when the name is not local.
    public func answer(_ question: Question) -> LocalAnswer? {
        if question.recordClass == .ch {
            #if RESOLVERD_CRASH_SWITCH
            // A packet of death, for the fault-isolation tests; not compiled into release builds.
            if Self.crashSwitchArmed, question.name == Self.crashName { fatalError("crash switch: crash.resolverd. CH TXT") }
            #endif
            let text: String
            if Self.chaosVersionNames.contains(question.name) {
                text = version
            } else if Self.chaosIdentityNames.contains(question.name) {
                text = identity
            } else {
                return LocalAnswer(rcode: .refused)
            }
            guard question.type == .txt || question.type == .any else { return LocalAnswer() }
            return LocalAnswer(answers: [Self.txt(question.name, text)])
        }
        guard question.recordClass == .in, question.name.isSubdomain(of: Self.localhost) else { return nil }
        switch question.type {
        case .a:
            return LocalAnswer(answers: [ResourceRecord(name: question.name, type: .a, ttl: 86400, rdata: [127, 0, 0, 1])])
        case .aaaa:
            return LocalAnswer(answers: [
                ResourceRecord(name: question.name, type: .aaaa, ttl: 86400, rdata: [UInt8](repeating: 0, count: 15) + [1])
            ])
        default:
            return LocalAnswer(authorities: [Self.localhostSOA])
        }
    }

    /// The SOA of the local `localhost.` zone, for NODATA answers (RFC 2308 §2.2).
    static let localhostSOA = LocalZones.soa(localhost)

    private static func txt(_ name: DomainName, _ text: String) -> ResourceRecord {
        let bytes = Array(text.utf8.prefix(255))
        return ResourceRecord(name: name, type: .txt, recordClass: .ch, ttl: 0, rdata: [UInt8(bytes.count)] + bytes)
    }
}
