// dig-lite: admin verbs over resolverd's HTTP API. The API address comes from --api or
// RESOLVERD_API; the token from --token-file, RESOLVERD_TOKEN, RESOLVERD_TOKEN_FILE or resolverd's
// default token file (data/api.token), in that order. --token still works, but a command line
// shows in `ps` to every user of the host: the file or the environment keeps it private.

import ArgumentParser
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Resolver

/// Where the API is and how to authenticate; shared by every admin verb.
struct APIOptions: ParsableArguments {
    @Option(help: "resolverd's API base URL (default: $RESOLVERD_API or http://127.0.0.1:8053).")
    var api: String?

    @Option(help: "Bearer token (visible in ps: prefer --token-file or $RESOLVERD_TOKEN).")
    var token: String?

    @Option(
        name: .customLong("token-file"),
        help: "File holding the token (default: $RESOLVERD_TOKEN_FILE, else \(APIOptions.defaultTokenFile) when it exists).")
    var tokenFile: String?

    /// resolverd's default token file (api.token beside the default registry path).
    static let defaultTokenFile = Config().apiTokenFile

    @Flag(help: "Print the API's JSON instead of a table.")
    var json = false

    /// The largest API answer read (a registry of 100,000 members is about 20 MiB of JSON).
    static let maxResponseBytes = 64 << 20

    /// GETs `path` and returns the body; errors print a clear line and exit 1.
    func get(_ path: String) async throws -> Data { try await send("GET", path).data }

    /// POSTs `body` (JSON) to `path` and returns the answer's body.
    func post(_ path: String, json body: Data) async throws -> Data { try await send("POST", path, body: body).data }

    /// Sends a request; a status outside 2xx prints the API's message and exits 1.
    func send(_ method: String, _ path: String, body: Data? = nil) async throws -> (data: Data, status: Int) {
        let environment = ProcessInfo.processInfo.environment
        var base = api ?? environment["RESOLVERD_API"] ?? "http://127.0.0.1:8053"
        if !base.contains("://") { base = "http://" + base }  // `--api 127.0.0.1:8053` is fine too
        while base.hasSuffix("/") { base.removeLast() }
        guard let url = URL(string: base + path) else {
            writeStandardError("dig-lite: '\(base)' is not a URL\n")
            throw ExitCode(1)
        }
        var request = HTTPClientRequest(url: url.absoluteString)
        request.method = HTTPMethod(rawValue: method)
        if let body {
            request.body = .bytes(ByteBuffer(bytes: body))
            request.headers.add(name: "Content-Type", value: "application/json")
        }
        if let token = try bearerToken(environment) {
            request.headers.add(name: "Authorization", value: "Bearer \(token)")
        }
        let data: Data
        let status: Int
        do {
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
            status = Int(response.status.code)
            data = Data(buffer: try await response.body.collect(upTo: Self.maxResponseBytes))
        } catch {
            writeStandardError("dig-lite: cannot reach \(url): \(error)\n")
            throw ExitCode(1)
        }
        guard (200..<300).contains(status) else {
            let message = (try? JSONDecoder().decode(APIErrorBody.self, from: data))?.error.message
            writeStandardError("dig-lite: \(method) \(url): \(status) \(message ?? String(decoding: data, as: UTF8.self))\n")
            throw ExitCode(1)
        }
        return (data, status)
    }

    /// The token to send: --token, --token-file, $RESOLVERD_TOKEN, $RESOLVERD_TOKEN_FILE, or the
    /// default file when it exists; nil when there is none. A named file that cannot be read
    /// prints a clear line and exits 1.
    func bearerToken(_ environment: [String: String]) throws -> String? {
        if let token, !token.isEmpty { return token }
        if let path = tokenFile { return try Self.readToken(path) }
        if let token = environment["RESOLVERD_TOKEN"], !token.isEmpty { return token }
        if let path = environment["RESOLVERD_TOKEN_FILE"], !path.isEmpty { return try Self.readToken(path) }
        return FileManager.default.fileExists(atPath: Self.defaultTokenFile) ? try Self.readToken(Self.defaultTokenFile) : nil
    }

    /// The first line of a token file.
    static func readToken(_ path: String) throws -> String {
        guard let text = readTextFile(path),
            let line = text.split(whereSeparator: \.isNewline).first?.trimmingCharacters(in: .whitespaces), !line.isEmpty
        else {
            writeStandardError("dig-lite: cannot read a token from '\(path)'\n")
            throw ExitCode(1)
        }
        return line
    }

    /// With `--json`, prints the API's answer and returns nil; otherwise decodes it.
    func decodeUnlessJSON<Value: Decodable>(_ data: Data, as type: Value.Type) throws -> Value? {
        if json {
            print(String(decoding: data, as: UTF8.self))
            return nil
        }
        return try JSONDecoder().decode(type, from: data)
    }
}

/// The API's error body: `{"error": {"message": "…"}}`.
struct APIErrorBody: Decodable {
    struct Detail: Decodable { var message: String }
    var error: Detail
}

/// `dig-lite servers`: every zone's servers in selection order, with their figures.
struct Servers: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show every zone's servers in selection order (SRTT, RTTVAR, queries, timeouts, state).")

    @OptionGroup var options: APIOptions

    func run() async throws {
        let data = try await options.get("/v1/servers")
        guard let response = try options.decodeUnlessJSON(data, as: ServersResponse.self) else { return }
        print(ServersTable.render(response), terminator: "")
    }
}

/// `dig-lite flush`: removes cache entries.
struct Flush: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Remove cache entries: all of them, one name's (every type), or a name and everything below it.")

    @Argument(help: "The name to flush; without one, the whole cache.")
    var name: String?

    @Flag(help: "Also flush every name below NAME.")
    var subtree = false

    @OptionGroup var options: APIOptions

    func validate() throws {
        if subtree, name == nil { throw ValidationError("--subtree needs a NAME") }
    }

    func run() async throws {
        let body = try JSONEncoder().encode(FlushRequest(name: name, subtree: subtree ? true : nil))
        let data = try await options.post("/v1/cache/flush", json: body)
        guard let response = try options.decodeUnlessJSON(data, as: FlushResponse.self) else { return }
        print("flushed \(response.flushed) \(response.flushed == 1 ? "entry" : "entries")")
    }
}

/// `dig-lite reload`: re-read resolverd's config (as SIGHUP does).
struct Reload: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Re-read the config: allow list, forward zones, rate limits and log settings take effect at once.")

    @OptionGroup var options: APIOptions

    func run() async throws {
        let data = try await options.post("/v1/reload", json: Data("{}".utf8))
        guard let response = try options.decodeUnlessJSON(data, as: ReloadResponse.self) else { return }
        print("reloaded")
        if !response.restartNeeded.isEmpty {
            print("changed but only applied after a restart: \(response.restartNeeded.joined(separator: ", "))")
        }
    }
}

/// `dig-lite cache`: the cache's figures.
struct Cache: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the cache's entries, memory, hits, misses, prefetches and evictions.")

    @OptionGroup var options: APIOptions

    func run() async throws {
        let data = try await options.get("/v1/cache")
        guard let stats = try options.decodeUnlessJSON(data, as: CacheStatistics.self) else { return }
        let lookups = stats.hits + stats.misses
        let ratio = lookups == 0 ? 0 : Double(stats.hits) / Double(lookups) * 100
        print("""
            entries     \(stats.entries)
            memory      \(Self.size(stats.bytes)) of \(Self.size(stats.maxBytes))
            hits        \(stats.hits) (\(String(format: "%.1f", ratio)) % of lookups)
            misses      \(stats.misses)
            stale hits  \(stats.staleHits)
            prefetches  \(stats.prefetches)
            inserts     \(stats.inserts)
            evictions   \(stats.evictions)
            """)
    }

    /// Bytes in the largest binary unit that keeps the number at or above 1 (`1.5 MiB`).
    static func size(_ bytes: Int) -> String {
        var value = Double(bytes)
        for unit in ["B", "KiB", "MiB", "GiB"] {
            if value < 1024 || unit == "GiB" {
                return unit == "B" ? "\(bytes) B" : String(format: "%.1f", value) + " " + unit
            }
            value /= 1024
        }
        return "\(bytes) B"
    }
}

/// `dig-lite stats`: the first figures to look at.
struct Stats: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show queries per second, cache hit ratio, uptime, memory, upstream servers and members.")

    @OptionGroup var options: APIOptions

    func run() async throws {
        let data = try await options.get("/v1/stats")
        guard let stats = try options.decodeUnlessJSON(data, as: StatsResponse.self) else { return }
        let lines = [
            ("mode", stats.mode),
            ("uptime", "\(stats.uptimeS) s"),
            ("queries", "\(stats.queriesTotal) (\(stats.droppedTotal) dropped)"),
            ("qps", String(format: "%.1f now, %.1f over the last minute", stats.qps1s, stats.qps60s)),
            ("in flight", "\(stats.inFlight)"),
            ("cache", String(format: "%.1f %% hits, ", stats.cache.hitRatio * 100)
                + "\(stats.cache.entries) entries, \(Cache.size(stats.cache.bytes))"),
            ("memory", "\(Cache.size(stats.memoryBytes)) resident, \(stats.openSockets) sockets"),
            ("upstream", "\(stats.upstream.servers) servers in \(stats.upstream.zones) zones, \(stats.upstream.down) down"),
            ("members", "\(stats.registry.healthy) healthy, \(stats.registry.unhealthy) unhealthy" + Self.registryNote(stats.registry)),
        ] + (stats.registry.degraded.map { [("registry", "DEGRADED: \($0)")] } ?? [])
        for (key, value) in lines { print(key.padding(toLength: 12, withPad: " ", startingAt: 0) + value) }
    }

    /// " (etcd, runs the checks)" for a shared registry; nothing for the embedded one.
    static func registryNote(_ registry: StatsResponse.Registry) -> String {
        guard let backend = registry.backend, backend != "sqlite" else { return "" }
        return " (\(backend), \(registry.runsChecks == true ? "runs the checks" : "another instance runs the checks"))"
    }
}

/// `dig-lite workers`: the worker processes (server.workers), their pids, restarts and last exits.
struct Workers: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show the worker processes: state, pid, restarts, last exit.")

    @OptionGroup var options: APIOptions

    func run() async throws {
        let data = try await options.get("/v1/workers")
        guard let view = try options.decodeUnlessJSON(data, as: WorkersResponse.self) else { return }
        guard !view.workers.isEmpty else {
            print("one process (server.workers = 0)")
            return
        }
        print("WORKER  STATE       PID      RESTARTS  UP        LAST EXIT     LAST RESTART")
        for worker in view.workers {
            let columns = [
                ("\(worker.index)", 8), (worker.state.rawValue, 12), (worker.pid.map { "\($0)" } ?? "-", 9), ("\(worker.restarts)", 10),
                (worker.upS.map { String(format: "%.0f s", $0) } ?? "-", 10), (worker.lastExit ?? "-", 14),
                (worker.lastRestartMs.map { String(format: "%.0f ms", $0) } ?? "-", 0),
            ]
            print(columns.map { $0.1 > 0 ? $0.0.padding(toLength: $0.1, withPad: " ", startingAt: 0) : $0.0 }.joined())
        }
    }
}

/// `dig-lite groups`: every service group with its member counts.
struct Groups: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List the service groups with their members and healthy members.")

    @OptionGroup var options: APIOptions

    func run() async throws {
        let data = try await options.get("/v1/groups")
        guard let view = try options.decodeUnlessJSON(data, as: GroupsView.self) else { return }
        print(GroupsTable.render(view), terminator: "")
    }
}

/// `dig-lite group NAME`: one group's members with health, checks and TTL left.
struct Group: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show one service group's members, their health and TTL left.")

    @Argument(help: "The group's name.")
    var name: String

    @OptionGroup var options: APIOptions

    func run() async throws {
        let data = try await options.get("/v1/groups/\(try pathLabel(name, "group"))")
        guard let view = try options.decodeUnlessJSON(data, as: GroupView.self) else { return }
        print(GroupsTable.render(view), terminator: "")
    }
}

/// `dig-lite register GROUP ID ADDRESS`: adds or replaces a member.
struct Register: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Register (or replace) a member of a service group.",
        discussion: "The member is answered under <group>.<cluster domain> at once; without a heartbeat within --ttl its check runs.")

    @Argument(help: "The group (a DNS label).") var group: String
    @Argument(help: "The member's id within the group (a DNS label).") var id: String
    @Argument(help: "The member's IPv4 or IPv6 address.") var address: String
    @Option(help: "The port SRV answers carry and checks use.") var port: Int?
    @Option(help: "Registration TTL in seconds: heartbeats must come this often.") var ttl: Int = 30
    @Option(help: "Health check when the TTL runs out: tcp, http or none.") var check: String = "none"
    @Option(help: "HTTP check path (with --check http).") var path: String?
    @Option(name: .customLong("check-timeout"), help: "Check timeout in milliseconds.") var checkTimeout: Int?
    @Option(help: "SRV service name: _<service>._<proto>.<group>.<domain>.") var service: String?
    @Option(help: "SRV protocol: tcp or udp.") var proto: String?
    @Option(help: "A tag (SRV lookups by tag work like by service); repeatable.") var tag: [String] = []

    @OptionGroup var options: APIOptions

    func run() async throws {
        var body: [String: Any] = ["address": address, "ttl_s": ttl]
        var checkBody: [String: Any] = ["type": check]
        if let path { checkBody["path"] = path }
        if let checkTimeout { checkBody["timeout_ms"] = checkTimeout }
        body["check"] = checkBody
        if let port { body["port"] = port }
        if let service { body["service"] = service }
        if let proto { body["proto"] = proto }
        if !tag.isEmpty { body["tags"] = tag }
        let json = try JSONSerialization.data(withJSONObject: body, options: [.sortedKeys])
        let path = "/v1/groups/\(try pathLabel(group, "group"))/members/\(try pathLabel(id, "id"))"
        let (data, status) = try await options.send("PUT", path, body: json)
        guard let member = try options.decodeUnlessJSON(data, as: MemberView.self) else { return }
        print("\(status == 201 ? "registered" : "replaced") \(member.id) in \(member.group): \(member.address), ttl \(member.ttlS) s")
    }
}

/// `dig-lite heartbeat GROUP ID`: renews a member's TTL.
struct Heartbeat: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Renew a member's registration TTL.")

    @Argument(help: "The group.") var group: String
    @Argument(help: "The member's id.") var id: String

    @OptionGroup var options: APIOptions

    func run() async throws {
        let path = "/v1/groups/\(try pathLabel(group, "group"))/members/\(try pathLabel(id, "id"))/heartbeat"
        let data = try await options.post(path, json: Data())
        guard let member = try options.decodeUnlessJSON(data, as: MemberView.self) else { return }
        print("renewed \(member.id) in \(member.group): \(Int(member.ttlLeftS.rounded())) s left")
    }
}

/// `dig-lite deregister GROUP ID`: removes a member.
struct Deregister: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Remove a member from its service group.")

    @Argument(help: "The group.") var group: String
    @Argument(help: "The member's id.") var id: String

    @OptionGroup var options: APIOptions

    func run() async throws {
        let path = "/v1/groups/\(try pathLabel(group, "group"))/members/\(try pathLabel(id, "id"))"
        _ = try await options.send("DELETE", path)
        if !options.json { print("deregistered \(id.lowercased()) from \(group.lowercased())") }
    }
}

/// `dig-lite registry-reset`: a degraded registry's damaged store is set aside, a fresh one started.
struct RegistryReset: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "registry-reset",
        abstract: "Set a degraded registry's damaged store aside (<path>.corrupt-<time>) and start an empty one.")

    @OptionGroup var options: APIOptions

    func run() async throws {
        let data = try await options.post("/v1/registry/reset", json: Data("{}".utf8))
        guard let reset = try options.decodeUnlessJSON(data, as: RegistryResetResponse.self) else { return }
        print("registry reset: the damaged store is kept at \(reset.setAside); registrations start empty")
    }
}

/// A group or id for a URL path: only label characters pass (the API checks the rest).
private func pathLabel(_ text: String, _ what: String) throws -> String {
    do {
        return try ServiceLabel.validated(text, field: what)
    } catch {
        throw ValidationError(error.description)
    }
}
