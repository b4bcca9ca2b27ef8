// Config/: the one table of the config file's keys. Parsing and validation, the unknown-key
// check, the reload diff (Reload.swift) and the reference (docs/CONFIG.md, checked by a unit
// test) all read it. A key's default is the initial value of its field in `Config` (and in the
// settings types it holds), read through the key path, so defaults are written once.

/// One `[[forward]]` table while it is read.
struct ForwardDraft: Sendable, Equatable {
    var zone: DomainName?
    var servers: ForwardServers?
}

/// A `[[forward]]` zone's `servers`: addresses, and whether "system" stood among them.
struct ForwardServers: Sendable, Equatable {
    var addresses: [ServerAddress]
    var usesSystemResolvers: Bool
}

enum ConfigSchema {
    /// The tables of the file, in the reference's order, each with a line about it.
    static let sections: [(name: String, doc: String)] = [
        ("server", "Listening, who may ask, and the limits that protect the daemon."),
        ("resolver", "How names outside local zones are resolved, and how upstream servers are chosen."),
        (
            "forward",
            "Forward zones (`[[forward]]`, any number): names at or below `zone` go to `servers`; the longest matching zone wins."
        ),
        ("cache", "The answer cache."),
        ("cluster", "Service groups: their DNS zone and the timing of health checks."),
        ("registry", "Where registrations are kept."),
        ("api", "The HTTP API (JSON under /v1, docs/openapi.yaml)."),
        ("rate_limit", "Response rate limiting (RRL) for UDP."),
        ("log", "Logging, on standard error."),
    ]

    /// Every key outside `[[forward]]`.
    static let keys: [ConfigKey<Config>] =
        serverKeys + resolverKeys + cacheKeys + clusterKeys + registryKeys + apiKeys + rateLimitKeys + logKeys

    /// The keys of each `[[forward]]` table.
    static let forwardKeys: [ConfigKey<ForwardDraft>] = [
        ConfigKey(
            required: "zone", \.zone, .domain, .live,
            "names at or below this zone (`\".\"`: every name)…"),
        ConfigKey(
            required: "servers", \.servers, forwardServers, .live,
            """
            …go to these servers (`IP`, `IP:PORT`, `[IPv6]:PORT`, or `\"system\"` for /etc/resolv.conf's \
            nameservers)
            """),
    ]

    /// Whether a reload applies `[[forward]]` zones: when it applies each of their keys.
    static var forwardReload: ConfigReload { forwardKeys.allSatisfy { $0.reload == .live } ? .live : .restart }

    private static let defaults = Config()

    private static let serverKeys: [ConfigKey<Config>] = [
        ConfigKey(
            "server.listen", \.server.listen,
            .addresses.checked("at least one") { $0.isEmpty ? "needs at least one address" : nil }, .restart,
            defaults: defaults, "DNS over UDP and TCP on each address"),
        ConfigKey(
            "server.allow", \.server.allow, .networks, .live, defaults: defaults,
            "networks that may query; others get REFUSED"),
        ConfigKey(
            "server.threads", \.server.threads, .integer(0...256), .restart, defaults: defaults,
            "event loops, each with its own UDP socket per address (`SO_REUSEPORT`); 0: one per core"),
        ConfigKey(
            "server.tcp_idle_timeout_ms", \.server.tcpIdleTimeoutMs, .integer(100...600_000), .restart,
            defaults: defaults, "idle TCP connections are closed after this (RFC 7766)"),
        ConfigKey(
            "server.max_tcp_connections", \.server.maxTCPConnections, .integer(1...1_000_000), .restart,
            defaults: defaults, "open TCP connections, all clients together"),
        ConfigKey(
            "server.max_tcp_connections_per_client", \.server.maxTCPConnectionsPerClient, .integer(1...1_000_000),
            .restart, defaults: defaults,
            """
            open TCP connections of one client (its network: `client_ipv4_prefix`/`client_ipv6_prefix`); more are \
            closed at once
            """),
        ConfigKey(
            "server.max_pending_per_client", \.server.maxPendingPerClient, .integer(1...1_000_000), .live,
            defaults: defaults,
            "queries of one client (network) waiting on upstream servers at once; more get SERVFAIL at once"),
        ConfigKey(
            "server.max_pending", \.server.maxPending, .integer(1...10_000_000), .restart, defaults: defaults,
            """
            queries of all clients waiting on upstream servers; past it new misses get SERVFAIL at once while cache \
            hits keep flowing (with workers, each has its share)
            """),
        ConfigKey(
            "server.max_tcp_queries_per_connection", \.server.maxTCPQueriesPerConnection, .integer(1...65_535),
            .restart, defaults: defaults, "queries in flight per TCP connection before reading pauses"),
        ConfigKey(
            "server.tcp_query_timeout_ms", \.server.tcpQueryTimeoutMs, .integer(100...600_000), .restart,
            defaults: defaults,
            "a query begun on a TCP connection must arrive whole within this, or the connection is closed (slowloris)"),
        // At least one whole message (65,535 octets and its length) must fit.
        ConfigKey(
            "server.max_tcp_queued_bytes_per_connection", \.server.maxTCPQueuedBytesPerConnection,
            .integer(65_537...(64 << 20)), .restart, defaults: defaults,
            """
            reply bytes waiting for one TCP client to read them; past it the connection's queries wait unread \
            (back-pressure)
            """),
        ConfigKey(
            "server.max_tcp_queued_bytes", \.server.maxTCPQueuedBytes, .integer(65_537...(16 << 30)), .restart,
            defaults: defaults, "the same for all TCP connections together"),
        ConfigKey(
            "server.client_ipv4_prefix", \.server.clientPrefixes.ipv4, .integer(8...32), .restart, defaults: defaults,
            "the per-client caps count a client's network: these leading bits of an IPv4 address"),
        ConfigKey(
            "server.client_ipv6_prefix", \.server.clientPrefixes.ipv6, .integer(16...64), .restart, defaults: defaults,
            "the same for IPv6 (a host usually holds a whole /64)"),
        ConfigKey(
            "server.udp_batch", \.server.udpBatch, .boolean, .restart, defaults: defaults,
            "UDP through the batched recvmmsg/sendmmsg path; `false`: NIO's DatagramChannel"),
        ConfigKey(
            "server.workers", \.server.workers, .integer(0...64), .restart, defaults: defaults,
            """
            `N > 0`: N worker processes answer DNS on the shared ports under a supervisor that owns the registry, \
            health checks and API, and restarts a dead one at once; 0: one process
            """),
    ]

    private static let resolverKeys: [ConfigKey<Config>] = [
        ConfigKey(
            "resolver.mode", \.resolver.mode, .choice([ResolutionMode.forward, .recursive]), .restart,
            defaults: defaults,
            """
            `\"forward\"`: names go to the `[[forward]]` zones' servers; `\"recursive\"`: resolved from the root \
            (forward zones still win for their names)
            """),
        ConfigKey(
            "resolver.timeout_ms", \.resolver.timeoutMs, .integer(50...60_000), .restart, defaults: defaults,
            "a server silent this long has failed (marked down, back-off)"),
        ConfigKey(
            "resolver.probe_probability", \.resolver.probeProbability, .fraction, .restart, defaults: defaults,
            "share of queries also sent to a random other server of the zone, in parallel"),
        ConfigKey(
            "resolver.probe_interval_s", \.resolver.probeIntervalS, .integer(1...86_400), .restart, defaults: defaults,
            "a busy zone probes at least this often"),
        ConfigKey(
            "resolver.server_expiry_s", \.resolver.serverExpiryS, .integer(10...604_800), .restart, defaults: defaults,
            "a server's figures, and its `/metrics` series, are forgotten after this long unused"),
        ConfigKey(
            "resolver.root_hints", \.resolver.rootHints,
            .addresses.checked("port 53") { hints in
                hints.allSatisfy { $0.port == 53 } ? nil : "root servers answer on port 53: give addresses without a port"
            }, .restart, defaults: defaults,
            "recursive mode: root server addresses to start from; empty: the IANA root servers built in"),
        ConfigKey(
            "resolver.qname_minimisation", \.resolver.qnameMinimisation, .boolean, .restart, defaults: defaults,
            "recursive mode: RFC 9156 QNAME minimisation, relaxed"),
        ConfigKey(
            "resolver.query_loopback", \.resolver.queryLoopback, .boolean, .restart, defaults: defaults,
            """
            recursive mode: query nameserver addresses on loopback or unspecified (127.0.0.0/8, ::1, 0.0.0.0, ::) \
            learned from the network (root hints and forward servers are always used); for test hierarchies
            """),
    ]

    private static let cacheKeys: [ConfigKey<Config>] = [
        ConfigKey(
            "cache.max_bytes", \.cache.maxBytes, .integer(0...(1 << 40)), .restart, defaults: defaults,
            """
            memory for cached answers, bookkeeping included; 0 turns the cache off. Recursion's record cache takes \
            max_bytes / 8 beside it, the server tables max_bytes / 16 (at least 1 MiB), each bounded in bytes
            """),
        ConfigKey(
            "cache.min_ttl", \.cache.minTTL, .integer(0...86_400), .restart, defaults: defaults,
            "every TTL of a positive answer is raised to this…"),
        ConfigKey(
            "cache.max_ttl", \.cache.maxTTL, .integer(1...604_800), .restart, defaults: defaults,
            "…and lowered to this"),
        ConfigKey(
            "cache.max_negative_ttl", \.cache.maxNegativeTTL, .integer(0...604_800), .restart, defaults: defaults,
            "cap on how long NXDOMAIN/NODATA are kept (RFC 2308)"),
        // RFC 9520 §3.2: failures are cached for at least 1 s and at most 5 minutes.
        ConfigKey(
            "cache.failure_ttl", \.cache.failureTTL, .integer(1...300), .restart, defaults: defaults,
            "seconds a failed resolution answers SERVFAIL from the cache (RFC 9520)"),
        ConfigKey(
            "cache.prefetch", \.cache.prefetch, .boolean, .restart, defaults: defaults,
            "refresh answers asked for in the last 10 % of their TTL"),
        ConfigKey(
            "cache.serve_stale", \.cache.serveStale, .boolean, .restart, defaults: defaults,
            "RFC 8767: answer expired entries (TTL 30) when every server fails…"),
        ConfigKey(
            "cache.stale_max_s", \.cache.staleMaxSeconds, .integer(1...604_800), .restart, defaults: defaults,
            "…up to this long past their expiry"),
    ]

    private static let clusterKeys: [ConfigKey<Config>] = [
        ConfigKey(
            "cluster.domain", \.cluster.domain, .subdomain, .restart, defaults: defaults,
            "the service groups' zone, answered locally (never forwarded or cached)"),
        ConfigKey(
            "cluster.answer_ttl_s", \.cluster.policy.answerTTLSeconds, .integer(0...3600), .live, defaults: defaults,
            "longest TTL of group answers (never past a member's registration)"),
        ConfigKey(
            "cluster.deregister_after_s", \.cluster.policy.deregisterAfterSeconds, .integer(1...2_592_000), .live,
            defaults: defaults, "an unhealthy member is removed this long after its first failed check"),
        ConfigKey(
            "cluster.recheck_max_s", \.cluster.policy.recheckMaxSeconds, .integer(1...3600), .live, defaults: defaults,
            "unhealthy members are re-checked after 1 s, doubling up to this"),
        ConfigKey(
            "cluster.check_concurrency", \.cluster.checkConcurrency, .integer(1...10_000), .live, defaults: defaults,
            "health checks running at once"),
    ]

    private static let registryKeys: [ConfigKey<Config>] = [
        ConfigKey(
            "registry.backend", \.registry.backend, .choice([Config.Registry.Backend.sqlite, .etcd]), .restart,
            defaults: defaults,
            "where registrations are kept: `\"sqlite\"` (embedded) or `\"etcd\"` (shared by several instances)"),
        ConfigKey(
            "registry.path", \.registry.path, .string.checked("not empty") { $0.isEmpty ? "must not be empty" : nil },
            .restart, defaults: defaults, "sqlite: the file (relative to the working directory); its folder is created"),
        ConfigKey(
            "registry.endpoints", \.registry.endpoints, endpoints, .restart, defaults: defaults,
            "etcd: client URLs, tried in turn"),
        ConfigKey(
            "registry.prefix", \.registry.prefix,
            .string.checked("starts and ends with /") { prefix in
                prefix.hasPrefix("/") && prefix.hasSuffix("/") && prefix.count > 1
                    ? nil : "must start and end with '/' and name something, like \"/resolverd/\""
            }, .restart, defaults: defaults, "etcd: the key prefix; instances with the same prefix share a registry"),
        ConfigKey(
            "registry.username", \.registry.username, .string, .restart, defaults: defaults,
            "etcd: the user (with `password`)"),
        ConfigKey(
            "registry.password", \.registry.password, .string, .restart, defaults: defaults,
            "etcd: the password; refused with an `http://` endpoint that is not loopback (use https)"),
        ConfigKey(
            "registry.tls_ca_file", \.registry.tlsCAFile, .string, .restart, defaults: defaults,
            "etcd over https: the CA to trust (empty: the system's)"),
        ConfigKey(
            "registry.tls_cert_file", \.registry.tlsCertFile, .string, .restart, defaults: defaults,
            "etcd over https: a client certificate…"),
        ConfigKey(
            "registry.tls_key_file", \.registry.tlsKeyFile, .string, .restart, defaults: defaults,
            "…and its key"),
        ConfigKey(
            "registry.election_ttl_s", \.registry.electionTTLSeconds, .integer(2...600), .restart, defaults: defaults,
            "etcd: when the instance running health checks dies, another takes over within this"),
        ConfigKey(
            "registry.allowed_networks", \.registry.allowedNetworks, ConfigValueKind<[IPNetwork]>.networks.optional,
            .restart, defaults: defaults,
            """
            networks members may be registered in (and so health-checked); unset: the networks of this host's \
            non-loopback interfaces. Loopback, link-local, multicast and unspecified addresses only when a listed \
            network lies inside their range (`127.0.0.0/8` yes, `0.0.0.0/0` no); others: 400 at registration, \
            skipped (logged) when loaded from the store
            """),
    ]

    private static let apiKeys: [ConfigKey<Config>] = [
        ConfigKey(
            "api.listen", \.api.listen, .address(defaultPort: 8053), .restart, defaults: defaults,
            "the HTTP API's address; off loopback it needs `tls_certificate` and `tls_key`"),
        ConfigKey(
            "api.token", \.api.token,
            .string.checked("empty or \(APIToken.minimumLength)+ characters") { token in
                token.isEmpty || APIToken.isStrong(token)
                    ? nil
                    : "must be at least \(APIToken.minimumLength) ASCII characters without spaces (or empty: a generated one)"
            }, .restart, defaults: defaults,
            "the admin bearer token; empty: a random one made on first start into `token_file` and reused after"),
        ConfigKey(
            "api.token_file", \.api.tokenFile, .string, .restart, defaults: defaults,
            """
            where the generated token is kept (mode 0600, written atomically); empty: `api.token` beside \
            `registry.path` (`data/api.token`)
            """),
        ConfigKey(
            "api.allowed_hosts", \.api.allowedHosts,
            ConfigValueKind<[String]>.strings(each: "host names") { host in
                host.isEmpty || host.contains(where: { $0.isWhitespace || $0 == "/" }) ? "'\(host)' is not a host name" : nil
            }.map({ (hosts, _) throws(ConfigError) -> [String] in hosts.map { $0.lowercased() } }, back: { $0 }),
            .restart, defaults: defaults,
            """
            names (or `name:port`) a request's `Host` may carry besides the API's own address and `localhost`; \
            others get 403 (DNS rebinding)
            """),
        ConfigKey(
            "api.group_tokens", \.api.groupTokens, .groupTokens, .restart, defaults: defaults,
            """
            `{ web = \"…\" }`: a token per group that may only register, renew and remove that group's members (403 \
            otherwise)
            """),
        ConfigKey(
            "api.tls_certificate", \.api.tlsCertificate, .string, .restart, defaults: defaults,
            "PEM certificate chain: with `tls_key`, the API speaks HTTPS"),
        ConfigKey(
            "api.tls_key", \.api.tlsKey, .string, .restart, defaults: defaults, "the certificate's PEM private key"),
    ]

    private static let rateLimitKeys: [ConfigKey<Config>] = [
        ConfigKey(
            "rate_limit.responses_per_second", \.rateLimit.responsesPerSecond, .integer(0...10_000_000), .live,
            defaults: defaults,
            """
            answers per second to one client network over UDP (0: off); past it answers are dropped, every `slip`-th \
            sent empty with TC (the client retries over TCP, which is not limited). Cache and local answers only: \
            misses are capped by `server.max_pending_per_client`
            """),
        ConfigKey(
            "rate_limit.ipv4_prefix", \.rateLimit.ipv4Prefix, .integer(8...32), .live, defaults: defaults,
            "the IPv4 client network RRL counts together"),
        ConfigKey(
            "rate_limit.ipv6_prefix", \.rateLimit.ipv6Prefix, .integer(16...64), .live, defaults: defaults,
            "the IPv6 client network RRL counts together"),
        ConfigKey(
            "rate_limit.slip", \.rateLimit.slip, .integer(0...10), .live, defaults: defaults,
            "every slip-th limited answer goes out truncated; 0 drops them all"),
    ]

    private static let logKeys: [ConfigKey<Config>] = [
        ConfigKey(
            "log.level", \.log.level, .oneOf(Config.logLevels), .live, defaults: defaults, "the least severe level logged"),
        ConfigKey(
            "log.format", \.log.format, .choice([LineLogHandler.Format.logfmt, .json]), .restart, defaults: defaults,
            "`\"logfmt\"` (key=value) or `\"json\"` (one object per line)"),
        ConfigKey(
            "log.queries", \.log.queries, .boolean, .live, defaults: defaults,
            """
            one line per answered query: client, name, type, rcode, latency, source (`immediate`: cache or local; \
            `upstream`)
            """),
        ConfigKey(
            "log.queries_per_second", \.log.queriesPerSecond, .integer(1...1_000_000), .live, defaults: defaults,
            "at most this many query lines a second; the next line says how many were skipped"),
    ]

    /// `forward.servers`: addresses, or "system" for /etc/resolv.conf's; at least one.
    private static let forwardServers = ConfigValueKind<[String]>.strings.map(
        type: "array of addresses",
        allowed: "at least one; `\"system\"`",
        { (texts, site) throws(ConfigError) -> ForwardServers in
            let servers = try ConfigValueKind<[ServerAddress]>.addresses(texts.filter { $0 != "system" }, site)
            let usesSystem = texts.contains("system")
            guard !servers.isEmpty || usesSystem else { throw site.error("needs at least one server") }
            return ForwardServers(addresses: servers, usesSystemResolvers: usesSystem)
        },
        back: { $0.addresses.map(\.description) + ($0.usesSystemResolvers ? ["system"] : []) })

    /// `registry.endpoints`: http:// or https:// URLs (a trailing slash dropped); at least one.
    private static let endpoints = ConfigValueKind<[String]>.strings.map(
        type: "array of URLs", allowed: "at least one; http:// or https://",
        { (endpoints, site) throws(ConfigError) -> [String] in
            guard !endpoints.isEmpty else { throw site.error("needs at least one URL") }
            for endpoint in endpoints {
                guard let scheme = endpoint.split(separator: ":").first, scheme == "http" || scheme == "https",
                    endpoint.hasPrefix("\(scheme)://"), endpoint.count > scheme.count + 3
                else {
                    throw site.error("'\(endpoint)' is not an http:// or https:// URL")
                }
            }
            return endpoints.map { $0.hasSuffix("/") ? String($0.dropLast()) : $0 }
        },
        back: { $0 })

    // MARK: Rules across keys

    /// Keys set together or not at all.
    static let pairs: [ConfigKeyPair] = [
        ConfigKeyPair(
            "api.tls_certificate", \.api.tlsCertificate, "api.tls_key", \.api.tlsKey, "the API's certificate and its key"),
        ConfigKeyPair("registry.username", \.registry.username, "registry.password", \.registry.password, "etcd's user and password"),
        ConfigKeyPair(
            "registry.tls_cert_file", \.registry.tlsCertFile, "registry.tls_key_file", \.registry.tlsKeyFile,
            "a client certificate and its key"),
    ]

    /// The other rules, checked in this order once every key is read.
    static let rules: [ConfigRule] = [
        ConfigRule(doc: "`cache.min_ttl` must not exceed `cache.max_ttl`") { config, lines throws(ConfigError) in
            guard config.cache.minTTL <= config.cache.maxTTL else {
                throw lines.site("cache.min_ttl").error("must not exceed max_ttl (\(config.cache.maxTTL))")
            }
        },
        ConfigRule(doc: "`api.listen` off loopback needs `api.tls_certificate` and `api.tls_key`") {
            config, lines throws(ConfigError) in
            let site = lines.site("api.listen")
            try config.api.validate(key: site.key, line: site.line)
        },
        ConfigRule(doc: "`cluster.domain` must not be a `[[forward]]` zone") { config, lines throws(ConfigError) in
            let domain = config.cluster.domain
            guard !config.forwards.contains(where: { $0.zone == domain }) else {
                throw lines.site("cluster.domain").error(
                    "'\(domain)' is also a [[forward]] zone; the cluster zone is answered locally")
            }
        },
        // A password over plain http is readable by anyone on the path; on loopback there is no
        // path, so that is tolerated (a local etcd), and refused anywhere else.
        ConfigRule(doc: "`registry.password` needs https:// endpoints unless etcd is on loopback") {
            config, lines throws(ConfigError) in
            if !config.registry.password.isEmpty,
                let exposed = config.registry.endpoints.first(where: { Config.isPlainHTTPBeyondLoopback($0) })
            {
                throw lines.site("registry.password").error(
                    "would be sent in the clear to \(exposed): use https:// (or an etcd on loopback)")
            }
        },
        ConfigRule(doc: "`resolver.mode = \"forward\"` needs at least one `[[forward]]` zone") { config, _ throws(ConfigError) in
            if config.resolver.mode == .forward, config.forwards.isEmpty {
                throw ConfigError(key: "forward", line: nil, message: "mode \"forward\" needs at least one [[forward]] zone")
            }
        },
    ]

    // MARK: Looking keys up

    private static let keysByPath: [[String]: ConfigKey<Config>] = Dictionary(
        keys.map { ($0.path, $0) }, uniquingKeysWith: { first, _ in first })

    private static let forwardKeysByPath: [[String]: ConfigKey<ForwardDraft>] = Dictionary(
        forwardKeys.map { ($0.path, $0) }, uniquingKeysWith: { first, _ in first })

    /// Every table that holds keys (`["server"]`, …), `[[forward]]` aside.
    private static let tablePaths: Set<[String]> = Set(
        keys.flatMap { key in (1..<key.path.count).map { Array(key.path.prefix($0)) } })

    static func key(_ path: [String]) -> ConfigKey<Config>? { keysByPath[path] }

    // MARK: Reading a document

    /// The config a parsed file makes: every key read and checked, in file order, then the rules.
    static func read(_ document: TOMLTable) throws(ConfigError) -> Config {
        var reader = Reader()
        try reader.walk(document, path: [])
        for pair in pairs { try pair.check(reader.config, reader.lines) }
        for rule in rules { try rule.check(reader.config, reader.lines) }
        return reader.config
    }

    private struct Reader {
        var config = Config()
        var lines = ConfigLines()

        mutating func walk(_ table: TOMLTable, path: [String]) throws(ConfigError) {
            for entry in table.entries {
                let keyPath = path + [entry.key]
                let site = ConfigSite(key: TOMLParser.display(keyPath), line: entry.line)
                lines.lines[keyPath] = entry.line
                if let key = keysByPath[keyPath] {
                    try key.apply(entry.value, site, &config)
                } else if keyPath == ["forward"] {
                    try forwards(entry.value, site)
                } else if tablePaths.contains(keyPath) {
                    guard case .table(let inner) = entry.value else {
                        throw site.error("expected a table ([\(site.key)]), found \(entry.value.kind)")
                    }
                    try walk(inner, path: keyPath)
                } else {
                    throw site.error("unknown key")
                }
            }
        }

        /// `[[forward]]` tables, numbered from 1 in errors: `forward[2].servers`.
        mutating func forwards(_ value: TOMLValue, _ site: ConfigSite) throws(ConfigError) {
            guard case .array(let elements) = value else {
                throw site.error("expected an array of tables ([[forward]]), found \(value.kind)")
            }
            for (index, element) in elements.enumerated() {
                guard case .table(let table) = element else { throw site.error("expected tables ([[forward]])") }
                let name = "forward[\(index + 1)]"
                var draft = ForwardDraft()
                for entry in table.entries {
                    let entrySite = ConfigSite(key: name + "." + TOMLParser.display([entry.key]), line: entry.line)
                    guard let key = forwardKeysByPath[[entry.key]] else { throw entrySite.error("unknown key") }
                    try key.apply(entry.value, entrySite, &draft)
                }
                for key in forwardKeys where key.required && key.path.count == 1 && table[key.path[0]] == nil {
                    throw ConfigError(key: "\(name).\(key.name)", line: table.line, message: "is required")
                }
                guard let zone = draft.zone, let servers = draft.servers else {
                    throw ConfigError(key: name, line: table.line, message: "zone and servers are required")
                }
                guard config.forwards.allSatisfy({ $0.zone != zone }) else {
                    throw ConfigError(
                        key: "\(name).zone", line: table["zone"]?.line ?? table.line,
                        message: "zone '\(zone)' is forwarded twice (\(name))")
                }
                config.forwards.append(
                    ForwardZoneConfig(zone: zone, servers: servers.addresses, usesSystemResolvers: servers.usesSystemResolvers))
            }
        }
    }

    // MARK: The reload diff

    /// The restart-only keys whose values differ between the running config and a fresh one,
    /// by name, in the table's order.
    static func restartNeeded(running: Config, fresh: Config) -> [String] {
        var names = keys.filter { $0.reload == .restart && $0.differs(running, fresh) }.map(\.name)
        if forwardReload == .restart, running.forwards != fresh.forwards { names.append("forward") }
        return names
    }

    /// The running config with the reloadable keys of a fresh one: restart-only keys stay as they
    /// run, and so does anything the file does not set.
    static func applyingReloadableKeys(of fresh: Config, to running: Config) -> Config {
        var applied = running
        for key in keys where key.reload == .live { key.keep(&applied, fresh) }
        if forwardReload == .live { applied.forwards = fresh.forwards }
        return applied
    }
}
