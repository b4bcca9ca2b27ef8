// Workers/: the supervisor's side. One thread per worker slot starts the worker (posix_spawn of
// this same executable with `--worker N`, its control channel on fd 3), sends it the registry,
// waits for its "ready", then waits for it to exit — and starts it again at once. A worker that
// keeps dying soon after starting is restarted with a growing pause (0.5 s doubling to 30 s), so
// a packet of death that arrives again and again does not become a fork loop. Registry changes
// reach every worker through `broadcast`, called by the registry after each change.

import CBatchIO
import Foundation
import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// How to start a worker: this executable and the arguments that make process `index` a worker.
public struct WorkerLaunch: Sendable {
    public var executable: String
    public var arguments: @Sendable (_ index: Int) -> [String]
    /// The token of the workers' private admin APIs: random per run, handed to each worker in
    /// its environment (`workerTokenVariable`), never on its command line.
    public var adminToken: String
    /// The ports chosen for `port 0` addresses, held until the workers are ready.
    public var reservation: PortReservation?

    /// The environment variable a worker reads its admin token from.
    public static let workerTokenVariable = "RESOLVERD_WORKER_TOKEN"

    public init(
        executable: String = WorkerLaunch.currentExecutable, arguments: @escaping @Sendable (Int) -> [String],
        adminToken: String = APIToken.random(), reservation: PortReservation? = nil
    ) {
        self.executable = executable
        self.arguments = arguments
        self.adminToken = adminToken
        self.reservation = reservation
    }

    /// `addresses` with every port 0 replaced by a port free for both UDP and TCP, so that all
    /// workers bind the same one; the ports stay reserved (sockets bound with SO_REUSEPORT, so the
    /// workers can join them and nothing else can take them) until the reservation is released.
    public static func reservingPorts(_ addresses: [ServerAddress]) -> (addresses: [ServerAddress], reservation: PortReservation) {
        let reservation = PortReservation()
        let fixed = addresses.map { address in
            guard address.port == 0, let socketAddress = try? address.socketAddress() else { return address }
            let family = socketAddress.protocol.rawValue
            var one: Int32 = 1
            for _ in 0..<50 {
                let tcp = socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
                let udp = socket(family, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
                for descriptor in [tcp, udp] {
                    setsockopt(descriptor, SOL_SOCKET, SO_REUSEPORT, &one, socklen_t(MemoryLayout<Int32>.size))
                }
                guard socketAddress.withSockAddr({ bind(tcp, $0, socklen_t($1)) }) == 0,
                    let chosen = UDPBatchListener.localAddress(tcp),
                    let candidate = try? chosen.socketAddress(),
                    candidate.withSockAddr({ bind(udp, $0, socklen_t($1)) }) == 0
                else {
                    close(tcp)
                    close(udp)
                    continue
                }
                reservation.keep([tcp, udp])
                return chosen
            }
            return address
        }
        return (fixed, reservation)
    }

    /// The running executable: /proc/self/exe, which names the file this process runs even after
    /// an upgrade replaced or deleted it on disk (its target then ends in " (deleted)" and no
    /// longer exists), so a restarted worker is always the supervisor's own version.
    public static var currentExecutable: String {
        access("/proc/self/exe", X_OK) == 0 ? "/proc/self/exe" : (CommandLine.arguments.first ?? "resolverd")
    }
}

/// Sockets holding ports chosen for the workers until they have bound them themselves (a port
/// found free and closed again could be taken by another process before the workers bind it).
public final class PortReservation: Sendable {
    private let descriptors = Mutex<[Int32]>([])

    public init() {}

    func keep(_ more: [Int32]) { descriptors.withLock { $0 += more } }

    /// Closes the sockets (the UDP ones would otherwise take a share of the port's datagrams).
    public func release() {
        for descriptor in descriptors.withLock({ kept in defer { kept = [] }; return kept }) { close(descriptor) }
    }
}

/// Where a worker process is in its life.
public enum WorkerState: String, Codable, Sendable, Equatable {
    case starting, running
    /// Waiting out a back-off before the next start.
    case restarting
    case stopped
}

/// One worker as GET /v1/workers shows it.
public struct WorkerView: Codable, Sendable, Equatable {
    public var index: Int
    public var state: WorkerState
    public var pid: Int32?
    /// The worker's private admin API (loopback), once ready.
    public var api: String?
    public var restarts: Int
    /// How the previous process ended: "signal 9", "exit 1".
    public var lastExit: String?
    /// From noticing the previous process's death to the new one answering, in milliseconds.
    public var lastRestartMs: Double?
    /// Seconds since the current process became ready.
    public var upS: Double?

    enum CodingKeys: String, CodingKey {
        case index, state, pid, api, restarts
        case lastExit = "last_exit"
        case lastRestartMs = "last_restart_ms"
        case upS = "up_s"
    }
}

/// `GET /v1/workers`.
public struct WorkersResponse: Codable, Sendable, Equatable {
    public var workers: [WorkerView]
}

/// Why the workers could not be started.
public struct WorkerStartError: Error, CustomStringConvertible {
    public var description: String
}

/// One worker slot's deaths: how many in a row came soon after a start, and since when the slot
/// has been in a crash loop. Pure, so tests drive it with made-up instants.
struct CrashLoop: Sendable, Equatable {
    /// A worker that dies this soon after its start died "quickly".
    static let quick: Duration = .seconds(10)
    /// Quick deaths in a row that make a loop.
    static let loopAfter = 3

    private(set) var quickDeaths = 0
    /// When the loop began (the death that made it one); nil when not looping.
    private(set) var since: ContinuousClock.Instant?

    /// Counts a death of a worker started at `started`.
    mutating func died(started: ContinuousClock.Instant, at died: ContinuousClock.Instant) {
        quickDeaths = died - started < Self.quick ? quickDeaths + 1 : 0
        if quickDeaths < Self.loopAfter {
            since = nil
        } else if since == nil {
            since = died
        }
    }

    /// Since when the slot loops at `now`: nil once its worker has been ready for `quick`.
    func looping(now: ContinuousClock.Instant, readySince: ContinuousClock.Instant?) -> ContinuousClock.Instant? {
        if let readySince, now - readySince >= Self.quick { return nil }
        return since
    }
}

/// The supervisor's worker processes.
public final class WorkerPool: Sendable {
    private struct Slot {
        var state = WorkerState.starting
        var pid: pid_t?
        var channel: ControlChannel?
        var ready: WorkerReady?
        var readyAt: ContinuousClock.Instant?
        var diedAt: ContinuousClock.Instant?
        var restarts = 0
        var lastExit: String?
        var lastRestartMs: Double?
        /// Set when the first start failed before "ready".
        var failedToStart: String?
        var crashLoop = CrashLoop()
    }

    /// With every worker in a crash loop for this long, the supervisor stops feeding systemd's
    /// watchdog (the unit is restarted and the failure shows) and says why in its STATUS.
    public static let crashLoopLimit: Duration = .seconds(60)

    /// Since when every worker has been in a crash loop (the latest of their loops' starts); nil
    /// when at least one is not.
    public func allCrashLoopingSince(now: ContinuousClock.Instant = ContinuousClock().now) -> ContinuousClock.Instant? {
        let loops = slots.withLock { slots in slots.map { $0.crashLoop.looping(now: now, readySince: $0.readyAt) } }
        return Self.allLoopingSince(loops)
    }

    /// The latest start of the slots' loops, when every slot loops.
    static func allLoopingSince(_ loops: [ContinuousClock.Instant?]) -> ContinuousClock.Instant? {
        guard !loops.isEmpty else { return nil }
        var latest: ContinuousClock.Instant? = nil
        for loop in loops {
            guard let loop else { return nil }
            latest = max(latest ?? loop, loop)
        }
        return latest
    }

    public let count: Int
    let launch: WorkerLaunch
    private let registry: ServiceRegistry
    private let logger: Logger
    private let slots: Mutex<[Slot]>
    private let stopping = Atomic<Bool>(false)
    private let threadsRunning = Atomic<Int>(0)
    /// Held while a snapshot or a change goes out, so a new worker misses no change.
    private let broadcastLock = Mutex<Void>(())

    public init(count: Int, launch: WorkerLaunch, registry: ServiceRegistry, logger: Logger) {
        self.count = count
        self.launch = launch
        self.registry = registry
        self.logger = logger
        slots = Mutex(Array(repeating: Slot(), count: count))
        registry.observe { [weak self] changes in self?.broadcast(changes) }
        registry.observeStatus { [weak self] status in self?.broadcast(status) }
    }

    /// Starts every worker and waits until all are ready; a worker that exits before it is
    /// ready the first time (a port in use, a bad address) fails the start.
    public func start(timeout: Duration = .seconds(30)) async throws(WorkerStartError) {
        for index in 0..<count {
            threadsRunning.add(1, ordering: .relaxed)
            let thread = Thread { [self] in
                supervise(index)
                threadsRunning.subtract(1, ordering: .relaxed)
            }
            thread.name = "worker-\(index + 1)"
            thread.start()
        }
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        // Every worker has bound the ports (or the start failed): the reservation goes.
        defer { launch.reservation?.release() }
        while clock.now < deadline {
            let (ready, failure) = slots.withLock { slots in
                (slots.allSatisfy { $0.ready != nil }, slots.compactMap(\.failedToStart).first)
            }
            if let failure { throw WorkerStartError(description: failure) }
            if ready { return }
            try? await Task.sleep(for: .milliseconds(10))
        }
        throw WorkerStartError(description: "workers not ready after \(timeout)")
    }

    /// The DNS addresses the first worker reported.
    public var dnsAddresses: [String] { slots.withLock { $0.first?.ready?.dns ?? [] } }

    /// The private API addresses of the workers that are ready, by index.
    func readyAPIs() -> [(index: Int, api: String)] {
        slots.withLock { slots in
            slots.enumerated().compactMap { index, slot in slot.ready.map { (index + 1, $0.api) } }
        }
    }

    public func report() -> WorkersResponse {
        let now = ContinuousClock().now
        return WorkersResponse(
            workers: slots.withLock { slots in
                slots.enumerated().map { index, slot in
                    WorkerView(
                        index: index + 1, state: slot.state, pid: slot.pid, api: slot.ready?.api, restarts: slot.restarts,
                        lastExit: slot.lastExit, lastRestartMs: slot.lastRestartMs,
                        upS: slot.readyAt.map { Self.seconds(now - $0) })
                }
            })
    }

    /// Total restarts of all workers.
    public var restarts: Int { slots.withLock { $0.reduce(0) { $0 + $1.restarts } } }

    /// Sends `signal` to every running worker (SIGHUP: reload).
    public func signalAll(_ signal: Int32) {
        for pid in slots.withLock({ $0.compactMap(\.pid) }) { kill(pid, signal) }
    }

    /// Stops the workers: SIGTERM (they finish what they are answering), SIGKILL after 10 s.
    public func stop() async {
        stopping.store(true, ordering: .relaxed)
        signalAll(SIGTERM)
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(10)
        while threadsRunning.load(ordering: .relaxed) > 0, clock.now < deadline {
            try? await Task.sleep(for: .milliseconds(10))
        }
        signalAll(SIGKILL)
        while threadsRunning.load(ordering: .relaxed) > 0, clock.now < deadline + .seconds(2) {
            try? await Task.sleep(for: .milliseconds(10))
        }
    }

    // MARK: - The registry feed

    /// Sends changes to every worker; a worker that does not take them (stuck for a second) is
    /// killed, and its restart gets a fresh snapshot.
    private func broadcast(_ changes: [RegistryChange]) {
        let records = changes.map(RegistryChangeRecord.init)
        broadcast { channel in channel.sendChanges(records) }
    }

    /// Sends the registry's new status to every worker (a degraded registry SERVFAILs there too).
    private func broadcast(_ status: RegistryStatus) {
        broadcast { channel in channel.send(ControlMessage(status: StatusRecord(status))) }
    }

    private func broadcast(_ send: (ControlChannel) -> Bool) {
        broadcastLock.withLock { _ in
            let targets = slots.withLock { slots in slots.compactMap { slot in slot.channel.map { ($0, slot.pid) } } }
            for (channel, pid) in targets where !send(channel) {
                if let pid {
                    logger.warning("a worker does not read its registry feed; killing it", metadata: ["pid": "\(pid)"])
                    kill(pid, SIGKILL)
                }
            }
        }
    }

    /// Connects a new worker's channel: the snapshot first, then it hears every later change.
    private func attach(_ channel: ControlChannel, to index: Int) -> Bool {
        broadcastLock.withLock { _ in
            let members = registry.snapshot().flatMap(\.members).map(MemberRecord.init)
            guard channel.sendSnapshot(members, status: registry.status) else { return false }
            slots.withLock { $0[index].channel = channel }
            return true
        }
    }

    // MARK: - One slot's thread

    private func supervise(_ index: Int) {
        let clock = ContinuousClock()
        var everReady = false
        while !stopping.load(ordering: .relaxed) {
            let pid: pid_t
            let channel: ControlChannel
            switch start(index) {
            case .success(let started):
                (pid, channel) = started
            case .failure(let error):
                guard everReady else {
                    fail(index, error.description)
                    return
                }
                // It ran before: keep trying (descriptors or processes may be short for a while).
                logger.error("cannot start a worker; trying again", metadata: ["worker": "\(index + 1)", "error": "\(error)"])
                pauseUnlessStopping(.seconds(1))
                continue
            }
            let started = clock.now
            slots.withLock { slots in
                slots[index].pid = pid
                slots[index].state = .starting
            }
            if attach(channel, to: index), case .message(let message) = channel.receive(timeoutMs: 30_000),
                let ready = message.ready
            {
                let now = clock.now
                slots.withLock { slots in
                    slots[index].ready = ready
                    slots[index].readyAt = now
                    slots[index].state = .running
                    if let died = slots[index].diedAt { slots[index].lastRestartMs = Self.seconds(now - died) * 1000 }
                }
                everReady = true
                logger.info("worker ready", metadata: ["worker": "\(index + 1)", "pid": "\(pid)", "api": "\(ready.api)"])
            } else {
                kill(pid, SIGKILL)
            }
            let exit = Self.waitForExit(pid)
            let died = clock.now
            broadcastLock.withLock { _ in
                slots.withLock { slots in
                    slots[index].channel = nil
                    slots[index].pid = nil
                    slots[index].ready = nil
                    slots[index].readyAt = nil
                }
            }
            channel.close()
            if stopping.load(ordering: .relaxed) { break }
            if !everReady {
                // Never ready: the configuration cannot work (a port in use…); the start fails.
                fail(index, "worker \(index + 1) exited before it was ready (\(exit))")
                return
            }
            let quickDeaths = slots.withLock { slots in
                slots[index].crashLoop.died(started: started, at: died)
                return slots[index].crashLoop.quickDeaths
            }
            let pause: Duration = quickDeaths <= 1 ? .zero : min(.seconds(30), .milliseconds(500) * (1 << min(quickDeaths - 2, 6)))
            slots.withLock { slots in
                slots[index].restarts += 1
                slots[index].lastExit = exit
                slots[index].diedAt = died
                slots[index].state = pause == .zero ? .starting : .restarting
            }
            logger.error(
                "worker died; starting it again",
                metadata: ["worker": "\(index + 1)", "pid": "\(pid)", "exit": "\(exit)", "pause": "\(pause)"])
            pauseUnlessStopping(pause)
        }
        slots.withLock { $0[index].state = .stopped }
    }

    /// Waits `pause` on the slot's thread, ending early when the pool stops.
    private func pauseUnlessStopping(_ pause: Duration) {
        let clock = ContinuousClock()
        let resume = clock.now + pause
        while clock.now < resume, !stopping.load(ordering: .relaxed) { usleep(10_000) }
    }

    /// A control channel and worker `index` started on its other end.
    private func start(_ index: Int) -> Result<(pid_t, ControlChannel), WorkerStartError> {
        guard let (channel, childEnd) = ControlChannel.pair() else {
            return .failure(WorkerStartError(description: "cannot create a control channel: errno \(errno)"))
        }
        defer { _ = close(childEnd) }
        switch spawn(index, controlDescriptor: childEnd) {
        case .success(let pid):
            return .success((pid, channel))
        case .failure(let error):
            channel.close()
            return .failure(error)
        }
    }

    private func fail(_ index: Int, _ message: String) {
        logger.critical("worker cannot start", metadata: ["worker": "\(index + 1)", "error": "\(message)"])
        slots.withLock { slots in
            slots[index].state = .stopped
            slots[index].failedToStart = message
        }
    }

    private func spawn(_ index: Int, controlDescriptor: Int32) -> Result<pid_t, WorkerStartError> {
        // argv[0] as the supervisor's, so `ps` shows a name rather than /proc/self/exe.
        let name = launch.executable == "/proc/self/exe" ? (CommandLine.arguments.first ?? "resolverd") : launch.executable
        let arguments = [name] + launch.arguments(index + 1)
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, controlDescriptor, 3)
        CBatchIO_spawnCloseFrom(&actions, 4)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // The worker starts with default handlers and only the lifecycle signals blocked, as its
        // main blocks them anyway: a SIGHUP (reload) or SIGTERM arriving before the worker has set
        // up its signal readers stays pending for them instead of killing it with the default
        // action.
        var lifecycle = sigset_t()
        sigemptyset(&lifecycle)
        for signal in [SIGTERM, SIGINT, SIGHUP] { sigaddset(&lifecycle, signal) }
        posix_spawnattr_setsigmask(&attributes, &lifecycle)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGTERM, SIGINT, SIGHUP, SIGPIPE, SIGCHLD] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var cArguments: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { for argument in cArguments { free(argument) } }
        // Swift's crash backtracer symbolicates for seconds while the dying worker's sockets stay
        // open and its share of the queries is lost: a worker trap must end at once (the trap's
        // message still reaches the log). An operator's own SWIFT_BACKTRACE setting is kept.
        var environment = ProcessInfo.processInfo.environment
        if environment["SWIFT_BACKTRACE"] == nil { environment["SWIFT_BACKTRACE"] = "enable=no" }
        environment[WorkerLaunch.workerTokenVariable] = launch.adminToken
        var cEnvironment: [UnsafeMutablePointer<CChar>?] = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { for variable in cEnvironment { free(variable) } }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, launch.executable, &actions, &attributes, &cArguments, &cEnvironment)
        guard result == 0 else {
            return .failure(WorkerStartError(description: "cannot start \(launch.executable): \(String(cString: strerror(result)))"))
        }
        return .success(pid)
    }

    private static func waitForExit(_ pid: pid_t) -> String {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            if errno != EINTR { return "unknown" }
        }
        let signal = status & 0x7F
        return signal == 0 ? "exit \((status >> 8) & 0xFF)" : "signal \(signal)"
    }

    private static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }
}
