// The API's guard alone: token comparison and generation, the token file, the Host check, group
// scopes and the media types a state-changing request may carry.

import Foundation
import Testing

@testable import Resolver
import WireTestSupport

@Suite("APIToken")
struct APITokenTests {
    @Test(
        "constant-time comparison: equal only when every byte and the length match",
        arguments: [
            ("secret-token-0123", "secret-token-0123", true),
            ("secret-token-0123", "secret-token-0124", false),
            ("Xecret-token-0123", "secret-token-0123", false),
            ("secret-token-012", "secret-token-0123", false),
            ("secret-token-01234", "secret-token-0123", false),
            ("", "secret-token-0123", false),
            ("secret-token-0123", "", false),
            ("", "", true),
            ("secret-token-0123\u{0}", "secret-token-0123", false),
        ])
    func matches(presented: String, expected: String, equal: Bool) {
        #expect(APIToken.matches(Array(presented.utf8), Array(expected.utf8)) == equal)
    }

    @Test("a generated token is 64 hex digits from its generator: a seeded one repeats, the system's does not")
    func random() {
        var first = SplitMix64(seed: 7)
        var second = SplitMix64(seed: 7)
        let token = APIToken.random(using: &first)
        #expect(token.count == 64 && token.allSatisfy(\.isHexDigit))
        #expect(APIToken.random(using: &second) == token)
        #expect(APIToken.random() != APIToken.random())
    }

    @Test("the token file is made 0600 (folder too) and read back unchanged; a file without a token is refused")
    func file() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("token-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("data/api.token").path
        let (token, created) = try APIToken.loadOrCreate(path: path)
        #expect(created && token.count == 64)
        let mode = try #require(FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int)
        #expect(mode == 0o600)
        #expect(!APIToken.isExposed(path))
        let again = try APIToken.loadOrCreate(path: path)
        #expect(again.token == token && !again.created)
        // Nothing else was left in the folder (the temporary file is gone).
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.appendingPathComponent("data").path) == ["api.token"])

        try "short\n".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(throws: APITokenError.self) { try APIToken.loadOrCreate(path: path) }
    }
}

@Suite("APIGuard")
struct APIGuardTests {
    let guardian: APIGuard = {
        let guardian = APIGuard(
            adminToken: "admin-token-0123456789", groupTokens: ["web": "web-token-0123456789", "db": "db-token-0123456789"],
            allowedHosts: ["resolver.example.internal"], listen: ServerAddress(ip: .v4(0x7F00_0001), port: 0))
        guardian.bound(port: 8053)
        return guardian
    }()

    @Test(
        "Host must name the listener: its address and bound port, localhost, or an allowed name",
        arguments: [
            ("127.0.0.1:8053", true), ("localhost:8053", true), ("LOCALHOST:8053", true),
            ("resolver.example.internal:8053", true), ("127.0.0.1:8054", false), ("127.0.0.2:8053", false),
            ("evil.example:8053", false), ("127.0.0.1", false), ("[::1]:8053", false), ("", false),
            ("127.0.0.1:8053:1", false), ("127.0.0.1:80530", false),
        ])
    func host(_ host: String, _ allowed: Bool) {
        #expect(guardian.allowsHost(host) == allowed)
    }

    @Test("no Host at all is refused; an IPv6 listener takes [::1]:port; a listener on every address takes any address literal, never a name")
    func hostVariants() {
        #expect(!guardian.allowsHost(nil))
        let v6 = APIGuard(adminToken: "admin-token-0123456789", listen: ServerAddress(ip: .v6(Array(repeating: 0, count: 15) + [1]), port: 9000))
        #expect(v6.allowsHost("[::1]:9000") && !v6.allowsHost("127.0.0.1:9000") && v6.allowsHost("localhost:9000"))
        let any = APIGuard(adminToken: "admin-token-0123456789", listen: ServerAddress(ip: .v4(0), port: 443), tls: true)
        #expect(any.allowsHost("192.0.2.7:443") && any.allowsHost("192.0.2.7") && !any.allowsHost("rebind.example:443"))
    }

    @Test("the bearer token names the admin, a group, or nobody")
    func credential() {
        #expect(guardian.credential("Bearer admin-token-0123456789") == .admin)
        #expect(guardian.credential("bearer web-token-0123456789") == .group("web"))
        #expect(guardian.credential("Bearer db-token-0123456789") == .group("db"))
        #expect(guardian.credential("Bearer admin-token-012345678") == nil)
        #expect(guardian.credential("Basic admin-token-0123456789") == nil)
        #expect(guardian.credential("admin-token-0123456789") == nil)
        #expect(guardian.credential(nil) == nil)
    }

    @Test("a group's token registers, renews and removes its own group's members only")
    func groupScope() {
        let web = APICredential.group("web")
        #expect(APIGuard.permits(web, "PUT", path: "/v1/groups/web/members/n1"))
        #expect(APIGuard.permits(web, "PUT", path: "/v1/groups/WEB/members/n1"))
        #expect(APIGuard.permits(web, "POST", path: "/v1/groups/web/members/n1/heartbeat"))
        #expect(APIGuard.permits(web, "DELETE", path: "/v1/groups/web/members/n1"))
        #expect(!APIGuard.permits(web, "PUT", path: "/v1/groups/db/members/n1"))
        #expect(!APIGuard.permits(web, "PUT", path: "/v1/groups/web%2Fdb/members/n1"))
        #expect(!APIGuard.permits(web, "GET", path: "/v1/groups/web"))
        #expect(!APIGuard.permits(web, "GET", path: "/v1/groups"))
        #expect(!APIGuard.permits(web, "POST", path: "/v1/cache/flush"))
        #expect(!APIGuard.permits(web, "POST", path: "/v1/reload"))
        #expect(!APIGuard.permits(web, "POST", path: "/v1/groups/web/members/n1"))
        #expect(!APIGuard.permits(web, "PUT", path: "/v1/groups/web/members/n1/heartbeat"))
        #expect(!APIGuard.permits(web, "PUT", path: "/v1/groups/web/members//"))
        #expect(APIGuard.permits(.admin, "POST", path: "/v1/reload"))
    }

    @Test(
        "a state-changing request's body must be declared JSON; the types a form sends are refused",
        arguments: [
            ("POST", "application/json", true, true),
            ("PUT", "application/json; charset=utf-8", true, true),
            ("POST", "Application/JSON", true, true),
            ("POST", "application/x-www-form-urlencoded", true, false),
            ("POST", "multipart/form-data; boundary=x", true, false),
            ("PUT", "text/plain", true, false),
            ("DELETE", "text/plain", false, false),
            ("GET", "text/plain", true, true),
        ])
    func mediaType(_ method: String, _ type: String, _ hasBody: Bool, _ accepted: Bool) {
        #expect((APIGuard.refusedMediaType(method, contentType: type, hasBody: hasBody) == nil) == accepted)
    }

    @Test("no Content-Type: fine without a body, refused with one")
    func noMediaType() {
        #expect(APIGuard.refusedMediaType("POST", contentType: nil, hasBody: false) == nil)
        #expect(APIGuard.refusedMediaType("POST", contentType: nil, hasBody: true) != nil)
    }
}

