// Config/Config: the shipped file, defaults, every kind of validation error with its key and line.

import Testing

@testable import Resolver

@Suite("Config.parse")
struct ConfigTests {
    /// The smallest valid file: forward everything to one server.
    static let minimal = """
        [[forward]]
        zone = "."
        servers = ["192.0.2.1"]
        """

    private func parse(_ text: String) -> Result<Config, ConfigError> {
        do {
            return .success(try Config.parse(text))
        } catch {
            return .failure(error)
        }
    }

    /// The error for `text`, recording an issue when it parses.
    private func failure(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) -> ConfigError? {
        switch parse(text) {
        case .success:
            Issue.record("expected a config error", sourceLocation: sourceLocation)
            return nil
        case .failure(let error):
            return error
        }
    }

    private func address(_ text: String) throws -> ServerAddress { try #require(ServerAddress(text)) }

    // MARK: Valid files

    @Test func parsesTheShippedConfig() throws {
        // Tests/ResolverTests/Config/ConfigTests.swift → the package root.
        let root = "\(#filePath)".split(separator: "/", omittingEmptySubsequences: false).dropLast(4)
            .joined(separator: "/")
        let config = try Config.load(path: root + "/config/resolverd.toml")
        #expect(config.server.listen == [try address("127.0.0.1:53"), try address("[::1]:53")])
        #expect(config.server.allow == [IPNetwork("127.0.0.0/8"), IPNetwork("::1/128")].compactMap { $0 })
        #expect(config.server.threads == 0)
        #expect(config.server.tcpIdleTimeoutMs == 10_000)
        #expect(config.server.maxTCPConnections == 1_000)
        #expect(config.server.maxTCPQueriesPerConnection == 32)
        #expect(config.resolver.mode == .forward)
        #expect(config.resolver.timeoutMs == 3_000)
        #expect(config.forwards == [ForwardZoneConfig(zone: .root, servers: [], usesSystemResolvers: true)])
        #expect(config.log.level == "info")
    }

    @Test func loadReportsAMissingFile() {
        do {
            _ = try Config.load(path: "/nonexistent/resolverd-\(UInt64.random(in: 0...UInt64.max)).toml")
            Issue.record("loading a missing file should fail")
        } catch {
            #expect(error.key == nil)
            #expect(error.line == nil)
        }
    }

    @Test func fillsInDefaults() throws {
        let config = try parse(Self.minimal).get()
        var expected = Config()
        expected.forwards = [
            ForwardZoneConfig(zone: .root, servers: [try address("192.0.2.1")], usesSystemResolvers: false)
        ]
        #expect(config == expected)
        #expect(config.server.listen == [try address("127.0.0.1:53")])
        #expect(config.server.allow.count == 2)
        #expect(config.resolver.timeoutMs == 3_000)
        #expect(config.log.level == "info")
    }

    @Test func readsEverySetting() throws {
        let config = try parse(
            """
            # every key, none at its default
            [server]
            listen = ["0.0.0.0:5353", "[::]:5353", "192.0.2.53"]
            allow = ["10.0.0.0/8", "2001:db8::/32", "192.0.2.1"]
            threads = 4
            tcp_idle_timeout_ms = 2_000
            max_tcp_connections = 50
            max_tcp_queries_per_connection = 8

            [resolver]
            mode = "forward"
            timeout_ms = 1500

            [[forward]]
            zone = "corp.example."
            servers = ["10.0.0.53", "[2001:db8::53]:5353"]

            [[forward]]
            zone = "."
            servers = ["system", "192.0.2.1:53"]

            [log]
            level = "debug"
            """
        ).get()
        #expect(
            config.server.listen == [
                try address("0.0.0.0:5353"), try address("[::]:5353"), try address("192.0.2.53:53"),
            ])
        #expect(config.server.allow.map(\.description) == ["10.0.0.0/8", "2001:db8::/32", "192.0.2.1/32"])
        #expect(config.server.threads == 4)
        #expect(config.server.tcpIdleTimeoutMs == 2_000)
        #expect(config.server.maxTCPConnections == 50)
        #expect(config.server.maxTCPQueriesPerConnection == 8)
        #expect(config.resolver.timeoutMs == 1_500)
        #expect(config.forwards.count == 2)
        #expect(config.forwards[0].zone == DomainName("corp.example"))
        #expect(config.forwards[0].servers == [try address("10.0.0.53"), try address("[2001:db8::53]:5353")])
        #expect(!config.forwards[0].usesSystemResolvers)
        #expect(config.forwards[1].zone == .root)
        #expect(config.forwards[1].servers == [try address("192.0.2.1")])
        #expect(config.forwards[1].usesSystemResolvers)
        #expect(config.log.level == "debug")
    }

    @Test("every log level is accepted", arguments: Config.logLevels)
    func acceptsLogLevels(level: String) throws {
        let config = try parse(Self.minimal + "\n[log]\nlevel = \"\(level)\"\n").get()
        #expect(config.log.level == level)
    }

    @Test(
        "range limits are inclusive",
        arguments: [
            ("server", "threads", 0), ("server", "threads", 256),
            ("server", "tcp_idle_timeout_ms", 100), ("server", "tcp_idle_timeout_ms", 600_000),
            ("server", "max_tcp_connections", 1), ("server", "max_tcp_connections", 1_000_000),
            ("server", "max_tcp_queries_per_connection", 1), ("server", "max_tcp_queries_per_connection", 65_535),
            ("resolver", "timeout_ms", 50), ("resolver", "timeout_ms", 60_000),
        ])
    func acceptsBoundaries(section: String, key: String, value: Int) {
        let text = "[\(section)]\n\(key) = \(value)\n\n" + Self.minimal
        #expect((try? parse(text).get()) != nil)
    }

    @Test func acceptsSectionsInAnyOrder() throws {
        let config = try parse(
            """
            [log]
            level = "error"
            [[forward]]
            zone = "example."
            servers = ["192.0.2.1"]
            [server]
            threads = 2
            [[forward]]
            zone = "."
            servers = ["192.0.2.2"]
            """
        ).get()
        #expect(config.log.level == "error")
        #expect(config.server.threads == 2)
        #expect(config.forwards.map(\.zone.description) == ["example.", "."])
    }

    // MARK: Errors naming key and line

    @Test func rejectsAnUnknownKey() throws {
        let error = try #require(
            failure(
                """
                [server]
                listen = ["127.0.0.1:53"]
                lisen = ["127.0.0.1:5353"]

                """ + Self.minimal))
        #expect(error.key == "server.lisen")
        #expect(error.line == 3)
        #expect(error.message == "unknown key")
        #expect(error.description == "line 3: server.lisen: unknown key")
    }

    @Test func rejectsUnknownKeysInEverySection() throws {
        #expect(
            failure("[resolver]\nmode = \"forward\"\nroot_hint = []\n\n" + Self.minimal)?.key == "resolver.root_hint")
        #expect(failure("[log]\nlevels = \"info\"\n\n" + Self.minimal)?.key == "log.levels")
        let forward = try #require(failure("[[forward]]\nzone = \".\"\nservers = [\"192.0.2.1\"]\nserver = 1\n"))
        #expect(forward.key == "forward[1].server")
        #expect(forward.line == 4)
    }

    @Test func rejectsAnUnknownTopLevelKey() throws {
        let error = try #require(failure("verbose = true\n" + Self.minimal))
        #expect(error.key == "verbose")
        #expect(error.line == 1)
    }

    @Test func rejectsAnUnknownSection() throws {
        let error = try #require(failure(Self.minimal + "\n\n[resolvers]\ntimeout_ms = 10\n"))
        #expect(error.key == "resolvers")
        #expect(error.line == 5)
        #expect(error.message == "unknown key")
    }

    @Test(
        "wrong types name the key and line",
        arguments: [
            ("[resolver]\ntimeout_ms = \"x\"\n", "resolver.timeout_ms", 2, "expected an integer, found a string"),
            ("[resolver]\n\ntimeout_ms = 3000.0\n", "resolver.timeout_ms", 3, "expected an integer, found a float"),
            ("[resolver]\nmode = true\n", "resolver.mode", 2, "expected a string, found a boolean"),
            (
                "[server]\nlisten = \"127.0.0.1:53\"\n", "server.listen", 2,
                "expected an array of strings, found a string"
            ),
            (
                "[server]\nallow = [\"::1\", 1]\n", "server.allow", 2,
                "expected an array of strings, found an integer in it"
            ),
            ("[server]\nthreads = [1]\n", "server.threads", 2, "expected an integer, found an array"),
            ("server = 5\n", "server", 1, "expected a table ([server]), found an integer"),
            ("[log]\nlevel = 3\n", "log.level", 2, "expected a string, found an integer"),
        ])
    func rejectsWrongTypes(text: String, key: String, line: Int, message: String) throws {
        let error = try #require(failure(text + "\n" + Self.minimal))
        #expect(error.key == key)
        #expect(error.line == line)
        #expect(error.message == message)
    }

    @Test func rejectsForwardAsAPlainTable() throws {
        let error = try #require(failure("[forward]\nzone = \".\"\nservers = [\"192.0.2.1\"]\n"))
        #expect(error.key == "forward")
        #expect(error.line == 1)
        #expect(error.message.contains("[[forward]]"))
    }

    @Test(
        "values out of range name the key, the line and the range",
        arguments: [
            ("server", "threads", -1, "0 and 256"), ("server", "threads", 257, "0 and 256"),
            ("server", "tcp_idle_timeout_ms", 99, "100 and 600000"),
            ("server", "max_tcp_connections", 0, "1 and 1000000"),
            ("server", "max_tcp_queries_per_connection", 65_536, "1 and 65535"),
            ("resolver", "timeout_ms", 10, "50 and 60000"), ("resolver", "timeout_ms", 60_001, "50 and 60000"),
            ("resolver", "timeout_ms", Int(Int64.max), "50 and 60000"),
        ])
    func rejectsValuesOutOfRange(section: String, key: String, value: Int, range: String) throws {
        let error = try #require(failure("# comment\n[\(section)]\n\n\(key) = \(value)\n\n" + Self.minimal))
        #expect(error.key == "\(section).\(key)")
        #expect(error.line == 4)
        #expect(error.message == "must be between \(range), not \(value)")
    }

    @Test func readsClusterAndRegistry() throws {
        let config = try parse(
            Self.minimal + """

                [cluster]
                domain = "svc.Example."
                answer_ttl_s = 0
                deregister_after_s = 30
                recheck_max_s = 10
                check_concurrency = 8

                [registry]
                backend = "sqlite"
                path = "/var/lib/resolverd/registry.sqlite"
                """
        ).get()
        #expect(config.cluster.domain == DomainName("svc.example."))
        #expect(config.cluster.policy.answerTTLSeconds == 0)
        #expect(config.cluster.policy.deregisterAfterSeconds == 30)
        #expect(config.cluster.policy.recheckMaxSeconds == 10)
        #expect(config.cluster.checkConcurrency == 8)
        #expect(config.registry.path == "/var/lib/resolverd/registry.sqlite")
        let defaults = try parse(Self.minimal).get()
        #expect(defaults.cluster.domain == DomainName("cluster.internal."))
        #expect(defaults.registry.path == "data/registry.sqlite")
        #expect(defaults.registry.backend == .sqlite)
        let etcd = try parse(
            Self.minimal + """

                [registry]
                backend = "etcd"
                endpoints = ["http://127.0.0.1:2379", "https://10.0.0.2:2379/"]
                prefix = "/dc1/resolverd/"
                username = "resolverd"
                password = "secret"
                tls_ca_file = "/etc/etcd/ca.pem"
                election_ttl_s = 10
                """
        ).get()
        #expect(etcd.registry.backend == .etcd)
        #expect(etcd.registry.endpoints == ["http://127.0.0.1:2379", "https://10.0.0.2:2379"])
        #expect(etcd.registry.prefix == "/dc1/resolverd/")
        #expect(etcd.registry.username == "resolverd" && etcd.registry.password == "secret")
        #expect(etcd.registry.tlsCAFile == "/etc/etcd/ca.pem" && etcd.registry.electionTTLSeconds == 10)
    }

    @Test(
        "bad [cluster] and [registry] values name the key and line",
        arguments: [
            ("[cluster]\ndomain = \".\"\n", "cluster.domain", "is not a domain name below the root"),
            ("[cluster]\ndomain = \"a..b\"\n", "cluster.domain", "is not a domain name below the root"),
            ("[cluster]\ndomain = \"corp.example\"\n", "cluster.domain", "is also a [[forward]] zone"),
            ("[cluster]\nanswer_ttl_s = 3601\n", "cluster.answer_ttl_s", "must be between 0 and 3600"),
            ("[cluster]\nderegister_after_s = 0\n", "cluster.deregister_after_s", "must be between 1 and 2592000"),
            ("[cluster]\nrecheck_max_s = 0\n", "cluster.recheck_max_s", "must be between 1 and 3600"),
            ("[cluster]\ncheck_concurrency = 0\n", "cluster.check_concurrency", "must be between 1 and 10000"),
            ("[cluster]\ndomian = \"x.\"\n", "cluster.domian", "unknown key"),
            ("[registry]\nbackend = \"redis\"\n", "registry.backend", "must be \"sqlite\" or \"etcd\""),
            ("[registry]\nendpoints = []\n", "registry.endpoints", "needs at least one URL"),
            ("[registry]\nendpoints = [\"127.0.0.1:2379\"]\n", "registry.endpoints", "is not an http"),
            ("[registry]\nprefix = \"resolverd\"\n", "registry.prefix", "must start and end"),
            ("[registry]\nusername = \"a\"\n", "registry.username", "go together"),
            ("[registry]\ntls_cert_file = \"c.pem\"\n", "registry.tls_cert_file", "go together"),
            ("[registry]\nelection_ttl_s = 1\n", "registry.election_ttl_s", "between"),
            ("[registry]\npath = \"\"\n", "registry.path", "must not be empty"),
            ("[registry]\npath = 5\n", "registry.path", "expected a string"),
        ])
    func rejectsBadClusterAndRegistry(text: String, key: String, message: String) throws {
        let zones = Self.minimal + "\n[[forward]]\nzone = \"corp.example\"\nservers = [\"10.0.0.53\"]\n"
        let error = try #require(failure(zones + "\n" + text))
        #expect(error.key == key)
        #expect(error.line == 9)
        #expect(error.message.contains(message), "\(error.message)")
    }

    @Test(
        "registry: a password over plain http beyond loopback is refused, naming registry.password and its line",
        arguments: [
            (#"["http://10.0.0.2:2379"]"#, true), (#"["https://10.0.0.2:2379", "http://etcd.example:2379/"]"#, true),
            (#"["http://[2001:db8::1]:2379"]"#, true), (#"["http://127.0.0.2:2379", "http://[::1]:2379"]"#, false),
            (#"["http://localhost:2379"]"#, false), (#"["https://10.0.0.2:2379"]"#, false),
        ])
    func plainHTTPPassword(endpoints: String, refused: Bool) throws {
        let text = Self.minimal + "\n\n[registry]\nbackend = \"etcd\"\nendpoints = \(endpoints)\nusername = \"u\"\npassword = \"p\"\n"
        guard refused else {
            #expect(throws: Never.self) { try Config.parse(text) }
            return
        }
        let error = try #require(failure(text))
        #expect(error.key == "registry.password")
        #expect(error.line == 9)
        #expect(error.message.contains("in the clear"), "\(error.message)")
    }

    @Test func rejectsABadListenAddress() throws {
        let error = try #require(
            failure("[server]\nlisten = [\n  \"127.0.0.1:53\",\n  \"localhost:53\",\n]\n\n" + Self.minimal))
        #expect(error.key == "server.listen")
        #expect(error.line == 2)
        #expect(error.message.contains("'localhost:53'"))
    }

    @Test func rejectsAnEmptyListenList() throws {
        let error = try #require(failure("[server]\nlisten = []\n\n" + Self.minimal))
        #expect(error.key == "server.listen")
        #expect(error.line == 2)
        #expect(error.message.contains("at least one"))
    }

    @Test func rejectsABadForwardServer() throws {
        let error = try #require(
            failure(
                """
                [[forward]]
                zone = "."
                servers = ["192.0.2.1", "192.0.2.300"]
                """))
        #expect(error.key == "forward[1].servers")
        #expect(error.line == 3)
        #expect(error.message.contains("'192.0.2.300'"))
    }

    @Test func numbersForwardZonesFromOne() throws {
        let error = try #require(
            failure(
                Self.minimal + """

                    [[forward]]
                    zone = "example."
                    servers = ["192.0.2.1:99999"]
                    """))
        #expect(error.key == "forward[2].servers")
        #expect(error.line == 6)
    }

    @Test("bad networks in allow", arguments: ["10.0.0.0/33", "::/129", "10.0.0.0/", "10/8", "any", "10.0.0.0/8/8"])
    func rejectsABadNetwork(network: String) throws {
        let error = try #require(failure("[server]\n\nallow = [\"127.0.0.0/8\", \"\(network)\"]\n\n" + Self.minimal))
        #expect(error.key == "server.allow")
        #expect(error.line == 3)
        #expect(error.message.contains("'\(network)'"))
    }

    @Test func rejectsADuplicateKey() throws {
        let error = try #require(failure("[resolver]\ntimeout_ms = 100\ntimeout_ms = 200\n\n" + Self.minimal))
        #expect(error.line == 3)
        #expect(error.message.contains("timeout_ms"))
    }

    @Test func rejectsADuplicateSection() throws {
        let error = try #require(failure("[server]\nthreads = 1\n\n[server]\nthreads = 2\n\n" + Self.minimal))
        #expect(error.line == 4)
        #expect(error.message.contains("server"))
    }

    @Test func readsRecursiveMode() throws {
        // No forward zone is needed: every name is resolved from the root.
        let config = try Config.parse(
            "[resolver]\nmode = \"recursive\"\nroot_hints = [\"127.1.2.3\", \"::1\"]\nqname_minimisation = false\n")
        #expect(config.resolver.mode == .recursive)
        #expect(config.resolver.recursion.rootHints == [try address("127.1.2.3"), try address("[::1]:53")])
        #expect(config.resolver.recursion.qnameMinimisation == false)
        // Without root_hints, the IANA root servers; minimisation on.
        let defaults = try Config.parse("[resolver]\nmode = \"recursive\"\n")
        #expect(defaults.resolver.recursion.rootHints == RootHints.iana)
        #expect(RootHints.iana.count == 26)
        #expect(defaults.resolver.recursion.qnameMinimisation)
        // Nameservers on this host are not queried unless asked for (test hierarchies).
        #expect(!defaults.resolver.recursion.queryLoopback)
        let loopback = try Config.parse("[resolver]\nmode = \"recursive\"\nquery_loopback = true\n")
        #expect(loopback.resolver.recursion.queryLoopback)
    }

    @Test func rejectsRootHintsWithAPortOrNoAddress() throws {
        let port = try #require(failure("[resolver]\nmode = \"recursive\"\n\nroot_hints = [\"127.0.0.1:5353\"]\n"))
        #expect(port.key == "resolver.root_hints")
        #expect(port.line == 4)
        #expect(port.message.contains("port 53"))
        let bad = try #require(failure("[resolver]\nroot_hints = [\"a.root-servers.net\"]\n" + Self.minimal))
        #expect(bad.key == "resolver.root_hints")
        #expect(bad.line == 2)
        let notBool = try #require(failure("[resolver]\nqname_minimisation = \"yes\"\n" + Self.minimal))
        #expect(notBool.key == "resolver.qname_minimisation")
        let loopback = try #require(failure("[resolver]\n\nquery_loopback = 1\n" + Self.minimal))
        #expect(loopback.key == "resolver.query_loopback")
        #expect(loopback.line == 3)
    }

    @Test func readsTheLimitKeys() throws {
        let config = try Config.parse(
            "[server]\nmax_tcp_connections_per_client = 4\nmax_pending_per_client = 7\nmax_pending = 50\nworkers = 3\n"
                + "[rate_limit]\nresponses_per_second = 20\nipv4_prefix = 16\nipv6_prefix = 48\nslip = 0\n" + Self.minimal)
        #expect(config.server.maxTCPConnectionsPerClient == 4)
        #expect(config.server.maxPendingPerClient == 7 && config.server.maxPending == 50)
        #expect(config.server.workers == 3)
        #expect(config.rateLimit.responsesPerSecond == 20 && config.rateLimit.slip == 0)
        #expect(config.rateLimit.ipv4Prefix == 16 && config.rateLimit.ipv6Prefix == 48)
        let defaults = try Config.parse(Self.minimal)
        #expect(defaults.rateLimit == RateLimitSettings())
        #expect(defaults.rateLimit.responsesPerSecond == 0)
        #expect(defaults.server.workers == 0)
        for (text, key, line) in [
            ("[server]\nworkers = 65\n", "server.workers", 2),
            ("[server]\nworkers = -1\n", "server.workers", 2),
            ("[server]\nmax_pending = 0\n", "server.max_pending", 2),
            ("[server]\n\nmax_pending_per_client = -1\n", "server.max_pending_per_client", 3),
            ("[server]\nmax_tcp_connections_per_client = 0\n", "server.max_tcp_connections_per_client", 2),
            ("[rate_limit]\nipv4_prefix = 33\n", "rate_limit.ipv4_prefix", 2),
            ("[rate_limit]\nipv6_prefix = 65\n", "rate_limit.ipv6_prefix", 2),
            ("[rate_limit]\nslip = 11\n", "rate_limit.slip", 2),
            ("[rate_limit]\nresponses_per_second = \"many\"\n", "rate_limit.responses_per_second", 2),
            ("[rate_limit]\nburst = 5\n", "rate_limit.burst", 2),
        ] {
            let error = try #require(failure(text + Self.minimal), "\(text)")
            #expect(error.key == key && error.line == line, "\(text): \(error)")
        }
    }

    @Test func readsTheLogKeys() throws {
        let config = try Config.parse(
            "[log]\nformat = \"json\"\nqueries = true\nqueries_per_second = 20\n" + Self.minimal)
        #expect(config.log.format == .json)
        #expect(config.log.queries)
        #expect(config.log.queriesPerSecond == 20)
        let defaults = try Config.parse(Self.minimal)
        #expect(defaults.log.format == .logfmt && !defaults.log.queries && defaults.log.queriesPerSecond == 100)
        let bad = try #require(failure("[log]\n\nformat = \"xml\"\n" + Self.minimal))
        #expect(bad.key == "log.format" && bad.line == 3)
        let rate = try #require(failure("[log]\nqueries_per_second = 0\n" + Self.minimal))
        #expect(rate.key == "log.queries_per_second" && rate.line == 2)
    }

    @Test func rejectsAnUnknownMode() throws {
        let error = try #require(failure("[resolver]\nmode = \"iterative\"\n\n" + Self.minimal))
        #expect(error.key == "resolver.mode")
        #expect(error.line == 2)
        #expect(error.message.contains("\"iterative\""))
    }

    @Test("forward mode needs a [[forward]] zone", arguments: ["", "[resolver]\nmode = \"forward\"\n", "[log]\n"])
    func rejectsForwardModeWithoutZones(text: String) throws {
        let error = try #require(failure(text))
        #expect(error.key == "forward")
        #expect(error.line == nil)
        #expect(error.message.contains("[[forward]]"))
    }

    @Test(
        "the same zone twice", arguments: [(".", "."), ("example.com", "example.com."), ("Example.COM", "example.com")])
    func rejectsADuplicateForwardZone(first: String, second: String) throws {
        let error = try #require(
            failure(
                """
                [[forward]]
                zone = "\(first)"
                servers = ["192.0.2.1"]

                [[forward]]
                zone = "\(second)"
                servers = ["192.0.2.2"]
                """))
        #expect(error.key == "forward[2].zone")
        #expect(error.line == 6)
        #expect(error.message.contains("twice"))
    }

    @Test func rejectsAForwardZoneWithoutZone() throws {
        let error = try #require(failure("# forwards\n\n[[forward]]\nservers = [\"192.0.2.1\"]\n"))
        #expect(error.key == "forward[1].zone")
        #expect(error.line == 3)  // the [[forward]] header
        #expect(error.message == "is required")
    }

    @Test func rejectsAForwardZoneWithoutServers() throws {
        let error = try #require(failure("[[forward]]\nzone = \".\"\n"))
        #expect(error.key == "forward[1].servers")
        #expect(error.line == 1)
        #expect(error.message == "is required")
        let empty = try #require(self.failure("[[forward]]\nzone = \".\"\nservers = []\n"))
        #expect(empty.key == "forward[1].servers")
        #expect(empty.line == 3)
        #expect(empty.message.contains("at least one"))
    }

    @Test("bad zone names", arguments: ["a..b", "..", String(repeating: "x", count: 64) + ".example"])
    func rejectsABadZoneName(zone: String) throws {
        let error = try #require(failure("[[forward]]\nzone = \"\(zone)\"\nservers = [\"192.0.2.1\"]\n"))
        #expect(error.key == "forward[1].zone")
        #expect(error.line == 2)
    }

    @Test("bad log levels", arguments: ["INFO", "warn", "verbose", ""])
    func rejectsABadLogLevel(level: String) throws {
        let error = try #require(failure(Self.minimal + "\n[log]\nlevel = \"\(level)\"\n"))
        #expect(error.key == "log.level")
        #expect(error.line == 5)
        #expect(error.message.contains("must be one of trace, debug, info"))
    }

    // MARK: Syntax errors

    @Test func reportsTheLineOfAnUnclosedStringAtTheEnd() throws {
        let error = try #require(failure(Self.minimal + "\n[log]\nlevel = \"info"))
        #expect(error.key == nil)
        #expect(error.line == 5)
        #expect(error.message.contains("not closed"))
    }

    @Test
    func reportsTheLineOfAnUnclosedString() throws {
        let error = try #require(failure("[log]\nlevel = \"info\n\n" + Self.minimal))
        #expect(error.key == nil)
        #expect(error.line == 2)
        #expect(error.message.contains("not closed"))
    }

    @Test func reportsTheLineOfAnUnclosedLiteralString() throws {
        let error = try #require(failure("[log]\nlevel = 'info\n\n" + Self.minimal))
        #expect(error.key == nil)
        #expect(error.line == 2)
    }

    @Test func readsADottedKeyAndNamesItsLine() throws {
        // TOML 1.0: `resolver.timeout_ms = 100` is `timeout_ms = 100` in [resolver].
        let config = try Config.parse("# comment\n\nresolver.timeout_ms = 100\n" + Self.minimal)
        #expect(config.resolver.timeoutMs == 100)
        let error = try #require(failure("# comment\n\nresolver.timeout_ms = 10\n" + Self.minimal))
        #expect(error.key == "resolver.timeout_ms")
        #expect(error.line == 3)
        #expect(error.description == "line 3: resolver.timeout_ms: must be between 50 and 60000, not 10")
    }

    @Test func reportsTheLineOfABareValue() throws {
        let error = try #require(failure("[resolver]\nmode = direct\n\n" + Self.minimal))
        #expect(error.line == 2)
        #expect(error.message.contains("quotes"))
    }

    // MARK: ConfigError text

    @Test func describesErrors() {
        #expect(ConfigError(key: "a.b", line: 3, message: "bad").description == "line 3: a.b: bad")
        #expect(ConfigError(key: "a.b", line: nil, message: "bad").description == "a.b: bad")
        #expect(ConfigError(key: nil, line: 3, message: "bad").description == "line 3: bad")
        #expect(ConfigError(key: nil, line: nil, message: "bad").description == "bad")
    }
}

// MARK: - The API's and the registry's hardening keys

extension ConfigTests {
    @Test("api keys: token file, allowed hosts, group tokens, TLS; registry.allowed_networks")
    func apiKeys() throws {
        let config = try Config.parse(
            Self.minimal + """

                [api]
                listen = "0.0.0.0:8443"
                token_file = "/run/resolverd/token"
                allowed_hosts = ["Resolver.Example.internal"]
                group_tokens = { web = "web-token-0123456789", DB = "db-token-0123456789" }
                tls_certificate = "/etc/resolverd/api.pem"
                tls_key = "/etc/resolverd/api.key"
                [registry]
                path = "/var/lib/resolverd/registry.sqlite"
                allowed_networks = ["10.0.0.0/8", "127.0.0.0/8"]
                """)
        #expect(config.api.tokenFile == "/run/resolverd/token" && config.apiTokenFile == "/run/resolverd/token")
        #expect(config.api.allowedHosts == ["resolver.example.internal"])
        #expect(config.api.groupTokens == ["web": "web-token-0123456789", "db": "db-token-0123456789"])
        #expect(config.api.usesTLS)
        #expect(config.registry.allowedNetworks == [IPNetwork("10.0.0.0/8"), IPNetwork("127.0.0.0/8")].compactMap { $0 })
    }

    @Test("defaults: a generated token beside the registry, no group tokens, the interfaces' networks")
    func apiDefaults() throws {
        let config = try Config.parse(Self.minimal + "\n[registry]\npath = \"/var/lib/resolverd/registry.sqlite\"\n")
        #expect(config.api.token.isEmpty && config.apiTokenFile == "/var/lib/resolverd/api.token")
        #expect(Config().apiTokenFile == "data/api.token")
        #expect(config.api.groupTokens.isEmpty && !config.api.usesTLS)
        #expect(config.registry.allowedNetworks == nil)
    }

    @Test(
        "bad api and registry keys name the key and line",
        arguments: [
            ("[api]\nlisten = \"0.0.0.0:8053\"\n", "line 5: api.listen: 0.0.0.0:8053 is not a loopback address; set api.tls_certificate"),
            ("[api]\nlisten = \"192.0.2.1:8053\"\ntoken = \"a-long-enough-token-0123\"\n", "api.tls_certificate and api.tls_key"),
            ("[api]\ntoken = \"short\"\n", "line 5: api.token: must be at least 16"),
            ("[api]\ntls_certificate = \"/x.pem\"\n", "line 5: api.tls_certificate: tls_certificate and tls_key go together"),
            ("[api]\ngroup_tokens = { \"no good\" = \"web-token-0123456789\" }\n", "line 5: api.group_tokens: 'no good' is not a group name"),
            ("[api]\ngroup_tokens = { web = \"short\" }\n", "line 5: api.group_tokens.web: must be at least 16"),
            ("[api]\ngroup_tokens = { web = 7 }\n", "line 5: api.group_tokens.web: expected a string"),
            ("[api]\ngroup_tokens = \"web\"\n", "line 5: api.group_tokens: expected a table"),
            ("[api]\nallowed_hosts = [\"a b\"]\n", "line 5: api.allowed_hosts: 'a b' is not a host name"),
            ("[registry]\nallowed_networks = [\"10.0.0.0/33\"]\n", "line 5: registry.allowed_networks: '10.0.0.0/33' is not a network"),
        ])
    func badAPIKeys(_ text: String, _ expected: String) throws {
        let error = try #require(failure(Self.minimal + "\n" + text))
        #expect(error.description.contains(expected), "\(error)")
    }
}
