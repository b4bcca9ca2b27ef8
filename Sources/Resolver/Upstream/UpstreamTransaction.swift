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

    private enum Event: Sendable {
        case outcome(attempt: Int, Result<UpstreamAnswer, UpstreamError>)
        case hedgeTimer(attempt: Int)
        case serverDown(attempt: Int)
        case deadline
    }

    /// One server asked for the question.
    private struct Attempt {
        enum Role { case first, probe, hedge }
        let server: ServerAddress
        let role: Role
        let sentAt: NIODeadline
        /// How long it is waited on before the next server is asked (not for the probe).
        let delay: TimeAmount
        var outstanding = true
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
        let plan = selector.plan(zone: zone, servers: servers, now: clock.now())
        guard let first = plan.order.first else { return .failure(.noServers(zone: zone)) }
        let (events, sink) = AsyncStream<Event>.makeStream()
        defer { sink.finish() }
        var attempts: [Attempt] = []
        /// The newest attempt that is not the probe: the one whose silence moves the question on.
        var newest = -1
        var asked: Set<ServerAddress> = []
        let distinctServers = Set(plan.order).count
        var lastError: ServerFailure? = nil

        // Sends complete through callbacks and hedge timers run on the client's answer thread:
        // no task per attempt, no dispatch timer or event-loop wakeup per hedge.
        var timers: [UpstreamTimer] = []
        var watches: [any DownWatch] = []
        defer {
            timers.forEach { $0.cancel() }
            watches.forEach { $0.cancel() }
        }
        if let budget {
            timers.append(client.schedule(in: budget.deadline - clock.now()) { sink.yield(.deadline) })
        }

        /// What the transaction failed with: how the last server did, or that none could be asked.
        func failed() -> ResolutionFailure {
            switch lastError {
            case .budgetSpent?: budget?.exhausted(now: clock.now()) ?? .serversFailed(zone: zone, last: .budgetSpent)
            case let last?: .serversFailed(zone: zone, last: last)
            case nil: .noServers(zone: zone)
            }
        }

        /// Sends to `server` if the server cap and the budget allow it.
        func launch(_ server: ServerAddress, role: Attempt.Role, delay: TimeAmount) -> Bool {
            guard asked.count < maxServers else { return false }
            guard budget?.spend() ?? true else {
                lastError = .budgetSpent
                return false
            }
            let attempt = attempts.count
            attempts.append(Attempt(server: server, role: role, sentAt: clock.now(), delay: delay))
            asked.insert(server)
            client.exchange(query, server: server, budget: budget) { outcome in
                var result = outcome
                if case .success(let answer) = outcome, Self.isUsable(answer.message), !accept(answer.message) {
                    result = .failure(.lame)
                }
                // The outcome first: if recording it takes the server down, this question's own
                // watch on it must find the attempt already over (a failure, not news of one).
                sink.yield(.outcome(attempt: attempt, result))
                if let feedback = Self.feedback(for: result) {
                    selector.record(feedback, server: server, zone: zone, now: clock.now())
                }
            }
            guard role != .probe else { return true }
            newest = attempt
            if asked.count < min(distinctServers, maxServers) {
                timers.append(client.schedule(in: delay) { sink.yield(.hedgeTimer(attempt: attempt)) })
                watches.append(selector.watchDown(server: server, zone: zone) { sink.yield(.serverDown(attempt: attempt)) })
            }
            return true
        }

        /// Asks the best server not asked yet, for `reason`.
        func hedge(_ reason: HedgeReason) -> Bool {
            guard asked.count < maxServers,
                let next = selector.next(zone: zone, servers: plan.order, excluding: asked, now: clock.now()),
                launch(next.server, role: .hedge, delay: next.delay)
            else { return false }
            observer?.hedgeSent(reason)
            return true
        }

        guard launch(first, role: .first, delay: plan.hedgeDelays[0]) else { return .failure(failed()) }
        if let probe = plan.probe, probe != first {
            _ = launch(probe, role: .probe, delay: .zero)
        }
        for await event in events {
            switch event {
            case .deadline:
                return .failure(.deadlinePassed)
            case .hedgeTimer(let attempt), .serverDown(let attempt):
                // Only the newest attempt moves the question on; older timers and watches are stale.
                guard attempt == newest, attempts[attempt].outstanding else { continue }
                if case .hedgeTimer = event {
                    selector.record(.late(after: attempts[attempt].delay), server: attempts[attempt].server, zone: zone, now: clock.now())
                    _ = hedge(.late)
                } else {
                    _ = hedge(.down)
                }
            case .outcome(let attempt, let result):
                attempts[attempt].outstanding = false
                switch result {
                case .success(let answer) where Self.isUsable(answer.message):
                    if attempts[attempt].role == .hedge {
                        selector.recordHedgeWin(server: answer.server, zone: zone)
                        observer?.hedgeWon(after: attempts[attempt].sentAt - attempts[0].sentAt)
                    }
                    return .answer(answer)
                case .success(let answer):
                    lastError = .rcode(attempts[attempt].server, answer.message.rcode)
                case .failure(let error):
                    lastError = .error(attempts[attempt].server, error)
                }
                logger.debug("upstream attempt failed", metadata: ["zone": "\(zone)", "error": "\(lastError.map(\.description) ?? "-")"])
                // The newest attempt failing moves on at once (its timer is moot); an older one
                // or the probe failing changes nothing while others are still in flight.
                let stillWaiting = attempts.contains(where: \.outstanding)
                if attempt == newest || !stillWaiting {
                    if !hedge(.failed), !stillWaiting { return .failure(failed()) }
                }
            }
        }
        return .failure(failed())
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
