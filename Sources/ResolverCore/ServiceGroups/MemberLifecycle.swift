// ServiceGroups/: a member's life as pure functions of (member, now, policy): when it is due for
// a check, what a check's result makes of it, when it is removed, and the TTL its DNS answers
// carry. The registry and the health checker apply these; unit tests drive them with plain numbers.

/// The `[cluster]` timing settings.
public struct RegistryPolicy: Sendable, Equatable {
    /// The longest TTL of a group's DNS answers (`cluster.answer_ttl_s`).
    public var answerTTLSeconds: Int = 5
    /// An unhealthy member is removed this long after its first failed check
    /// (`cluster.deregister_after_s`).
    public var deregisterAfterSeconds: Int = 600
    /// The first re-check of an unhealthy member comes this long after the failure; each further
    /// failure doubles it up to `recheckMaxSeconds` (`cluster.recheck_max_s`).
    public var recheckBaseMillis: Int64 = 1000
    public var recheckMaxSeconds: Int = 60

    public init() {}

    /// Members whose check is due now: healthy ones whose TTL ran out (with a check to run),
    /// and unhealthy ones whose re-check time has come.
    public func isDueForCheck(_ member: Member, now: UnixMillis) -> Bool {
        switch member.health {
        case .healthy: member.check.kind != .none && member.expiresAt <= now
        case .unhealthy(_, _, let nextCheck): nextCheck <= now
        }
    }

    /// Whether the member leaves the registry: a check-less registration whose TTL ran out, or an
    /// unhealthy member past the deregistration grace time.
    public func isExpired(_ member: Member, now: UnixMillis) -> Bool {
        switch member.health {
        case .healthy: member.check.kind == .none && member.expiresAt <= now
        case .unhealthy(let since, _, _): now.since(since) >= Int64(0).adding(seconds: deregisterAfterSeconds)
        }
    }

    /// The member after a check that finished at `result.at`: healthy renews the TTL from then;
    /// unhealthy takes it out of the answers and schedules the next check with back-off.
    public func applying(_ result: CheckResult, to member: Member) -> Member {
        var next = member
        // What a check saw is kept short: it is stored and carried to every worker.
        next.lastCheck = CheckResult(at: result.at, healthy: result.healthy, detail: String(result.detail.prefix(512)))
        if result.healthy {
            next.health = .healthy
            next.expiresAt = result.at.adding(seconds: member.ttlSeconds)
        } else {
            let (since, failures): (UnixMillis, Int) =
                switch member.health {
                case .healthy: (result.at, 1)
                case .unhealthy(let since, let failures, _): (since, min(failures, Int.max - 1) + 1)
                }
            let cap = Int64(0).adding(seconds: recheckMaxSeconds)
            let delay = min(recheckBaseMillis << min(max(failures - 1, 0), 20), cap)
            next.health = .unhealthy(since: since, failures: failures, nextCheck: result.at.adding(millis: delay))
        }
        return next
    }

    /// A heartbeat: the member is alive, whatever its checks said; its TTL starts anew.
    public func renewing(_ member: Member, now: UnixMillis) -> Member {
        var next = member
        next.health = .healthy
        next.expiresAt = now.adding(seconds: member.ttlSeconds)
        return next
    }

    /// The TTL of a DNS answer naming the member: never longer than `answerTTLSeconds` nor than
    /// what is left of its registration (0 while its check is running).
    public func answerTTL(_ member: Member, now: UnixMillis) -> UInt32 {
        Self.answerTTL(expiresAt: member.expiresAt, now: now, answerTTLSeconds: answerTTLSeconds)
    }

    /// The same from the member's expiry alone (what a rendered answer keeps of it).
    @inline(__always)
    public static func answerTTL(expiresAt: UnixMillis, now: UnixMillis, answerTTLSeconds: Int) -> UInt32 {
        let left = max(0, expiresAt.since(now) / 1000)
        return UInt32(clamping: min(Int64(answerTTLSeconds), left))
    }

    /// Seconds left of the registration TTL (0 once it ran out).
    public func secondsLeft(_ member: Member, now: UnixMillis) -> Double {
        Double(max(0, member.expiresAt.since(now))) / 1000
    }
}
