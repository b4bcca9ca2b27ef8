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

    /// The member, or an error naming what is damaged.
    public func member() throws(RegistryError) -> Member {
        guard let ip = IPAddress(address), let kind = HealthCheck.Kind(rawValue: checkType) else {
            throw RegistryError("registry: member \(group)/\(id) is damaged (address '\(address)', check '\(checkType)')")
        }
        var member = Member(
            group: group, id: id, address: ip, port: port, service: service, proto: proto, tags: tags, ttlSeconds: ttlS,
            check: HealthCheck(kind: kind, path: checkPath, timeoutMs: checkTimeoutMs), registeredAt: registeredAt)
        member.expiresAt = expiresAt
        if let unhealthySince {
            member.health = .unhealthy(since: unhealthySince, failures: failures ?? 1, nextCheck: nextCheck ?? unhealthySince)
        }
        if let lastCheckAt {
            member.lastCheck = CheckResult(at: lastCheckAt, healthy: lastCheckOK ?? false, detail: lastCheckDetail ?? "")
        }
        return member
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
