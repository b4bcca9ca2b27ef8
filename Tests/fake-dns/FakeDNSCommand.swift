// fake-dns: runs a FakeDNSServer as a process, for bench/ scripts and for tests that need a
// server inside a network namespace. Prints "listening ADDR:PORT" once ready; stops on SIGTERM.

import ArgumentParser
import FakeDNS
import Dispatch
import Resolver

#if canImport(Glibc)
import Glibc
#endif

@main
struct FakeDNSCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fake-dns", abstract: "A fake DNS server with set delays, for tests and benchmarks.")

    @Option(help: "Address to listen on (UDP and TCP).")
    var listen: String = "127.0.0.1:0"

    @Option(name: .customLong("record"), help: "A record in presentation form; repeatable.")
    var records: [String] = []

    @Option(name: .customLong("zone-file"), help: "A file of records in presentation form, one per line.")
    var zoneFile: String?

    @Option(name: .customLong("delay-ms"), help: "Delay before every answer.")
    var delayMs: Int = 0

    @Option(name: .customLong("jitter-ms"), help: "Up to this much more delay, drawn per answer.")
    var jitterMs: Int = 0

    @Option(help: "Share of UDP queries to drop (0-1).")
    var loss: Double = 0

    @Option(name: .customLong("wildcard-a"), help: "Answer A queries for any other name with this address.")
    var wildcardA: String?

    @Flag(name: .customLong("log-arrivals"), help: "Print 'arrival NAME NANOSECONDS' for every query.")
    var logArrivals = false

    @Flag(help: "Read commands from standard input: 'delay MS', 'jitter MS', 'silent on|off', 'count'.")
    var control = false

    @Option(help: "Run every server of a scenario file (Tests/Scenarios/*.scn) instead, on PREFIX<host>:53.")
    var scenario: String?

    @Option(help: "With --scenario: the first three octets of the servers' addresses, as '127.77.1.'.")
    var prefix: String = "127.77.1."

    func run() async throws {
        if let scenario {
            guard let text = readTextFile(scenario) else { throw ValidationError("--scenario: cannot read \(scenario)") }
            let prefix = self.prefix
            let parsed: Scenario
            do {
                parsed = try Scenario(text, address: { prefix + String($0) })
            } catch {
                throw ValidationError("--scenario \(scenario): \(error)")
            }
            let servers = try await parsed.start(address: { prefix + String($0) })
            let addresses = parsed.servers.map { server in
                server.address.map { IPAddress($0)?.isV6 == true ? "[\($0)]:53" : "\($0):53" } ?? "\(prefix)\(server.host):53"
            }
            writeLine("listening \(addresses.joined(separator: " "))")
            await Self.waitForSignal()
            for server in servers.values { await server.stop() }
            return
        }
        guard let address = ServerAddress(listen, defaultPort: 53) else { throw ValidationError("--listen: bad address") }
        var lines = records
        if let zoneFile {
            guard let text = readTextFile(zoneFile) else { throw ValidationError("--zone-file: cannot read \(zoneFile)") }
            lines += text.split(separator: "\n").map(String.init).filter {
                !$0.trimmingCharacters(in: " \t").isEmpty && !$0.hasPrefix(";")
            }
        }
        var behavior = FakeBehavior()
        behavior.delay = .milliseconds(delayMs)
        behavior.jitter = .milliseconds(jitterMs)
        behavior.loss = loss
        if let wildcardA {
            guard let ip = IPAddress(wildcardA), case .v4 = ip else { throw ValidationError("--wildcard-a: not an IPv4 address") }
            behavior.wildcardA = ip.bytes
        }
        let observer: (@Sendable (Question) -> Void)? = logArrivals ? Self.logArrival : nil
        let server = try FakeDNSServer(zone: lines, behavior: behavior, observer: observer)
        let bound = try await server.start(host: address.ip.description, port: Int(address.port))
        writeLine("listening \(bound)")
        if control {
            DispatchQueue.global().async {
                while let line = readLine() {
                    writeLine(Self.apply(line, to: server))
                }
            }
        }
        await Self.waitForSignal()
        await server.stop()
    }

    /// Returns on SIGTERM or SIGINT.
    static func waitForSignal() async {
        signal(SIGTERM, SIG_IGN)
        signal(SIGINT, SIG_IGN)
        let (stream, continuation) = AsyncStream<Void>.makeStream()
        let sources = [SIGTERM, SIGINT].map { signalNumber in
            let source = DispatchSource.makeSignalSource(signal: signalNumber)
            source.setEventHandler { continuation.yield() }
            source.resume()
            return source
        }
        for await _ in stream { break }
        sources.forEach { $0.cancel() }
    }
}

extension FakeDNSCommand {
    /// Prints `arrival NAME NANOSECONDS` (CLOCK_MONOTONIC) for one received question.
    @Sendable static func logArrival(_ question: Question) {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        writeLine("arrival \(question.name) \(Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec))")
    }

    /// Carries out one control command and says what it did.
    static func apply(_ command: String, to server: FakeDNSServer) -> String {
        let words = command.split(separator: " ")
        var behavior = server.behavior
        switch (words.first, words.count > 1 ? words[1] : nil) {
        case ("delay", let value?):
            guard let ms = Int(value) else { return "error: delay MS" }
            behavior.delay = .milliseconds(ms)
        case ("jitter", let value?):
            guard let ms = Int(value) else { return "error: jitter MS" }
            behavior.jitter = .milliseconds(ms)
        case ("silent", let value?):
            behavior.silent = value == "on"
        case ("count", _):
            return "count \(server.queryCount)"
        default:
            return "error: unknown command '\(command)'"
        }
        server.behavior = behavior
        return "ok \(command)"
    }
}

/// Writes one line to standard output with write(2) (no shared FILE buffer to flush).
func writeLine(_ text: String) {
    let bytes = Array((text + "\n").utf8)
    _ = bytes.withUnsafeBytes { write(STDOUT_FILENO, $0.baseAddress, $0.count) }
}

extension String {
    fileprivate func trimmingCharacters(in set: String) -> String {
        var text = Substring(self)
        while let first = text.first, set.contains(first) { text.removeFirst() }
        while let last = text.last, set.contains(last) { text.removeLast() }
        return String(text)
    }
}
