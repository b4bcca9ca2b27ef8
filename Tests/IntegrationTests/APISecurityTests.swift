// The API's defences end to end, each attacked: no token (a generated one is required), a wrong
// Host (DNS rebinding), a form's content type (a cross-site POST), a group's token used on
// another group, member addresses outside registry.allowed_networks (health checks aimed at a
// metadata service or a loopback daemon), a stored member outside them, and HTTPS. Every address
// registered is loopback; the refused ones are refused before anything could be sent to them.

import Foundation
import Resolver
import Testing

/// A daemon config whose [api] table gets `api` and [registry] table gets `registry`.
private func securityConfig(api: String = "", registry: String = "") -> String {
    groupsConfig(api: api) + (registry.isEmpty ? "" : "\n[registry]\n\(registry)\n")
}

/// `curl` for what URLSession will not send (another Host header, HTTPS with a private CA); the
/// status code, "000" when no HTTP answer came.
private func curlStatus(_ url: String, headers: [String] = [], extra: [String] = []) throws -> String {
    let result = try runCommand(
        ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5"] + headers.flatMap { ["-H", $0] } + extra + [url])
    return result.stdout
}

@Suite("APISecurity", .timeLimit(.minutes(2)))
struct APISecurityTests {
    @Test("no api.token: one is generated (0600, beside the registry) and required; dig-lite finds it alone; a restart keeps it")
    func generatedToken() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("api-token-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        let registry = folder.appendingPathComponent("data/registry.sqlite").path
        let daemon = try await Daemon(config: groupsConfig(), registryPath: registry)
        let file = try #require(daemon.tokenFile)
        #expect(file == folder.appendingPathComponent("data/api.token").path)
        let mode = try #require(FileManager.default.attributesOfItem(atPath: file)[.posixPermissions] as? Int)
        #expect(mode == 0o600)
        let token = try #require(daemon.token)
        #expect(token.count == 64 && token.allSatisfy(\.isHexDigit))

        var anonymous = daemon.api
        anonymous.token = nil
        #expect(try await anonymous.send("GET", "/v1/groups").status == 401)
        #expect(try await anonymous.send("POST", "/v1/cache/flush").status == 401)
        #expect(try await anonymous.send("POST", "/v1/reload").status == 401)
        #expect(try await anonymous.send("PUT", "/v1/groups/web/members/n1", body: #"{"address": "127.0.0.1", "ttl_s": 5}"#).status == 401)
        anonymous.token = String(token.dropLast()) + (token.last == "0" ? "1" : "0")
        #expect(try await anonymous.send("GET", "/v1/groups").status == 401)
        #expect(try await daemon.api.send("GET", "/v1/groups").status == 200)

        // dig-lite run from the folder resolverd runs in reads data/api.token by itself.
        let digLite = Binaries.path("dig-lite")
        let found = try runCommand(["-C", folder.path, digLite, "register", "web", "n1", "127.0.0.1", "--api", daemon.apiURL])
        #expect(found.status == 0, "\(found.stderr)")
        let fromEnvironment = try runCommand(["RESOLVERD_TOKEN=\(token)", digLite, "groups", "--api", daemon.apiURL])
        #expect(fromEnvironment.status == 0 && fromEnvironment.stdout.contains("web"), "\(fromEnvironment.stderr)")
        let without = try runCommand(["-C", FileManager.default.temporaryDirectory.path, digLite, "groups", "--api", daemon.apiURL])
        #expect(without.status == 1 && without.stderr.contains("401"), "\(without.stderr)")
        try await daemon.stop()

        let again = try await Daemon(config: groupsConfig(), registryPath: registry)
        #expect(again.token == token)
        #expect(again.log.contains("created=false"))
        try await again.stop()
    }

    @Test("a Host header that is not the listener's address or an allowed name is a 403 (DNS rebinding)")
    func host() async throws {
        let daemon = try await Daemon(config: securityConfig(api: #"allowed_hosts = ["resolver.test"]"#))
        let port = try #require(daemon.apiAddress?.port)
        let url = daemon.apiURL + "/v1/groups"
        let bearer = "Authorization: Bearer \(try #require(daemon.token))"
        #expect(try curlStatus(url, headers: [bearer]) == "200")
        #expect(try curlStatus(url, headers: [bearer, "Host: localhost:\(port)"]) == "200")
        #expect(try curlStatus(url, headers: [bearer, "Host: resolver.test:\(port)"]) == "200")
        #expect(try curlStatus(url, headers: [bearer, "Host: rebound.attacker.example:\(port)"]) == "403")
        #expect(try curlStatus(url, headers: [bearer, "Host: 127.0.0.1:\(port + 1)"]) == "403")
        #expect(try curlStatus(url, headers: [bearer, "Host: rebound.attacker.example"]) == "403")
        // Refused before the token is even looked at.
        #expect(try curlStatus(url, headers: ["Host: rebound.attacker.example:\(port)"]) == "403")
        try await daemon.stop()
    }

    @Test("a state-changing request with a form's content type is a 415, even with the token; JSON passes")
    func formContentType() async throws {
        let daemon = try await Daemon(config: groupsConfig())
        let api = daemon.api
        for type in ["application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "text/plain"] {
            let flush = try await api.send("POST", "/v1/cache/flush", body: "{}", headers: ["Content-Type": type])
            #expect(flush.status == 415, "\(type): \(flush.status) \(flush.message)")
            let register = try await api.send(
                "PUT", "/v1/groups/web/members/n1", body: #"{"address": "127.0.0.1", "ttl_s": 5}"#, headers: ["Content-Type": type])
            #expect(register.status == 415, "\(type)")
        }
        #expect(try await api.send("GET", "/v1/groups/web").status == 404, "nothing was registered")
        #expect(try await api.send("POST", "/v1/cache/flush", body: "{}").status == 200)
        #expect(try await api.send("POST", "/v1/reload").status == 200, "no body needs no content type")
        try await daemon.stop()
    }

    @Test("a group's token registers, renews and removes its own members; anything else is a 403")
    func groupToken() async throws {
        let daemon = try await Daemon(config: securityConfig(api: #"group_tokens = { web = "web-token-0123456789" }"#))
        let web = APIClient(base: daemon.apiURL, token: "web-token-0123456789")
        let body = #"{"address": "127.0.0.1", "ttl_s": 60}"#
        #expect(try await web.send("PUT", "/v1/groups/web/members/n1", body: body).status == 201)
        #expect(try await web.send("POST", "/v1/groups/web/members/n1/heartbeat").status == 200)
        #expect(try await web.send("PUT", "/v1/groups/db/members/n1", body: body).status == 403)
        #expect(try await web.send("DELETE", "/v1/groups/db/members/n1").status == 403)
        #expect(try await web.send("GET", "/v1/groups").status == 403)
        #expect(try await web.send("POST", "/v1/cache/flush").status == 403)
        #expect(try await web.send("POST", "/v1/reload").status == 403)
        #expect(try await daemon.api.send("PUT", "/v1/groups/db/members/n1", body: body).status == 201, "the admin token may")
        #expect(try await web.send("DELETE", "/v1/groups/web/members/n1").status == 204)
        try await daemon.stop()
    }

    @Test(
        "a member address outside registry.allowed_networks is a 400 naming `address`, before anything is stored or checked",
        arguments: ["169.254.169.254", "10.0.0.1", "::ffff:169.254.169.254", "224.0.0.1", "fe80::1", "0.0.0.0", "127.0.0.2"])
    func refusedAddress(_ address: String) async throws {
        // Loopback allowed, but only 127.0.0.1: 127.0.0.2 is refused too.
        let daemon = try await Daemon(config: securityConfig(registry: #"allowed_networks = ["127.0.0.1/32", "::1/128"]"#))
        let response = try await daemon.api.send(
            "PUT", "/v1/groups/web/members/n1",
            body: #"{"address": "\#(address)", "port": 80, "ttl_s": 1, "check": {"type": "http", "timeout_ms": 100}}"#)
        #expect(response.status == 400)
        #expect(response.message.hasPrefix("address: "), "\(response.message)")
        #expect(try await daemon.api.send("GET", "/v1/groups/web").status == 404)
        try await daemon.stop()
    }

    @Test("a stored member outside registry.allowed_networks is skipped at start (and logged), the others load")
    func storedOutside() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("stored-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        let registry = folder.appendingPathComponent("registry.sqlite").path
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let wide = try await Daemon(config: securityConfig(registry: #"allowed_networks = ["127.0.0.0/8"]"#), registryPath: registry)
        try await wide.api.register("web", "inside", #"{"address": "127.0.0.1", "ttl_s": 600}"#)
        try await wide.api.register("web", "outside", #"{"address": "127.0.9.9", "ttl_s": 600}"#)
        try await wide.stop()

        let narrow = try await Daemon(
            config: securityConfig(registry: #"allowed_networks = ["127.0.0.1/32"]"#), registryPath: registry)
        let members = try await narrow.api.send("GET", "/v1/groups/web").json["members"] as? [[String: Any]] ?? []
        #expect(members.compactMap { $0["id"] as? String } == ["inside"])
        #expect(narrow.log.contains("stored member skipped") && narrow.log.contains("id=outside"), "\(narrow.log)")
        let reply = try RawUDPClient(server: narrow.address).ask(query("web.cluster.internal."))
        #expect(reply?.answers.map(\.rdata) == [[127, 0, 0, 1]])
        try await narrow.stop()
    }

    @Test("with api.tls_certificate and api.tls_key the API speaks HTTPS only")
    func tls() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let certificate = folder.appendingPathComponent("api.pem").path
        let key = folder.appendingPathComponent("api.key").path
        let made = try runCommand([
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key,
            "-out", certificate, "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ])
        try #require(made.status == 0, "\(made.stderr)")
        let daemon = try await Daemon(
            config: securityConfig(api: "tls_certificate = \"\(certificate)\"\ntls_key = \"\(key)\""))
        let address = try #require(daemon.apiAddress)
        let bearer = "Authorization: Bearer \(try #require(daemon.token))"
        #expect(try curlStatus("https://\(address)/v1/groups", headers: [bearer], extra: ["--cacert", certificate]) == "200")
        #expect(try curlStatus("https://\(address)/v1/groups", extra: ["--cacert", certificate]) == "401")
        #expect(try curlStatus("http://\(address)/v1/groups", headers: [bearer]) != "200", "no plain HTTP")
        try await daemon.stop()
    }
}
