// Workers/: fault isolation. With `server.workers = N` the daemon runs as a supervisor that owns
// the registry, the health checks and the HTTP API, and N worker processes that answer DNS on
// the shared ports (SO_REUSEPORT). A worker that dies (a packet of death, kill -9) takes only its
// own in-flight queries: the kernel sends the port's traffic to the others, and the supervisor
// starts it again at once. This file is the channel between them: one Unix stream socket per
// worker carrying JSON lines — the registry (a snapshot in short lines, then every change, pushed:
// no polling on the DNS path) one way, the worker's "ready" the other.

import CBatchIO
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A message on the control channel. The registry goes as many short lines, never one long one:
/// a snapshot is a `snapshotBegin`, `members` lines of at most `ControlChannel.chunk` members,
/// and a `snapshotEnd`; changes go `chunk` at a time. So no line nears `maxLine`, whatever the
/// registry's size (one line per snapshot once made every worker refuse a large registry and
/// restart in a loop).
struct ControlMessage: Codable, Sendable {
    /// Supervisor → worker, first: a snapshot of `count` members begins.
    var snapshotBegin: SnapshotBegin?
    /// Supervisor → worker: the next members of the snapshot.
    var members: [MemberRecord]?
    /// Supervisor → worker: the snapshot is complete.
    var snapshotEnd: Bool?
    /// Supervisor → worker: changes in the order they were stored.
    var changes: [RegistryChangeRecord]?
    /// Supervisor → worker: the registry's status changed (nil reason: ready).
    var status: StatusRecord?
    /// Worker → supervisor: serving, with its private API address and its DNS addresses.
    var ready: WorkerReady?

    enum CodingKeys: String, CodingKey {
        case members, changes, status, ready
        case snapshotBegin = "snapshot_begin"
        case snapshotEnd = "snapshot_end"
    }
}

struct SnapshotBegin: Codable, Sendable, Equatable {
    var count: Int
    /// Why the supervisor's registry is degraded; nil when it is not.
    var degraded: String?
}

struct StatusRecord: Codable, Sendable, Equatable {
    var degraded: String?

    init(degraded: String?) { self.degraded = degraded }

    init(_ status: RegistryStatus) {
        if case .degraded(let reason) = status { degraded = reason }
    }

    var status: RegistryStatus { degraded.map { .degraded(reason: $0) } ?? .ready }
}

/// A whole snapshot as received.
struct ReceivedSnapshot: Sendable {
    var members: [MemberRecord]
    var status: RegistryStatus
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
    /// The longest line accepted. Registry lines carry at most `chunk` members or changes (a
    /// member's record is at most a few KB), so they stay far below it.
    static let maxLine = 8 << 20
    /// Members or changes per line.
    static let chunk = 256

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

    /// Sends every member as a snapshot in short lines (see `ControlMessage`); false when the
    /// peer is gone or stuck.
    func sendSnapshot(_ members: [MemberRecord], status: RegistryStatus, timeoutMs: Int32 = 5000) -> Bool {
        let begin = SnapshotBegin(count: members.count, degraded: StatusRecord(status).degraded)
        guard send(ControlMessage(snapshotBegin: begin), timeoutMs: timeoutMs) else { return false }
        for start in stride(from: 0, to: members.count, by: Self.chunk) {
            let lines = members[start..<min(start + Self.chunk, members.count)]
            guard send(ControlMessage(members: Array(lines)), timeoutMs: timeoutMs) else { return false }
        }
        return send(ControlMessage(snapshotEnd: true), timeoutMs: timeoutMs)
    }

    /// Sends changes `chunk` at a time, in order; false when the peer is gone or stuck.
    func sendChanges(_ changes: [RegistryChangeRecord], timeoutMs: Int32 = 1000) -> Bool {
        for start in stride(from: 0, to: changes.count, by: Self.chunk) {
            let lines = changes[start..<min(start + Self.chunk, changes.count)]
            guard send(ControlMessage(changes: Array(lines)), timeoutMs: timeoutMs) else { return false }
        }
        return true
    }

    /// Receives a whole snapshot within `timeoutMs`; nil when it does not come, is cut short, or
    /// holds another number of members than announced.
    func receiveSnapshot(timeoutMs: Int32) -> ReceivedSnapshot? {
        let clock = ContinuousClock()
        let deadline = clock.now + .milliseconds(Int(timeoutMs))
        func next() -> ControlMessage? {
            let left = deadline - clock.now
            guard left > .zero else { return nil }
            let millis = left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000
            guard case .message(let message) = receive(timeoutMs: Int32(clamping: max(1, millis))) else { return nil }
            return message
        }
        guard let first = next(), let begin = first.snapshotBegin, begin.count >= 0 else { return nil }
        var members: [MemberRecord] = []
        members.reserveCapacity(min(begin.count, 1 << 20))
        while let message = next() {
            if message.snapshotEnd == true {
                guard members.count == begin.count else { return nil }
                return ReceivedSnapshot(members: members, status: StatusRecord(degraded: begin.degraded).status)
            }
            guard let lines = message.members, members.count + lines.count <= begin.count else { return nil }
            members += lines
        }
        return nil
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
