// ServiceGroups/: a member as a flat Codable record, for stores and channels that carry members
// as JSON (the registry's feed to worker processes). Every field of `Member` round-trips.

import Foundation

/// A `Member` in a form JSON can carry.
public struct MemberRecord: Codable, Sendable, Equatable {
    public var group: String
    public var id: String
    public var address: String
    public var port: UInt16?
    public var service: String?
    public var proto: String
    public var tags: [String]
    public var ttlS: Int
    public var checkType: String
    public var checkPath: String?
    public var checkTimeoutMs: Int
    public var registeredAt: UnixMillis
    public var expiresAt: UnixMillis
    public var unhealthySince: UnixMillis?
    public var failures: Int?
    public var nextCheck: UnixMillis?
    public var lastCheckAt: UnixMillis?
    public var lastCheckOK: Bool?
    public var lastCheckDetail: String?

    enum CodingKeys: String, CodingKey {
        case group, id, address, port, service, proto, tags, failures
        case ttlS = "ttl_s"
        case checkType = "check_type"
        case checkPath = "check_path"
        case checkTimeoutMs = "check_timeout_ms"
        case registeredAt = "registered_at"
        case expiresAt = "expires_at"
        case unhealthySince = "unhealthy_since"
        case nextCheck = "next_check"
        case lastCheckAt = "last_check_at"
        case lastCheckOK = "last_check_ok"
        case lastCheckDetail = "last_check_detail"
    }

    /// A record of stored fields, not checked yet (`member()` checks).
    init(
        group: String, id: String, address: String, port: UInt16?, service: String?, proto: String, tags: [String], ttlS: Int,
        checkType: String, checkPath: String?, checkTimeoutMs: Int, registeredAt: UnixMillis, expiresAt: UnixMillis
    ) {
        (self.group, self.id, self.address, self.port, self.service, self.proto, self.tags) =
            (group, id, address, port, service, proto, tags)
        (self.ttlS, self.checkType, self.checkPath, self.checkTimeoutMs) = (ttlS, checkType, checkPath, checkTimeoutMs)
        (self.registeredAt, self.expiresAt) = (registeredAt, expiresAt)
    }

    public init(_ member: Member) {
        group = member.group
        id = member.id
        address = member.address.description
        port = member.port
        service = member.service
        proto = member.proto
        tags = member.tags
        ttlS = member.ttlSeconds
        checkType = member.check.kind.rawValue
        checkPath = member.check.path
        checkTimeoutMs = member.check.timeoutMs
        registeredAt = member.registeredAt
        expiresAt = member.expiresAt
        if case .unhealthy(let since, let count, let next) = member.health {
            (unhealthySince, failures, nextCheck) = (since, count, next)
        }
        lastCheckAt = member.lastCheck?.at
        lastCheckOK = member.lastCheck?.healthy
        lastCheckDetail = member.lastCheck?.detail
    }

    /// Stored times must lie between 1970 and the year 9999: anything else is damage.
    static let timeRange: ClosedRange<UnixMillis> = 0...253_402_300_799_999
    /// Failures counted of an unhealthy member.
    static let failureRange = 1...1_000_000

    /// The member, checked exactly as a registration through the API is (Registration), and its
    /// stored state (times, failures) checked for range; or an error naming what is damaged. A
    /// store or a channel is never trusted: a bad record is refused here, not trapped on later.
    public func member() throws(RegistryError) -> Member {
        var check: [String: JSONValue] = ["type": .string(checkType), "timeout_ms": .number(Double(checkTimeoutMs))]
        if let checkPath { check["path"] = .string(checkPath) }
        var fields: [String: JSONValue] = [
            "address": .string(address), "ttl_s": .number(Double(ttlS)), "proto": .string(proto),
            "tags": .array(tags.map { .string($0) }), "check": .object(check),
        ]
        if let port { fields["port"] = .number(Double(port)) }
        if let service { fields["service"] = .string(service) }
        var member: Member
        do {
            member = try Registration.member(group: group, id: id, fields: fields, now: registeredAt)
        } catch {
            throw damaged(error.description)
        }
        var times = [registeredAt, expiresAt]
        if let unhealthySince { times += [unhealthySince, nextCheck ?? unhealthySince] }
        if let lastCheckAt { times.append(lastCheckAt) }
        guard times.allSatisfy(Self.timeRange.contains) else { throw damaged("a time outside 1970–9999") }
        member.expiresAt = expiresAt
        if let unhealthySince {
            let failures = failures ?? 1
            guard Self.failureRange.contains(failures) else { throw damaged("failures: \(failures)") }
            member.health = .unhealthy(since: unhealthySince, failures: failures, nextCheck: nextCheck ?? unhealthySince)
        }
        if let lastCheckAt {
            member.lastCheck = CheckResult(at: lastCheckAt, healthy: lastCheckOK ?? false, detail: lastCheckDetail ?? "")
        }
        return member
    }

    /// An error naming the member (its names cut short: they may be the damage) and the fault.
    private func damaged(_ fault: String) -> RegistryError {
        RegistryError("registry: member \(group.prefix(64))/\(id.prefix(64)) is damaged: \(fault.prefix(200))")
    }
}

/// A `RegistryChange` in a form JSON can carry: a put carries the member, a delete its key.
public struct RegistryChangeRecord: Codable, Sendable, Equatable {
    public var put: MemberRecord?
    public var delete: [String]?

    public init(_ change: RegistryChange) {
        switch change {
        case .put(let member): put = MemberRecord(member)
        case .delete(let group, let id): delete = [group, id]
        }
    }

    public func change() throws(RegistryError) -> RegistryChange {
        if let put { return .put(try put.member()) }
        guard let delete, delete.count == 2 else { throw RegistryError("registry: a change with neither put nor delete") }
        return .delete(group: delete[0], id: delete[1])
    }
}
