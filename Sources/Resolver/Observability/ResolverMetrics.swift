// Observability/: the Prometheus metrics at GET /metrics, through swift-metrics with
// swift-prometheus as its backend (an explicit factory, not the global bootstrap, so tests and
// the daemon each own theirs). Two kinds:
//   - pushed on the hot path: queries by type, rcode and transport — one pre-made counter per
//     combination, found by index, so counting an answer is an array lookup and an atomic add;
//     malformed packets dropped; health checks by result; hedges by reason, hedges that won and
//     the failover wait (how long after a question's first send the server that answered it was
//     asked), a histogram with buckets from 5 ms to 5 s.
//   - pulled when scraped: the cache's figures, every upstream server's queries, errors and SRTT
//     (from Selection/), in-flight resolutions, registry members by state, process RSS and open
//     sockets. Monotonic figures kept elsewhere become counters by adding what grew since the
//     last scrape. A server's series live as long as its line in Selection/'s tables: when the
//     server is forgotten (unused past `resolver.server_expiry_s`, or its zone evicted) its
//     series are removed at the next scrape, so they are bounded with the tables.

import CoreMetrics
import Metrics
import NIOCore
import Prometheus
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Everything resolverd reports to Prometheus.
public final class ResolverMetrics: HedgeObserver {
    public let registry: PrometheusCollectorRegistry
    private let factory: PrometheusMetricsFactory

    /// Types and rcodes with their own label value; the rest count as "other".
    static let types: [RecordType] = [
        .a, .aaaa, .ptr, .mx, .txt, .srv, .ns, .soa, .cname, .https, .svcb, .naptr, .ds, .dnskey, .caa, .any,
    ]
    static let rcodes: [ResponseCode] = [.noError, .nxDomain, .servFail, .refused, .formErr, .notImp]
    private let queries: [CoreMetrics.Counter]
    private let dropped: CoreMetrics.Counter
    private let checks: [Bool: CoreMetrics.Counter]
    private let limited: CoreMetrics.Counter
    private let slipped: CoreMetrics.Counter
    /// TCP connections closed by resolverd, by reason.
    private let tcpClosed: [TCPCloseReason: CoreMetrics.Counter]
    private let hedges: [HedgeReason: CoreMetrics.Counter]
    private let hedgeWins: CoreMetrics.Counter
    private let failoverWait: DurationHistogram
    /// The failover wait's buckets: a hedge never fires sooner than the 50 ms floor, the default
    /// timeout is 3 s.
    static let failoverWaitBuckets: [Duration] = [5, 10, 25, 50, 75, 100, 150, 200, 300, 500, 750, 1000, 1500, 2000, 3000, 5000]
        .map { .milliseconds($0) }

    /// Pulled figures and the last value each counter was brought to.
    private let pulled = Mutex(PulledState())
    /// Replies and drops, for the query rate (one relaxed atomic add per query).
    private let handled = Atomic<Int>(0)
    private let dropCount = Atomic<Int>(0)
    /// (time, handled) once a second, the last minute of them, for `GET /v1/stats`.
    private let samples = Mutex<[(at: NIODeadline, handled: Int)]>([])
    /// When this process started serving.
    public let started = NIODeadline.now()

    private struct PulledState {
        var counters: [String: (counter: CoreMetrics.Counter, last: Int64)] = [:]
        var gauges: [String: CoreMetrics.Gauge] = [:]
    }

    public init() {
        registry = PrometheusCollectorRegistry()
        factory = PrometheusMetricsFactory(registry: registry)
        var counters: [CoreMetrics.Counter] = []
        for type in Self.types.map(\.description) + ["other"] {
            for rcode in Self.rcodes.map(\.description) + ["other"] {
                for transport in [Transport.udp, .tcp] {
                    counters.append(
                        CoreMetrics.Counter(
                            label: "resolverd_queries_total",
                            dimensions: [("type", type), ("rcode", rcode), ("transport", transport.rawValue)],
                            factory: factory))
                }
            }
        }
        queries = counters
        dropped = CoreMetrics.Counter(label: "resolverd_queries_dropped_total", factory: factory)
        limited = CoreMetrics.Counter(label: "resolverd_rate_limited_total", dimensions: [("action", "drop")], factory: factory)
        slipped = CoreMetrics.Counter(label: "resolverd_rate_limited_total", dimensions: [("action", "slip")], factory: factory)
        let factory = self.factory
        tcpClosed = Dictionary(
            uniqueKeysWithValues: TCPCloseReason.allCases.map {
                ($0, CoreMetrics.Counter(label: "resolverd_tcp_closed_total", dimensions: [("reason", $0.rawValue)], factory: factory))
            })
        hedges = Dictionary(
            uniqueKeysWithValues: HedgeReason.allCases.map {
                ($0, CoreMetrics.Counter(label: "resolverd_upstream_hedges_total", dimensions: [("reason", $0.rawValue)], factory: factory))
            })
        hedgeWins = CoreMetrics.Counter(label: "resolverd_upstream_hedge_wins_total", factory: factory)
        failoverWait = registry.makeDurationHistogram(
            name: "resolverd_upstream_failover_wait_seconds", buckets: Self.failoverWaitBuckets,
            help: "Time from a question's first upstream send to the send of the hedge or failover that answered it")
        checks = [
            true: CoreMetrics.Counter(label: "resolverd_health_checks_total", dimensions: [("result", "healthy")], factory: factory),
            false: CoreMetrics.Counter(label: "resolverd_health_checks_total", dimensions: [("result", "unhealthy")], factory: factory),
        ]
    }

    // MARK: Pushed

    /// Counts one reply from its own bytes: the rcode from the header, the type from the question.
    public func countReply(_ reply: UnsafeRawBufferPointer, transport: Transport) {
        guard let (rcode, type) = WireNames.rcodeAndType(reply) else { return }
        queries[index(type: type, rcode: rcode, transport: transport)].increment()
        handled.wrappingAdd(1, ordering: .relaxed)
    }

    /// Counts one query dropped unanswered (malformed beyond a FORMERR).
    public func countDrop() {
        dropped.increment()
        dropCount.wrappingAdd(1, ordering: .relaxed)
        handled.wrappingAdd(1, ordering: .relaxed)
    }

    /// Records the query count now (called once a second); the last 61 samples are kept.
    public func sample(now: NIODeadline = .now()) {
        let count = handled.load(ordering: .relaxed)
        samples.withLock { samples in
            samples.append((now, count))
            if samples.count > 61 { samples.removeFirst(samples.count - 61) }
        }
    }

    /// Queries per second over about the last `seconds` seconds (from the samples), or 0.
    func rate(over seconds: Int, now: NIODeadline = .now()) -> Double {
        let count = handled.load(ordering: .relaxed)
        return samples.withLock { samples -> Double in
            let horizon = now - .seconds(Int64(seconds))
            guard let oldest = samples.first(where: { $0.at >= horizon }) ?? samples.last else { return 0 }
            let elapsed = Double((now - oldest.at).nanoseconds) / 1e9
            return elapsed > 0 ? Double(count - oldest.handled) / elapsed : 0
        }
    }

    /// The figures of `GET /v1/stats`.
    public func stats(_ sources: MetricSources, mode: String) -> StatsResponse {
        let cache = sources.cache.statistics()
        let lookups = cache.hits + cache.misses
        let report = sources.selector.report()
        let servers = report.flatMap(\.servers)
        let members = sources.registry.snapshot().flatMap(\.members)
        let process = ProcessFigures.read()
        return StatsResponse(
            mode: mode, uptimeS: Int((NIODeadline.now() - started).nanoseconds / 1_000_000_000),
            queriesTotal: handled.load(ordering: .relaxed), droppedTotal: dropCount.load(ordering: .relaxed),
            qps1s: rate(over: 1), qps60s: rate(over: 60),
            cache: .init(
                hitRatio: lookups == 0 ? 0 : Double(cache.hits) / Double(lookups), entries: cache.entries, bytes: cache.bytes),
            memoryBytes: process.residentBytes, openSockets: process.sockets,
            upstream: .init(zones: report.count, servers: servers.count, down: servers.filter { $0.state == .down }.count),
            registry: .init(
                healthy: members.filter(\.isHealthy).count, unhealthy: members.filter { !$0.isHealthy }.count,
                backend: sources.registryBackend, runsChecks: sources.runsChecks(),
                degraded: { if case .degraded(let reason) = sources.registry.status { reason } else { nil } }()),
            inFlight: sources.inFlight())
    }

    /// Counts one answer held back by response rate limiting.
    public func countRateLimited(_ verdict: RateLimitVerdict) { (verdict == .slip ? slipped : limited).increment() }

    /// Counts one TCP connection closed by resolverd (idle, malformed, a query too slow to arrive).
    func countTCPClose(_ reason: TCPCloseReason) { tcpClosed[reason]?.increment() }

    /// Counts one more server asked for a question.
    public func hedgeSent(_ reason: HedgeReason) { hedges[reason]?.increment() }

    /// Counts a question answered by a hedge or failover, `wait` after its first send.
    public func hedgeWon(after wait: TimeAmount) {
        hedgeWins.increment()
        failoverWait.record(.nanoseconds(wait.nanoseconds))
    }

    /// Counts one health check's result.
    public func countCheck(healthy: Bool) { checks[healthy]?.increment() }

    func index(type: RecordType?, rcode: ResponseCode, transport: Transport) -> Int {
        let typeIndex = type.flatMap { Self.types.firstIndex(of: $0) } ?? Self.types.count
        let rcodeIndex = Self.rcodes.firstIndex(of: rcode) ?? Self.rcodes.count
        return (typeIndex * (Self.rcodes.count + 1) + rcodeIndex) * 2 + (transport == .udp ? 0 : 1)
    }

    // MARK: Pulled

    /// Brings a counter named `label` with `dimensions` up to `value` (figures kept elsewhere);
    /// returns the series' key.
    @discardableResult
    func advance(_ label: String, _ dimensions: [(String, String)] = [], to value: Int) -> String {
        let key = Self.key(label, dimensions)
        pulled.withLock { state in
            var entry = state.counters[key] ?? (CoreMetrics.Counter(label: label, dimensions: dimensions, factory: factory), 0)
            let target = Int64(value)
            if target > entry.last { entry.counter.increment(by: target - entry.last) }
            entry.last = max(entry.last, target)
            state.counters[key] = entry
        }
        return key
    }

    /// Sets the gauge named `label` with `dimensions`; returns the series' key.
    @discardableResult
    func set(_ label: String, _ dimensions: [(String, String)] = [], to value: Double) -> String {
        let key = Self.key(label, dimensions)
        pulled.withLock { state in
            let gauge = state.gauges[key] ?? CoreMetrics.Gauge(label: label, dimensions: dimensions, factory: factory)
            state.gauges[key] = gauge
            gauge.record(value)
        }
        return key
    }

    /// Removes the pulled series whose label starts with `prefix` and whose key is not in `live`
    /// (they leave the exposition and free their memory).
    func retire(prefix: String, keeping live: Set<String>) {
        let retired = pulled.withLock { state -> (counters: [CoreMetrics.Counter], gauges: [CoreMetrics.Gauge]) in
            let counters = state.counters.keys.filter { $0.hasPrefix(prefix) && !live.contains($0) }
            let gauges = state.gauges.keys.filter { $0.hasPrefix(prefix) && !live.contains($0) }
            return (
                counters.compactMap { state.counters.removeValue(forKey: $0)?.counter },
                gauges.compactMap { state.gauges.removeValue(forKey: $0) }
            )
        }
        retired.counters.forEach { $0.destroy() }
        retired.gauges.forEach { $0.destroy() }
    }

    /// Pulled series held (counters and gauges).
    var pulledSeries: Int { pulled.withLock { $0.counters.count + $0.gauges.count } }

    /// One pulled metric's identity: its label and dimensions.
    private static func key(_ label: String, _ dimensions: [(String, String)]) -> String {
        label + dimensions.map { "|\($0.0)=\($0.1)" }.joined()
    }

    /// Every known server's series; those of servers no longer in `report` are removed.
    func exposeServers(_ report: [(zone: DomainName, servers: [ServerReport])]) {
        var live: Set<String> = []
        for (zone, servers) in report {
            for server in servers {
                let labels = [("zone", zone.description), ("server", server.server.description)]
                live.insert(advance("resolverd_upstream_queries_total", labels, to: server.stats.queries))
                let errors = server.stats.errors
                for (kind, count) in [
                    ("timeout", errors.timeouts), ("refused", errors.refused), ("servfail", errors.servFail),
                    ("mismatched", errors.mismatched), ("malformed", errors.malformed), ("unreachable", errors.unreachable),
                ] {
                    live.insert(advance("resolverd_upstream_errors_total", labels + [("kind", kind)], to: count))
                }
                if let estimate = server.stats.estimate {
                    live.insert(set("resolverd_upstream_srtt_seconds", labels, to: Double(estimate.smoothed) / 1e9))
                }
                live.insert(set("resolverd_upstream_up", labels, to: server.state == .down ? 0 : 1))
                let hedging = server.stats.hedging
                for (event, count) in [("late", hedging.late), ("asked", hedging.asked), ("won", hedging.won)] {
                    live.insert(advance("resolverd_upstream_hedging_total", labels + [("event", event)], to: count))
                }
            }
        }
        // Only the per-server series: resolverd_upstream_table_bytes has no server to outlive.
        for family in [
            "resolverd_upstream_queries_total", "resolverd_upstream_errors_total", "resolverd_upstream_srtt_seconds",
            "resolverd_upstream_up", "resolverd_upstream_hedging_total",
        ] {
            retire(prefix: family + "|", keeping: live)
        }
    }

    /// The Prometheus text exposition, after pulling the figures of `sources`.
    public func exposition(_ sources: MetricSources) -> [UInt8] {
        let cache = sources.cache.statistics()
        advance("resolverd_cache_hits_total", to: cache.hits)
        advance("resolverd_cache_misses_total", to: cache.misses)
        advance("resolverd_cache_stale_hits_total", to: cache.staleHits)
        advance("resolverd_cache_prefetches_total", to: cache.prefetches)
        advance("resolverd_cache_inserts_total", to: cache.inserts)
        advance("resolverd_cache_evictions_total", to: cache.evictions)
        set("resolverd_cache_entries", to: Double(cache.entries))
        set("resolverd_cache_bytes", to: Double(cache.bytes))
        set("resolverd_cache_max_bytes", to: Double(cache.maxBytes))
        if let records = sources.records {
            set("resolverd_recursion_records", to: Double(records.count))
            set("resolverd_recursion_records_bytes", to: Double(records.bytes))
        }
        set("resolverd_queries_in_flight", to: Double(sources.inFlight()))
        set("resolverd_upstream_table_bytes", to: Double(sources.selector.estimatedBytes))
        exposeServers(sources.selector.report())

        var healthy = 0
        var unhealthy = 0
        for (_, members) in sources.registry.snapshot() {
            for member in members {
                if member.isHealthy { healthy += 1 } else { unhealthy += 1 }
            }
        }
        set("resolverd_registry_members", [("state", "healthy")], to: Double(healthy))
        set("resolverd_registry_members", [("state", "unhealthy")], to: Double(unhealthy))
        // 1 while the store could not be opened or read (changes refused; POST /v1/registry/reset).
        set("resolverd_registry_degraded", to: sources.registry.isDegraded ? 1 : 0)
        // Health changes shown in answers that the store has not taken yet.
        set("resolverd_registry_pending_changes", to: Double(sources.registry.pendingCount))

        let process = ProcessFigures.read()
        set("resolverd_process_resident_memory_bytes", to: Double(process.residentBytes))
        set("resolverd_process_open_sockets", to: Double(process.sockets))
        set("resolverd_process_open_fds", to: Double(process.descriptors))
        return registry.emitToBuffer()
    }
}

/// Where the pulled figures come from.
public struct MetricSources: Sendable {
    public let cache: AnswerCache
    public let records: RecordCache?
    public let selector: AdaptiveSelector
    public let registry: ServiceRegistry
    public let inFlight: @Sendable () -> Int
    /// "sqlite" or "etcd", and whether this instance runs the health checks now.
    public let registryBackend: String
    public let runsChecks: @Sendable () -> Bool

    public init(
        cache: AnswerCache, records: RecordCache?, selector: AdaptiveSelector, registry: ServiceRegistry,
        inFlight: @escaping @Sendable () -> Int, registryBackend: String = "sqlite",
        runsChecks: @escaping @Sendable () -> Bool = { true }
    ) {
        self.registryBackend = registryBackend
        self.runsChecks = runsChecks
        self.cache = cache
        self.records = records
        self.selector = selector
        self.registry = registry
        self.inFlight = inFlight
    }
}

/// The process's resident memory and descriptors, from /proc.
struct ProcessFigures {
    var residentBytes = 0
    var descriptors = 0
    var sockets = 0

    static func read() -> ProcessFigures {
        var figures = ProcessFigures()
        // statm's second field: resident pages.
        if let statm = readTextFile("/proc/self/statm"), let pages = statm.split(separator: " ").dropFirst().first.flatMap({ Int($0) }) {
            figures.residentBytes = pages * Int(sysconf(Int32(_SC_PAGESIZE)))
        }
        guard let directory = opendir("/proc/self/fd") else { return figures }
        defer { closedir(directory) }
        var link = [CChar](repeating: 0, count: 64)
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            guard let _ = Int(name) else { continue }
            figures.descriptors += 1
            let count = readlink("/proc/self/fd/\(name)", &link, link.count - 1)
            if count > 7, String(decoding: link.prefix(7).map { UInt8(bitPattern: $0) }, as: UTF8.self) == "socket:" {
                figures.sockets += 1
            }
        }
        return figures
    }
}

/// `GET /v1/stats`: the figures an operator looks at first.
public struct StatsResponse: Codable, Sendable, Equatable {
    public struct Cache: Codable, Sendable, Equatable {
        public var hitRatio: Double
        public var entries: Int
        public var bytes: Int
        enum CodingKeys: String, CodingKey {
            case entries, bytes
            case hitRatio = "hit_ratio"
        }
    }

    public struct Upstream: Codable, Sendable, Equatable {
        public var zones: Int
        public var servers: Int
        public var down: Int
    }

    public struct Registry: Codable, Sendable, Equatable {
        public var healthy: Int
        public var unhealthy: Int
        /// "sqlite" or "etcd".
        public var backend: String?
        /// Whether this instance runs the health checks (with etcd, one instance does at a time).
        public var runsChecks: Bool?
        /// Why the registry is degraded; absent when it works.
        public var degraded: String?

        enum CodingKeys: String, CodingKey {
            case healthy, unhealthy, backend, degraded
            case runsChecks = "runs_checks"
        }
    }

    public var mode: String
    public var uptimeS: Int
    /// Replies sent and queries dropped since start.
    public var queriesTotal: Int
    public var droppedTotal: Int
    /// Queries per second over the last second and the last minute.
    public var qps1s: Double
    public var qps60s: Double
    public var cache: Cache
    public var memoryBytes: Int
    public var openSockets: Int
    public var upstream: Upstream
    public var registry: Registry
    public var inFlight: Int

    enum CodingKeys: String, CodingKey {
        case mode, cache, upstream, registry
        case uptimeS = "uptime_s"
        case queriesTotal = "queries_total"
        case droppedTotal = "dropped_total"
        case qps1s = "qps_1s"
        case qps60s = "qps_60s"
        case memoryBytes = "memory_bytes"
        case openSockets = "open_sockets"
        case inFlight = "in_flight"
    }
}
