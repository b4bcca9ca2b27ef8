// Observability/: the systemd notification protocol (sd_notify(3)), hand-written because it is
// one datagram: `READY=1` once DNS and the API are listening (the unit's `Type=notify`), and
// `WATCHDOG=1` at half the unit's `WatchdogSec` while the process keeps running its tasks.
// Without $NOTIFY_SOCKET (not under systemd) every call does nothing.

import CBatchIO  // <sys/socket.h> as C declares it (socket types)

#if canImport(Glibc)
import Glibc
#endif

/// Messages to the service manager.
public enum SystemdNotify {
    /// Sends `state` (`READY=1`, `STATUS=…`, `WATCHDOG=1`) to $NOTIFY_SOCKET; false when there is
    /// none or it cannot be reached.
    @discardableResult
    public static func send(_ state: String) -> Bool {
        guard let pointer = getenv("NOTIFY_SOCKET") else { return false }
        var path = Array(String(cString: pointer).utf8)
        guard !path.isEmpty else { return false }
        // "@name" is Linux's abstract namespace: a leading zero byte instead of the "@".
        if path[0] == UInt8(ascii: "@") { path[0] = 0 }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard path.count < capacity else { return false }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in path.enumerated() { raw[index] = byte }
        }
        let descriptor = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { return false }
        defer { close(descriptor) }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + path.count)
        let message = Array(state.utf8)
        let sent = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { socketAddress in
                message.withUnsafeBytes { sendto(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL), socketAddress, length) }
            }
        }
        return sent == message.count
    }

    /// How often to send `WATCHDOG=1`: half of $WATCHDOG_USEC, when the unit asks for it (and
    /// $WATCHDOG_PID, if set, is this process).
    public static var watchdogInterval: Duration? {
        guard let text = getenv("WATCHDOG_USEC").map({ String(cString: $0) }), let microseconds = Int64(text),
            microseconds > 0
        else { return nil }
        if let pid = getenv("WATCHDOG_PID").map({ String(cString: $0) }), pid != String(getpid()) { return nil }
        return .microseconds(microseconds / 2)
    }
}
