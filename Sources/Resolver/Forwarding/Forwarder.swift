// Forwarding/: resolving a question by asking a forward zone's servers. The plan (who first, who
// next, when to hedge, whom to probe) comes from Selection/; this file carries it out: it asks
// the first server, asks the next one when the hedge delay passes or the current one fails, and
// returns the first valid answer while slower attempts run on to report their outcome.

import Logging
import NIOCore

/// The outcome of forwarding one question.
public enum Resolution: Sendable {
    /// A usable answer (NOERROR or NXDOMAIN, possibly empty).
    case answer(UpstreamAnswer)
    /// Every server failed or refused; the client gets SERVFAIL.
    case failure(String)
    /// No forward zone covers the name.
    case noZone
}

/// Forwards questions to the servers of their forward zone.
public final class Forwarder: Sendable {
    public let zones: ForwardZones
    let selector: any ServerSelector
    let client: UpstreamClient
    let logger: Logger

    public init(zones: ForwardZones, selector: any ServerSelector, client: UpstreamClient, logger: Logger) {
        self.zones = zones
        self.selector = selector
        self.client = client
        self.logger = logger
    }

    public func resolve(_ query: UpstreamQuery) async -> Resolution {
        guard let (zone, servers) = zones.zone(for: query.question.name), !servers.isEmpty else { return .noZone }
        let plan = selector.plan(zone: zone, servers: servers, now: .now())
        return await execute(plan, query: query, zone: zone)
    }

    private enum Event: Sendable {
        case outcome(attempt: Int, Result<UpstreamAnswer, UpstreamError>)
        case hedgeTimer(attempt: Int)
    }

    private func execute(_ plan: SelectionPlan, query: UpstreamQuery, zone: DomainName) async -> Resolution {
        let (events, sink) = AsyncStream<Event>.makeStream()
        var launched = 0
        var outstanding = 0
        var lastError = "no servers"

        func launch(_ server: ServerAddress, attempt: Int) {
            outstanding += 1
            Task {
                let result: Result<UpstreamAnswer, UpstreamError>
                do throws(UpstreamError) {
                    result = .success(try await client.exchange(query, server: server))
                } catch {
                    result = .failure(error)
                }
                selector.record(Self.feedback(for: result), server: server, zone: zone, now: .now())
                sink.yield(.outcome(attempt: attempt, result))
            }
        }
        func launchNext() -> Bool {
            guard launched < plan.order.count else { return false }
            let attempt = launched
            launched += 1
            launch(plan.order[attempt], attempt: attempt)
            let delay = plan.hedgeDelays[attempt]
            if launched < plan.order.count {
                Task {
                    try? await Task.sleep(nanoseconds: UInt64(max(0, delay.nanoseconds)))
                    sink.yield(.hedgeTimer(attempt: attempt))
                }
            }
            return true
        }

        _ = launchNext()
        if let probe = plan.probe, !plan.order.prefix(1).contains(probe) {
            launch(probe, attempt: -1)
        }
        defer { sink.finish() }
        for await event in events {
            switch event {
            case .hedgeTimer(let attempt):
                // Only the most recent attempt's timer hedges; older timers are stale.
                if attempt == launched - 1 { _ = launchNext() }
            case .outcome(let attempt, let result):
                outstanding -= 1
                switch result {
                case .success(let answer) where Self.isUsable(answer.message):
                    return .answer(answer)
                case .success(let answer):
                    lastError = "\(answer.server) answered \(answer.message.rcode)"
                case .failure(let error):
                    lastError = "\(attempt >= 0 ? plan.order[attempt].description : "probe"): \(error)"
                }
                logger.debug("upstream attempt failed", metadata: ["zone": "\(zone)", "error": "\(lastError)"])
                // Fail over at once when nothing else is in flight.
                if outstanding == 0, !launchNext() {
                    return .failure(lastError)
                }
            }
        }
        return .failure(lastError)
    }

    /// NOERROR and NXDOMAIN are answers; SERVFAIL, REFUSED, FORMERR and NOTIMP say this server
    /// could not help, and the next one is asked.
    static func isUsable(_ message: DNSMessage) -> Bool {
        message.rcode == .noError || message.rcode == .nxDomain
    }

    static func feedback(for result: Result<UpstreamAnswer, UpstreamError>) -> ServerFeedback {
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
