// The one clock that time-dependent decisions of resolution read: TTLs counted down, cache and
// negative-cache expiry, serve-stale windows, deadlines, back-off — and, for DNSSEC, the wall-clock
// time that signature validity is checked against. Monotonic time stays correct when the wall
// clock jumps; the wall clock is read only where the protocol speaks of calendar time. Tests give
// the resolver a clock they move by hand.

import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// Where resolution reads the time.
public struct ResolverClock: Sendable {
    /// Monotonic time (uptime): every TTL, expiry and deadline.
    public let now: @Sendable () -> NIODeadline
    /// Seconds since the Unix epoch (calendar time): only what the protocol dates, such as
    /// RRSIG inception and expiration.
    public let wallSeconds: @Sendable () -> Int64

    public init(now: @escaping @Sendable () -> NIODeadline, wallSeconds: @escaping @Sendable () -> Int64) {
        self.now = now
        self.wallSeconds = wallSeconds
    }

    /// The system's clocks.
    public static let system = ResolverClock(
        now: { NIODeadline.now() },
        wallSeconds: {
            var spec = timespec()
            clock_gettime(CLOCK_REALTIME, &spec)
            return Int64(spec.tv_sec)
        })
}
