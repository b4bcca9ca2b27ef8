// Workers/: fault isolation. With `server.workers = N` the daemon runs as a supervisor that owns
// the registry, the health checks and the HTTP API, and N worker processes that answer DNS on
// the shared ports (SO_REUSEPORT). A worker that dies (a packet of death, kill -9) takes only its
// own in-flight queries: the kernel sends the port's traffic to the others, and the supervisor
// starts it again at once. This file is the channel between them: one Unix stream socket per
// worker carrying JSON lines — the registry (a snapshot, then every change, pushed: no polling
// on the DNS path) one way, the worker's "ready" the other.

import CBatchIO
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A message on the control channel.
struct ControlMessage: Codable, Sendable {
    /// Supervisor → worker, first: every member.
    var snapshot: [MemberRecord]?
    /// Supervisor → worker: changes in the order they were stored.
    var changes: [RegistryChangeRecord]?
    /// Worker → supervisor: serving, with its private API address and its DNS addresses.
    var ready: WorkerReady?
}

struct WorkerReady: Codable, Sendable, Equatable {
    var pid: Int32
    var api: String
    var dns: [String]
}

/// One end of a control channel: a non-blocking Unix stream socket, newline-framed JSON.
final class ControlChannel: Sendable {
    let descriptor: Int32
    /// Bytes read past the last complete line (one reader at a time).
    private let pending = Mutex<[UInt8]>([])
    /// Sends are serialised so lines never interleave.
    private let sending = Mutex<Void>(())
    private let closed = Atomic<Bool>(false)
    /// The longest line accepted (a snapshot of a large registry is a few MB).
    static let maxLine = 64 << 20

    init(descriptor: Int32) {
        self.descriptor = descriptor
        let flags = fcntl(descriptor, F_GETFL)
        _ = fcntl(descriptor, F_SETFL, flags | O_NONBLOCK)
    }

    /// A connected pair, both ends close-on-exec; the child's end is dup2'ed to its fd 3.
    static func pair() -> (ControlChannel, Int32)? {
        var fds: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &fds) == 0 else {
            return nil
        }
        var size: Int32 = 4 << 20
        _ = setsockopt(fds[0], SOL_SOCKET, SO_SNDBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        return (ControlChannel(descriptor: fds[0]), fds[1])
    }

    /// Writes one message; false when the peer is gone or has not read for `timeoutMs` (stuck).
    func send(_ message: ControlMessage, timeoutMs: Int32 = 1000) -> Bool {
        guard let encoded = try? JSONEncoder().encode(message) else { return false }
        let bytes = [UInt8](encoded) + [0x0A]
        return sending.withLock { _ in
            bytes.withUnsafeBytes { raw -> Bool in
                guard let base = raw.baseAddress else { return false }
                var offset = 0
                while offset < raw.count {
                    let written = Glibc.send(descriptor, base + offset, raw.count - offset, Int32(MSG_NOSIGNAL))
                    if written > 0 {
                        offset += written
                        continue
                    }
                    guard written < 0, errno == EAGAIN || errno == EINTR else { return false }
                    guard wait(for: Int16(POLLOUT), timeoutMs: timeoutMs) else { return false }
                }
                return true
            }
        }
    }

    enum Received {
        case message(ControlMessage)
        case timedOut
        /// The peer closed its end, or sent something that is not a message.
        case closed
    }

    /// The next message; waits at most `timeoutMs` (-1: no limit) for it.
    func receive(timeoutMs: Int32 = -1) -> Received {
        let clock = ContinuousClock()
        let deadline = timeoutMs < 0 ? nil : clock.now + .milliseconds(Int(timeoutMs))
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while true {
            let line = pending.withLock { pending -> [UInt8]? in
                guard let end = pending.firstIndex(of: 0x0A) else { return nil }
                let line = Array(pending[..<end])
                pending.removeSubrange(...end)
                return line
            }
            if let line {
                guard let message = try? JSONDecoder().decode(ControlMessage.self, from: Data(line)) else { return .closed }
                return .message(message)
            }
            let count = chunk.withUnsafeMutableBytes { Glibc.recv(descriptor, $0.baseAddress, $0.count, 0) }
            if count > 0 {
                let full = pending.withLock { pending in
                    pending += chunk[0..<count]
                    return pending.count > Self.maxLine
                }
                if full { return .closed }
                continue
            }
            if count == 0 || (errno != EAGAIN && errno != EINTR) { return .closed }
            var wait: Int32 = -1
            if let deadline {
                let left = deadline - clock.now
                if left <= .zero { return .timedOut }
                wait = Int32(max(1, left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000))
            }
            guard self.wait(for: Int16(POLLIN), timeoutMs: wait) || deadline != nil else { return .closed }
        }
    }

    private func wait(for events: Int16, timeoutMs: Int32) -> Bool {
        var entry = pollfd(fd: descriptor, events: events, revents: 0)
        while true {
            let ready = poll(&entry, 1, timeoutMs)
            if ready < 0 && errno == EINTR { continue }
            return ready > 0
        }
    }

    /// Closes the socket once.
    func close() {
        guard !closed.exchange(true, ordering: .relaxed) else { return }
        _ = Glibc.close(descriptor)
    }
}
