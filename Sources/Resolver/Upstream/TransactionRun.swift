// Upstream/: one question's transaction as it runs — the attempts sent, the newest one whose
// silence moves the question on, the timers and down-watches — driven by events from the UDP
// answer thread (outcomes, hedge timers, the deadline) and from selection (a server going down).
// Events go through one queue that a single drainer at a time works off, so the state needs no
// lock of its own and no task: whoever posts an event while nobody drains becomes the drainer
// (an exchange that fails at once posts from inside a send; that event waits in the queue). The
// outcome is handed to the completion exactly once, from the drainer, after which later events
// only end quietly (their outcomes were already reported to selection by the exchange callback).

import Logging
import NIOCore
import Synchronization

final class TransactionRun: Sendable {
    enum Event: Sendable {
        case outcome(attempt: Int, Result<UpstreamAnswer, UpstreamError>)
        case hedgeTimer(attempt: Int)
        case serverDown(attempt: Int)
        case deadline
    }

    /// One server asked for the question.
    struct Attempt {
        enum Role { case first, probe, hedge }
        let server: ServerAddress
        let role: Role
        let sentAt: NIODeadline
        /// How long it is waited on before the next server is asked (not for the probe).
        let delay: TimeAmount
        var outstanding = true
    }

    /// What only the drainer touches.
    struct State {
        var attempts: [Attempt] = []
        /// The newest attempt that is not the probe: the one whose silence moves the question on.
        var newest = -1
        var asked: Set<ServerAddress> = []
        var lastError: ServerFailure? = nil
        var timers: [UpstreamTimer] = []
        var watches: [any DownWatch] = []
        var finished = false
    }

    private struct Queue {
        var events: [Event] = []
        var draining = false
    }

    private let transactions: UpstreamTransactions
    private let query: UpstreamQuery
    private let zone: DomainName
    private let plan: SelectionPlan
    private let budget: (any SendBudget)?
    private let maxServers: Int
    private let distinctServers: Int
    private let accept: @Sendable (DNSMessage) -> Bool
    private let completion: @Sendable (TransactionOutcome) -> Void
    private let queue = Mutex(Queue())
    /// Touched only by the current drainer (see the file comment); the queue's lock orders one
    /// drainer's writes before the next one's reads.
    private nonisolated(unsafe) var state = State()

    init(
        transactions: UpstreamTransactions, query: UpstreamQuery, zone: DomainName, plan: SelectionPlan,
        budget: (any SendBudget)?, maxServers: Int, accept: @escaping @Sendable (DNSMessage) -> Bool,
        completion: @escaping @Sendable (TransactionOutcome) -> Void
    ) {
        self.transactions = transactions
        self.query = query
        self.zone = zone
        self.plan = plan
        self.budget = budget
        self.maxServers = maxServers
        distinctServers = Set(plan.order).count
        self.accept = accept
        self.completion = completion
    }

    /// Sends to the first server (and the probe) and arms the deadline.
    func start() {
        // The start runs as the drainer: events posted by the first sends wait until it is done.
        queue.withLock { $0.draining = true }
        if let budget {
            let deadline = transactions.client.schedule(in: budget.deadline - transactions.clock.now()) { [self] in
                post(.deadline)
            }
            state.timers.append(deadline)
        }
        if launch(plan.order[0], role: .first, delay: plan.hedgeDelays[0]) {
            if let probe = plan.probe, probe != plan.order[0] {
                _ = launch(probe, role: .probe, delay: .zero)
            }
        } else {
            finish(.failure(failed()))
        }
        drain()
    }

    private func post(_ event: Event) {
        let drains = queue.withLock { queue -> Bool in
            queue.events.append(event)
            if queue.draining { return false }
            queue.draining = true
            return true
        }
        if drains { drain() }
    }

    /// Works off the queue until it is empty, then gives up the drainer's role.
    private func drain() {
        while let event = queue.withLock({ queue -> Event? in
            guard !queue.events.isEmpty else {
                queue.draining = false
                return nil
            }
            return queue.events.removeFirst()
        }) {
            if !state.finished { handle(event) }
        }
    }

    private func handle(_ event: Event) {
        switch event {
        case .deadline:
            finish(.failure(.deadlinePassed))
        case .hedgeTimer(let attempt), .serverDown(let attempt):
            // Only the newest attempt moves the question on; older timers and watches are stale.
            guard attempt == state.newest, state.attempts[attempt].outstanding else { return }
            if case .hedgeTimer = event {
                let late = state.attempts[attempt]
                transactions.selector.record(.late(after: late.delay), server: late.server, zone: zone, now: transactions.clock.now())
                _ = hedge(.late)
            } else {
                _ = hedge(.down)
            }
        case .outcome(let attempt, let result):
            state.attempts[attempt].outstanding = false
            let server = state.attempts[attempt].server
            switch result {
            case .success(let answer) where UpstreamTransactions.isUsable(answer.message):
                if state.attempts[attempt].role == .hedge {
                    transactions.selector.recordHedgeWin(server: server, zone: zone)
                    transactions.observer?.hedgeWon(after: state.attempts[attempt].sentAt - state.attempts[0].sentAt)
                }
                finish(.answer(answer))
                return
            case .success(let answer):
                state.lastError = .rcode(server, answer.message.rcode)
            case .failure(let error):
                state.lastError = .error(server, error)
            }
            transactions.logger.debug(
                "upstream attempt failed", metadata: ["zone": "\(zone)", "error": "\(state.lastError.map(\.description) ?? "-")"])
            // The newest attempt failing moves on at once (its timer is moot); an older one or
            // the probe failing changes nothing while others are still in flight.
            let stillWaiting = state.attempts.contains(where: \.outstanding)
            if attempt == state.newest || !stillWaiting {
                if !hedge(.failed), !stillWaiting { finish(.failure(failed())) }
            }
        }
    }

    /// Sends to `server` if the server cap and the budget allow it.
    private func launch(_ server: ServerAddress, role: Attempt.Role, delay: TimeAmount) -> Bool {
        guard state.asked.count < maxServers else { return false }
        guard budget?.spend() ?? true else {
            state.lastError = .budgetSpent
            return false
        }
        let attempt = state.attempts.count
        let clock = transactions.clock
        state.attempts.append(Attempt(server: server, role: role, sentAt: clock.now(), delay: delay))
        state.asked.insert(server)
        if role != .probe { state.newest = attempt }
        let (selector, zone, accept) = (transactions.selector, zone, accept)
        transactions.client.exchange(query, server: server, budget: budget) { [self] outcome in
            var result = outcome
            if case .success(let answer) = outcome, UpstreamTransactions.isUsable(answer.message), !accept(answer.message) {
                result = .failure(.lame)
            }
            // The outcome first: if recording it takes the server down, this question's own
            // watch on it must find the attempt already over (a failure, not news of one).
            post(.outcome(attempt: attempt, result))
            if let feedback = UpstreamTransactions.feedback(for: result) {
                selector.record(feedback, server: server, zone: zone, now: clock.now())
            }
        }
        guard role != .probe, state.asked.count < min(distinctServers, maxServers) else { return true }
        state.timers.append(transactions.client.schedule(in: delay) { [self] in post(.hedgeTimer(attempt: attempt)) })
        state.watches.append(selector.watchDown(server: server, zone: zone) { [self] in post(.serverDown(attempt: attempt)) })
        return true
    }

    /// Asks the best server not asked yet, for `reason`.
    private func hedge(_ reason: HedgeReason) -> Bool {
        guard state.asked.count < maxServers,
            let next = transactions.selector.next(
                zone: zone, servers: plan.order, excluding: state.asked, now: transactions.clock.now()),
            launch(next.server, role: .hedge, delay: next.delay)
        else { return false }
        transactions.observer?.hedgeSent(reason)
        return true
    }

    /// What the transaction failed with: how the last server did, or that none could be asked.
    private func failed() -> ResolutionFailure {
        switch state.lastError {
        case .budgetSpent?: budget?.exhausted(now: transactions.clock.now()) ?? .serversFailed(zone: zone, last: .budgetSpent)
        case let last?: .serversFailed(zone: zone, last: last)
        case nil: .noServers(zone: zone)
        }
    }

    private func finish(_ outcome: TransactionOutcome) {
        guard !state.finished else { return }
        state.finished = true
        state.timers.forEach { $0.cancel() }
        state.watches.forEach { $0.cancel() }
        state.timers = []
        state.watches = []
        completion(outcome)
    }
}
