// API/: who may call the API, checked before any route runs, in this order:
//   1. `Host` must name the listener (its IP and port, `localhost:port`) or an `api.allowed_hosts`
//      name, else 403: a web page that rebinds its own name to 127.0.0.1 sends its name here.
//   2. `Authorization: Bearer <token>` must carry the admin token or a group's token, else 401.
//      A browser cannot add that header to a cross-origin request without a CORS preflight,
//      which this API never grants.
//   3. A group's token may only register, renew and remove members of its group, else 403.
//   4. A request that changes something (POST, PUT, PATCH, DELETE) with a body must say
//      `Content-Type: application/json`; the "simple" types a form can send are a 415.
// The decisions are pure functions of the request's head (tested alone); the middleware applies them.

import Foundation
import HTTPTypes
import Hummingbird
import Synchronization

/// Who a request's token says it is.
public enum APICredential: Sendable, Equatable {
    /// The admin token: everything.
    case admin
    /// A group's token: that group's members' registration, heartbeat and removal only.
    case group(String)
}

/// Why a request is refused before any route runs.
public enum APIRefusal: Error, Sendable, Equatable {
    case wrongHost(String?)
    case unauthenticated
    case outsideGroup(String)
    case unsupportedMediaType(String)

    var status: HTTPResponse.Status {
        switch self {
        case .wrongHost, .outsideGroup: .forbidden
        case .unauthenticated: .unauthorized
        case .unsupportedMediaType: .unsupportedMediaType
        }
    }

    var message: String {
        switch self {
        case .wrongHost(let host):
            "Host '\(host ?? "")' is not this API's address (add the name to api.allowed_hosts)"
        case .unauthenticated:
            "missing or wrong bearer token (Authorization: Bearer <api.token or the token file's>)"
        case .outsideGroup(let group):
            "the token of group '\(group)' may only register, renew and remove that group's members"
        case .unsupportedMediaType(let type):
            "Content-Type '\(type)': a request body must be application/json"
        }
    }
}

/// The tokens, the names the API answers to, and the port it is bound to (known once listening).
public final class APIGuard: Sendable {
    let adminToken: String
    /// Group → its token.
    let groupTokens: [String: String]
    let allowedHosts: [String]
    /// The configured listen address; its port is replaced by the bound one.
    let listen: ServerAddress
    let tls: Bool
    private let boundPort = Atomic<Int>(-1)

    public init(adminToken: String, groupTokens: [String: String] = [:], allowedHosts: [String] = [], listen: ServerAddress, tls: Bool = false) {
        self.adminToken = adminToken
        self.groupTokens = groupTokens
        self.allowedHosts = allowedHosts.map { $0.lowercased() }
        self.listen = listen
        self.tls = tls
    }

    /// Called when the listener is bound (port 0 becomes a real port).
    public func bound(port: Int) { boundPort.store(port, ordering: .relaxed) }

    var port: Int {
        let bound = boundPort.load(ordering: .relaxed)
        return bound >= 0 ? bound : Int(listen.port)
    }

    // MARK: - Decisions (pure)

    /// Whether `host` (the Host header) names this listener.
    func allowsHost(_ host: String?) -> Bool {
        guard let host, let (name, port) = Self.split(host) else { return false }
        guard (port ?? (tls ? 443 : 80)) == self.port else {
            return allowedHosts.contains(host.lowercased())
        }
        if name == "localhost" || allowedHosts.contains(name) || allowedHosts.contains(host.lowercased()) { return true }
        guard let ip = IPAddress(name) else { return false }
        // Bound to every address: any address literal names it (a rebinding page sends a name).
        return listen.ip.isUnspecified || ip == listen.ip
    }

    /// `name` and port of `host:port`, `[v6]:port`, `name` or `[v6]`; the name in lower case,
    /// an IPv6 literal without brackets. Nil when malformed.
    static func split(_ host: String) -> (String, Int?)? {
        let text = host.lowercased()
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return nil }
            let name = String(text[text.index(after: text.startIndex)..<close])
            let rest = text[text.index(after: close)...]
            if rest.isEmpty { return (name, nil) }
            guard rest.hasPrefix(":"), let port = Int(rest.dropFirst()), (0...65_535).contains(port) else { return nil }
            return (name, port)
        }
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        switch parts.count {
        case 1:
            return parts[0].isEmpty ? nil : (text, nil)
        case 2:
            guard !parts[0].isEmpty, let port = Int(parts[1]), (0...65_535).contains(port) else { return nil }
            return (String(parts[0]), port)
        default:
            return nil
        }
    }

    /// The credential `authorization` (the header) carries, or nil. Every token is compared, in
    /// constant time each.
    func credential(_ authorization: String?) -> APICredential? {
        guard let authorization else { return nil }
        let parts = authorization.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return nil }
        let presented = Array(parts[1].utf8)
        var found: APICredential? = nil
        if APIToken.matches(presented, adminToken.utf8) { found = .admin }
        for (group, token) in groupTokens.sorted(by: { $0.key < $1.key }) where APIToken.matches(presented, token.utf8) {
            if found == nil { found = .group(group) }
        }
        return found
    }

    /// Whether `credential` may send `method` (`PUT`, …) to `path`.
    static func permits(_ credential: APICredential, _ method: String, path: String) -> Bool {
        guard case .group(let group) = credential else { return true }
        let segments = path.split(separator: "?", maxSplits: 1).first?.split(separator: "/", omittingEmptySubsequences: false) ?? []
        // "", "v1", "groups", group, "members", id [, "heartbeat"]
        guard segments.count >= 6, segments[0].isEmpty, segments[1] == "v1", segments[2] == "groups",
            segments[3].lowercased() == group, segments[4] == "members", !segments[5].isEmpty
        else { return false }
        switch (method, segments.count) {
        case ("PUT", 6), ("DELETE", 6): return true
        case ("POST", 7): return segments[6] == "heartbeat"
        default: return false
        }
    }

    /// For a request that changes something: nil when its body (if any) is declared JSON, else the
    /// type that is refused. `hasBody`: a Content-Length above 0 or a Transfer-Encoding.
    static func refusedMediaType(_ method: String, contentType: String?, hasBody: Bool) -> String? {
        guard ["POST", "PUT", "PATCH", "DELETE"].contains(method) else { return nil }
        guard let contentType else { return hasBody ? "(none)" : nil }
        let media = contentType.split(separator: ";", maxSplits: 1).first.map {
            $0.trimmingCharacters(in: .whitespaces).lowercased()
        }
        return media == "application/json" ? nil : contentType
    }

    /// All four checks; throws the first refusal.
    func check(_ request: HTTPRequest) throws(APIRefusal) {
        let host = request.authority
        guard allowsHost(host) else { throw .wrongHost(host) }
        guard let credential = credential(request.headerFields[.authorization]) else { throw .unauthenticated }
        guard Self.permits(credential, request.method.rawValue, path: request.path ?? "/") else {
            if case .group(let group) = credential { throw .outsideGroup(group) }
            throw .unauthenticated
        }
        let length = request.headerFields[.contentLength].flatMap { Int($0) } ?? 0
        let hasBody = length > 0 || request.headerFields[.transferEncoding] != nil
        if let refused = Self.refusedMediaType(request.method.rawValue, contentType: request.headerFields[.contentType], hasBody: hasBody) {
            throw .unsupportedMediaType(refused)
        }
    }
}

/// Applies the `APIGuard` to every request.
struct APIGuardMiddleware: RouterMiddleware {
    typealias Context = BasicRequestContext
    let guardian: APIGuard

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do throws(APIRefusal) {
            try guardian.check(request.head)
        } catch {
            var refusal = HTTPError(error.status, message: error.message)
            if error == .unauthenticated { refusal.headers[.wwwAuthenticate] = "Bearer" }
            throw refusal
        }
        return try await next(request, context)
    }
}
