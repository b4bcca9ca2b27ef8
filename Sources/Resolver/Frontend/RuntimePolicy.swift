// Frontend/: the part of the config a reload (SIGHUP, POST /v1/reload) replaces while queries
// flow — who may ask, the forward zones and the local zones they override, response rate
// limiting, the per-client caps, the query log — held as one immutable object that every query
// reads with a single atomic load (no lock on the hit path). A replaced object is kept alive for
// a minute, long after any query that loaded it has finished with it, then released.

import NIOCore
import Synchronization

/// The reloadable settings, built from a config.
public final class RuntimePolicy: Sendable {
    public let access: AccessControl
    public let forwardZones: ForwardZones
    /// RFC 6303 zones (recursive mode only).
    let localZones: LocalZones?
    let rateLimiter: ResponseRateLimiter?
    let maxPendingPerClient: Int
    let queryLog: QueryLog?

    init(
        access: AccessControl, forwardZones: ForwardZones, recursive: Bool, rateLimiter: ResponseRateLimiter?,
        maxPendingPerClient: Int, queryLog: QueryLog?
    ) {
        self.access = access
        self.forwardZones = forwardZones
        localZones = recursive ? LocalZones(forwardZones: forwardZones) : nil
        self.rateLimiter = rateLimiter
        self.maxPendingPerClient = maxPendingPerClient
        self.queryLog = queryLog
    }
}

/// An object replaced as a whole and read without locks.
final class Live<Value: AnyObject & Sendable>: Sendable {
    /// The current value's address (as an integer: Atomic wants a Sendable value).
    private let pointer: Atomic<UInt>
    /// The current value, and replaced ones with when they were replaced (kept a minute).
    private let kept: Mutex<(current: Value, retired: [(Value, NIODeadline)])>

    init(_ value: Value) {
        kept = Mutex((value, []))
        pointer = Atomic(Self.address(of: value))
    }

    var current: Value {
        // Never zero (it always holds a kept object's address); the lock is only a formality.
        guard let raw = UnsafeRawPointer(bitPattern: pointer.load(ordering: .acquiring)) else {
            return kept.withLock { $0.current }
        }
        return Unmanaged<Value>.fromOpaque(raw).takeUnretainedValue()
    }

    private static func address(of value: Value) -> UInt {
        UInt(bitPattern: Unmanaged.passUnretained(value).toOpaque())
    }

    func replace(with value: Value, now: NIODeadline = .now()) {
        kept.withLock { kept in
            kept.retired.append((kept.current, now))
            kept.retired.removeAll { now - $0.1 > .seconds(60) }
            kept.current = value
            pointer.store(Self.address(of: value), ordering: .releasing)
        }
    }
}
