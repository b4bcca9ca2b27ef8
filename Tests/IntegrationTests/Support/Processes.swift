// Support: running the real binaries and real clients (dig, drill, kdig, getent) with deadlines.
// Nothing here sleeps its way to green: every wait polls a condition until a deadline.

import Foundation
import Resolver
import Testing

/// Where `swift build` put resolverd, dig-lite and fake-dns.
enum Binaries {
    static let directory: URL = {
        var candidates: [URL] = []
        if let override = ProcessInfo.processInfo.environment["RESOLVERD_BIN_DIR"] {
            candidates.append(URL(fileURLWithPath: override))
        }
        candidates.append(URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent())
        let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent()
        candidates.append(packageRoot.appendingPathComponent(".build/debug"))
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0.appendingPathComponent("resolverd").path) }
            ?? packageRoot.appendingPathComponent(".build/debug")
    }()

    static func path(_ name: String) -> String { directory.appendingPathComponent(name).path }
}

/// The result of a finished command.
struct CommandResult {
    var status: Int32
    var stdout: String
    var stderr: String
    var elapsed: Duration
}

/// Runs a command to completion, killing it at the deadline.
func runCommand(_ arguments: [String], timeout: Duration = .seconds(20)) throws -> CommandResult {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = arguments
    let out = Pipe()
    let err = Pipe()
    process.standardOutput = out
    process.standardError = err
    process.standardInput = FileHandle.nullDevice
    let clock = ContinuousClock()
    let start = clock.now
    try process.run()
    // Read both pipes while waiting, so a chatty command cannot block on a full pipe.
    let group = DispatchGroup()
    nonisolated(unsafe) var outData = Data()
    nonisolated(unsafe) var errData = Data()
    group.enter()
    DispatchQueue.global().async {
        outData = out.fileHandleForReading.readDataToEndOfFile()
        group.leave()
    }
    group.enter()
    DispatchQueue.global().async {
        errData = err.fileHandleForReading.readDataToEndOfFile()
        group.leave()
    }
    let seconds = Double(timeout.components.seconds) + Double(timeout.components.attoseconds) / 1e18
    if group.wait(timeout: .now() + seconds) == .timedOut {
        process.terminate()
        _ = group.wait(timeout: .now() + 2)
        Issue.record("command timed out after \(timeout): \(arguments.joined(separator: " "))")
    }
    process.waitUntilExit()
    return CommandResult(
        status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
        stderr: String(decoding: errData, as: UTF8.self), elapsed: clock.now - start)
}

/// Polls `condition` until it holds or the deadline passes.
func waitUntil(
    _ description: String, timeout: Duration = .seconds(10), interval: Duration = .milliseconds(20),
    _ condition: () async throws -> Bool
) async throws {
    let clock = ContinuousClock()
    let deadline = clock.now + timeout
    while clock.now < deadline {
        if try await condition() { return }
        try await Task.sleep(for: interval)
    }
    Issue.record("timed out after \(timeout) waiting for \(description)")
    throw WaitTimeout(description: description)
}

struct WaitTimeout: Error, CustomStringConvertible {
    let description: String
}

/// A running `resolverd` started with a config written for the test.
final class Daemon: @unchecked Sendable {
    let process = Process()
    let directory: URL
    let logURL: URL
    private(set) var addresses: [ServerAddress] = []
    /// The HTTP API's address from the readiness line.
    private(set) var apiAddress: ServerAddress?
    /// The generated API token's file (from the `api token` log line); nil when the config set
    /// `api.token`.
    private(set) var tokenFile: String?
    /// The admin token in `tokenFile`.
    private(set) var token: String?

    /// The first listen address (127.0.0.1 with the real port).
    var address: ServerAddress { addresses[0] }
    var port: UInt16 { address.port }

    /// Writes `config` to a temporary file and starts resolverd with it; returns once its
    /// readiness line has been logged. `prefix` runs it under another command (`ip netns exec …`).
    /// The registry (and so the generated API token) lives in the daemon's own temporary folder
    /// unless the config names a registry path or `registryPath` names a file (to restart on the
    /// same registry). Members may be registered on loopback only, unless the config sets
    /// `registry.allowed_networks` itself.
    init(
        config: String, prefix: [String] = [], extraArguments: [String] = [], registryPath: String? = nil,
        environment: [String: String] = [:]
    ) async throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("resolverd-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let configURL = directory.appendingPathComponent("resolverd.toml")
        // Rule 6: nothing leaves loopback. A recursive daemon without root_hints would prime
        // from the real root servers.
        if config.contains("\"recursive\""), !config.contains("root_hints") {
            Issue.record("a recursive test daemon needs root_hints on loopback")
            throw WaitTimeout(description: "a safe config")
        }
        var config = config
        if !config.contains("[registry]") { config += "\n[registry]\n" }
        var registryKeys = ""
        if !config.contains("\npath = ") {
            registryKeys += "path = \"\(registryPath ?? directory.appendingPathComponent("registry.sqlite").path)\"\n"
        }
        if !config.contains("allowed_networks") { registryKeys += "allowed_networks = [\"127.0.0.0/8\", \"::1/128\"]\n" }
        if let table = config.range(of: "[registry]\n") { config.insert(contentsOf: registryKeys, at: table.upperBound) }
        try config.write(to: configURL, atomically: true, encoding: .utf8)
        logURL = directory.appendingPathComponent("resolverd.log")
        _ = FileManager.default.createFile(atPath: logURL.path, contents: nil)
        let log = try FileHandle(forWritingTo: logURL)
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = prefix + [Binaries.path("resolverd"), "--config", configURL.path] + extraArguments
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        process.standardError = log
        process.standardOutput = log
        process.standardInput = FileHandle.nullDevice
        try process.run()
        try await waitUntil("resolverd's readiness line", timeout: .seconds(20)) { [self] in
            if !process.isRunning {
                Issue.record("resolverd exited with \(process.terminationStatus):\n\(self.log)")
                throw WaitTimeout(description: "resolverd exited")
            }
            return readinessAddresses() != nil
        }
        addresses = readinessAddresses() ?? []
        apiAddress = readinessField("api").flatMap { ServerAddress(String($0)) }
        tokenFile = logField("api token", "file").map(String.init)
        token = tokenFile.flatMap { try? String(contentsOfFile: $0, encoding: .utf8) }?
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The API's base URL (`http://127.0.0.1:PORT`).
    var apiURL: String { "http://\(apiAddress?.description ?? "127.0.0.1:8053")" }

    /// A client of the API with the admin token.
    var api: APIClient { APIClient(base: apiURL, token: token) }

    /// dig-lite's arguments to reach this daemon's API with its token file.
    var adminArguments: [String] { ["--api", apiURL] + (tokenFile.map { ["--token-file", $0] } ?? []) }

    /// Everything resolverd has logged so far.
    var log: String { (try? String(contentsOf: logURL, encoding: .utf8)) ?? "" }

    private func readinessAddresses() -> [ServerAddress]? {
        readinessField("dns").map { $0.split(separator: ",").compactMap { ServerAddress(String($0)) } }
    }

    /// A `key=value` field of the `msg=listening` line (or a key of it in a JSON log).
    private func readinessField(_ key: String) -> Substring? { logField("listening", key) }

    /// A `key=value` field of the first line with message `message` (logfmt or JSON).
    func logField(_ message: String, _ key: String) -> Substring? {
        let logfmt = message.contains(" ") ? "msg=\"\(message)\"" : "msg=\(message)"
        for line in log.split(separator: "\n") where line.contains("\"msg\":\"\(message)\"") {
            let object = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any]
            if let value = object?[key] as? String { return Substring(value) }
        }
        for line in log.split(separator: "\n") where line.contains(logfmt) {
            guard let field = line.split(separator: " ").first(where: { $0.hasPrefix("\(key)=") }) else { continue }
            return field.dropFirst(key.count + 1)
        }
        return nil
    }

    /// Sends SIGTERM and waits for the exit; returns how long it took. Signal and wait run on a
    /// thread of their own: the cooperative pool may be busy with other tests' blocking calls,
    /// which would add their delays to the measurement.
    @discardableResult
    func stop() async throws -> Duration {
        guard process.isRunning else { return .zero }
        let pid = process.processIdentifier
        let elapsed: Duration? = await withCheckedContinuation { continuation in
            Thread.detachNewThread {
                let clock = ContinuousClock()
                let start = clock.now
                kill(pid, SIGTERM)
                while clock.now - start < .seconds(5) {
                    // Exited means a zombie or gone, as /proc tells it.
                    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                        stat.split(separator: ")").last?.split(separator: " ").first != "Z"
                    else {
                        continuation.resume(returning: clock.now - start)
                        return
                    }
                    usleep(1000)
                }
                continuation.resume(returning: nil)
            }
        }
        guard let elapsed else {
            kill(pid, SIGKILL)
            process.waitUntilExit()
            Issue.record("resolverd did not exit within 5 s of SIGTERM:\n\(log)")
            throw WaitTimeout(description: "resolverd to exit")
        }
        process.waitUntilExit()
        try? FileManager.default.removeItem(at: directory)
        return elapsed
    }

    /// SIGKILL: no chance to flush or close anything.
    func kill9() {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }
}

/// A config that forwards zones to the given servers, listening on loopback port 0.
func forwardingConfig(
    _ zones: [(zone: String, servers: [ServerAddress])], timeoutMs: Int = 1000, server: String = "",
    resolver: String = "", cache: String = ""
) -> String {
    var text = """
        [server]
        listen = ["127.0.0.1:0"]
        \(server)

        [resolver]
        mode = "forward"
        timeout_ms = \(timeoutMs)
        \(resolver)

        [cache]
        \(cache)

        [api]
        listen = "127.0.0.1:0"

        [log]
        level = "debug"

        """
    for (zone, servers) in zones {
        text += """

            [[forward]]
            zone = "\(zone)"
            servers = [\(servers.map { "\"\($0)\"" }.joined(separator: ", "))]

            """
    }
    return text
}
