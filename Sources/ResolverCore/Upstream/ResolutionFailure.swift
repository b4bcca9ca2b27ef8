// Upstream/: why a question got no answer — what a client's SERVFAIL stands for. Values, not
// strings: the log line is their description, tests compare them, and the DNSSEC issue maps
// them to Extended DNS Errors (RFC 8914).

/// Why one server's response was not used: the server is lame for the zone asked.
public enum LameReason: Sendable, Equatable, CustomStringConvertible {
    /// An rcode other than NOERROR and NXDOMAIN (REFUSED, SERVFAIL, …).
    case rcode(ResponseCode)
    /// The question is not in the zone the server was asked as.
    case askedOutsideZone
    /// A CNAME chain that comes back to a name already on it.
    case cnameLoop(at: DomainName)
    /// A referral to the zone the server was asked as.
    case referralToOwnZone(DomainName)
    /// A referral to a zone above or beside the one asked.
    case upwardOrSidewaysReferral(to: DomainName)
    /// A referral below the zone, but not towards the question.
    case referralAwayFromQuestion(to: DomainName)
    case referralWithoutNameservers
    /// Records in the answer section, none of them for the question's name.
    case answerForAnotherName
    /// An empty non-authoritative answer from a server offering recursion (its cache talking).
    case recursiveServer

    public var description: String {
        switch self {
        case .rcode(let rcode): "rcode \(rcode)"
        case .askedOutsideZone: "asked outside its zone"
        case .cnameLoop(let name): "CNAME loop at \(name)"
        case .referralToOwnZone(let zone): "referral to its own zone \(zone)"
        case .upwardOrSidewaysReferral(let cut): "upward or sideways referral to \(cut)"
        case .referralAwayFromQuestion(let cut): "referral to \(cut), away from the question"
        case .referralWithoutNameservers: "referral without nameserver names"
        case .answerForAnotherName: "answer for another name or zone"
        case .recursiveServer: "empty answer from a recursive server"
        }
    }
}

/// Why a question could not be answered.
public enum ResolutionFailure: Error, Sendable, Equatable, CustomStringConvertible {
    /// No server to ask for the zone.
    case noServers(zone: DomainName)
    /// Every server asked failed; `last` says how the last one did.
    case serversFailed(zone: DomainName, last: ServerFailure)
    /// The client query's deadline passed.
    case deadlinePassed
    /// The client query's upstream packets are spent.
    case budgetSpent(maxQueries: Int)
    /// No address for any nameserver of the zone (none known, none found, or all on this host).
    case noNameserverAddress(zone: DomainName)
    /// The zone's servers gave no usable answer (all lame, silent or failing).
    case noUsableAnswer(zone: DomainName)
    case lame(zone: DomainName, LameReason)
    case cnameLoop(at: DomainName)
    case cnameChainTooLong(limit: Int)
    case tooManyReferrals(name: DomainName, limit: Int)
    /// An answer arrived but could not be stored or served (too long, unwritable).
    case unstorable(String)

    public var description: String {
        switch self {
        case .noServers(let zone): "no servers for \(zone)"
        case .serversFailed(let zone, let last): "every server of \(zone) failed; last: \(last)"
        case .deadlinePassed: "deadline passed"
        case .budgetSpent(let maxQueries): "more than \(maxQueries) upstream queries"
        case .noNameserverAddress(let zone): "no address for any nameserver of \(zone)"
        case .noUsableAnswer(let zone): "no usable answer from the servers of \(zone)"
        case .lame(let zone, let reason): "\(zone): \(reason)"
        case .cnameLoop(let name): "CNAME loop at \(name)"
        case .cnameChainTooLong(let limit): "CNAME chain longer than \(limit)"
        case .tooManyReferrals(let name, let limit): "more than \(limit) referrals for \(name)"
        case .unstorable(let why): "the answer could not be stored: \(why)"
        }
    }
}

/// How the last server of a failed transaction failed.
public enum ServerFailure: Sendable, Equatable, CustomStringConvertible {
    case error(ServerAddress, UpstreamError)
    /// It answered, with an rcode that does not answer the question (or a lame response).
    case rcode(ServerAddress, ResponseCode)
    /// No packet could leave: the client query's budget was spent.
    case budgetSpent

    public var description: String {
        switch self {
        case .error(let server, let error): "\(server): \(error)"
        case .rcode(let server, let rcode): "\(server) answered \(rcode)"
        case .budgetSpent: "the client query's upstream budget is spent"
        }
    }
}
