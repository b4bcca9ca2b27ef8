// Packaging: the systemd unit passes `systemd-analyze verify`, and resolverd speaks systemd's
// notification protocol (READY=1 once listening, STOPPING=1 on SIGTERM).

import Foundation
import Resolver
import Testing

@Suite("Packaging", .timeLimit(.minutes(1)))
struct PackagingTests {
    @Test("config/resolverd.service passes systemd-analyze verify")
    func unitVerifies() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/systemd-analyze") else { return }
        let source = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("config/resolverd.service")
        let unit = try String(contentsOf: source, encoding: .utf8)
        #expect(unit.contains("Restart=always") && unit.contains("DynamicUser=yes") && unit.contains("StateDirectory=resolverd"))
        #expect(unit.contains("AmbientCapabilities=CAP_NET_BIND_SERVICE") && unit.contains("ProtectSystem=strict"))
        // verify wants the ExecStart binary to exist: point it at the one just built.
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("unit-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let copy = directory.appendingPathComponent("resolverd.service")
        try unit.replacingOccurrences(of: "/usr/local/bin/resolverd", with: Binaries.path("resolverd"))
            .write(to: copy, atomically: true, encoding: .utf8)
        let result = try runCommand(["systemd-analyze", "verify", copy.path])
        // Outside a booted systemd, verify may warn about the manager; it must not fault the unit.
        let faults = result.stderr.split(separator: "\n").filter { $0.contains("resolverd.service") }
        #expect(faults.isEmpty, "\(result.stderr)")
    }

    @Test("READY=1 once DNS and the API listen, STOPPING=1 on SIGTERM")
    func notifiesSystemd() async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("notify-\(UUID().uuidString).sock").path
        let listener = try UnixDatagramListener(path: path)
        defer { listener.close() }
        let daemon = try await Daemon(
            config: forwardingConfig([(".", [try #require(ServerAddress("127.0.0.1:9"))])]),
            prefix: ["NOTIFY_SOCKET=\(path)"])
        let ready = try #require(listener.receive(timeoutMs: 5000), "no notification")
        #expect(ready.hasPrefix("READY=1\nSTATUS=answering on 127.0.0.1:\(daemon.port)"))
        try await daemon.stop()
        #expect(listener.receive(timeoutMs: 5000) == "STOPPING=1")
    }
}

/// A bound AF_UNIX datagram socket, as systemd's notification socket is.
final class UnixDatagramListener {
    private let descriptor: Int32
    private let path: String

    init(path: String) throws {
        self.path = path
        descriptor = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in path.utf8.enumerated() where index < raw.count - 1 { raw[index] = byte }
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard descriptor >= 0, bound == 0 else { throw POSIXError(.EADDRINUSE) }
    }

    /// The next datagram as text, or nil after `timeoutMs`.
    func receive(timeoutMs: Int) -> String? {
        var timeout = timeval(tv_sec: timeoutMs / 1000, tv_usec: Int((timeoutMs % 1000) * 1000))
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var buffer = [UInt8](repeating: 0, count: 4096)
        let count = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
        return count > 0 ? String(decoding: buffer[0..<count], as: UTF8.self) : nil
    }

    func close() {
        Glibc.close(descriptor)
        unlink(path)
    }
}
