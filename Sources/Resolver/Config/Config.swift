// Config/: the daemon's settings, read from TOML and validated. Every error names the key and
// its line ("resolver.timeout_ms at line 12: …"), so an operator can fix the file at once.

/// A config file problem: which key, on which line, and what is wrong.
public struct ConfigError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The dotted key (`resolver.timeout_ms`, `forward[2].servers`), or nil for syntax errors.
    public let key: String?
    public let line: Int?
    public let message: String

    public init(key: String?, line: Int?, message: String) {
        self.key = key
        self.line = line
        self.message = message
    }

    public var description: String {
        switch (key, line) {
        case let (key?, line?): "line \(line): \(key): \(message)"
        case let (key?, nil): "\(key): \(message)"
        case let (nil, line?): "line \(line): \(message)"
        case (nil, nil): message
        }
    }
}

/// How names outside local zones are resolved.
public enum ResolutionMode: String, Sendable {
    case forward
    case recursive
}

/// One `[[forward]]` zone: names at or below `zone` go to `servers`.
public struct ForwardZoneConfig: Sendable, Equatable {
    public var zone: DomainName
    /// Upstream servers; the keyword `"system"` in the file expands to /etc/resolv.conf's.
    public var servers: [ServerAddress]
    public var usesSystemResolvers: Bool
}

/// All settings. Defaults are the embedded ones: a loopback-only forwarder.
public struct Config: Sendable, Equatable {
    public struct Server: Sendable, Equatable {
        public var listen: [ServerAddress] = [ServerAddress(ip: .v4(0x7F00_0001), port: 53)]
        public var allow: [IPNetwork] = [IPNetwork("127.0.0.0/8"), IPNetwork("::1/128")].compactMap { $0 }
        /// Event loops (and UDP sockets per address); 0 means one per core.
        public var threads: Int = 0
        /// RFC 7766 §6.2.3: close idle TCP connections after a few seconds.
        public var tcpIdleTimeoutMs: Int = 10_000
        public var maxTCPConnections: Int = 1_000
        /// TCP connections one client address may hold open at once.
        public var maxTCPConnectionsPerClient: Int = 32
        /// Queries of one client address waiting on upstream servers at once; more get SERVFAIL.
        public var maxPendingPerClient: Int = 100
        /// Queries of all clients waiting on upstream servers at once; more get SERVFAIL at once
        /// while cache hits keep flowing (overload).
        public var maxPending: Int = 10_000
        /// Queries one TCP connection may have outstanding at once (RFC 7766 §6.2.1.2 pipelining).
        public var maxTCPQueriesPerConnection: Int = 32
        /// A query begun on a TCP connection must be complete within this (a client trickling
        /// bytes never holds a connection open).
        public var tcpQueryTimeoutMs: Int = 3_000
        /// Reply bytes one TCP connection may have waiting for its client to read; past it the
        /// connection's queries wait unread (as Unbound's stream-wait-size).
        public var maxTCPQueuedBytesPerConnection: Int = 128 << 10
        /// The same for all TCP connections together.
        public var maxTCPQueuedBytes: Int = 16 << 20
        /// The leading bits of a client's address that make it one client for the per-client caps.
        public var clientPrefixes = ClientPrefixes()
        /// UDP through the hand-written recvmmsg/sendmmsg path (false: NIO's DatagramChannel).
        public var udpBatch = true
        /// Worker processes answering DNS under a supervisor (0: one process does everything).
        public var workers: Int = 0
    }

    public struct Resolver: Sendable, Equatable {
        public var mode: ResolutionMode = .forward
        /// A server silent this long has failed.
        public var timeoutMs: Int = 3_000
        /// Share of queries that also probe a random other server of the zone.
        public var probeProbability: Double = 0.05
        /// At least one probe per busy zone this often.
        public var probeIntervalS: Int = 30
        /// Statistics of a server unused this long are forgotten.
        public var serverExpiryS: Int = 900
        /// Recursive mode: the root servers to start from (empty: the IANA ones built in).
        public var rootHints: [ServerAddress] = []
        /// Recursive mode: RFC 9156 QNAME minimisation (relaxed).
        public var qnameMinimisation = true
        /// Recursive mode: query nameserver addresses on loopback or unspecified (127.0.0.0/8,
        /// ::1, 0.0.0.0, ::) learned from the network. Off by default, as Unbound's
        /// do-not-query-localhost; test set-ups on loopback turn it on.
        public var queryLoopback = false

        /// The recursion settings these keys make.
        public var recursion: RecursionSettings {
            var settings = RecursionSettings()
            if !rootHints.isEmpty { settings.rootHints = rootHints }
            settings.qnameMinimisation = qnameMinimisation
            settings.queryLoopback = queryLoopback
            return settings
        }

        /// The selection settings these keys make.
        public var selectionPolicy: SelectionPolicy {
            var policy = SelectionPolicy()
            policy.timeout = .milliseconds(Int64(timeoutMs))
            policy.probeProbability = probeProbability
            policy.probeInterval = .seconds(Int64(probeIntervalS))
            policy.expiry = .seconds(Int64(serverExpiryS))
            return policy
        }
    }

    public struct API: Sendable, Equatable {
        /// The HTTP API's address (registrations and admin views).
        public var listen = ServerAddress(ip: .v4(0x7F00_0001), port: 8053)
        /// The admin bearer token; empty: a random one kept in `tokenFile` (made on first start).
        public var token = ""
        /// Where the generated token is kept; empty: `api.token` beside the registry's file.
        public var tokenFile = ""
        /// Host names (besides the listener's own address and `localhost`) a request's `Host`
        /// header may carry; others are refused (DNS rebinding).
        public var allowedHosts: [String] = []
        /// Group → a token that may only register, renew and remove that group's members.
        public var groupTokens: [String: String] = [:]
        /// PEM files: with both, the API speaks HTTPS (required off loopback).
        public var tlsCertificate = ""
        public var tlsKey = ""

        /// Whether the API speaks HTTPS.
        public var usesTLS: Bool { !tlsCertificate.isEmpty }
    }

    public struct Log: Sendable, Equatable {
        public var level: String = "info"
        /// `logfmt` or `json`.
        public var format: LineLogHandler.Format = .logfmt
        /// One line per answered query (client, name, type, rcode, latency, source).
        public var queries = false
        /// At most this many query lines a second; the rest are counted in the next line.
        public var queriesPerSecond = 100
    }

    /// Service groups: their DNS zone and the timing of health checks.
    public struct Cluster: Sendable, Equatable {
        public var domain = DomainName("cluster.internal.") ?? .root
        /// Timing of answers, checks and removals.
        public var policy = RegistryPolicy()
        /// Health checks running at once, at most.
        public var checkConcurrency = 64
    }

    /// Where registrations are kept.
    public struct Registry: Sendable, Equatable {
        public enum Backend: String, Sendable { case sqlite, etcd }
        public var backend: Backend = .sqlite
        /// The SQLite file (relative to the working directory); its folder is created.
        public var path = "data/registry.sqlite"
        /// etcd: the cluster's client URLs (http:// or https://), tried in turn.
        public var endpoints: [String] = ["http://127.0.0.1:2379"]
        /// etcd: every key resolverd writes starts with this.
        public var prefix = "/resolverd/"
        /// etcd: user and password (etcd's authentication), both or neither.
        public var username = ""
        public var password = ""
        /// etcd over https: the CA to trust (empty: the system's), and a client certificate and key.
        public var tlsCAFile = ""
        public var tlsCertFile = ""
        public var tlsKeyFile = ""
        /// etcd: the lease of the instance running health checks; when it dies another takes over
        /// within this many seconds.
        public var electionTTLSeconds = 5
        /// Networks members may be registered (and so health-checked) in; nil: the networks of
        /// this host's own non-loopback interfaces, read at start.
        public var allowedNetworks: [IPNetwork]? = nil
    }

    public var server = Server()
    public var resolver = Resolver()
    public var forwards: [ForwardZoneConfig] = []
    public var cache = CacheSettings()
    public var api = API()
    public var log = Log()
    public var cluster = Cluster()
    public var registry = Registry()
    public var rateLimit = RateLimitSettings()

    public init() {}

    /// Where the generated API token is kept: `api.token_file`, or `api.token` in the registry
    /// file's folder.
    public var apiTokenFile: String {
        guard api.tokenFile.isEmpty else { return api.tokenFile }
        let path = registry.path
        guard let slash = path.lastIndex(of: "/") else { return "api.token" }
        return path[..<slash].isEmpty ? "/api.token" : "\(path[..<slash])/api.token"
    }

    /// Reads and validates the config file at `path`.
    public static func load(path: String) throws(ConfigError) -> Config {
        guard let text = readTextFile(path) else {
            throw ConfigError(key: nil, line: nil, message: "cannot read the file")
        }
        return try parse(text)
    }

    /// Reads and validates a config file's text.
    public static func parse(_ text: String) throws(ConfigError) -> Config {
        let root: TOMLTable
        do {
            root = try TOMLParser.parse(text)
        } catch {
            throw ConfigError(key: nil, line: error.line, message: error.message)
        }
        var config = Config()
        var document = ConfigSection(name: "", table: root)
        if let server = try document.table("server") {
            var section = server
            if let listen = try section.strings("listen") {
                config.server.listen = try section.addresses("listen", listen)
            }
            guard !config.server.listen.isEmpty else { throw section.error("listen", "needs at least one address") }
            config.server.allow = try section.networks("allow", default: config.server.allow)
            config.server.threads = try section.integer("threads", default: config.server.threads, in: 0...256)
            config.server.tcpIdleTimeoutMs = try section.integer(
                "tcp_idle_timeout_ms", default: config.server.tcpIdleTimeoutMs, in: 100...600_000)
            config.server.maxTCPConnections = try section.integer(
                "max_tcp_connections", default: config.server.maxTCPConnections, in: 1...1_000_000)
            config.server.maxTCPConnectionsPerClient = try section.integer(
                "max_tcp_connections_per_client", default: config.server.maxTCPConnectionsPerClient, in: 1...1_000_000)
            config.server.maxPending = try section.integer("max_pending", default: config.server.maxPending, in: 1...10_000_000)
            config.server.maxPendingPerClient = try section.integer(
                "max_pending_per_client", default: config.server.maxPendingPerClient, in: 1...1_000_000)
            config.server.maxTCPQueriesPerConnection = try section.integer(
                "max_tcp_queries_per_connection", default: config.server.maxTCPQueriesPerConnection, in: 1...65_535)
            config.server.tcpQueryTimeoutMs = try section.integer(
                "tcp_query_timeout_ms", default: config.server.tcpQueryTimeoutMs, in: 100...600_000)
            // At least one whole message (65,535 octets and its length) must fit.
            config.server.maxTCPQueuedBytesPerConnection = try section.integer(
                "max_tcp_queued_bytes_per_connection", default: config.server.maxTCPQueuedBytesPerConnection,
                in: 65_537...(64 << 20))
            config.server.maxTCPQueuedBytes = try section.integer(
                "max_tcp_queued_bytes", default: config.server.maxTCPQueuedBytes, in: 65_537...(16 << 30))
            config.server.clientPrefixes.ipv4 = try section.integer(
                "client_ipv4_prefix", default: config.server.clientPrefixes.ipv4, in: 8...32)
            config.server.clientPrefixes.ipv6 = try section.integer(
                "client_ipv6_prefix", default: config.server.clientPrefixes.ipv6, in: 16...64)
            config.server.udpBatch = try section.boolean("udp_batch", default: config.server.udpBatch)
            config.server.workers = try section.integer("workers", default: config.server.workers, in: 0...64)
            try section.rejectUnknownKeys()
        }
        if let resolver = try document.table("resolver") {
            var section = resolver
            let mode = try section.string("mode", default: config.resolver.mode.rawValue)
            guard let parsed = ResolutionMode(rawValue: mode) else {
                throw section.error("mode", "must be \"forward\" or \"recursive\", not \"\(mode)\"")
            }
            config.resolver.mode = parsed
            config.resolver.timeoutMs = try section.integer("timeout_ms", default: config.resolver.timeoutMs, in: 50...60_000)
            config.resolver.probeProbability = try section.fraction(
                "probe_probability", default: config.resolver.probeProbability)
            config.resolver.probeIntervalS = try section.integer(
                "probe_interval_s", default: config.resolver.probeIntervalS, in: 1...86_400)
            config.resolver.serverExpiryS = try section.integer(
                "server_expiry_s", default: config.resolver.serverExpiryS, in: 10...604_800)
            if let hints = try section.strings("root_hints") {
                config.resolver.rootHints = try section.addresses("root_hints", hints)
                guard config.resolver.rootHints.allSatisfy({ $0.port == 53 }) else {
                    throw section.error("root_hints", "root servers answer on port 53: give addresses without a port")
                }
            }
            config.resolver.qnameMinimisation = try section.boolean(
                "qname_minimisation", default: config.resolver.qnameMinimisation)
            config.resolver.queryLoopback = try section.boolean("query_loopback", default: config.resolver.queryLoopback)
            try section.rejectUnknownKeys()
        }
        for (index, forward) in try document.tables("forward").enumerated() {
            var section = forward
            let zoneText = try section.requiredString("zone")
            guard !zoneText.isEmpty, let zone = DomainName(zoneText) else { throw section.error("zone", "'\(zoneText)' is not a domain name") }
            guard config.forwards.allSatisfy({ $0.zone != zone }) else {
                throw section.error("zone", "zone '\(zone)' is forwarded twice (forward[\(index + 1)])")
            }
            guard let texts = try section.strings("servers") else { throw section.error("servers", "is required") }
            let usesSystem = texts.contains("system")
            let servers = try section.addresses("servers", texts.filter { $0 != "system" })
            guard !servers.isEmpty || usesSystem else { throw section.error("servers", "needs at least one server") }
            config.forwards.append(ForwardZoneConfig(zone: zone, servers: servers, usesSystemResolvers: usesSystem))
            try section.rejectUnknownKeys()
        }
        if let cache = try document.table("cache") {
            var section = cache
            config.cache = try Self.cacheSettings(&section, defaults: config.cache)
            try section.rejectUnknownKeys()
        }
        if let api = try document.table("api") {
            var section = api
            let listen = try section.string("listen", default: config.api.listen.description)
            guard let address = ServerAddress(listen, defaultPort: 8053) else {
                throw section.error("listen", "'\(listen)' is not an address (IP:PORT or [IPv6]:PORT)")
            }
            config.api.listen = address
            config.api.token = try section.string("token", default: config.api.token)
            if !config.api.token.isEmpty, !APIToken.isStrong(config.api.token) {
                throw section.error(
                    "token", "must be at least \(APIToken.minimumLength) ASCII characters without spaces (or empty: a generated one)")
            }
            config.api.tokenFile = try section.string("token_file", default: config.api.tokenFile)
            if let hosts = try section.strings("allowed_hosts") {
                for host in hosts where host.isEmpty || host.contains(where: { $0.isWhitespace || $0 == "/" }) {
                    throw section.error("allowed_hosts", "'\(host)' is not a host name")
                }
                config.api.allowedHosts = hosts.map { $0.lowercased() }
            }
            config.api.groupTokens = try Self.groupTokens(&section)
            config.api.tlsCertificate = try section.string("tls_certificate", default: "")
            config.api.tlsKey = try section.string("tls_key", default: "")
            guard config.api.tlsCertificate.isEmpty == config.api.tlsKey.isEmpty else {
                throw section.error(
                    config.api.tlsCertificate.isEmpty ? "tls_certificate" : "tls_key",
                    "tls_certificate and tls_key go together (the API's certificate and its key)")
            }
            try config.api.validate(key: "api.listen", line: section.line(of: "listen"))
            try section.rejectUnknownKeys()
        }
        if let cluster = try document.table("cluster") {
            var section = cluster
            let text = try section.string("domain", default: config.cluster.domain.description)
            guard let domain = DomainName(text), !domain.isRoot else {
                throw section.error("domain", "'\(text)' is not a domain name below the root")
            }
            guard !config.forwards.contains(where: { $0.zone == domain }) else {
                throw section.error("domain", "'\(domain)' is also a [[forward]] zone; the cluster zone is answered locally")
            }
            config.cluster.domain = domain
            var policy = config.cluster.policy
            policy.answerTTLSeconds = try section.integer("answer_ttl_s", default: policy.answerTTLSeconds, in: 0...3600)
            policy.deregisterAfterSeconds = try section.integer(
                "deregister_after_s", default: policy.deregisterAfterSeconds, in: 1...2_592_000)
            policy.recheckMaxSeconds = try section.integer("recheck_max_s", default: policy.recheckMaxSeconds, in: 1...3600)
            config.cluster.policy = policy
            config.cluster.checkConcurrency = try section.integer(
                "check_concurrency", default: config.cluster.checkConcurrency, in: 1...10_000)
            try section.rejectUnknownKeys()
        }
        if let registry = try document.table("registry") {
            var section = registry
            let backend = try section.string("backend", default: config.registry.backend.rawValue)
            guard let parsed = Registry.Backend(rawValue: backend) else {
                throw section.error("backend", "must be \"sqlite\" or \"etcd\", not \"\(backend)\"")
            }
            config.registry.backend = parsed
            config.registry.path = try section.string("path", default: config.registry.path)
            guard !config.registry.path.isEmpty else { throw section.error("path", "must not be empty") }
            if let endpoints = try section.strings("endpoints") {
                guard !endpoints.isEmpty else { throw section.error("endpoints", "needs at least one URL") }
                for endpoint in endpoints {
                    guard let scheme = endpoint.split(separator: ":").first, scheme == "http" || scheme == "https",
                        endpoint.hasPrefix("\(scheme)://"), endpoint.count > scheme.count + 3
                    else {
                        throw section.error("endpoints", "'\(endpoint)' is not an http:// or https:// URL")
                    }
                }
                config.registry.endpoints = endpoints.map { $0.hasSuffix("/") ? String($0.dropLast()) : $0 }
            }
            config.registry.prefix = try section.string("prefix", default: config.registry.prefix)
            guard config.registry.prefix.hasPrefix("/"), config.registry.prefix.hasSuffix("/"),
                config.registry.prefix.count > 1
            else {
                throw section.error("prefix", "must start and end with '/' and name something, like \"/resolverd/\"")
            }
            config.registry.username = try section.string("username", default: "")
            config.registry.password = try section.string("password", default: "")
            guard config.registry.username.isEmpty == config.registry.password.isEmpty else {
                throw section.error(config.registry.username.isEmpty ? "password" : "username", "username and password go together")
            }
            // A password over plain http is readable by anyone on the path; on loopback there is
            // no path, so that is tolerated (a local etcd), and refused anywhere else.
            if !config.registry.password.isEmpty,
                let exposed = config.registry.endpoints.first(where: { Self.isPlainHTTPBeyondLoopback($0) })
            {
                throw section.error(
                    "password", "would be sent in the clear to \(exposed): use https:// (or an etcd on loopback)")
            }
            config.registry.tlsCAFile = try section.string("tls_ca_file", default: "")
            config.registry.tlsCertFile = try section.string("tls_cert_file", default: "")
            config.registry.tlsKeyFile = try section.string("tls_key_file", default: "")
            guard config.registry.tlsCertFile.isEmpty == config.registry.tlsKeyFile.isEmpty else {
                throw section.error(
                    config.registry.tlsCertFile.isEmpty ? "tls_key_file" : "tls_cert_file",
                    "tls_cert_file and tls_key_file go together (a client certificate and its key)")
            }
            config.registry.electionTTLSeconds = try section.integer(
                "election_ttl_s", default: config.registry.electionTTLSeconds, in: 2...600)
            if try section.strings("allowed_networks") != nil {
                config.registry.allowedNetworks = try section.networks("allowed_networks", default: [])
            }
            try section.rejectUnknownKeys()
        }
        if let rateLimit = try document.table("rate_limit") {
            var section = rateLimit
            var settings = config.rateLimit
            settings.responsesPerSecond = try section.integer(
                "responses_per_second", default: settings.responsesPerSecond, in: 0...10_000_000)
            settings.ipv4Prefix = try section.integer("ipv4_prefix", default: settings.ipv4Prefix, in: 8...32)
            settings.ipv6Prefix = try section.integer("ipv6_prefix", default: settings.ipv6Prefix, in: 16...64)
            settings.slip = try section.integer("slip", default: settings.slip, in: 0...10)
            config.rateLimit = settings
            try section.rejectUnknownKeys()
        }
        if let log = try document.table("log") {
            var section = log
            let level = try section.string("level", default: config.log.level)
            guard Config.logLevels.contains(level) else {
                throw section.error("level", "must be one of \(Config.logLevels.joined(separator: ", ")), not \"\(level)\"")
            }
            config.log.level = level
            let format = try section.string("format", default: config.log.format.rawValue)
            guard let parsedFormat = LineLogHandler.Format(rawValue: format) else {
                throw section.error("format", "must be \"logfmt\" or \"json\", not \"\(format)\"")
            }
            config.log.format = parsedFormat
            config.log.queries = try section.boolean("queries", default: config.log.queries)
            config.log.queriesPerSecond = try section.integer(
                "queries_per_second", default: config.log.queriesPerSecond, in: 1...1_000_000)
            try section.rejectUnknownKeys()
        }
        try document.rejectUnknownKeys()
        if config.resolver.mode == .forward, config.forwards.isEmpty {
            throw ConfigError(key: "forward", line: nil, message: "mode \"forward\" needs at least one [[forward]] zone")
        }
        return config
    }

    private static func cacheSettings(_ section: inout ConfigSection, defaults: CacheSettings) throws(ConfigError)
        -> CacheSettings
    {
        var cache = defaults
        let week = 604_800
        cache.maxBytes = try section.integer("max_bytes", default: cache.maxBytes, in: 0...(1 << 40))
        cache.minTTL = UInt32(try section.integer("min_ttl", default: Int(cache.minTTL), in: 0...86_400))
        cache.maxTTL = UInt32(try section.integer("max_ttl", default: Int(cache.maxTTL), in: 1...week))
        guard cache.minTTL <= cache.maxTTL else {
            throw section.error("min_ttl", "must not exceed max_ttl (\(cache.maxTTL))")
        }
        cache.maxNegativeTTL = UInt32(
            try section.integer("max_negative_ttl", default: Int(cache.maxNegativeTTL), in: 0...week))
        // RFC 9520 §3.2: failures are cached for at least 1 s and at most 5 minutes.
        cache.failureTTL = UInt32(try section.integer("failure_ttl", default: Int(cache.failureTTL), in: 1...300))
        cache.prefetch = try section.boolean("prefetch", default: cache.prefetch)
        cache.serveStale = try section.boolean("serve_stale", default: cache.serveStale)
        cache.staleMaxSeconds = UInt32(
            try section.integer("stale_max_s", default: Int(cache.staleMaxSeconds), in: 1...week))
        return cache
    }

    /// `api.group_tokens = { web = "…", db = "…" }`: each group's token (a DNS label, a token of
    /// at least 16 characters, no token shared by two groups).
    private static func groupTokens(_ section: inout ConfigSection) throws(ConfigError) -> [String: String] {
        guard let table = try section.inlineTable("group_tokens") else { return [:] }
        var tokens: [String: String] = [:]
        for entry in table.entries {
            let key = "group_tokens.\(entry.key)"
            guard let group = ServiceLabel.normalize(entry.key) else {
                throw section.error("group_tokens", "'\(entry.key)' is not a group name (a DNS label)")
            }
            guard case .string(let token) = entry.value else {
                throw ConfigError(key: section.path(key), line: entry.line, message: "expected a string, found \(entry.value.kind)")
            }
            guard APIToken.isStrong(token) else {
                throw ConfigError(
                    key: section.path(key), line: entry.line,
                    message: "must be at least \(APIToken.minimumLength) ASCII characters without spaces")
            }
            guard !tokens.values.contains(token) else {
                throw ConfigError(key: section.path(key), line: entry.line, message: "another group has the same token")
            }
            tokens[group] = token
        }
        return tokens
    }

    /// The levels swift-log knows, as the config spells them.
    public static let logLevels = ["trace", "debug", "info", "notice", "warning", "error", "critical"]

    /// Whether `endpoint` is an http:// URL whose host is not loopback (127.0.0.0/8, ::1, localhost).
    static func isPlainHTTPBeyondLoopback(_ endpoint: String) -> Bool {
        guard endpoint.hasPrefix("http://") else { return false }
        let authority = endpoint.dropFirst("http://".count).prefix { $0 != "/" }
        let hostAndPort = authority.split(separator: "@").last ?? authority
        let host: Substring
        if hostAndPort.hasPrefix("["), let end = hostAndPort.firstIndex(of: "]") {
            host = hostAndPort[hostAndPort.index(after: hostAndPort.startIndex)..<end]
        } else {
            host = hostAndPort.split(separator: ":", maxSplits: 1).first ?? hostAndPort
        }
        if host.lowercased() == "localhost" { return false }
        return !(IPAddress(String(host))?.isLoopback ?? false)
    }
}

/// A table being read: typed getters that name the key and line on error, and a check that
/// every key was known.
struct ConfigSection {
    let name: String
    let table: TOMLTable
    private var used: Set<String> = []

    init(name: String, table: TOMLTable) {
        self.name = name
        self.table = table
    }

    func line(of key: String) -> Int? { table[key]?.line ?? table.line }

    func path(_ key: String) -> String { name.isEmpty ? key : "\(name).\(key)" }

    func error(_ key: String, _ message: String) -> ConfigError {
        ConfigError(key: path(key), line: table[key]?.line ?? table.line, message: message)
    }

    private mutating func entry(_ key: String) -> TOMLTable.Entry? {
        used.insert(key)
        return table[key]
    }

    mutating func table(_ key: String) throws(ConfigError) -> ConfigSection? {
        guard let entry = entry(key) else { return nil }
        guard case .table(let table) = entry.value else {
            throw error(key, "expected a table ([\(key)]), found \(entry.value.kind)")
        }
        return ConfigSection(name: path(key), table: table)
    }

    mutating func tables(_ key: String) throws(ConfigError) -> [ConfigSection] {
        guard let entry = entry(key) else { return [] }
        guard case .array(let elements) = entry.value else {
            throw error(key, "expected an array of tables ([[\(key)]]), found \(entry.value.kind)")
        }
        var sections: [ConfigSection] = []
        for (index, element) in elements.enumerated() {
            guard case .table(let table) = element else { throw error(key, "expected tables ([[\(key)]])") }
            sections.append(ConfigSection(name: "\(path(key))[\(index + 1)]", table: table))
        }
        return sections
    }

    mutating func string(_ key: String, default value: String) throws(ConfigError) -> String {
        guard let entry = entry(key) else { return value }
        guard case .string(let text) = entry.value else { throw error(key, "expected a string, found \(entry.value.kind)") }
        return text
    }

    /// An inline table (`key = { a = "…" }`) or a `[section.key]`-less table value; nil when absent.
    mutating func inlineTable(_ key: String) throws(ConfigError) -> TOMLTable? {
        guard let entry = entry(key) else { return nil }
        guard case .table(let table) = entry.value else {
            throw error(key, "expected a table ({ name = \"value\", … }), found \(entry.value.kind)")
        }
        return table
    }

    mutating func boolean(_ key: String, default value: Bool) throws(ConfigError) -> Bool {
        guard let entry = entry(key) else { return value }
        guard case .boolean(let flag) = entry.value else {
            throw error(key, "expected true or false, found \(entry.value.kind)")
        }
        return flag
    }

    mutating func requiredString(_ key: String) throws(ConfigError) -> String {
        guard table[key] != nil else { throw error(key, "is required") }
        return try string(key, default: "")
    }

    mutating func integer(_ key: String, default value: Int, in range: ClosedRange<Int>) throws(ConfigError) -> Int {
        guard let entry = entry(key) else { return value }
        guard case .integer(let number) = entry.value else {
            throw error(key, "expected an integer, found \(entry.value.kind)")
        }
        guard number >= Int64(range.lowerBound), number <= Int64(range.upperBound) else {
            throw error(key, "must be between \(range.lowerBound) and \(range.upperBound), not \(number)")
        }
        return Int(number)
    }

    /// A number from 0 to 1 (an integer 0 or 1 is accepted too).
    mutating func fraction(_ key: String, default value: Double) throws(ConfigError) -> Double {
        guard let entry = entry(key) else { return value }
        let number: Double
        switch entry.value {
        case .float(let float): number = float
        case .integer(let integer): number = Double(integer)
        default: throw error(key, "expected a number from 0 to 1, found \(entry.value.kind)")
        }
        guard number >= 0, number <= 1 else { throw error(key, "must be between 0 and 1, not \(number)") }
        return number
    }

    mutating func strings(_ key: String) throws(ConfigError) -> [String]? {
        guard let entry = entry(key) else { return nil }
        guard case .array(let elements) = entry.value else {
            throw error(key, "expected an array of strings, found \(entry.value.kind)")
        }
        var result: [String] = []
        for element in elements {
            guard case .string(let text) = element else {
                throw error(key, "expected an array of strings, found \(element.kind) in it")
            }
            result.append(text)
        }
        return result
    }

    /// Parses the server addresses `texts` read from `key`.
    func addresses(_ key: String, _ texts: [String]) throws(ConfigError) -> [ServerAddress] {
        var result: [ServerAddress] = []
        for text in texts {
            guard let address = ServerAddress(text) else {
                throw error(key, "'\(text)' is not an address (IP, IP:PORT or [IPv6]:PORT)")
            }
            result.append(address)
        }
        return result
    }

    mutating func networks(_ key: String, default value: [IPNetwork]) throws(ConfigError) -> [IPNetwork] {
        guard let texts = try strings(key) else { return value }
        var result: [IPNetwork] = []
        for text in texts {
            guard let network = IPNetwork(text) else { throw error(key, "'\(text)' is not a network (IP or IP/PREFIX)") }
            result.append(network)
        }
        return result
    }

    func rejectUnknownKeys() throws(ConfigError) {
        for entry in table.entries where !used.contains(entry.key) {
            throw ConfigError(key: path(entry.key), line: entry.line, message: "unknown key")
        }
    }
}

extension Config.API {
    /// Off loopback the tokens would cross the network in clear: there the API needs TLS
    /// (`api.tls_certificate` and `api.tls_key`).
    public func validate(key: String, line: Int?) throws(ConfigError) {
        if !listen.ip.isLoopback, !usesTLS {
            throw ConfigError(
                key: key, line: line,
                message: "\(listen) is not a loopback address; set api.tls_certificate and api.tls_key to listen there")
        }
    }
}
