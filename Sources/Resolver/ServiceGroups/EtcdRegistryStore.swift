// ServiceGroups/: the shared registry store: etcd, for several resolverd instances answering for
// one cluster. Each member is a key `{prefix}groups/{group}/members/{id}` whose value is the
// member as JSON (MemberRecord), attached to a lease of its own whose TTL is the registration TTL
// plus the time an unhealthy member is kept (`deregister_after_s`) and a margin for its check: a
// heartbeat or a passing check renews the lease (keep-alive), so a member that nobody renews —
// even with every resolverd down — leaves etcd by itself. Every instance lists the keys at start
// and then follows a watch from the next revision, showing other instances' changes in its own
// view (no polling on the DNS path); after a lost connection it resumes from the last revision
// seen, and after a compaction it lists again.

import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOSSL
import Synchronization

public final class EtcdRegistryStore: RegistryStore {
    let client: EtcdClient
    let prefix: String
    /// Seconds a member's lease outlives its registration TTL (a reload may change it).
    private let grace: Atomic<Int>
    /// key → (lease, its granted TTL), for the keys this instance knows.
    private let leases = Mutex<[String: (id: Int64, ttl: Int)]>([:])
    /// The last revision listed or watched.
    private let revision = Atomic<Int64>(0)

    init(client: EtcdClient, prefix: String, policy: RegistryPolicy) {
        self.client = client
        self.prefix = prefix
        grace = Atomic(Self.grace(policy))
    }

    /// An unhealthy member is kept `deregister_after_s`; its checks take at most a minute more.
    static func grace(_ policy: RegistryPolicy) -> Int { policy.deregisterAfterSeconds + 60 }

    /// Follows a reloaded `[cluster]` timing.
    func replacePolicy(_ policy: RegistryPolicy) { grace.store(Self.grace(policy), ordering: .relaxed) }

    var membersPrefix: String { prefix + "groups/" }

    func key(group: String, id: String) -> String { "\(membersPrefix)\(group)/members/\(id)" }

    // MARK: - RegistryStore

    public func loadAll() async throws(RegistryError) -> StoredMembers {
        do {
            let (items, at) = try await client.range(prefix: membersPrefix)
            revision.store(at, ordering: .relaxed)
            leases.withLock { leases in
                leases = [:]
                for item in items { leases[item.key] = (item.lease, 0) }
            }
            var stored = StoredMembers(members: [])
            for item in items {
                do {
                    stored.members.append(try member(item))
                } catch {
                    stored.damaged.append(error)
                }
            }
            return stored
        } catch {
            throw RegistryError("registry (etcd): cannot read: \(error.message)", unreachable: error.unreachable)
        }
    }

    public func save(_ changes: [RegistryChange]) async throws(RegistryError) {
        var puts: [(key: String, value: [UInt8], lease: Int64)] = []
        var deletes: [String] = []
        var replaced: [Int64] = []
        do {
            for change in changes {
                switch change {
                case .put(let member):
                    let key = key(group: member.group, id: member.id)
                    let ttl = member.ttlSeconds + grace.load(ordering: .relaxed)
                    let lease = try await lease(for: key, ttl: ttl)
                    if let old = leases.withLock({ $0[key] }), old.id != lease, old.id != 0 { replaced.append(old.id) }
                    leases.withLock { $0[key] = (lease, ttl) }
                    puts.append((key, [UInt8](try JSONEncoder().encode(MemberRecord(member))), lease))
                case .delete(let group, let id):
                    let key = key(group: group, id: id)
                    deletes.append(key)
                    if let old = leases.withLock({ $0.removeValue(forKey: key) }), old.id != 0 { replaced.append(old.id) }
                }
            }
            try await client.transaction(puts: puts, deletes: deletes)
        } catch {
            throw RegistryError("registry (etcd): cannot write: \(error)")
        }
        // Leases no key uses any more.
        for lease in replaced { await client.revoke(lease) }
    }

    /// The member's lease: its current one renewed when its TTL is the one wanted, else a new one.
    private func lease(for key: String, ttl: Int) async throws(EtcdError) -> Int64 {
        if let current = leases.withLock({ $0[key] }), current.id != 0, current.ttl == ttl,
            try await client.keepAlive(current.id) > 0
        {
            return current.id
        }
        return try await client.grantLease(ttl: ttl)
    }

    // MARK: - Following the other instances

    /// Shows every change stored by anyone in `registry`'s view, until cancelled. Members outside
    /// `networks` (written by an instance with a wider `registry.allowed_networks`) are left out
    /// as they are at load.
    func follow(_ registry: ServiceRegistry, networks: MemberNetworks, logger: Logger) async {
        var pause: Duration = .milliseconds(100)
        while !Task.isCancelled {
            let from = revision.load(ordering: .relaxed) + 1
            var oversized = false
            do {
                try await client.watch(prefix: membersPrefix, from: from) { message in
                    switch message {
                    case .events(let events, let at):
                        pause = .milliseconds(100)
                        apply(events, to: registry, networks: networks, logger: logger)
                        revision.store(max(at, revision.load(ordering: .relaxed)), ordering: .relaxed)
                    case .compacted(let at):
                        logger.notice("registry watch: revision compacted; listing again", metadata: ["revision": "\(at)"])
                        await relist(registry, networks: networks, logger: logger)
                    case .oversized:
                        logger.error(
                            "registry watch: a line over \(EtcdClient.maxWatchLine >> 20) MiB dropped; listing again",
                            metadata: ["from": "\(from)"])
                        oversized = true
                        await relist(registry, networks: networks, logger: logger)
                    }
                }
                if oversized {
                    // Should the listing fail too, the same line comes again: not in a tight loop.
                    try? await Task.sleep(for: pause)
                    pause = min(pause * 2, .seconds(2))
                }
            } catch {
                if Task.isCancelled { return }
                logger.warning("registry watch interrupted; resuming", metadata: ["error": "\(error)", "from": "\(from)"])
                try? await Task.sleep(for: pause)
                pause = min(pause * 2, .seconds(2))
            }
        }
    }

    private func relist(_ registry: ServiceRegistry, networks: MemberNetworks, logger: Logger) async {
        do {
            let stored = try await AdmittingStore(store: self, networks: networks, logger: logger).loadAll()
            StoredMembers.log(stored.damaged, logger: logger)
            registry.mirror(all: stored.members)
        } catch {
            logger.error("registry: cannot list again", metadata: ["error": "\(error)"])
        }
    }

    private func apply(_ events: [EtcdEvent], to registry: ServiceRegistry, networks: MemberNetworks, logger: Logger) {
        var changes: [RegistryChange] = []
        for event in events {
            let path = event.item.key.dropFirst(membersPrefix.count).split(separator: "/")
            let named = path.count == 3 && path[1] == "members"
            if event.deleted {
                guard named else { continue }
                leases.withLock { _ = $0.removeValue(forKey: event.item.key) }
                changes.append(.delete(group: String(path[0]), id: String(path[2])))
            } else {
                do {
                    let stored = try member(event.item)
                    guard AdmittingStore.admits(stored, networks: networks, logger: logger) else {
                        changes.append(.delete(group: stored.group, id: stored.id))
                        continue
                    }
                    changes.append(.put(stored))
                    leases.withLock { leases in
                        if leases[event.item.key]?.id != event.item.lease { leases[event.item.key] = (event.item.lease, 0) }
                    }
                } catch {
                    // The key no longer holds a member: whatever it held before leaves the view.
                    logger.error("registry: a damaged member in etcd skipped", metadata: ["error": "\(error)"])
                    if named { changes.append(.delete(group: String(path[0]), id: String(path[2]))) }
                }
            }
        }
        registry.mirror(changes)
    }

    /// The member a key holds, checked as a registration is; the key must be the member's own.
    private func member(_ item: EtcdKeyValue) throws(RegistryError) -> Member {
        let member = try Self.member(item)
        guard item.key == key(group: member.group, id: member.id) else {
            throw RegistryError("registry: key \(item.key.prefix(200)) holds member \(member.group)/\(member.id)")
        }
        return member
    }

    private static func member(_ item: EtcdKeyValue) throws(RegistryError) -> Member {
        do {
            return try JSONDecoder().decode(MemberRecord.self, from: Data(item.value)).member()
        } catch let error as RegistryError {
            throw error
        } catch {
            throw RegistryError("registry: member \(item.key.prefix(200)) is damaged: not a member record")
        }
    }
}

/// Picks the one instance that runs health checks: every instance campaigns in etcd's election
/// `{prefix}checker` with a lease of its own kept alive every third of its TTL; the leader checks
/// until its lease is lost (it stops renewing it — a crash — or cannot renew it for two thirds of
/// the TTL), then another instance's campaign wins within the lease's TTL.
public final class EtcdElection: Sendable {
    let client: EtcdClient
    let name: String
    let ttl: Int
    let identity: String
    private let leading = Atomic<Bool>(false)

    init(client: EtcdClient, prefix: String, ttl: Int, identity: String) {
        self.client = client
        name = prefix + "checker"
        self.ttl = ttl
        self.identity = identity
    }

    /// Whether this instance leads (runs the checks) now.
    public var isLeader: Bool { leading.load(ordering: .relaxed) }

    /// Campaigns, leads, and campaigns again, until cancelled.
    func run(logger: Logger) async {
        let clock = ContinuousClock()
        while !Task.isCancelled {
            let lease: Int64
            do {
                lease = try await client.grantLease(ttl: ttl)
            } catch {
                logger.warning("health-check election: no lease", metadata: ["error": "\(error)"])
                try? await Task.sleep(for: .seconds(1))
                continue
            }
            let renewed = LastRenewal()
            let start = clock.now
            await withTaskGroup(of: Void.self) { tasks in
                // Keep the lease alive; stop when etcd says it is gone.
                tasks.addTask { [client, ttl] in
                    while !Task.isCancelled {
                        if let left = try? await client.keepAlive(lease) {
                            if left == 0 { return }
                            renewed.nanoseconds.store(Int64((clock.now - start) / .nanoseconds(1)), ordering: .relaxed)
                        }
                        try? await Task.sleep(for: .milliseconds(ttl * 1000 / 3))
                    }
                }
                tasks.addTask { [self] in
                    do {
                        _ = try await client.campaign(name: name, lease: lease, value: identity)
                    } catch {
                        if !Task.isCancelled {
                            logger.warning("health-check election: campaign failed", metadata: ["error": "\(error)"])
                        }
                        return
                    }
                    leading.store(true, ordering: .relaxed)
                    logger.info("health checks: this instance leads", metadata: ["identity": "\(identity)"])
                    // Lead while the lease is surely alive.
                    let limit = Int64(ttl) * 1_000_000_000 * 2 / 3
                    while !Task.isCancelled {
                        let since = Int64((clock.now - start) / .nanoseconds(1)) - renewed.nanoseconds.load(ordering: .relaxed)
                        if since > limit { break }
                        try? await Task.sleep(for: .milliseconds(100))
                    }
                    leading.store(false, ordering: .relaxed)
                    logger.warning("health checks: leadership lost")
                }
                // Either task ending ends this term.
                await tasks.next()
                tasks.cancelAll()
            }
            leading.store(false, ordering: .relaxed)
            await client.revoke(lease)
            if !Task.isCancelled { try? await Task.sleep(for: .milliseconds(200)) }
        }
    }
}

/// When the election's lease was last renewed: nanoseconds since its term began.
private final class LastRenewal: Sendable {
    let nanoseconds = Atomic<Int64>(0)
}

/// What `registry.backend = "etcd"` runs: the store, the election, and the HTTP client (with the
/// TLS settings) both talk through.
struct SharedRegistry: Sendable {
    let store: EtcdRegistryStore
    let election: EtcdElection
    let http: HTTPClient

    init(_ config: Config, group: any EventLoopGroup, identity: String) throws(RegistryError) {
        let settings = config.registry
        var configuration = HTTPClient.Configuration(redirectConfiguration: .disallow)
        configuration.connectionPool.idleTimeout = .seconds(30)
        configuration.timeout.connect = .seconds(2)
        if settings.endpoints.contains(where: { $0.hasPrefix("https://") }) {
            var tls = TLSConfiguration.makeClientConfiguration()
            if !settings.tlsCAFile.isEmpty { tls.trustRoots = .file(settings.tlsCAFile) }
            if !settings.tlsCertFile.isEmpty {
                do {
                    tls.certificateChain = try NIOSSLCertificate.fromPEMFile(settings.tlsCertFile).map { .certificate($0) }
                    tls.privateKey = .privateKey(try NIOSSLPrivateKey(file: settings.tlsKeyFile, format: .pem))
                } catch {
                    throw RegistryError("registry.tls_cert_file / tls_key_file: \(error)")
                }
            }
            configuration.tlsConfiguration = tls
        }
        http = HTTPClient(eventLoopGroupProvider: .shared(group), configuration: configuration)
        let client = EtcdClient(
            endpoints: settings.endpoints, http: http, username: settings.username, password: settings.password)
        store = EtcdRegistryStore(client: client, prefix: settings.prefix, policy: config.cluster.policy)
        election = EtcdElection(client: client, prefix: settings.prefix, ttl: settings.electionTTLSeconds, identity: identity)
    }
}
