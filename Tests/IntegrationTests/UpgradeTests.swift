// A package upgrade replaces resolverd's file on disk while the old version runs: the supervisor
// must keep restarting its workers from the binary it runs, not from a path that now names
// another file or nothing.

import Foundation
import Resolver
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite("Upgrade", .timeLimit(.minutes(2)))
struct UpgradeTests {
    @Test("with its executable deleted from disk, the supervisor still restarts a killed worker")
    func workerRestartAfterUpgrade() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("resolverd-upgrade-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let copy = folder.appendingPathComponent("resolverd").path
        try FileManager.default.copyItem(atPath: Binaries.path("resolverd"), toPath: copy)
        // The daemon runs the copy: the shell drops the original path the harness appends.
        let daemon = try await Daemon(
            config: forwardingConfig([(".", [ServerAddress(ip: .v4(0x7F00_0001), port: 9)])], server: "workers = 1"),
            prefix: ["sh", "-c", "shift; exec \"$0\" \"$@\"", copy])
        let before = try #require(children(of: daemon.process.processIdentifier).first)
        try FileManager.default.removeItem(atPath: copy)  // the upgrade: the old file is gone

        kill(before, SIGKILL)
        var after: Int32?
        try await waitUntil("a new worker", timeout: .seconds(10)) {
            after = children(of: daemon.process.processIdentifier).first { $0 != before }
            return after != nil
        }
        let client = try RawUDPClient(server: daemon.address, receiveTimeoutMs: 1000)
        try await waitUntil("the new worker to answer", timeout: .seconds(10)) {
            try client.ask(query("localhost"))?.rcode == .noError
        }
        #expect(daemon.process.isRunning)
        try await daemon.stop()
    }
}

/// The child processes of `pid`, from /proc.
private func children(of pid: Int32) -> [Int32] {
    let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
    return tasks.flatMap { task -> [Int32] in
        let text = (try? String(contentsOfFile: "/proc/\(pid)/task/\(task)/children", encoding: .utf8)) ?? ""
        return text.split(separator: " ").compactMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
    }
}
