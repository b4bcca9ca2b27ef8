// Upstream/: the UDP half of asking one server, hand-written. Measured on a cold recursive run,
// NIO's channel per upstream query (bootstrap, pipeline, bind, registration, close on the next
// tick, and the hops between its event loop and the caller) was about 40 % of resolverd's CPU;
// here a query is four system calls on the caller's thread — socket, bind to a random port,
// connect, send — and one epoll thread waits for every answer, matches it (RFC 5452: the
// connected socket admits only the server's address and port; ID and question are checked) and
// reports it on that thread. Timeouts are found by the same thread, which also runs the hedge
// timers (scheduling on an event loop from another thread costs an eventfd write and a wakeup
// each). Each socket is closed by whoever takes its entry out of the table, exactly once.

import CBatchIO
import NIOCore
import NIOPosix
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Sends UDP queries on fresh sockets and waits for their answers on one thread.
final class UDPExchanger: Sendable {
    typealias Completion = @Sendable (Result<UpstreamAnswer, UpstreamError>) -> Void

    private struct Pending {
        let expected: ExpectedAnswer
        let sentAt: NIODeadline
        let deadline: NIODeadline
        let completion: Completion
    }

    private let epoll: Int32
    /// Written to wake the thread for shutdown.
    private let wakeup: Int32
    private let pending = Mutex<[Int32: Pending]>([:])
    private let timers = Mutex(TimerHeap())
    private let stopping = Atomic<Bool>(false)
    private let thread = NIOThreadPool(numberOfThreads: 1)
    /// When the thread's current wait ends (uptime nanoseconds; 0: awake). A new deadline before
    /// it wakes the thread. Set to the maximum before the thread looks at its work, so nothing
    /// added while it decides how long to sleep is missed.
    private let sleepingUntil = Atomic<UInt64>(0)

    init() {
        epoll = CBatchIO_epollCreate()
        wakeup = CBatchIO_eventFD()
        if epoll >= 0, wakeup >= 0 { CBatchIO_epollAdd(epoll, wakeup) }
        thread.start()
        thread.submit { [self] _ in run() }
    }

    /// Stops the thread; queries still waiting fail as timeouts would.
    func shutdown() async {
        stopping.store(true, ordering: .relaxed)
        wake()
        try? await thread.shutdownGracefully()
        let left: [Int32: Pending] = pending.withLock { table in
            let all = table
            table = [:]
            return all
        }
        for (descriptor, entry) in left {
            close(descriptor)
            entry.completion(.failure(UpstreamError.timeout))
        }
        close(epoll)
        close(wakeup)
    }

    /// Sends `wire` to `expected.server` from a new socket on a random port; `completion` runs
    /// once, on the exchanger's thread (or on the caller's when sending fails).
    func send(_ wire: [UInt8], expected: ExpectedAnswer, timeout: TimeAmount, completion: @escaping Completion) {
        guard epoll >= 0, !stopping.load(ordering: .relaxed) else {
            completion(.failure(.unreachable("the upstream socket poller is not running")))
            return
        }
        let descriptor: Int32
        do throws(UpstreamError) {
            descriptor = try Self.connectedSocket(to: expected.server)
        } catch {
            completion(.failure(error))
            return
        }
        let now = NIODeadline.now()
        pending.withLock {
            $0[descriptor] = Pending(expected: expected, sentAt: now, deadline: now + timeout, completion: completion)
        }
        wakeIfSleepingPast(now + timeout)
        let sent = wire.withUnsafeBytes { Glibc.send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        let code = errno
        guard sent == wire.count, CBatchIO_epollAdd(epoll, descriptor) == 0 else {
            finish(descriptor, .failure(.unreachable("send: \(String(cString: strerror(sent < 0 ? code : errno)))")))
            return
        }
    }

    /// Runs `action` on the exchanger's thread after `delay` (to within a millisecond), unless
    /// cancelled first.
    func schedule(in delay: TimeAmount, _ action: @escaping @Sendable () -> Void) -> UpstreamTimer {
        let timer = UpstreamTimer(action)
        let deadline = NIODeadline.now() + delay
        timers.withLock { $0.push(deadline: deadline, timer) }
        wakeIfSleepingPast(deadline)
        return timer
    }

    private func wakeIfSleepingPast(_ deadline: NIODeadline) {
        let until = sleepingUntil.load(ordering: .acquiring)
        if until != 0, deadline.uptimeNanoseconds < until { wake() }
    }

    private func wake() {
        var one: UInt64 = 1
        _ = write(wakeup, &one, 8)
    }

    /// Takes `descriptor`'s entry (if still there), closes the socket and completes.
    private func finish(_ descriptor: Int32, _ result: Result<UpstreamAnswer, UpstreamError>) {
        guard let entry = pending.withLock({ $0.removeValue(forKey: descriptor) }) else { return }
        CBatchIO_epollDelete(epoll, descriptor)
        close(descriptor)
        entry.completion(result)
    }

    // MARK: - The thread

    private func run() {
        let capacity = 64
        let ready = UnsafeMutablePointer<Int32>.allocate(capacity: capacity)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 65_535, alignment: 8)
        defer {
            ready.deallocate()
            buffer.deallocate()
        }
        while !stopping.load(ordering: .relaxed) {
            // Timeouts are checked at least every 10 ms while anything waits; the next timer is
            // met to the millisecond.
            sleepingUntil.store(.max, ordering: .releasing)
            let waiting = pending.withLock { !$0.isEmpty }
            var timeoutMs: Int32 = waiting ? 10 : 1000
            if let next = timers.withLock({ $0.earliest }) {
                let left = (next - .now()).nanoseconds
                timeoutMs = min(timeoutMs, Int32(clamping: max(0, (left + 999_999) / 1_000_000)))
            }
            sleepingUntil.store(NIODeadline.now().uptimeNanoseconds + UInt64(timeoutMs) * 1_000_000, ordering: .releasing)
            let count = CBatchIO_epollWait(epoll, ready, Int32(capacity), timeoutMs)
            sleepingUntil.store(0, ordering: .releasing)
            for index in 0..<max(0, Int(count)) {
                let descriptor = ready[index]
                if descriptor == wakeup {
                    var value: UInt64 = 0
                    _ = read(wakeup, &value, 8)
                    continue
                }
                receive(on: descriptor, into: buffer)
            }
            let now = NIODeadline.now()
            expire(now: now)
            for timer in timers.withLock({ $0.popDue(now: now) }) { timer.fire() }
        }
    }

    /// Reads every datagram waiting on `descriptor` until one is the answer.
    private func receive(on descriptor: Int32, into buffer: UnsafeMutableRawBufferPointer) {
        for _ in 0..<16 {
            let count = recv(descriptor, buffer.baseAddress, buffer.count, Int32(MSG_DONTWAIT))
            if count < 0 {
                let code = errno
                if code == EAGAIN || code == EWOULDBLOCK || code == EINTR { return }
                // On a connected UDP socket: an ICMP error, the server is unreachable.
                finish(descriptor, .failure(.unreachable(String(cString: strerror(code)))))
                return
            }
            guard let entry = pending.withLock({ $0[descriptor] }) else { return }
            let bytes = Array(UnsafeRawBufferPointer(rebasing: buffer[0..<count]))
            switch AnswerMatcher.match(bytes, expected: entry.expected) {
            case .mismatch:
                continue
            case .malformed(let why):
                finish(descriptor, .failure(.malformed(why)))
                return
            case .answer(let message):
                let answer = UpstreamAnswer(
                    message: message, wire: bytes, server: entry.expected.server, rtt: .now() - entry.sentAt,
                    overTCP: false)
                finish(descriptor, .success(answer))
                return
            }
        }
    }

    private func expire(now: NIODeadline) {
        let expired = pending.withLock { table in table.filter { $0.value.deadline <= now }.map(\.key) }
        for descriptor in expired { finish(descriptor, .failure(.timeout)) }
    }

    // MARK: - Sockets

    /// A non-blocking UDP socket bound to a random port (RFC 5452 §9.2: from the whole
    /// unprivileged range, drawn from the system CSPRNG; on a collision drawn again, and after 8
    /// the kernel chooses) and connected to `server`, so the kernel drops datagrams from anyone
    /// else and reports ICMP errors.
    private static func connectedSocket(to server: ServerAddress) throws(UpstreamError) -> Int32 {
        let v6 = server.ip.isV6
        let descriptor = socket(
            v6 ? AF_INET6 : AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue),
            0)
        guard descriptor >= 0 else { throw .unreachable("socket: \(String(cString: strerror(errno)))") }
        var random = SystemRandomNumberGenerator()
        var bound = false
        for attempt in 0..<9 where !bound {
            let port = attempt < 8 ? UInt16.random(in: 1024...65535, using: &random) : 0
            bound = withSocketAddress(v6 ? .v6([UInt8](repeating: 0, count: 16)) : .v4(0), port: port) {
                bind(descriptor, $0, $1) == 0
            }
        }
        let connected = bound && withSocketAddress(server.ip, port: server.port) { connect(descriptor, $0, $1) == 0 }
        guard connected else {
            let code = errno
            close(descriptor)
            throw .unreachable("\(bound ? "connect" : "bind"): \(String(cString: strerror(code)))")
        }
        return descriptor
    }

    /// Calls `body` with a sockaddr for `ip` and `port` (no text in between).
    private static func withSocketAddress<T>(
        _ ip: IPAddress, port: UInt16, _ body: (UnsafePointer<sockaddr>, socklen_t) -> T
    ) -> T {
        switch ip {
        case .v4(let value):
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = port.bigEndian
            address.sin_addr.s_addr = value.bigEndian
            return withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
        case .v6(let bytes):
            var address = sockaddr_in6()
            address.sin6_family = sa_family_t(AF_INET6)
            address.sin6_port = port.bigEndian
            withUnsafeMutableBytes(of: &address.sin6_addr) { raw in
                for (index, byte) in bytes.prefix(16).enumerated() { raw[index] = byte }
            }
            return withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in6>.size)) }
            }
        }
    }
}

/// A callback the exchanger's thread runs at a deadline; `cancel` keeps it from running.
public final class UpstreamTimer: Sendable {
    private let action: @Sendable () -> Void
    private let cancelled = Atomic<Bool>(false)

    init(_ action: @escaping @Sendable () -> Void) { self.action = action }

    public func cancel() { cancelled.store(true, ordering: .relaxed) }

    func fire() {
        if !cancelled.load(ordering: .relaxed) { action() }
    }
}

/// Timers by deadline, a binary min-heap; cancelled ones leave when they come due.
struct TimerHeap {
    private var entries: [(deadline: NIODeadline, timer: UpstreamTimer)] = []

    var earliest: NIODeadline? { entries.first?.deadline }

    mutating func push(deadline: NIODeadline, _ timer: UpstreamTimer) {
        entries.append((deadline, timer))
        var child = entries.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard entries[child].deadline < entries[parent].deadline else { break }
            entries.swapAt(child, parent)
            child = parent
        }
    }

    /// Removes and returns the timers due at `now`, earliest first.
    mutating func popDue(now: NIODeadline) -> [UpstreamTimer] {
        var due: [UpstreamTimer] = []
        while let first = entries.first, first.deadline <= now {
            due.append(first.timer)
            let last = entries.removeLast()
            guard !entries.isEmpty else { break }
            entries[0] = last
            var parent = 0
            while true {
                let left = 2 * parent + 1
                let right = left + 1
                var smallest = parent
                if left < entries.count, entries[left].deadline < entries[smallest].deadline { smallest = left }
                if right < entries.count, entries[right].deadline < entries[smallest].deadline { smallest = right }
                guard smallest != parent else { break }
                entries.swapAt(parent, smallest)
                parent = smallest
            }
        }
        return due
    }
}
