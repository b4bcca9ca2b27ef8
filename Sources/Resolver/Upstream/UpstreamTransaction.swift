// Upstream/: carrying out a selection plan for one question. The first server is asked at once,
// with a probe in parallel when the plan has one; when a server stays silent past its hedge
// delay, the next is asked as well while the first stays outstanding; a failure moves on at
// once. The first usable answer is returned; slower attempts run on to their own end and report
// their outcome to selection, so a probe's figures count without the client waiting for them.
// Recursion caps the servers one transaction asks and hands it the client query's budget: each
// packet is taken from it, and the transaction gives up at the budget's deadline.

import Logging
import NIOCore

/// The result of one transaction.
public enum TransactionOutcome: Sendable {
    case answer(UpstreamAnswer)
    case failure(ResolutionFailure)
}

/// Sends a question to a zone's servers as selection plans it.
public struct UpstreamTransactions: Sendable {
    let client: UpstreamClient
    let selector: any ServerSelector
    let logger: Logger
    /// The time selection's plans and records, and the budget's deadline, are read from.
    let clock: ResolverClock

    public init(client: UpstreamClient, selector: any ServerSelector, logger: Logger, clock: ResolverClock = .system) {
        self.client = client
        self.selector = selector
        self.logger = logger
        self.clock = clock
    }

    private enum Event: Sendable {
        case outcome(attempt: Int, server: ServerAddress, Result<UpstreamAnswer, UpstreamError>)
        case hedgeTimer(attempt: Int)
        case deadline
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
        guard !plan.order.isEmpty else { return .failure(.noServers(zone: zone)) }
        let (events, sink) = AsyncStream<Event>.makeStream()
        defer { sink.finish() }
        var launched = 0
        var outstanding = 0
        var asked: Set<ServerAddress> = []
        var lastError: ServerFailure? = nil

        // Sends complete through callbacks and hedge timers run on the client's answer thread:
        // no task per attempt, no dispatch timer or event-loop wakeup per hedge.
        var timers: [UpstreamTimer] = []
        defer { timers.forEach { $0.cancel() } }
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
        func launch(_ server: ServerAddress, attempt: Int) -> Bool {
            guard asked.count < maxServers else { return false }
            guard budget?.spend() ?? true else {
                lastError = .budgetSpent
                return false
            }
            outstanding += 1
            asked.insert(server)
            client.exchange(query, server: server, budget: budget) { outcome in
                var result = outcome
                if case .success(let answer) = outcome, Self.isUsable(answer.message), !accept(answer.message) {
                    result = .failure(.lame)
                }
                if let feedback = Self.feedback(for: result) {
                    selector.record(feedback, server: server, zone: zone, now: clock.now())
                }
                sink.yield(.outcome(attempt: attempt, server: server, result))
            }
            return true
        }
        func launchNext() -> Bool {
            // A server already asked (as the probe) is not asked twice.
            while launched < plan.order.count, asked.contains(plan.order[launched]) { launched += 1 }
            guard launched < plan.order.count else { return false }
            let attempt = launched
            guard launch(plan.order[attempt], attempt: attempt) else { return false }
            launched += 1
            if launched < plan.order.count, asked.count < maxServers {
                timers.append(client.schedule(in: plan.hedgeDelays[attempt]) { sink.yield(.hedgeTimer(attempt: attempt)) })
            }
            return true
        }

        guard launchNext() else { return .failure(failed()) }
        if let probe = plan.probe, probe != plan.order[0] {
            _ = launch(probe, attempt: -1)
        }
        for await event in events {
            switch event {
            case .deadline:
                return .failure(.deadlinePassed)
            case .hedgeTimer(let attempt):
                // Only the newest attempt's timer hedges; older timers are stale.
                guard attempt == launched - 1 else { continue }
                selector.record(.late(after: plan.hedgeDelays[attempt]), server: plan.order[attempt], zone: zone, now: clock.now())
                _ = launchNext()
            case .outcome(_, let server, let result):
                outstanding -= 1
                switch result {
                case .success(let answer) where Self.isUsable(answer.message):
                    return .answer(answer)
                case .success(let answer):
                    lastError = .rcode(server, answer.message.rcode)
                case .failure(let error):
                    lastError = .error(server, error)
                }
                logger.debug("upstream attempt failed", metadata: ["zone": "\(zone)", "error": "\(lastError.map(\.description) ?? "-")"])
                // Fail over at once when nothing else is in flight.
                if outstanding == 0, !launchNext() {
                    return .failure(failed())
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
