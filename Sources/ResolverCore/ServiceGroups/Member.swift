// ServiceGroups/: what a registration is. A member of a group has an address, maybe a port and a
// service for SRV, a registration TTL, and a health check that runs when that TTL runs out
// without a heartbeat. Times are wall-clock milliseconds since the Unix epoch, because they are
// stored and must mean the same after a restart.

#if canImport(Glibc)
import Glibc
#endif

/// Wall-clock time in milliseconds since 1970 (stored, so not a monotonic clock).
public typealias UnixMillis = Int64

extension UnixMillis {
    /// `self + seconds` seconds, clamped to Int64's range instead of trapping: times and TTLs may
    /// come from a damaged store or a peer, and arithmetic on them must never stop the process.
    public func adding(seconds: Int) -> UnixMillis {
        let (millis, overflow) = Int64(clamping: seconds).multipliedReportingOverflow(by: 1000)
        return adding(millis: overflow ? (seconds < 0 ? .min : .max) : millis)
    }

    /// `self + millis`, clamped to Int64's range.
    public func adding(millis: Int64) -> UnixMillis {
        let (sum, overflow) = addingReportingOverflow(millis)
        return overflow ? (millis < 0 ? .min : .max) : sum
    }

    /// `self - other`, clamped to Int64's range.
    public func since(_ other: UnixMillis) -> Int64 {
        let (difference, overflow) = subtractingReportingOverflow(other)
        return overflow ? (other < 0 ? .max : .min) : difference
    }
}

/// The wall clock, injectable for tests.
public struct WallClock: Sendable {
    public let now: @Sendable () -> UnixMillis

    public init(now: @escaping @Sendable () -> UnixMillis) { self.now = now }

    public static let system = WallClock {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Int64(spec.tv_sec) * 1000 + Int64(spec.tv_nsec) / 1_000_000
    }
}

/// How a member is checked when its TTL runs out.
public struct HealthCheck: Sendable, Equatable {
    public enum Kind: String, Sendable, CaseIterable {
        /// Connect to address:port over TCP.
        case tcp
        /// GET http://address:port/path, expecting a 2xx status.
        case http
        /// No check: the registration simply expires.
        case none
    }

    public var kind: Kind
    /// The HTTP path (http checks only).
    public var path: String?
    public var timeoutMs: Int

    public static let defaultTimeoutMs = 2000

    public init(kind: Kind, path: String? = nil, timeoutMs: Int = HealthCheck.defaultTimeoutMs) {
        self.kind = kind
        self.path = path
        self.timeoutMs = timeoutMs
    }
}

/// The outcome of one check.
public struct CheckResult: Sendable, Equatable {
    public var at: UnixMillis
    public var healthy: Bool
    /// What was seen: "connected", "HTTP 200", "connection refused", "timed out after 2000 ms"…
    public var detail: String

    public init(at: UnixMillis, healthy: Bool, detail: String) {
        self.at = at
        self.healthy = healthy
        self.detail = detail
    }
}

/// A member's place in DNS answers.
public enum MemberHealth: Sendable, Equatable {
    /// Registered or renewed (by heartbeat or a passing check) and in the answers.
    case healthy
    /// Its check failed: out of the answers since `since`, re-checked at `nextCheck`, removed
    /// after `cluster.deregister_after_s`.
    case unhealthy(since: UnixMillis, failures: Int, nextCheck: UnixMillis)
}

/// One registered member of a service group.
public struct Member: Sendable, Equatable {
    /// The group's name: one DNS label, lower case.
    public var group: String
    /// The member's id within the group: one DNS label, lower case.
    public var id: String
    public var address: IPAddress
    /// The port SRV answers carry (and TCP/HTTP checks use).
    public var port: UInt16?
    /// SRV service name: `_<service>._<proto>.<group>.<domain>` finds this member.
    public var service: String?
    /// SRV protocol label: "tcp" or "udp".
    public var proto: String
    public var tags: [String]
    /// The registration TTL in seconds: heartbeats must come at least this often.
    public var ttlSeconds: Int
    public var check: HealthCheck
    public var registeredAt: UnixMillis
    /// When the TTL runs out: then the check runs (or, with `none`, the member is removed).
    public var expiresAt: UnixMillis
    public var health: MemberHealth
    public var lastCheck: CheckResult?

    public init(
        group: String, id: String, address: IPAddress, port: UInt16? = nil, service: String? = nil, proto: String = "tcp",
        tags: [String] = [], ttlSeconds: Int, check: HealthCheck = HealthCheck(kind: .none), registeredAt: UnixMillis,
        health: MemberHealth = .healthy, lastCheck: CheckResult? = nil
    ) {
        self.group = group
        self.id = id
        self.address = address
        self.port = port
        self.service = service
        self.proto = proto
        self.tags = tags
        self.ttlSeconds = ttlSeconds
        self.check = check
        self.registeredAt = registeredAt
        self.expiresAt = registeredAt.adding(seconds: ttlSeconds)
        self.health = health
        self.lastCheck = lastCheck
    }

    public var isHealthy: Bool { health == .healthy }

    /// Whether an SRV question for `_<service>._<proto>` is about this member: its service or
    /// one of its tags names it, the protocol matches, and it has a port.
    public func offers(service name: String, proto wanted: String) -> Bool {
        port != nil && proto == wanted && (service == name || tags.contains(name))
    }
}

/// Names used as groups, ids, services and tags: one DNS label of letters, digits and hyphens
/// (RFC 1123 host name rules), compared in lower case.
public enum ServiceLabel {
    /// The label in lower case, or an error naming `field` when `text` is not a valid label.
    public static func validated(
        _ text: String, field: String, maxLength: Int = DomainName.maxLabelLength
    ) throws(FieldError) -> String {
        guard let label = normalize(text, maxLength: maxLength) else {
            throw FieldError(field, "'\(text)' is not a DNS label (letters, digits, hyphens; 1 to \(maxLength))")
        }
        return label
    }

    /// Services and tags are asked for as `_<label>` (SRV, RFC 2782): one octet less than a label
    /// (fuzzing finding F2: a 63-octet one was accepted and never answered).
    public static let maxServiceLength = DomainName.maxLabelLength - 1

    /// The label in lower case, or nil when `text` is not a valid label of at most `maxLength`.
    public static func normalize(_ text: String, maxLength: Int = DomainName.maxLabelLength) -> String? {
        let bytes = Array(text.utf8)
        guard (1...maxLength).contains(bytes.count), bytes.first != UInt8(ascii: "-"),
            bytes.last != UInt8(ascii: "-")
        else { return nil }
        var lower: [UInt8] = []
        lower.reserveCapacity(bytes.count)
        for byte in bytes {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"):
                lower.append(byte)
            case UInt8(ascii: "A")...UInt8(ascii: "Z"):
                lower.append(byte + 32)
            default:
                return nil
            }
        }
        return String(decoding: lower, as: UTF8.self)
    }
}
