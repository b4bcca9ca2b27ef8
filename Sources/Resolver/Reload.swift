// Reloading the config (SIGHUP, POST /v1/reload, `dig-lite reload`) while queries flow: the new
// file is read and validated; if it is bad, the running config stays and the error (key and
// line) is logged and returned. Otherwise the reloadable part — server.allow, [[forward]] zones,
// [rate_limit], server.max_pending_per_client, the [cluster] timings and check_concurrency,
// log.level, log.queries and queries_per_second — takes effect at once, without touching the cache, the registry or open connections. Every
// other key needs a restart; a reload that changes one says which and leaves it as it was.

import Logging
import Synchronization

/// What a reload did.
public struct ReloadResponse: Codable, Sendable, Equatable {
    /// True when the new file was valid and its reloadable keys are in effect.
    public var reloaded: Bool
    /// Keys that changed but only take effect after a restart.
    public var restartNeeded: [String]
    /// Why the file was refused (reloaded = false).
    public var error: String?

    enum CodingKeys: String, CodingKey {
        case reloaded, error
        case restartNeeded = "restart_needed"
    }
}

extension ResolverApplication {
    /// The reloadable settings of `config`; the rate limiter and query log of `previous` are kept
    /// when their settings did not change (their state — buckets, counts — carries over).
    static func runtimePolicy(_ config: Config, previous: (RuntimePolicy, Config)? = nil) -> RuntimePolicy {
        var rateLimiter: ResponseRateLimiter? = nil
        if config.rateLimit.responsesPerSecond > 0 {
            if let (policy, old) = previous, old.rateLimit == config.rateLimit {
                rateLimiter = policy.rateLimiter
            } else {
                rateLimiter = ResponseRateLimiter(settings: config.rateLimit)
            }
        }
        var queryLog: QueryLog? = nil
        if config.log.queries {
            if let (policy, old) = previous, old.log.queries, old.log.queriesPerSecond == config.log.queriesPerSecond {
                queryLog = policy.queryLog
            } else {
                queryLog = QueryLog(perSecond: config.log.queriesPerSecond)
            }
        }
        return RuntimePolicy(
            access: AccessControl(allowed: config.server.allow), forwardZones: forwardZones(config),
            recursive: config.resolver.mode == .recursive, rateLimiter: rateLimiter,
            maxPendingPerClient: config.server.maxPendingPerClient, queryLog: queryLog)
    }

    /// Reads the config again and applies what can change while running.
    public func reload() -> ReloadResponse {
        let fresh: Config
        do {
            fresh = try reloadConfig()
        } catch {
            logger.error("reload refused, the running config stays", metadata: ["error": "\(error)"])
            return ReloadResponse(reloaded: false, restartNeeded: [], error: "\(error)")
        }
        let restartNeeded = Self.restartOnlyChanges(from: running.withLock { $0 }, to: fresh)
        let previous = running.withLock { $0 }
        pipeline.replacePolicy(Self.runtimePolicy(fresh, previous: (pipeline.policy.current, previous)))
        LineLogHandler.setSharedLevel(Logger.Level(rawValue: fresh.log.level) ?? .info)
        registry.replacePolicy(fresh.cluster.policy)
        checkConcurrency.store(fresh.cluster.checkConcurrency, ordering: .relaxed)
        // What is recorded as running: the reloaded keys new, the restart-only ones as they were.
        var applied = previous
        applied.server.allow = fresh.server.allow
        applied.server.maxPendingPerClient = fresh.server.maxPendingPerClient
        applied.forwards = fresh.forwards
        applied.rateLimit = fresh.rateLimit
        applied.log.level = fresh.log.level
        applied.log.queries = fresh.log.queries
        applied.log.queriesPerSecond = fresh.log.queriesPerSecond
        applied.cluster.policy = fresh.cluster.policy
        applied.cluster.checkConcurrency = fresh.cluster.checkConcurrency
        running.withLock { $0 = applied }
        logger.info(
            "reloaded",
            metadata: [
                "forward_zones": "\(fresh.forwards.count)", "allow": "\(fresh.server.allow.count) networks",
                "restart_needed": "\(restartNeeded.joined(separator: ","))",
            ])
        return ReloadResponse(reloaded: true, restartNeeded: restartNeeded, error: nil)
    }

    /// The keys that differ between `old` and `new` but are fixed until a restart.
    static func restartOnlyChanges(from old: Config, to new: Config) -> [String] {
        var changed: [String] = []
        func check<T: Equatable>(_ key: String, _ path: KeyPath<Config, T>) {
            if old[keyPath: path] != new[keyPath: path] { changed.append(key) }
        }
        check("server.listen", \.server.listen)
        check("server.threads", \.server.threads)
        check("server.tcp_idle_timeout_ms", \.server.tcpIdleTimeoutMs)
        check("server.max_tcp_connections", \.server.maxTCPConnections)
        check("server.max_tcp_connections_per_client", \.server.maxTCPConnectionsPerClient)
        check("server.max_tcp_queries_per_connection", \.server.maxTCPQueriesPerConnection)
        check("server.udp_batch", \.server.udpBatch)
        check("server.max_pending", \.server.maxPending)
        check("resolver", \.resolver)
        check("cache", \.cache)
        check("api", \.api)
        check("cluster.domain", \.cluster.domain)
        check("registry", \.registry)
        check("log.format", \.log.format)
        return changed
    }
}
