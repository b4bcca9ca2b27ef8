// The daemon as a process: config errors exit 2 naming the key and line; SIGTERM stops it fast.

import FakeDNS
import Foundation
import Resolver
import Testing

@Suite("Daemon", .timeLimit(.minutes(2)))
struct DaemonTests {
    @Test(
        "a bad config exits 2 with the key and line named",
        arguments: [
            ("[server]\nlisten = [\"127.0.0.1:0\"]\nlisen = 1\n", "line 3: server.lisen: unknown key"),
            ("[resolver]\n\ntimeout_ms = \"fast\"\n", "line 3: resolver.timeout_ms: expected an integer"),
            ("[resolver]\ntimeout_ms = 5\n", "line 2: resolver.timeout_ms: must be between 50 and 60000"),
            ("[[forward]]\nzone = \".\"\nservers = [\"192.0.2.300\"]\n", "line 3: forward[1].servers: '192.0.2.300' is not an address"),
            ("[server]\nallow = [\"10.0.0.0/33\"]\n", "line 2: server.allow: '10.0.0.0/33' is not a network"),
            ("[server\n", "line 1: expected ']'"),
            ("[resolver]\nmode = \"iterative\"\n", "line 2: resolver.mode"),
            ("[resolver]\nmode = \"recursive\"\nroot_hints = [\"127.0.0.1:5353\"]\n", "line 3: resolver.root_hints"),
            ("[cluster]\nanswer_ttl_s = -1\n", "line 2: cluster.answer_ttl_s: must be between 0 and 3600"),
            ("[registry]\nbackend = \"mysql\"\n", "line 2: registry.backend: must be \"sqlite\""),
            ("[api]\nlisten = \"0.0.0.0:8053\"\n", "line 2: api.listen: 0.0.0.0:8053 is not a loopback address; set api.tls_certificate"),
            ("[api]\ntoken = \"guessable\"\n", "line 2: api.token: must be at least 16 ASCII characters"),
        ])
    func badConfig(_ text: String, _ expected: String) throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("bad-\(UUID().uuidString).toml")
        try text.write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let result = try runCommand([Binaries.path("resolverd"), "--config", file.path])
        #expect(result.status == 2)
        #expect(result.stderr.contains(expected), "\(result.stderr)")
    }

    @Test("an unusable registry.path leaves DNS up with the registry degraded, the path named in the log")
    func badRegistryPath() async throws {
        // The token file beside the registry cannot be written either: the API is locked (a
        // critical line says so) while DNS answers; a configured token opens it.
        let locked = try await Daemon(
            config: forwardingConfig([(".", [ServerAddress(ip: .v4(0x7F00_0001), port: 9)])])
                + "\n[registry]\npath = \"/proc/resolverd/registry.sqlite\"\n")
        #expect(try RawUDPClient(server: locked.address, receiveTimeoutMs: 1000).ask(query("localhost"))?.rcode == .noError)
        #expect(locked.log.contains("api token file unusable"))
        #expect(try await locked.api.send("GET", "/v1/stats").status == 401)
        try await locked.stop()
        let token = "registry-path-test-token"
        let daemon = try await Daemon(
            config: forwardingConfig([(".", [ServerAddress(ip: .v4(0x7F00_0001), port: 9)])])
                .replacingOccurrences(of: "[api]\n", with: "[api]\ntoken = \"\(token)\"\n")
                + "\n[registry]\npath = \"/proc/resolverd/registry.sqlite\"\n")
        let client = try RawUDPClient(server: daemon.address, receiveTimeoutMs: 1000)
        #expect(try client.ask(query("localhost"))?.rcode == .noError)
        #expect(try client.ask(query("web.cluster.internal"))?.rcode == .servFail)
        #expect(daemon.log.contains("registry.path '/proc/resolverd/registry.sqlite'"), "\(daemon.log)")
        // The reset tries and fails (the path stays unusable): the registry stays degraded.
        #expect(try await APIClient(base: daemon.apiURL, token: token).send("POST", "/v1/registry/reset").status == 503)
        try await daemon.stop()
    }

    @Test("a missing config file exits 2")
    func missingConfig() throws {
        let result = try runCommand([Binaries.path("resolverd"), "--config", "/nonexistent/resolverd.toml"])
        #expect(result.status == 2)
        #expect(result.stderr.contains("/nonexistent/resolverd.toml: cannot read the file"))
    }

    @Test("the shipped config/resolverd.toml is valid")
    func shippedConfig() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let text = try String(contentsOf: root.appendingPathComponent("config/resolverd.toml"), encoding: .utf8)
        let config = try Config.parse(text)
        #expect(config.resolver.mode == .forward)
        #expect(config.server.listen.map(\.description) == ["127.0.0.1:53", "[::1]:53"])
    }

    @Test("--listen overrides server.listen; SIGTERM stops the daemon within a second")
    func listenFlagAndShutdown() async throws {
        let (fake, upstream) = try await Fixtures.upstream()
        let daemon = try await Daemon(
            config: forwardingConfig([(".", [upstream])]), extraArguments: ["--listen", "127.0.0.1:0", "--listen", "[::1]:0"])
        #expect(daemon.addresses.count == 2)
        #expect(daemon.addresses.last?.ip == IPAddress("::1"))
        let v6 = try runCommand(["dig", "@::1", "-p", "\(daemon.addresses[1].port)", "www.example.test", "+short", "+tries=1"])
        #expect(v6.stdout == "192.0.2.10\n")
        let elapsed = try await daemon.stop()
        #expect(elapsed < .seconds(1))
        #expect(daemon.process.terminationStatus == 0)
        await fake.stop()
    }
}
