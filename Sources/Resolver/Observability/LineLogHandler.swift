// Observability/: log output. One line per event on standard error, which journald and
// `docker logs` both keep: logfmt (`ts=… level=info msg="…" key=value`) by default, or one JSON
// object per line (`log.format = "json"`) for log shippers.

import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A swift-log handler that writes one logfmt or JSON line per event to standard error.
public struct LineLogHandler: LogHandler {
    public enum Format: String, Sendable {
        case logfmt, json
    }

    /// The level every handler follows unless its logger set its own: `log.level`, which a
    /// reload changes for all of them at once.
    public static let sharedLevel = Atomic<UInt8>(levelCode(.info))
    private var ownLevel: Logger.Level?

    public var logLevel: Logger.Level {
        get { ownLevel ?? Self.levels[Int(Self.sharedLevel.load(ordering: .relaxed))] }
        set { ownLevel = newValue }
    }
    public var metadata: Logger.Metadata = [:]
    private let label: String
    private let format: Format

    /// A handler following the shared level (set it with `setSharedLevel`).
    public init(label: String, format: Format = .logfmt) {
        self.label = label
        self.format = format
    }

    private static let levels: [Logger.Level] = [.trace, .debug, .info, .notice, .warning, .error, .critical]

    static func levelCode(_ level: Logger.Level) -> UInt8 { UInt8(levels.firstIndex(of: level) ?? 2) }

    /// Sets the level of every handler that has not been given its own.
    public static func setSharedLevel(_ level: Logger.Level) {
        sharedLevel.store(levelCode(level), ordering: .relaxed)
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata.merging(event.metadata ?? [:]) { $1 }
        if let error = event.error { merged["error"] = "\(error)" }
        let fields = merged.keys.sorted().compactMap { key in merged[key].map { (key, $0.description) } }
        writeStandardError(Self.line(format, timestamp: Self.timestamp(), level: "\(event.level)", message: event.message.description, fields: fields))
    }

    /// One event as a line in `format`, newline included.
    static func line(_ format: Format, timestamp: String, level: String, message: String, fields: [(String, String)]) -> String {
        switch format {
        case .logfmt:
            var line = "ts=\(timestamp) level=\(level) msg=\(quote(message))"
            for (key, value) in fields { line += " \(key)=\(quote(value))" }
            return line + "\n"
        case .json:
            var line = "{\"ts\":\(jsonString(timestamp)),\"level\":\(jsonString(level)),\"msg\":\(jsonString(message))"
            for (key, value) in fields where !["ts", "level", "msg"].contains(key) {
                line += ",\(jsonString(key)):\(jsonString(value))"
            }
            return line + "}\n"
        }
    }

    /// A JSON string literal (RFC 8259 §7): quotes, backslashes and control characters escaped.
    static func jsonString(_ value: String) -> String {
        var escaped = "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": escaped += "\\\""
            case "\\": escaped += "\\\\"
            case "\n": escaped += "\\n"
            case "\r": escaped += "\\r"
            case "\t": escaped += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                escaped += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: escaped.unicodeScalars.append(scalar)
            }
        }
        return escaped + "\""
    }

    /// Quotes a value when it has spaces, quotes, `=` or is empty (logfmt's rule).
    static func quote(_ value: String) -> String {
        let needsQuotes = value.isEmpty || value.contains { $0 == " " || $0 == "\"" || $0 == "=" || $0 == "\n" }
        guard needsQuotes else { return value }
        var escaped = "\""
        for character in value {
            switch character {
            case "\"": escaped += "\\\""
            case "\\": escaped += "\\\\"
            case "\n": escaped += "\\n"
            default: escaped.append(character)
            }
        }
        return escaped + "\""
    }

    /// RFC 3339 UTC time with milliseconds.
    static func timestamp() -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var seconds = now.tv_sec
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func pad(_ value: Int32, _ width: Int) -> String {
            let digits = String(value)
            return String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
        return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))T"
            + "\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2)).\(pad(Int32(now.tv_nsec / 1_000_000), 3))Z"
    }
}

/// Lets a noisy event through at most `perSecond` times a second and counts the rest, so a flood
/// of bad packets cannot flood the log. Confined to one event loop (not thread-safe).
public struct LogRateLimiter {
    private let perSecond: Int
    private var windowStart: UInt64 = 0
    private var used = 0
    /// Events suppressed since the last one let through.
    public private(set) var suppressed = 0

    public init(perSecond: Int) { self.perSecond = perSecond }

    /// True when this event may be logged; then `suppressed` tells how many were skipped before.
    public mutating func allow(nowNanoseconds: UInt64) -> Bool {
        if nowNanoseconds &- windowStart >= 1_000_000_000 {
            windowStart = nowNanoseconds
            used = 0
        }
        guard used < perSecond else {
            suppressed += 1
            return false
        }
        used += 1
        return true
    }

    public mutating func resetSuppressed() { suppressed = 0 }
}

/// Writes `text` to standard error with write(2): one call per line keeps lines whole when
/// several threads write at once, and no shared `FILE*` is touched.
public func writeStandardError(_ text: String) {
    let bytes = Array(text.utf8)
    var offset = 0
    while offset < bytes.count {
        let written = bytes[offset...].withUnsafeBytes { write(STDERR_FILENO, $0.baseAddress, $0.count) }
        if written <= 0 { break }
        offset += written
    }
}
