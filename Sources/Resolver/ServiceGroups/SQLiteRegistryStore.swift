// ServiceGroups/: the embedded registry store: one SQLite file through GRDB, in WAL mode with
// `synchronous = FULL`, so a commit is on disk (the WAL fsynced) before `save` returns and an
// API call is acknowledged. One row per member; the schema is created by a GRDB migrator.

import Foundation
import GRDB

#if canImport(Glibc)
import Glibc
#endif

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
            // A damaged file is found now, at start, not by a later write into it.
            let verdict = try pool.read { db in try String.fetchAll(db, sql: "PRAGMA quick_check") }
            guard verdict == ["ok"] else {
                throw RegistryError("integrity check failed: \(verdict.prefix(3).joined(separator: "; ").prefix(300))")
            }
            try Self.migrator.migrate(pool)
        } catch let error as RegistryError {
            throw RegistryError("registry.path '\(path)': \(error.message)")
        } catch {
            throw RegistryError("registry.path '\(path)': \(Self.describe(error))")
        }
    }

    /// Moves a damaged database (and its -wal and -shm files) to `<path>.corrupt-<UTC time>`,
    /// kept for inspection, never deleted or written; returns the new path. Open no store on
    /// `path` meanwhile.
    public static func setAside(path: String, now: UnixMillis) throws(RegistryError) -> String {
        var time = time_t(now / 1000)
        var parts = tm()
        gmtime_r(&time, &parts)
        let stamp = String(
            format: "%04d%02d%02dT%02d%02d%02dZ", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1, Int(parts.tm_mday),
            Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec))
        let aside = "\(path).corrupt-\(stamp)"
        guard access(aside, F_OK) != 0 else { throw RegistryError("registry reset: \(aside) exists already") }
        for suffix in ["", "-wal", "-shm"] where access(path + suffix, F_OK) == 0 {
            guard rename(path + suffix, aside + suffix) == 0 else {
                throw RegistryError("registry reset: cannot move \(path + suffix): \(String(cString: strerror(errno)))")
            }
        }
        return aside
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

    public func loadAll() async throws(RegistryError) -> StoredMembers {
        do {
            return try await pool.read { db in
                var stored = StoredMembers(members: [])
                for row in try Row.fetchAll(db, sql: "SELECT * FROM members ORDER BY grp, id") {
                    do throws(RegistryError) {
                        stored.members.append(try Self.record(row).member())
                    } catch {
                        stored.damaged.append(error)
                    }
                }
                return stored
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

    /// A row as a record; every column converted without trapping (GRDB's typed subscripts stop
    /// the process on a value of the wrong type), so a damaged row is an error, skipped.
    private static func record(_ row: Row) throws(RegistryError) -> MemberRecord {
        let group = String.fromDatabaseValue(row["grp"]) ?? "?"
        let id = String.fromDatabaseValue(row["id"]) ?? "?"
        func damaged(_ column: String) -> RegistryError {
            RegistryError("registry: member \(group.prefix(64))/\(id.prefix(64)) is damaged: column \(column)")
        }
        /// The column's value, nil when NULL; a value of another type is damage.
        func optional<Value: DatabaseValueConvertible>(_ column: String) throws(RegistryError) -> Value? {
            let value: DatabaseValue = row[column]
            if value.isNull { return nil }
            guard let converted = Value.fromDatabaseValue(value) else { throw damaged(column) }
            return converted
        }
        func required<Value: DatabaseValueConvertible>(_ column: String) throws(RegistryError) -> Value {
            guard let value: Value = try optional(column) else { throw damaged(column) }
            return value
        }
        func text(_ column: String) throws(RegistryError) -> String { try required(column) }
        func number(_ column: String) throws(RegistryError) -> Int64 { try required(column) }
        func optionalText(_ column: String) throws(RegistryError) -> String? { try optional(column) }
        func optionalNumber(_ column: String) throws(RegistryError) -> Int64? { try optional(column) }
        guard let tags = try? JSONDecoder().decode([String].self, from: Data(try text("tags").utf8)) else {
            throw damaged("tags")
        }
        let port = try optionalNumber("port")
        guard port.map({ UInt16(exactly: $0) != nil }) ?? true else { throw damaged("port") }
        guard let ttl = Int(exactly: try number("ttl_s")), let timeout = Int(exactly: try number("check_timeout_ms")),
            let failures = Int(exactly: try number("failures"))
        else { throw damaged("ttl_s, check_timeout_ms or failures") }
        var record = MemberRecord(
            group: try text("grp"), id: try text("id"), address: try text("address"), port: port.flatMap { UInt16(exactly: $0) },
            service: try optionalText("service"), proto: try text("proto"), tags: tags, ttlS: ttl,
            checkType: try text("check_type"), checkPath: try optionalText("check_path"), checkTimeoutMs: timeout,
            registeredAt: try number("registered_at"), expiresAt: try number("expires_at"))
        if let since = try optionalNumber("unhealthy_since") {
            (record.unhealthySince, record.failures, record.nextCheck) = (since, failures, try optionalNumber("next_check"))
        }
        if let at = try optionalNumber("last_check_at") {
            record.lastCheckAt = at
            record.lastCheckOK = try optionalNumber("last_check_ok") == 1
            record.lastCheckDetail = try optionalText("last_check_detail")
        }
        return record
    }

    private static func describe(_ error: any Error) -> String {
        if let error = error as? DatabaseError { return error.message ?? "\(error.resultCode)" }
        return "\(error)"
    }
}
