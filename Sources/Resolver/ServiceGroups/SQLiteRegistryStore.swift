// ServiceGroups/: the embedded registry store: one SQLite file through GRDB, in WAL mode with
// `synchronous = FULL`, so a commit is on disk (the WAL fsynced) before `save` returns and an
// API call is acknowledged. One row per member; the schema is created by a GRDB migrator.

import Foundation
import GRDB

/// Members in an SQLite database at `path`.
public final class SQLiteRegistryStore: RegistryStore {
    private let pool: DatabasePool

    /// Opens (or creates) the database, creating its folder when missing.
    public init(path: String) throws(RegistryError) {
        let folder = (path as NSString).deletingLastPathComponent
        do {
            if !folder.isEmpty { try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true) }
            var configuration = Configuration()
            configuration.prepareDatabase { db in
                // WAL is set by DatabasePool; FULL fsyncs the WAL at every commit.
                try db.execute(sql: "PRAGMA synchronous = FULL")
            }
            configuration.busyMode = .timeout(5)
            pool = try DatabasePool(path: path, configuration: configuration)
            try Self.migrator.migrate(pool)
        } catch {
            throw RegistryError("registry.path '\(path)': \(Self.describe(error))")
        }
    }

    private static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("members-v1") { db in
            try db.execute(
                sql: """
                    CREATE TABLE members (
                        grp TEXT NOT NULL,
                        id TEXT NOT NULL,
                        address TEXT NOT NULL,
                        port INTEGER,
                        service TEXT,
                        proto TEXT NOT NULL,
                        tags TEXT NOT NULL,
                        ttl_s INTEGER NOT NULL,
                        check_type TEXT NOT NULL,
                        check_path TEXT,
                        check_timeout_ms INTEGER NOT NULL,
                        registered_at INTEGER NOT NULL,
                        expires_at INTEGER NOT NULL,
                        unhealthy_since INTEGER,
                        failures INTEGER NOT NULL DEFAULT 0,
                        next_check INTEGER,
                        last_check_at INTEGER,
                        last_check_ok INTEGER,
                        last_check_detail TEXT,
                        PRIMARY KEY (grp, id)
                    ) WITHOUT ROWID
                    """)
        }
        return migrator
    }

    public func loadAll() async throws(RegistryError) -> [Member] {
        do {
            return try await pool.read { db in
                try Row.fetchAll(db, sql: "SELECT * FROM members ORDER BY grp, id").map { row throws(RegistryError) in
                    try Self.member(row)
                }
            }
        } catch let error as RegistryError {
            throw error
        } catch {
            throw RegistryError("registry: cannot read: \(Self.describe(error))")
        }
    }

    public func save(_ changes: [RegistryChange]) async throws(RegistryError) {
        do {
            try await pool.write { db in
                for change in changes {
                    switch change {
                    case .put(let member):
                        try db.execute(
                            sql: """
                                INSERT OR REPLACE INTO members VALUES
                                (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                                """,
                            arguments: Self.arguments(member))
                    case .delete(let group, let id):
                        try db.execute(sql: "DELETE FROM members WHERE grp = ? AND id = ?", arguments: [group, id])
                    }
                }
            }
        } catch {
            throw RegistryError("registry: cannot write: \(Self.describe(error))")
        }
    }

    private static func arguments(_ member: Member) -> StatementArguments {
        var unhealthySince: Int64? = nil
        var failures = 0
        var nextCheck: Int64? = nil
        if case .unhealthy(let since, let count, let next) = member.health {
            (unhealthySince, failures, nextCheck) = (since, count, next)
        }
        let tags = (try? JSONEncoder().encode(member.tags)).map { String(decoding: $0, as: UTF8.self) } ?? "[]"
        return [
            member.group, member.id, member.address.description, member.port.map { Int($0) }, member.service, member.proto,
            tags, member.ttlSeconds, member.check.kind.rawValue, member.check.path, member.check.timeoutMs,
            member.registeredAt, member.expiresAt, unhealthySince, failures, nextCheck, member.lastCheck?.at,
            member.lastCheck.map { $0.healthy ? 1 : 0 }, member.lastCheck?.detail,
        ]
    }

    private static func member(_ row: Row) throws(RegistryError) -> Member {
        let group: String = row["grp"]
        let id: String = row["id"]
        let addressText: String = row["address"]
        let kindText: String = row["check_type"]
        guard let address = IPAddress(addressText), let kind = HealthCheck.Kind(rawValue: kindText) else {
            throw RegistryError("registry: member \(group)/\(id) is damaged (address '\(addressText)', check '\(kindText)')")
        }
        let tagsText: String = row["tags"]
        let tags = (try? JSONDecoder().decode([String].self, from: Data(tagsText.utf8))) ?? []
        let port: Int? = row["port"]
        var member = Member(
            group: group, id: id, address: address, port: port.flatMap { UInt16(exactly: $0) }, service: row["service"],
            proto: row["proto"], tags: tags, ttlSeconds: row["ttl_s"],
            check: HealthCheck(kind: kind, path: row["check_path"], timeoutMs: row["check_timeout_ms"]),
            registeredAt: row["registered_at"])
        member.expiresAt = row["expires_at"]
        if let since: Int64 = row["unhealthy_since"] {
            let next: Int64? = row["next_check"]
            member.health = .unhealthy(since: since, failures: row["failures"], nextCheck: next ?? since)
        }
        if let at: Int64 = row["last_check_at"] {
            let ok: Int? = row["last_check_ok"]
            let detail: String? = row["last_check_detail"]
            member.lastCheck = CheckResult(at: at, healthy: ok == 1, detail: detail ?? "")
        }
        return member
    }

    private static func describe(_ error: any Error) -> String {
        if let error = error as? DatabaseError { return error.message ?? "\(error.resultCode)" }
        return "\(error)"
    }
}
