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
    static func config(layout: HierarchyLayout, queryLoopback: Bool) -> String {
        layout.config(timeoutMs: 3000, queryLoopback: queryLoopback)
    }
}

@Suite("Scenarios", .serialized, .timeLimit(.minutes(3)))
struct ScenarioTests {
    @Test("every scenario file is found")
    func scenariosExist() {
        #expect(Scenarios.names.count >= 13, "found \(Scenarios.names) in \(Scenarios.directory.path)")
    }

    @Test("scenario", .serialized, arguments: Scenarios.names)
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

@Suite("Scenarios that change while they run", .timeLimit(.minutes(2)))
struct ChangingScenarioTests {
    /// moved.test. is delegated (TTL 2 s) to the server at host 3, whose own NS set says 3600 s.
    static let moved = """
        server 1
        . 3600 IN SOA a.root.test. nobody.invalid. 1 3600 1200 604800 300
        . 86400 IN NS a.root.test.
        a.root.test. 86400 IN A $1
        test. 86400 IN NS ns.test.
        ns.test. 86400 IN A $2
        server 2
        test. 3600 IN SOA ns.test. nobody.invalid. 1 3600 1200 604800 300
        test. 86400 IN NS ns.test.
        ns.test. 86400 IN A $2
        entry *.moved.test. *
        authority
        moved.test. 2 IN NS ns1.moved.test.
        additional
        ns1.moved.test. 2 IN A $3
        server 3
        moved.test. 3600 IN SOA ns1.moved.test. nobody.invalid. 1 3600 1200 604800 300
        moved.test. 3600 IN NS ns1.moved.test.
        ns1.moved.test. 3600 IN A $3
        www.moved.test. 1 IN A 192.0.2.1
        server 4
        moved.test. 3600 IN SOA ns1.moved.test. nobody.invalid. 2 3600 1200 604800 300
        moved.test. 3600 IN NS ns1.moved.test.
        ns1.moved.test. 3600 IN A $4
        www.moved.test. 1 IN A 192.0.2.2
        """

    @Test("a domain moved to new servers: the old delegation goes with the parent's TTL, however long the child's NS TTL")
    func movedDomain() async throws {
        let layout = HierarchyLayout()
        let scenario = try Scenario(Self.moved, address: layout.address)
        let servers = try await scenario.start(address: layout.address)
        let daemon = try await Daemon(config: Scenarios.config(layout: layout, queryLoopback: true))
        let client = try RawUDPClient(server: daemon.address, receiveTimeoutMs: 5_000)
        func ask(_ name: String, _ type: RecordType = .a) async throws -> DNSMessage? {
            let message = try query(name, type)
            return try await offPool { try client.ask(message) }
        }
        #expect(addresses(in: try await ask("www.moved.test.")) == ["192.0.2.1"])
        // The child's own NS set, asked for: authoritative, 3600 s. It must not keep the zone
        // on the old server past the delegation's 2 s (the ghost domain, CVE-2012-1033).
        let ns = try #require(try await ask("moved.test.", .ns))
        #expect(ns.rcode == .noError && ns.answers.contains { $0.type == .ns })
        // The parent moves the zone to host 4.
        let glue = try DNSCodec.record(fromPresentation: "ns1.moved.test. 2 IN A \(layout.address(4))")
        var behavior = try #require(servers[2]).behavior
        behavior.script[0].additionals = [glue]
        servers[2]?.behavior = behavior
        try await waitUntil("www.moved.test. answered by the new server", timeout: .seconds(10), interval: .milliseconds(250)) {
            addresses(in: try await ask("www.moved.test.")) == ["192.0.2.2"]
        }
        try await daemon.stop()
        for server in servers.values { await server.stop() }
    }

    @Test("a record with TTL 0 is answered, never cached: each question goes to the server")
    func zeroTTLIsNeverCached() async throws {
        let layout = HierarchyLayout()
        let text = try String(contentsOf: Scenarios.directory.appendingPathComponent("ttl-extremes.scn"), encoding: .utf8)
        let scenario = try Scenario(text, address: layout.address)
        let servers = try await scenario.start(address: layout.address)
        let daemon = try await Daemon(config: Scenarios.config(layout: layout, queryLoopback: true))
        let client = try RawUDPClient(server: daemon.address, receiveTimeoutMs: 5_000)
        let server = try #require(servers[3])
        for round in 1...3 {
            let message = try query("zero.example.test.")
            let reply = try await offPool { try client.ask(message) }
            #expect(reply?.answers.map(\.ttl) == [0], "round \(round)")
            #expect(server.questions.filter { $0.name.description == "zero.example.test." }.count == round)
        }
        try await daemon.stop()
        for server in servers.values { await server.stop() }
    }
}
