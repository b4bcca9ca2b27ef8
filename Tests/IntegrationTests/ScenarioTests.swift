// Recursion scenarios (Tests/Scenarios/*.scn, format in Tests/FakeDNS/Scenario.swift): for each
// file, its scripted authoritative servers on a loopback /24 of their own, the real resolverd
// resolving from their root, and the file's questions asked in order; every reply must meet the
// file's expectations (rcode, answer, authority types, TTL bounds, time, servers left alone).
// bench/scenarios.py asks Unbound the same questions and compares its replies with resolverd's.
// Scenarios that need time to pass or a server to change mid-way are tests of their own below.

import FakeDNS
import Foundation
import Resolver
import Testing

enum Scenarios {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Scenarios")

    /// Every scenario file's name, sorted.
    static let names: [String] = {
        let files = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        return files.filter { $0.hasSuffix(".scn") }.sorted()
    }()

    static func load(_ name: String, layout: HierarchyLayout) throws -> Scenario {
        let text = try String(contentsOf: directory.appendingPathComponent(name), encoding: .utf8)
        return try Scenario(text, address: layout.address)
    }

    /// A recursive resolverd resolving from host 1 of `layout`.
    static func config(layout: HierarchyLayout, queryLoopback: Bool, timeoutMs: Int = 3000) -> String {
        """
        [server]
        listen = ["127.0.0.1:0"]

        [resolver]
        mode = "recursive"
        root_hints = ["\(layout.address(1))"]
        query_loopback = \(queryLoopback)
        timeout_ms = \(timeoutMs)

        [api]
        listen = "127.0.0.1:0"

        [log]
        level = "debug"
        """
    }
}

@Suite("Scenarios", .serialized, .timeLimit(.minutes(3)))
struct ScenarioTests {
    @Test("every scenario file is found")
    func scenariosExist() {
        #expect(Scenarios.names.count >= 13, "found \(Scenarios.names) in \(Scenarios.directory.path)")
    }

    @Test("scenario", arguments: Scenarios.names)
    func scenario(_ name: String) async throws {
        let layout = HierarchyLayout()
        let scenario = try Scenarios.load(name, layout: layout)
        let servers = try await scenario.start(address: layout.address)
        let daemon: Daemon
        do {
            daemon = try await Daemon(config: Scenarios.config(layout: layout, queryLoopback: !scenario.noLoopback))
        } catch {
            for server in servers.values { await server.stop() }
            throw error
        }
        let client = try RawUDPClient(server: daemon.address, receiveTimeoutMs: 12_000)
        let clock = ContinuousClock()
        for query in scenario.queries {
            let message = DNSMessage.query(
                Question(name: query.name, type: query.type), id: UInt16.random(in: 0...UInt16.max),
                dnssecOK: query.dnssecOK)
            let start = clock.now
            let reply = try await offPool { try client.ask(message) }
            let took = clock.now - start
            let asked = "\(name):\(query.line) \(query.name) \(query.type)"
            guard let reply else {
                Issue.record("\(asked): no reply")
                continue
            }
            for failure in query.failures(in: reply) { Issue.record("\(asked): \(failure)\n\(daemon.log)") }
            for expectation in query.expectations {
                switch expectation {
                case .within(let milliseconds):
                    #expect(took < .milliseconds(milliseconds), "\(asked): took \(took)")
                case .silent(let host):
                    #expect(servers[host]?.queryCount == 0, "\(asked): server \(host) was asked \(servers[host]?.questions ?? [])")
                default:
                    break
                }
            }
        }
        try await daemon.stop()
        for server in servers.values { await server.stop() }
    }
}
