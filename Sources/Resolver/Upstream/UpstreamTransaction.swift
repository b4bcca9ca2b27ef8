// Upstream/: carrying out a selection plan for one question. The first server is asked at once,
// with a probe in parallel when the plan has one. When the newest server asked stays silent past
// its retransmit time, fails, or is marked down by another question's timeout, the next server is
// asked too — the best other one by expected answer time at that moment (`ServerSelector.next`),
// waited on for its own retransmit time — while the earlier ones stay outstanding. The first
// usable answer is returned; slower attempts run on to their own end and report their outcome to
// selection, so a probe's figures count without the client waiting for them. Hedges, their wins
// and how long the client waited before the winning server was asked go to a `HedgeObserver`.
// Recursion caps the servers one transaction asks and hands it the client query's budget: each
// packet is taken from it, and the transaction gives up at the budget's deadline.

import Logging
import NIOCore

/// The result of one transaction.
public enum TransactionOutcome: Sendable {
    case answer(UpstreamAnswer)
    case failure(ResolutionFailure)
}

/// Why a question went to one more server after the first.
public enum HedgeReason: String, Sendable, CaseIterable {
    /// The newest server asked was silent past its retransmit time.
    case late
    /// It answered with an error, or the exchange failed.
    case failed
    /// Another question's timeout marked it down while this one waited on it.
    case down
}

/// Hears of hedging decisions (resolverd's metrics).
public protocol HedgeObserver: Sendable {
    /// One more server was asked for a question, for `reason`.
    func hedgeSent(_ reason: HedgeReason)
    /// The client's answer came from a server asked as a hedge or failover, `wait` after the
    /// question's first send.
    func hedgeWon(after wait: TimeAmount)
}

/// Sends a question to a zone's servers as selection plans it.
public struct UpstreamTransactions: Sendable {
    let client: UpstreamClient
    let selector: any ServerSelector
    let logger: Logger
    /// The time selection's plans and records, and the budget's deadline, are read from.
    let clock: ResolverClock
    let observer: (any HedgeObserver)?

    public init(
        client: UpstreamClient, selector: any ServerSelector, logger: Logger, clock: ResolverClock = .system,
        observer: (any HedgeObserver)? = nil
    ) {
        self.client = client
        self.selector = selector
        self.logger = logger
        self.clock = clock
        self.observer = observer
    }

    /// Asks `zone`'s `servers` for `query`. An answer `accept` turns down (recursion's lame
    /// servers) counts as that server refusing, and the next server is asked. At most
    /// `maxServers` servers are asked, the probe included; with a `budget`, every packet is taken
    /// from it and the transaction fails at its deadline even with queries still in flight (their
    /// outcomes still reach selection).
    public func resolve(
        _ query: UpstreamQuery, zone: DomainName, servers: [ServerAddress], budget: (any SendBudget)? = nil,
        maxServers: Int = .max, accept: @escaping @Sendable (DNSMessage) -> Bool = { _ in true }
    ) async -> TransactionOutcome {
        await withCheckedContinuation { continuation in
            resolve(query, zone: zone, servers: servers, budget: budget, maxServers: maxServers, accept: accept) {
                continuation.resume(returning: $0)
            }
        }
    }

    /// The same with a callback, called once, on the thread that decided the outcome (the UDP
    /// answer thread for an answer): the forwarding miss path sends its reply from there, with no
    /// hop to a task.
    public func resolve(
        _ query: UpstreamQuery, zone: DomainName, servers: [ServerAddress], budget: (any SendBudget)? = nil,
        maxServers: Int = .max, accept: @escaping @Sendable (DNSMessage) -> Bool = { _ in true },
        completion: @escaping @Sendable (TransactionOutcome) -> Void
    ) {
        let plan = selector.plan(zone: zone, servers: servers, now: clock.now())
        guard !plan.order.isEmpty else { return completion(.failure(.noServers(zone: zone))) }
        let run = TransactionRun(
            transactions: self, query: query, zone: zone, plan: plan, budget: budget, maxServers: maxServers, accept: accept,
            completion: completion)
        run.start()
    }

    /// NOERROR and NXDOMAIN are answers; SERVFAIL, REFUSED, FORMERR and NOTIMP say this server
    /// could not help, and the next one is asked.
    static func isUsable(_ message: DNSMessage) -> Bool {
        message.rcode == .noError || message.rcode == .nxDomain
    }

    static func feedback(for result: Result<UpstreamAnswer, UpstreamError>) -> ServerFeedback? {
        switch result {
        case .success(let answer):
            switch answer.message.rcode {
            case .noError, .nxDomain: .answered(rtt: answer.rtt)
            case .refused: .refused
            default: .servFail
            }
        case .failure(let error):
            error.feedback
        }
    }
}
