// Config/ConfigSchema: the key table — every default reads back, the reference in docs/CONFIG.md
// is current, unknown keys are named with their line, the pairs and the reload diff come from
// the table, and the shipped config file lists every key at its default.

import Foundation
import Testing

@testable import Resolver

@Suite("Config key table")
struct ConfigSchemaTests {
    static let minimal = "[[forward]]\nzone = \".\"\nservers = [\"192.0.2.1\"]\n"

    /// The package root (Tests/ResolverTests/Config/ConfigSchemaTests.swift → ../../..).
    static let root = "\(#filePath)".split(separator: "/", omittingEmptySubsequences: false).dropLast(4)
        .joined(separator: "/")

    private func failure(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) -> ConfigError? {
        do {
            _ = try Config.parse(text)
            Issue.record("expected a config error", sourceLocation: sourceLocation)
            return nil
        } catch {
            return error
        }
    }

    // MARK: The table itself

    @Test func everyKeyIsNamedOnceInAKnownTable() {
        let names = ConfigSchema.keys.map(\.name) + ConfigSchema.forwardKeys.map { "forward." + $0.name }
        #expect(Set(names).count == names.count, "a key is in the table twice")
        let sections = Set(ConfigSchema.sections.map(\.name))
        for key in ConfigSchema.keys {
            #expect(key.path.count == 2 && sections.contains(key.path[0]), "\(key.name)")
            #expect(!key.doc.isEmpty && !key.type.isEmpty, "\(key.name)")
            #expect(!key.required, "\(key.name): only [[forward]] keys are required")
        }
        for section in sections where section != "forward" {
            #expect(ConfigSchema.keys.contains { $0.path[0] == section }, "[\(section)] has no keys")
        }
        #expect(ConfigSchema.forwardKeys.allSatisfy { $0.required })
    }

    @Test func everyDefaultReadsBackAsTheDefault() throws {
        var lines: [String] = []
        for key in ConfigSchema.keys {
            guard let text = key.defaultText else {
                // Only an optional setting has no default to write: it is unset.
                #expect(key.name == "registry.allowed_networks", "\(key.name) has no default")
                continue
            }
            // Each alone, written as a dotted key at the top…
            let config = try Config.parse("\(key.name) = \(text)\n" + Self.minimal)
            #expect(!key.differs(config, try Config.parse(Self.minimal)), "\(key.name) = \(text)")
            lines.append("\(key.name) = \(text)")
        }
        // …and all together: the built-in defaults, with the one forward zone.
        let all = try Config.parse(lines.joined(separator: "\n") + "\n" + Self.minimal)
        var expected = Config()
        expected.forwards = try Config.parse(Self.minimal).forwards
        #expect(all == expected)
        #expect(Config().registry.allowedNetworks == nil)
    }

    @Test func theReferenceIsCurrent() throws {
        let path = Self.root + "/docs/CONFIG.md"
        let generated = ConfigSchema.reference()
        if ProcessInfo.processInfo.environment["RESOLVERD_WRITE_CONFIG_REFERENCE"] == "1" {
            try generated.write(toFile: path, atomically: true, encoding: .utf8)
        }
        let stored = try String(contentsOfFile: path, encoding: .utf8)
        #expect(
            stored == generated,
            "docs/CONFIG.md is stale: RESOLVERD_WRITE_CONFIG_REFERENCE=1 swift test --skip-build --filter ConfigSchemaTests")
        for key in ConfigSchema.keys { #expect(stored.contains("| `\(key.name)` |"), "\(key.name)") }
        #expect(stored.contains("| `forward.zone` | domain name | required |"))
        #expect(stored.contains("| `server.threads` | integer | `0` | 0 to 256 | restart |"))
        #expect(stored.contains("| `server.allow` | array of networks | `[\"127.0.0.0/8\", \"::1/128\"]` |  | reload |"))
    }

    // MARK: Reading with the table

    @Test func oneTableThreeWays() throws {
        let header = try Config.parse("[server]\nthreads = 4\nudp_batch = false\n" + Self.minimal)
        let dotted = try Config.parse("server.threads = 4\nserver.udp_batch = false\n" + Self.minimal)
        let inline = try Config.parse("server = { threads = 4, udp_batch = false }\n" + Self.minimal)
        #expect(header == dotted && dotted == inline)
        #expect(header.server.threads == 4 && !header.server.udpBatch)
        // [[forward]] as an array of inline tables.
        let forwards = try Config.parse("forward = [{ zone = \".\", servers = [\"192.0.2.1\"] }]\n")
        #expect(forwards.forwards == (try Config.parse(Self.minimal)).forwards)
    }

    @Test func unknownKeysAreNamedWithTheirLine() throws {
        let cases: [(String, String, Int)] = [
            ("[server]\nthreads = 1\n\n[server.extra]\nx = 1\n", "server.extra", 4),
            ("[server]\nextra.x = 1\n", "server.extra", 2),
            ("\"server.threads\" = 4\n", "\"server.threads\"", 1),
            ("[api]\n\"tls key\" = \"x\"\n", "api.\"tls key\"", 2),
            ("[log]\nlevel = \"info\"\n\nlevels = \"info\"\n", "log.levels", 4),
            ("[resolver.mode]\n", "resolver.mode", 1),
        ]
        for (text, key, line) in cases {
            let error = try #require(failure(text + Self.minimal), "\(text)")
            #expect(error.key == key && error.line == line, "\(text.debugDescription): \(error)")
            #expect(error.message.hasPrefix("unknown key") || error.message.hasPrefix("expected"), "\(error)")
        }
        let forward = try #require(failure("[[forward]]\nzone = \".\"\nservers = [\"192.0.2.1\"]\n[forward.extra]\n"))
        #expect(forward.key == "forward[1].extra" && forward.line == 4, "\(forward)")
        // A value of a table key given a table: named at the key.
        let mode = try #require(failure("[resolver.mode]\n" + Self.minimal))
        #expect(mode.description == "line 1: resolver.mode: expected a string, found a table")
    }

    @Test func valuesOfEveryTOMLKindAreNamedWithKeyAndLine() throws {
        let date = try #require(failure("[resolver]\n\ntimeout_ms = 1979-05-27\n" + Self.minimal))
        #expect(date.description == "line 3: resolver.timeout_ms: expected an integer, found a local date")
        let time = try #require(failure("[log]\nlevel = 07:32:00\n" + Self.minimal))
        #expect(time.description == "line 2: log.level: expected a string, found a local time")
        let octal = try Config.parse("[server]\nthreads = 0o10\nmax_tcp_queued_bytes = 0x100_0000\n" + Self.minimal)
        #expect(octal.server.threads == 8 && octal.server.maxTCPQueuedBytes == 1 << 24)
        // A multi-line string is a string; the key after it keeps its own line.
        let text = "[registry]\npath = \"\"\"\n/var/lib/resolverd/\\\n  registry.sqlite\"\"\"\nprefix = 'x'\n"
        let error = try #require(failure(text + Self.minimal))
        #expect(error.key == "registry.prefix" && error.line == 5, "\(error)")
        let path = try Config.parse("[registry]\npath = '''\n/var/lib/r.sqlite'''\n" + Self.minimal)
        #expect(path.registry.path == "/var/lib/r.sqlite")
    }

    @Test func groupTokensAsATableHeaderNameEachEntryLine() throws {
        let config = try Config.parse(
            Self.minimal + "[api.group_tokens]\nweb = \"web-token-0123456789\"\ndb = \"db-token-0123456789\"\n")
        #expect(config.api.groupTokens == ["web": "web-token-0123456789", "db": "db-token-0123456789"])
        let error = try #require(
            failure(Self.minimal + "[api.group_tokens]\nweb = \"web-token-0123456789\"\n\ndb = \"short\"\n"))
        #expect(error.description == "line 7: api.group_tokens.db: must be at least 16 ASCII characters without spaces")
    }

    @Test("pairs: the key set alone is named, with its line", arguments: ConfigSchema.pairs.indices)
    func pairsGoTogether(index: Int) throws {
        let pair = ConfigSchema.pairs[index]
        let (table, first, second) = (pair.first[0], pair.first[1], pair.second[1])
        for set in [first, second] {
            let error = try #require(failure(Self.minimal + "\n[\(table)]\n\n\(set) = \"x\"\n"))
            #expect(error.key == "\(table).\(set)" && error.line == 7, "\(error)")
            #expect(error.message == "\(first) and \(second) go together (\(pair.what))", "\(error)")
        }
        // Both: accepted (the etcd endpoint is the default, on loopback, so a password may go).
        #expect(throws: Never.self) { try Config.parse(Self.minimal + "\n[\(table)]\n\(first) = \"x\"\n\(second) = \"y\"\n") }
    }

    // MARK: The reload diff

    @Test func theReloadDiffComesFromTheTable() throws {
        let running = try Config.parse(Self.minimal)
        let fresh = try Config.parse(
            """
            [server]
            threads = 2
            allow = ["10.0.0.0/8"]
            tcp_query_timeout_ms = 500
            max_pending_per_client = 7
            [cache]
            max_bytes = 1000
            [log]
            level = "debug"
            format = "json"
            [cluster]
            answer_ttl_s = 1
            [[forward]]
            zone = "corp.example."
            servers = ["10.0.0.53"]
            """)
        #expect(
            ConfigSchema.restartNeeded(running: running, fresh: fresh) == [
                "server.threads", "server.tcp_query_timeout_ms", "cache.max_bytes", "log.format",
            ])
        let applied = ConfigSchema.applyingReloadableKeys(of: fresh, to: running)
        #expect(applied.server.threads == running.server.threads)
        #expect(applied.server.tcpQueryTimeoutMs == running.server.tcpQueryTimeoutMs)
        #expect(applied.cache == running.cache && applied.log.format == running.log.format)
        #expect(applied.server.allow == fresh.server.allow && applied.server.maxPendingPerClient == 7)
        #expect(applied.log.level == "debug" && applied.cluster.policy.answerTTLSeconds == 1)
        #expect(applied.forwards == fresh.forwards)
        // What runs after the reload differs from the running config in reloadable keys only.
        #expect(ConfigSchema.restartNeeded(running: running, fresh: applied).isEmpty)
        #expect(ConfigSchema.restartNeeded(running: applied, fresh: fresh).count == 4)
        #expect(ConfigSchema.restartNeeded(running: running, fresh: running).isEmpty)
    }

    @Test func theReloadableKeysAreTheOnesAReloadApplies() {
        // Reload.swift applies these (runtime policy, log level, registry policy, check
        // concurrency); every other key is restart-only.
        let live = ConfigSchema.keys.filter { $0.reload == .live }.map(\.name)
        #expect(
            live == [
                "server.allow", "server.max_pending_per_client", "cluster.answer_ttl_s", "cluster.deregister_after_s",
                "cluster.recheck_max_s", "cluster.check_concurrency", "rate_limit.responses_per_second",
                "rate_limit.ipv4_prefix", "rate_limit.ipv6_prefix", "rate_limit.slip", "log.level", "log.queries",
                "log.queries_per_second",
            ])
        #expect(ConfigSchema.forwardReload == .live)
        // The listeners read these once, at start.
        for name in [
            "server.tcp_query_timeout_ms", "server.max_tcp_queued_bytes_per_connection", "server.max_tcp_queued_bytes",
            "server.client_ipv4_prefix", "server.client_ipv6_prefix",
        ] {
            #expect(ConfigSchema.key(name.split(separator: ".").map(String.init))?.reload == .restart, "\(name)")
        }
    }

    // MARK: The shipped file

    @Test func theShippedFileListsEveryKeyAtItsDefault() throws {
        let path = Self.root + "/config/resolverd.toml"
        let text = try String(contentsOfFile: path, encoding: .utf8)
        // Keys shown commented out (`# allowed_networks = […]`) count as listed.
        let uncommented = text.split(separator: "\n", omittingEmptySubsequences: false).map { line -> String in
            guard line.hasPrefix("# ") else { return String(line) }
            let rest = line.dropFirst(2)
            let name = rest.prefix { $0.isLetter || $0.isNumber || $0 == "_" }
            return !name.isEmpty && rest.dropFirst(name.count).hasPrefix(" = ") ? String(rest) : String(line)
        }.joined(separator: "\n")
        let document = try TOMLParser.parse(uncommented)
        for key in ConfigSchema.keys {
            guard case .table(let table)? = document[key.path[0]]?.value else {
                Issue.record("[\(key.path[0])] is missing")
                continue
            }
            #expect(table[key.path[1]] != nil, "\(key.name) is not in config/resolverd.toml")
        }
        // What the file sets is the built-in default, but for listen (the file adds [::1]:53).
        let shipped = try Config.load(path: path)
        let differing = ConfigSchema.keys.filter { $0.differs(shipped, Config()) }.map(\.name)
        #expect(differing == ["server.listen"])
    }
}
