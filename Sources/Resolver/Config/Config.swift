// Config/: the daemon's settings, read from TOML and validated. Every error names the key and
// its line ("resolver.timeout_ms at line 12: …"), so an operator can fix the file at once. The
// fields' initial values are the defaults; which key sets which field, its range and whether a
// reload applies it are in the key table (ConfigSchema.swift).

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

    /// Reads and validates a config file's text: TOML 1.0, read against the key table
    /// (ConfigSchema); errors name the key and its line.
    public static func parse(_ text: String) throws(ConfigError) -> Config {
        let root: TOMLTable
        do {
            root = try TOMLParser.parse(text)
        } catch {
            throw ConfigError(key: nil, line: error.line, message: error.message)
        }
        return try ConfigSchema.read(root)
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
