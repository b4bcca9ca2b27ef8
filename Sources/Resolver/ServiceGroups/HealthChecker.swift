// ServiceGroups/: the health checker, a swift-service-lifecycle Service off the DNS path. Four
// times a second it removes expired members and starts the checks that are due (a member whose
// TTL ran out without a heartbeat, an unhealthy member whose re-check time came), at most
// `concurrency` at once; each result goes back through the registry. It stops on shutdown,
// abandoning the checks in flight without recording them. A member outside
// registry.allowed_networks (stored before the key existed, or by another instance) is never
// probed: it is recorded unhealthy, so it leaves the answers and is removed in time.

import AsyncHTTPClient
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import Synchronization

/// Runs one member's check.
public protocol HealthProbe: Sendable {
    /// Whether the member answered as its check expects, and what was seen.
    func check(_ member: Member) async -> (healthy: Bool, detail: String)
}

/// TCP checks connect with NIO; HTTP checks GET with AsyncHTTPClient. Both within the check's
/// timeout, to the member's address as a number (no name lookup). The detail the API shows is
/// one of a few fixed phrases and the status code: nothing the target sent (a body, a header, an
/// error text) is echoed back.
public struct NetworkHealthProbe: HealthProbe {
    let group: any EventLoopGroup
    let http: HTTPClient

    public init(group: any EventLoopGroup, http: HTTPClient) {
        self.group = group
        self.http = http
    }

    public func check(_ member: Member) async -> (healthy: Bool, detail: String) {
        guard let port = member.port else { return (false, "no port to check") }
        let timeout = member.check.timeoutMs
        switch member.check.kind {
        case .none:
            return (true, "no check")
        case .tcp:
            do {
                let address = try SocketAddress(ipAddress: member.address.description, port: Int(port))
                let channel = try await ClientBootstrap(group: group)
                    .connectTimeout(.milliseconds(Int64(timeout)))
                    .connect(to: address).get()
                try? await channel.close()
                return (true, "connected")
            } catch ChannelError.connectTimeout {
                return (false, "timed out after \(timeout) ms")
            } catch {
                return (false, Self.summary(error))
            }
        case .http:
            let host = member.address.isV6 ? "[\(member.address)]" : member.address.description
            var request = HTTPClientRequest(url: "http://\(host):\(port)\(member.check.path ?? "/")")
            request.headers.add(name: "User-Agent", value: "resolverd/\(resolverdVersion) health check")
            request.headers.add(name: "Connection", value: "close")
            do {
                let response = try await http.execute(request, timeout: .milliseconds(Int64(timeout)))
                let status = response.status.code
                return ((200..<300).contains(status), "HTTP \(status)")
            } catch let error as HTTPClientError where error == .deadlineExceeded || error == .readTimeout {
                return (false, "timed out after \(timeout) ms")
            } catch {
                return (false, Self.summary(error))
            }
        }
    }

    /// A fixed phrase for a failed check: the kind of failure, never text from the target.
    static func summary(_ error: any Error) -> String {
        if let error = error as? NIOConnectionError, let first = error.connectionErrors.first { return summary(first.error) }
        if let error = error as? IOError {
            switch error.errnoCode {
            case ECONNREFUSED: return "connection refused"
            case ECONNRESET, EPIPE: return "connection reset"
            case ETIMEDOUT: return "timed out"
            case EHOSTUNREACH, ENETUNREACH: return "unreachable"
            default: return "network error (errno \(error.errnoCode))"
            }
        }
        if error is ChannelError { return "connection failed" }
        if let error = error as? HTTPClientError {
            switch error {
            case .remoteConnectionClosed: return "connection closed before an answer"
            case .connectTimeout, .deadlineExceeded, .readTimeout: return "timed out"
            default: return "not a valid HTTP answer"
            }
        }
        return "check failed"
    }
}

/// Runs due checks and removals until shutdown.
public final class HealthChecker: Service {
    let registry: ServiceRegistry
    let probe: any HealthProbe
    /// Checks running at once, at most (read at every tick: a reload changes it).
    let concurrency: @Sendable () -> Int
    let logger: Logger
    let tick: Duration
    /// Counts check results; nil in tests that need none.
    let metrics: ResolverMetrics?
    /// `group/id` of the checks in flight.
    private let running = Mutex<Set<String>>([])

    /// Whether this instance checks now (with etcd, only the elected instance does).
    let active: @Sendable () -> Bool
    /// Members outside these are never probed.
    let networks: MemberNetworks

    public init(
        registry: ServiceRegistry, probe: any HealthProbe, networks: MemberNetworks,
        concurrency: @escaping @Sendable () -> Int, logger: Logger, tick: Duration = .milliseconds(250),
        metrics: ResolverMetrics? = nil, active: @escaping @Sendable () -> Bool = { true }
    ) {
        self.networks = networks
        self.active = active
        self.metrics = metrics
        self.registry = registry
        self.probe = probe
        self.concurrency = concurrency
        self.logger = logger
        self.tick = tick
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            await self.loop()
        }
    }

    private func loop() async {
        await withDiscardingTaskGroup { tasks in
            while !Task.isCancelled {
                guard active() else {
                    try? await Task.sleep(for: tick)
                    continue
                }
                let now = registry.clock.now()
                switch await registry.persistPending(now: now) {
                case .stored?: logger.notice("registry: the waiting health changes are stored")
                case .deferred(let error)?: logNotStored(error)
                case nil: break
                }
                let (removed, persisted) = await registry.removeExpired(now: now)
                for member in removed {
                    logger.info("member removed", metadata: Self.metadata(member, ["reason": "\(Self.reason(member))"]))
                }
                if case .deferred(let error) = persisted { logNotStored(error) }
                let limit = concurrency()
                for member in registry.dueForCheck(now: now) {
                    let key = "\(member.group)/\(member.id)"
                    let started = self.running.withLock { running in
                        guard running.count < limit, !running.contains(key) else {
                            return false
                        }
                        running.insert(key)
                        return true
                    }
                    guard started else { continue }
                    tasks.addTask {
                        await self.check(member)
                        _ = self.running.withLock { $0.remove(key) }
                    }
                }
                try? await Task.sleep(for: tick)
            }
        }
    }

    /// What a member outside the allowed networks is recorded with, instead of a probe.
    static let notChecked = "not checked: the address is outside registry.allowed_networks"

    private func check(_ member: Member) async {
        let outcome: (healthy: Bool, detail: String)
        if let refusal = networks.refusal(member.address) {
            if member.isHealthy { logger.warning("member not checked", metadata: Self.metadata(member, ["reason": "\(refusal)"])) }
            outcome = (false, Self.notChecked)
        } else {
            outcome = await probe.check(member)
        }
        guard !Task.isCancelled else { return }  // shutting down: a cut-short check proves nothing
        let result = CheckResult(at: registry.clock.now(), healthy: outcome.healthy, detail: outcome.detail)
        metrics?.countCheck(healthy: result.healthy)
        if result.healthy != member.isHealthy || member.lastCheck?.healthy != result.healthy {
            logger.info(
                result.healthy ? "member healthy" : "member unhealthy", metadata: Self.metadata(member, ["check": "\(result.detail)"]))
        }
        if case .deferred(let error) = await registry.record(result, of: member) { logNotStored(error) }
    }

    /// A change the store did not take: the answers follow it all the same; saved again later.
    private func logNotStored(_ error: RegistryError) {
        logger.error(
            "registry: cannot store health changes; answers follow them anyway, saving again with back-off",
            metadata: ["pending": "\(registry.pendingCount)", "error": "\(error)"])
    }

    private static func reason(_ member: Member) -> String {
        member.isHealthy ? "ttl expired" : "unhealthy past deregister_after_s"
    }

    private static func metadata(_ member: Member, _ extra: Logger.Metadata) -> Logger.Metadata {
        extra.merging(["group": "\(member.group)", "id": "\(member.id)", "address": "\(member.address)"]) { a, _ in a }
    }
}
