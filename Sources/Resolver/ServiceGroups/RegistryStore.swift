// ServiceGroups/: where registrations are kept so a crash or restart loses none. The registry
// calls a store one change at a time, in order, and answers an API call only after the store
// returned: a returned `save` is durable. SQLite (SQLiteRegistryStore) is the embedded default.

import Logging

/// Why the store could not do what was asked.
public struct RegistryError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    /// The store could not be reached (asking again later may work), rather than refused.
    public var unreachable: Bool

    public init(_ message: String, unreachable: Bool = false) {
        self.message = message
        self.unreachable = unreachable
    }

    public var description: String { message }
}

/// One change to the stored registry.
public enum RegistryChange: Sendable, Equatable {
    /// Insert or replace the member (keyed by group and id).
    case put(Member)
    case delete(group: String, id: String)
}

/// What a store holds: the members that passed the checks a registration passes, and why each
/// damaged record was skipped (a bad record is logged and left out, never trusted or trapped on).
public struct StoredMembers: Sendable {
    public var members: [Member]
    public var damaged: [RegistryError]

    public init(members: [Member], damaged: [RegistryError] = []) {
        self.members = members
        self.damaged = damaged
    }
}

extension StoredMembers {
    /// Logs each damaged record skipped (the first 100, then a count); nothing deletes them.
    static func log(_ damaged: [RegistryError], logger: Logger) {
        for error in damaged.prefix(100) {
            logger.error("registry: a damaged member skipped", metadata: ["error": "\(error)"])
        }
        if damaged.count > 100 {
            logger.error("registry: more damaged members skipped", metadata: ["count": "\(damaged.count - 100)"])
        }
    }
}

/// Durable storage of members.
public protocol RegistryStore: Sendable {
    /// Every stored member that is valid, and the damaged records skipped.
    func loadAll() async throws(RegistryError) -> StoredMembers
    /// Applies the changes atomically (all or none) and durably before returning.
    func save(_ changes: [RegistryChange]) async throws(RegistryError)
}

/// The store of a degraded registry whose own store could not be opened: it holds nothing and
/// takes nothing, so the damaged one is never written to.
struct UnavailableStore: RegistryStore {
    func loadAll() async throws(RegistryError) -> StoredMembers {
        throw RegistryError("the registry store is unavailable", unreachable: true)
    }

    func save(_ changes: [RegistryChange]) async throws(RegistryError) {
        throw RegistryError("the registry store is unavailable", unreachable: true)
    }
}
