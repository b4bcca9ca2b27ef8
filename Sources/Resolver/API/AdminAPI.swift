// API/: the HTTP API on Hummingbird (JSON under /v1, on its own loopback port by default; every
// request passes the APIGuard: Host, bearer token, group scope, JSON bodies). This file builds the router; each concern adds its routes in an
// extension file: GET /v1/servers, the selection view of every zone, GET /v1/stats, the first
// figures to look at, and GET /metrics, the Prometheus text (here); the cache's figures and flush (CacheRoutes); service group
// registrations (GroupRoutes).

import Foundation
import Hummingbird
import Logging
import NIOCore

/// The routes and their dependencies.
public struct AdminAPI: Sendable {
    let selector: AdaptiveSelector
    let cache: AnswerCache
    /// Recursion's records, flushed with the cache; nil in forward mode.
    let records: RecordCache?
    let registry: ServiceRegistry
    /// Who may call; checked before every route.
    let guardian: APIGuard
    /// Where members may be registered (`registry.allowed_networks`).
    let memberNetworks: MemberNetworks
    /// GET /metrics: the metrics and where their pulled figures come from; nil: no route.
    let metrics: (ResolverMetrics, MetricSources)?
    /// POST /v1/reload; nil: no route.
    let reload: (@Sendable () -> ReloadResponse)?
    /// The supervisor's: the DNS side's routes ask the worker processes and merge.
    let workers: WorkerAdmin?
    /// Whether the service group routes are served (not by a worker: the supervisor owns them).
    let groups: Bool

    public init(
        selector: AdaptiveSelector, cache: AnswerCache, records: RecordCache? = nil, registry: ServiceRegistry,
        guardian: APIGuard, memberNetworks: MemberNetworks, metrics: (ResolverMetrics, MetricSources)? = nil,
        reload: (@Sendable () -> ReloadResponse)? = nil
    ) {
        self.init(
            selector: selector, cache: cache, records: records, registry: registry, guardian: guardian,
            memberNetworks: memberNetworks, metrics: metrics, reload: reload, workers: nil, groups: true)
    }

    init(
        selector: AdaptiveSelector, cache: AnswerCache, records: RecordCache?, registry: ServiceRegistry, guardian: APIGuard,
        memberNetworks: MemberNetworks, metrics: (ResolverMetrics, MetricSources)?, reload: (@Sendable () -> ReloadResponse)?,
        workers: WorkerAdmin?, groups: Bool
    ) {
        self.workers = workers
        self.groups = groups
        self.metrics = metrics
        self.reload = reload
        self.selector = selector
        self.cache = cache
        self.records = records
        self.registry = registry
        self.guardian = guardian
        self.memberNetworks = memberNetworks
    }

    /// The Hummingbird router with every route.
    public func router() -> Router<BasicRequestContext> {
        let router = Router()
        router.add(middleware: APIGuardMiddleware(guardian: guardian))
        let policy = selector.policy
        if let workers {
            router.get("/v1/servers") { _, _ in await workers.servers() }
            router.get("/v1/workers") { _, _ in workers.pool.report() }
        } else {
            router.get("/v1/servers") { _, _ in ServersResponse(selector.report(), policy: policy) }
            router.get("/v1/workers") { _, _ in WorkersResponse(workers: []) }
        }
        addCacheRoutes(to: router)
        if groups { addGroupRoutes(to: router) }
        if let reload {
            // A refused file is a 400 naming the key and line; the running config stays.
            router.post("/v1/reload") { _, _ -> Response in
                let outcome = reload()
                return try Response(
                    status: outcome.reloaded ? .ok : .badRequest, headers: [.contentType: "application/json"],
                    body: ResponseBody(byteBuffer: ByteBuffer(bytes: Array(JSONEncoder().encode(outcome)))))
            }
        }
        if let (metrics, sources) = metrics {
            let mode = records == nil ? "forward" : "recursive"
            let workers = self.workers
            router.get("/v1/stats") { _, _ in
                let own = metrics.stats(sources, mode: mode)
                return await workers?.stats(own: own) ?? own
            }
            router.get("/metrics") { _, _ -> Response in
                let own = metrics.exposition(sources)
                let text = await workers?.metrics(own: own) ?? own
                return Response(
                    status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                    body: ResponseBody(byteBuffer: ByteBuffer(bytes: text)))
            }
        }
        return router
    }
}

/// `GET /v1/servers`: every zone's servers in selection order.
public struct ServersResponse: ResponseEncodable, Decodable, Sendable {
    public struct Server: Codable, Sendable {
        public var address: String
        public var state: ServerState
        public var srttMs: Double?
        public var rttvarMs: Double?
        /// When the next server is asked too if this one is silent (the hedge delay).
        public var rtoMs: Double?
        public var queries: Int
        public var timeouts: Int
        public var errors: Int
        public var consecutiveFailures: Int
        /// Milliseconds until a down server may be chosen first again.
        public var downForMs: Double?
        public var lastUsedMsAgo: Double
        /// Times it was silent past its retransmit time, so another server was asked too.
        public var late: Int
        /// Times it was asked as a hedge or failover, and times that answer was the client's.
        public var hedged: Int
        public var hedgesWon: Int
        /// Milliseconds since the oldest query still late at it left (nil when none is).
        public var lateForMs: Double?

        enum CodingKeys: String, CodingKey {
            case address, state, queries, timeouts, errors
            case srttMs = "srtt_ms"
            case rttvarMs = "rttvar_ms"
            case rtoMs = "rto_ms"
            case consecutiveFailures = "consecutive_failures"
            case downForMs = "down_for_ms"
            case lastUsedMsAgo = "last_used_ms_ago"
            case late, hedged
            case hedgesWon = "hedges_won"
            case lateForMs = "late_for_ms"
        }
    }

    public struct Zone: Codable, Sendable {
        public var zone: String
        public var servers: [Server]
    }

    public var zones: [Zone]

    public init(zones: [Zone]) { self.zones = zones }

    init(_ report: [(zone: DomainName, servers: [ServerReport])], policy: SelectionPolicy, now: NIODeadline = .now()) {
        func ms(_ amount: TimeAmount) -> Double { Double(amount.nanoseconds) / 1_000_000 }
        zones = report.map { zone in
            Zone(zone: zone.zone.description, servers: zone.servers.map { line in
                let stats = line.stats
                var downFor: Double? = nil
                if case .down(let until, _) = stats.health, now < until { downFor = ms(until - now) }
                return Server(
                    address: line.server.description, state: line.state,
                    srttMs: stats.estimate.map { ms($0.smoothedRTT) }, rttvarMs: stats.estimate.map { ms($0.rttVariance) },
                    rtoMs: stats.estimate.map { ms($0.retransmitTimeout(floor: policy.hedgeFloor, ceiling: policy.timeout)) },
                    queries: stats.queries, timeouts: stats.errors.timeouts, errors: stats.errors.total,
                    consecutiveFailures: stats.consecutiveFailures, downForMs: downFor, lastUsedMsAgo: ms(now - stats.lastUsed),
                    late: stats.hedging.late, hedged: stats.hedging.asked, hedgesWon: stats.hedging.won,
                    lateForMs: stats.lateSince.map { ms(now - $0) })
            })
        }
    }
}

extension StatsResponse: ResponseEncodable {}
extension WorkersResponse: ResponseEncodable {}
