// Support: a network namespace of the test's own, with its own loopback and a resolv.conf
// pointing at 127.0.0.1, so glibc (`getent`) can be aimed at a resolverd on port 53 inside it.
// Nothing inside can reach the outside: its only other link is a veth pair whose both ends stay
// inside.

import Foundation
import Testing

final class NetworkNamespace {
    let name: String
    private let configDirectory: String

    /// Creates the namespace; needs root and iproute2.
    init() throws {
        name = "rdtest\(UInt32.random(in: 0...UInt32.max))"
        configDirectory = "/etc/netns/\(name)"
        try #require(try runCommand(["ip", "netns", "add", name]).status == 0, "needs root and iproute2")
        do {
            try FileManager.default.createDirectory(atPath: configDirectory, withIntermediateDirectories: true)
            try "nameserver 127.0.0.1\noptions timeout:2 attempts:2\n".write(
                toFile: "\(configDirectory)/resolv.conf", atomically: true, encoding: .utf8)
            // Loopback, and a veth pair with a documentation address: getaddrinfo's AI_ADDRCONFIG
            // (used by `getent ahosts`) asks for A only when a non-loopback IPv4 address exists.
            for command in [
                ["ip", "link", "set", "lo", "up"], ["ip", "link", "add", "rd0", "type", "veth", "peer", "name", "rd1"],
                ["ip", "addr", "add", "203.0.113.1/24", "dev", "rd0"], ["ip", "link", "set", "rd0", "up"],
                ["ip", "link", "set", "rd1", "up"],
            ] {
                let result = try run(command)
                try #require(result.status == 0, "\(command): \(result.stderr)")
            }
        } catch {
            remove()
            throw error
        }
    }

    /// The prefix that runs a command inside the namespace.
    var prefix: [String] { ["ip", "netns", "exec", name] }

    /// Runs a command inside the namespace.
    func run(_ command: [String], timeout: Duration = .seconds(20)) throws -> CommandResult {
        try runCommand(prefix + command, timeout: timeout)
    }

    /// Starts a long-running process inside the namespace (stopped by the caller).
    func spawn(_ command: [String], output: URL? = nil) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = prefix + command
        if let output {
            _ = FileManager.default.createFile(atPath: output.path, contents: nil)
            let handle = try FileHandle(forWritingTo: output)
            process.standardOutput = handle
            process.standardError = handle
        } else {
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
        }
        process.standardInput = FileHandle.nullDevice
        try process.run()
        return process
    }

    /// Kills whatever still runs inside (SIGKILL: processes started from the test runner inherit
    /// its blocked SIGTERM, and NSD never unblocks it), then deletes the namespace and its
    /// resolv.conf.
    func remove() {
        let pids = (try? runCommand(["ip", "netns", "pids", name]))?.stdout.split(separator: "\n").compactMap { Int32($0) } ?? []
        for pid in pids { kill(pid, SIGKILL) }
        _ = try? runCommand(["ip", "netns", "del", name])
        try? FileManager.default.removeItem(atPath: configDirectory)
    }
}

extension Process {
    /// SIGTERM, and SIGKILL if it is still running after two seconds (polled: Foundation's
    /// waitUntilExit spins a CPU).
    func stop() {
        guard isRunning else { return }
        terminate()
        for _ in 0..<200 where isRunning { usleep(10_000) }
        if isRunning { kill(processIdentifier, SIGKILL) }
        for _ in 0..<200 where isRunning { usleep(10_000) }
    }
}
