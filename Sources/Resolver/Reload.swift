// Reloading the config (SIGHUP, POST /v1/reload, `dig-lite reload`) while queries flow: the new
// file is read and validated; if it is bad, the running config stays and the error (key and
// line) is logged and returned. Otherwise the reloadable part — server.allow, [[forward]] zones,
// [rate_limit], server.max_pending_per_client, the [cluster] timings and check_concurrency,
// log.level, log.queries and queries_per_second — takes effect at once, without touching the cache, the registry or open connections. Every
// other key needs a restart; a reload that changes one says which and leaves it as it was.

import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

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

    /// Reads the config again and applies what can change while running. Reloads run one at a
    /// time (SIGHUP and the API may ask at once).
    public func reload() -> ReloadResponse {
        running.withLock { running in
            let fresh: Config
            do {
                fresh = try reloadConfig()
            } catch {
                logger.error("reload refused, the running config stays", metadata: ["error": "\(error)"])
                return ReloadResponse(reloaded: false, restartNeeded: [], error: "\(error)")
            }
            // What runs from now on: the new file, with the restart-only keys as they were.
            var applied = fresh
            var restartNeeded: [String] = []
            for key in Self.restartOnly where key.differs(running, fresh) {
                restartNeeded.append(key.name)
                key.keep(&applied, running)
            }
            pipeline.replacePolicy(Self.runtimePolicy(applied, previous: (pipeline.policy.current, running)))
            LineLogHandler.setSharedLevel(Logger.Level(rawValue: applied.log.level) ?? .info)
            registry.replacePolicy(applied.cluster.policy)
            shared?.store.replacePolicy(applied.cluster.policy)
            checkConcurrency.store(applied.cluster.checkConcurrency, ordering: .relaxed)
            running = applied
            // Workers read the same file and apply the same keys.
            pool?.signalAll(SIGHUP)
            logger.info(
                "reloaded",
                metadata: [
                    "forward_zones": "\(applied.forwards.count)", "allow": "\(applied.server.allow.count) networks",
                    "restart_needed": "\(restartNeeded.joined(separator: ","))",
                ])
            return ReloadResponse(reloaded: true, restartNeeded: restartNeeded, error: nil)
        }
    }

    /// A key fixed until a restart: how to see it changed, and how to keep its running value.
    struct RestartOnlyKey {
        let name: String
        let differs: (Config, Config) -> Bool
        let keep: (inout Config, Config) -> Void

        init<Value: Equatable>(_ name: String, _ path: WritableKeyPath<Config, Value>) {
            self.name = name
            differs = { $0[keyPath: path] != $1[keyPath: path] }
            keep = { $0[keyPath: path] = $1[keyPath: path] }
        }
    }

    /// Every key a reload does not apply; all the others it does.
    static var restartOnly: [RestartOnlyKey] {
        [
            RestartOnlyKey("server.listen", \.server.listen),
            RestartOnlyKey("server.threads", \.server.threads),
            RestartOnlyKey("server.tcp_idle_timeout_ms", \.server.tcpIdleTimeoutMs),
            RestartOnlyKey("server.max_tcp_connections", \.server.maxTCPConnections),
            RestartOnlyKey("server.max_tcp_connections_per_client", \.server.maxTCPConnectionsPerClient),
            RestartOnlyKey("server.max_tcp_queries_per_connection", \.server.maxTCPQueriesPerConnection),
            RestartOnlyKey("server.udp_batch", \.server.udpBatch),
            RestartOnlyKey("server.max_pending", \.server.maxPending),
            RestartOnlyKey("server.workers", \.server.workers),
            RestartOnlyKey("resolver", \.resolver),
            RestartOnlyKey("cache", \.cache),
            RestartOnlyKey("api", \.api),
            RestartOnlyKey("cluster.domain", \.cluster.domain),
            RestartOnlyKey("registry", \.registry),
            RestartOnlyKey("log.format", \.log.format),
        ]
    }
}
