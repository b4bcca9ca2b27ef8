// ServiceGroups/: where registrations are kept so a crash or restart loses none. The registry
// calls a store one change at a time, in order, and answers an API call only after the store
// returned: a returned `save` is durable. SQLite (SQLiteRegistryStore) is the embedded default.

/// Why the store could not do what was asked.
public struct RegistryError: Error, Sendable, CustomStringConvertible {
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

/// Durable storage of members.
public protocol RegistryStore: Sendable {
    /// Every stored member.
    func loadAll() async throws(RegistryError) -> [Member]
    /// Applies the changes atomically (all or none) and durably before returning.
    func save(_ changes: [RegistryChange]) async throws(RegistryError)
}
