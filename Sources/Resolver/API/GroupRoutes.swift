// API/: the service groups' routes.
//   PUT    /v1/groups/{group}/members/{id}             register or replace → 201 / 200
//   POST   /v1/groups/{group}/members/{id}/heartbeat   renew the TTL → 200, 404 when unknown
//   DELETE /v1/groups/{group}/members/{id}             deregister → 204, 404 when unknown
//   GET    /v1/groups                                  every group with its member counts
//   GET    /v1/groups/{group}                          one group's members, health and TTL left
//   POST   /v1/registry/reset                          a degraded registry: set the damaged store aside
// Bad input is a 400 naming the field; a body over 64 KiB a 413. A 2xx means the change is on disk;
// a 503 that nothing was changed (the store failed, or the registry is degraded), its reason generic.
// A member's address must lie in registry.allowed_networks (400, field `address`), checked
// before the registry sees it: a refused address is never health-checked.

import Foundation
import HTTPTypes
import Hummingbird

/// One member as the API shows it.
public struct MemberView: Codable, Sendable, Equatable {
    public struct Check: Codable, Sendable, Equatable {
        public var type: String
        public var path: String?
        public var timeoutMs: Int

        enum CodingKeys: String, CodingKey {
            case type, path
            case timeoutMs = "timeout_ms"
        }
    }

    public struct LastCheck: Codable, Sendable, Equatable {
        /// Unix time in seconds.
        public var at: Double
        public var healthy: Bool
        public var detail: String
    }

    public var group: String
    public var id: String
    public var address: String
    public var port: Int?
    public var service: String?
    public var proto: String
    public var tags: [String]
    public var ttlS: Int
    /// Seconds until the TTL runs out (0: it has, and the check is due or running).
    public var ttlLeftS: Double
    /// `healthy` or `unhealthy`.
    public var health: String
    public var check: Check
    public var lastCheck: LastCheck?
    /// Unix time in seconds.
    public var registeredAt: Double
    /// For an unhealthy member: when it is removed unless a check or heartbeat revives it.
    public var removeAt: Double?

    enum CodingKeys: String, CodingKey {
        case group, id, address, port, service, proto, tags, health, check
        case ttlS = "ttl_s"
        case ttlLeftS = "ttl_left_s"
        case lastCheck = "last_check"
        case registeredAt = "registered_at"
        case removeAt = "remove_at"
    }

    init(_ member: Member, policy: RegistryPolicy, now: UnixMillis) {
        func seconds(_ millis: UnixMillis) -> Double { Double(millis) / 1000 }
        group = member.group
        id = member.id
        address = member.address.description
        port = member.port.map(Int.init)
        service = member.service
        proto = member.proto
        tags = member.tags
        ttlS = member.ttlSeconds
        ttlLeftS = policy.secondsLeft(member, now: now)
        check = Check(type: member.check.kind.rawValue, path: member.check.path, timeoutMs: member.check.timeoutMs)
        lastCheck = member.lastCheck.map { LastCheck(at: seconds($0.at), healthy: $0.healthy, detail: $0.detail) }
        registeredAt = seconds(member.registeredAt)
        switch member.health {
        case .healthy:
            health = "healthy"
        case .unhealthy(let since, _, _):
            health = "unhealthy"
            removeAt = seconds(since.adding(seconds: policy.deregisterAfterSeconds))
        }
    }
}

/// `GET /v1/groups/{group}`.
public struct GroupView: ResponseEncodable, Decodable, Sendable {
    public var group: String
    public var members: [MemberView]
}

/// `GET /v1/groups`.
public struct GroupsView: ResponseEncodable, Decodable, Sendable {
    public struct Summary: Codable, Sendable {
        public var group: String
        public var members: Int
        public var healthy: Int
    }

    public var groups: [Summary]
}

extension MemberView: ResponseEncodable {}

/// `POST /v1/registry/reset`.
public struct RegistryResetResponse: ResponseEncodable, Decodable, Sendable {
    public var reset: Bool
    /// Where the damaged store was moved.
    public var setAside: String

    enum CodingKeys: String, CodingKey {
        case reset
        case setAside = "set_aside"
    }
}

extension AdminAPI {
    static let maxBodyBytes = 64 * 1024

    func addGroupRoutes(to router: Router<BasicRequestContext>) {
        let registry = self.registry
        let policy = registry.policy
        let networks = memberNetworks
        let members = "/v1/groups/:group/members/:id"

        router.put(RouterPath(members)) { request, context -> EditedResponse<MemberView> in
            let body = try await request.body.collect(upTo: Self.maxBodyBytes)
            let now = registry.clock.now()
            // Registration checks the path's group and id along with the body's fields.
            let member = try Self.badRequest { () throws(FieldError) in
                let member = try Registration.member(
                    group: context.parameters.get("group") ?? "", id: context.parameters.get("id") ?? "",
                    body: Data(buffer: body), now: now)
                if let refusal = networks.refusal(member.address) { throw FieldError("address", refusal) }
                return member
            }
            let outcome = try await Self.stored(registry, context) { () async throws(RegistryError) in
                try await registry.register(member)
            }
            let view = MemberView(member, policy: policy, now: now)
            switch outcome {
            case .created: return EditedResponse(status: .created, response: view)
            case .replaced: return EditedResponse(status: .ok, response: view)
            }
        }

        router.post(RouterPath(members + "/heartbeat")) { _, context -> MemberView in
            let (group, id) = try Self.memberPath(context)
            let renewed = try await Self.stored(registry, context) { () async throws(RegistryError) in
                try await registry.heartbeat(group: group, id: id)
            }
            guard let renewed else { throw HTTPError(.notFound, message: "member '\(id)' of group '\(group)' is not registered") }
            return MemberView(renewed, policy: policy, now: registry.clock.now())
        }

        router.delete(RouterPath(members)) { _, context -> HTTPResponse.Status in
            let (group, id) = try Self.memberPath(context)
            let removed = try await Self.stored(registry, context) { () async throws(RegistryError) in
                try await registry.deregister(group: group, id: id)
            }
            guard removed else { throw HTTPError(.notFound, message: "member '\(id)' of group '\(group)' is not registered") }
            return .noContent
        }

        // Sets a damaged store aside (`<path>.corrupt-<time>`) and starts an empty one; only while
        // the registry is degraded, so a working registry is never thrown away by mistake.
        router.post("/v1/registry/reset") { _, context -> RegistryResetResponse in
            do throws(ServiceRegistry.ResetRefusal) {
                let aside = try await registry.reset()
                context.logger.notice("registry reset: the damaged store was set aside", metadata: ["path": "\(aside)"])
                return RegistryResetResponse(reset: true, setAside: aside)
            } catch {
                switch error {
                case .notDegraded:
                    throw HTTPError(.conflict, message: "the registry is not degraded: nothing to reset")
                case .notSupported:
                    throw HTTPError(.conflict, message: "this registry backend is not reset here (repair etcd instead)")
                case .failed(let error):
                    context.logger.error("registry reset failed", metadata: ["error": "\(error)"])
                    throw HTTPError(
                        .serviceUnavailable, message: "registry reset failed; the registry stays degraded (details in the log)")
                }
            }
        }

        router.get("/v1/groups") { _, _ -> GroupsView in
            try Self.readable(registry)
            return GroupsView(groups: registry.snapshot().map { entry in
                .init(group: entry.group, members: entry.members.count, healthy: entry.members.filter(\.isHealthy).count)
            })
        }

        router.get("/v1/groups/:group") { _, context -> GroupView in
            try Self.readable(registry)
            let group = try Self.badRequest { () throws(FieldError) in
                try ServiceLabel.validated(context.parameters.get("group") ?? "", field: "group")
            }
            guard let members = registry.members(of: group) else {
                throw HTTPError(.notFound, message: "group '\(group)' has no members")
            }
            let now = registry.clock.now()
            return GroupView(group: group, members: members.map { MemberView($0, policy: policy, now: now) })
        }
    }

    /// The path's group and id, checked and in lower case.
    private static func memberPath(_ context: BasicRequestContext) throws(HTTPError) -> (String, String) {
        try badRequest { () throws(FieldError) in
            (
                try ServiceLabel.validated(context.parameters.get("group") ?? "", field: "group"),
                try ServiceLabel.validated(context.parameters.get("id") ?? "", field: "id")
            )
        }
    }

    /// Runs a check of the request; a bad field is a 400 naming it.
    private static func badRequest<Value>(_ body: () throws(FieldError) -> Value) throws(HTTPError) -> Value {
        do {
            return try body()
        } catch {
            throw HTTPError(.badRequest, message: error.description)
        }
    }

    /// Runs a registry change; a store failure is a 503 (nothing was changed) with a generic
    /// reason: the store's own words (SQLite errors, etcd URLs) go to the log only.
    private static func stored<Value>(
        _ registry: ServiceRegistry, _ context: BasicRequestContext, _ body: () async throws(RegistryError) -> Value
    ) async throws(HTTPError) -> Value {
        do {
            return try await body()
        } catch {
            if case .degraded(let reason) = registry.status {
                throw HTTPError(.serviceUnavailable, message: "registry degraded: \(reason); nothing was changed")
            }
            context.logger.error("registry: a change could not be stored", metadata: ["error": "\(error)"])
            throw HTTPError(
                .serviceUnavailable, message: "registry: the store is unavailable; nothing was changed (details in the log)")
        }
    }

    /// A degraded registry's view is not the registry: reads are a 503 with the reason.
    private static func readable(_ registry: ServiceRegistry) throws(HTTPError) {
        if case .degraded(let reason) = registry.status {
            throw HTTPError(.serviceUnavailable, message: "registry degraded: \(reason)")
        }
    }
}
