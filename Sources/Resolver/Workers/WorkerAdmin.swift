// Workers/: the supervisor's admin routes that concern the DNS side, which lives in the workers:
// each worker serves its own admin API on a private loopback port, and the supervisor asks every
// ready worker and merges. Counters and sizes add up; /v1/servers shows each zone's servers with
// queries and errors summed and the timing of the worker that used the server most; /metrics
// gives each worker's series a `worker` label, and the registry and health-check series once,
// from the supervisor that owns them.

import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// Asks the workers and merges their answers.
struct WorkerAdmin: Sendable {
    let pool: WorkerPool
    let http: HTTPClient
    /// The workers' per-run admin token (WorkerLaunch.adminToken).
    let token: String

    /// Every ready worker's answer to `method path` (workers that fail to answer are left out).
    func ask(_ method: HTTPMethod, _ path: String, body: [UInt8] = []) async -> [(index: Int, body: ByteBuffer)] {
        await withTaskGroup(of: (Int, ByteBuffer)?.self) { tasks in
            for (index, api) in pool.readyAPIs() {
                tasks.addTask {
                    var request = HTTPClientRequest(url: "http://\(api)\(path)")
                    request.method = method
                    request.headers.add(name: "Authorization", value: "Bearer \(token)")
                    if !body.isEmpty {
                        request.headers.add(name: "Content-Type", value: "application/json")
                        request.body = .bytes(body)
                    }
                    guard let response = try? await http.execute(request, timeout: .seconds(5)),
                        response.status == .ok, let bytes = try? await response.body.collect(upTo: 64 << 20)
                    else { return nil }
                    return (index, bytes)
                }
            }
            var answers: [(index: Int, body: ByteBuffer)] = []
            for await answer in tasks {
                if let answer { answers.append(answer) }
            }
            return answers.sorted { $0.index < $1.index }
        }
    }

    /// Every ready worker's answer decoded as `Value` (answers that do not decode are left out).
    func decodeAll<Value: Decodable>(_ type: Value.Type, _ method: HTTPMethod, _ path: String, body: [UInt8] = []) async
        -> [Value]
    {
        await ask(method, path, body: body).compactMap { answer in
            try? JSONDecoder().decode(Value.self, from: Data(buffer: answer.body))
        }
    }

    func cache() async -> CacheStatistics {
        Self.sum(await decodeAll(CacheStatistics.self, .GET, "/v1/cache"))
    }

    func flush(body: [UInt8]) async -> FlushResponse {
        FlushResponse(flushed: await decodeAll(FlushResponse.self, .POST, "/v1/cache/flush", body: body).reduce(0) { $0 + $1.flushed })
    }

    func servers() async -> ServersResponse {
        Self.merge(await decodeAll(ServersResponse.self, .GET, "/v1/servers"))
    }

    /// The supervisor's own figures (uptime, registry) with the workers' DNS figures.
    func stats(own: StatsResponse) async -> StatsResponse {
        let workers = await decodeAll(StatsResponse.self, .GET, "/v1/stats")
        var merged = own
        let queries = workers.reduce(0) { $0 + $1.queriesTotal }
        merged.queriesTotal = queries
        merged.droppedTotal = workers.reduce(0) { $0 + $1.droppedTotal }
        merged.qps1s = workers.reduce(0) { $0 + $1.qps1s }
        merged.qps60s = workers.reduce(0) { $0 + $1.qps60s }
        merged.inFlight = workers.reduce(0) { $0 + $1.inFlight }
        merged.memoryBytes += workers.reduce(0) { $0 + $1.memoryBytes }
        merged.openSockets += workers.reduce(0) { $0 + $1.openSockets }
        let hitRatio =
            queries == 0
            ? workers.map(\.cache.hitRatio).max() ?? 0
            : workers.reduce(0.0) { $0 + $1.cache.hitRatio * Double($1.queriesTotal) } / Double(queries)
        merged.cache = .init(
            hitRatio: hitRatio, entries: workers.reduce(0) { $0 + $1.cache.entries },
            bytes: workers.reduce(0) { $0 + $1.cache.bytes })
        if let busiest = workers.max(by: { $0.queriesTotal < $1.queriesTotal }) { merged.upstream = busiest.upstream }
        return merged
    }

    /// Families only the supervisor's figures are right for (it owns the registry and checks).
    static let supervisorFamilies: Set<String> = [
        "resolverd_registry_members", "resolverd_health_checks_total", "resolverd_registry_degraded",
        "resolverd_registry_pending_changes",
    ]

    /// The supervisor's exposition merged with the workers'.
    func metrics(own: [UInt8]) async -> [UInt8] {
        let workers = await ask(.GET, "/metrics").map { (String($0.index), String(buffer: $0.body)) }
        var text = Self.mergeExpositions(supervisor: String(decoding: own, as: UTF8.self), workers: workers)
        text += "# TYPE resolverd_worker_restarts_total counter\nresolverd_worker_restarts_total \(pool.restarts)\n"
        return Array(text.utf8)
    }

    // MARK: - Merging (pure)

    static func sum(_ all: [CacheStatistics]) -> CacheStatistics {
        var total = CacheStatistics()
        for one in all { total.add(one) }
        return total
    }

    /// Each zone's servers in the order of the worker that asked the zone most; counts summed,
    /// timing and state from the worker that asked that server most.
    static func merge(_ all: [ServersResponse]) -> ServersResponse {
        var order: [String] = []
        var byZone: [String: [ServersResponse.Zone]] = [:]
        for response in all {
            for zone in response.zones {
                if byZone[zone.zone] == nil { order.append(zone.zone) }
                byZone[zone.zone, default: []].append(zone)
            }
        }
        return ServersResponse(
            zones: order.map { name in
                let views = byZone[name] ?? []
                let busiest = views.max { $0.servers.reduce(0) { $0 + $1.queries } < $1.servers.reduce(0) { $0 + $1.queries } }
                var addresses = busiest?.servers.map(\.address) ?? []
                for view in views {
                    for server in view.servers where !addresses.contains(server.address) { addresses.append(server.address) }
                }
                return ServersResponse.Zone(
                    zone: name,
                    servers: addresses.compactMap { address in
                        let lines = views.compactMap { $0.servers.first { $0.address == address } }
                        guard var merged = lines.max(by: { $0.queries < $1.queries }) else { return nil }
                        merged.queries = lines.reduce(0) { $0 + $1.queries }
                        merged.timeouts = lines.reduce(0) { $0 + $1.timeouts }
                        merged.errors = lines.reduce(0) { $0 + $1.errors }
                        merged.late = lines.reduce(0) { $0 + $1.late }
                        merged.hedged = lines.reduce(0) { $0 + $1.hedged }
                        merged.hedgesWon = lines.reduce(0) { $0 + $1.hedgesWon }
                        merged.lastUsedMsAgo = lines.map(\.lastUsedMsAgo).min() ?? merged.lastUsedMsAgo
                        return merged
                    })
            })
    }

    /// Prometheus text: one HELP/TYPE per family; the workers' samples labelled `worker="N"`;
    /// the supervisor's samples only for the families it owns (unlabelled) and for process
    /// figures (`worker="supervisor"`).
    static func mergeExpositions(supervisor: String, workers: [(label: String, text: String)]) -> String {
        struct Family {
            var headers: [String] = []
            var samples: [String] = []
        }
        var order: [String] = []
        var families: [String: Family] = [:]
        func add(_ text: String, label: String?, keep: (String) -> Bool) {
            var current = ""
            for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
                if line.hasPrefix("#") {
                    let parts = line.split(separator: " ", maxSplits: 3)
                    guard parts.count >= 3 else { continue }
                    current = String(parts[2])
                    guard keep(current) else { continue }
                    if families[current] == nil {
                        order.append(current)
                        families[current] = Family()
                    }
                    if families[current]?.headers.contains(String(line)) == false {
                        families[current]?.headers.append(String(line))
                    }
                    continue
                }
                let name = String(line.prefix { $0 != "{" && $0 != " " })
                let family = current.isEmpty || !name.hasPrefix(current) ? name : current
                guard keep(family) else { continue }
                if families[family] == nil {
                    order.append(family)
                    families[family] = Family()
                }
                families[family]?.samples.append(label.map { labelled(String(line), worker: $0) } ?? String(line))
            }
        }
        for (label, text) in workers {
            add(text, label: label) { !supervisorFamilies.contains($0) }
        }
        add(supervisor, label: nil) { supervisorFamilies.contains($0) }
        add(supervisor, label: "supervisor") { $0.hasPrefix("resolverd_process_") }
        var out = ""
        for name in order {
            guard let family = families[name] else { continue }
            for line in family.headers + family.samples { out += line + "\n" }
        }
        return out
    }

    /// `name{a="b"} 1` → `name{a="b",worker="N"} 1`; `name 1` → `name{worker="N"} 1`.
    static func labelled(_ sample: String, worker: String) -> String {
        if let open = sample.firstIndex(of: "{"), let close = sample.lastIndex(of: "}") {
            let inside = sample[sample.index(after: open)..<close]
            let joined = inside.isEmpty ? "worker=\"\(worker)\"" : "\(inside),worker=\"\(worker)\""
            return String(sample[..<open]) + "{" + joined + "}" + String(sample[sample.index(after: close)...])
        }
        guard let space = sample.firstIndex(of: " ") else { return sample }
        return String(sample[..<space]) + "{worker=\"\(worker)\"}" + String(sample[space...])
    }
}
