// ServiceGroups/: a small client of etcd's v3 API through its JSON gateway (POST /v3/…, keys and
// values in base64, 64-bit numbers as strings), on AsyncHTTPClient. It does what the shared
// registry needs and no more: ranges, transactions of puts and deletes, leases (grant, keep
// alive, revoke), watches (a streamed response, one JSON object per line) and the election API.
// Endpoints are tried in turn: a request that cannot reach one goes to the next, and the one
// that answered is tried first next time. With a username, the client authenticates and sends
// the token; an expired token is renewed once per request.

import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import Synchronization

/// Why etcd could not do what was asked: a registry error, `unreachable` when no endpoint could
/// be reached (as opposed to etcd refusing the request).
typealias EtcdError = RegistryError

/// One key and its value as etcd returns them.
struct EtcdKeyValue: Sendable {
    var key: String
    var value: [UInt8]
    var modRevision: Int64
    var lease: Int64
}

/// One change a watch reports.
struct EtcdEvent: Sendable {
    var deleted: Bool
    var item: EtcdKeyValue
}

/// What a watch stream delivers.
enum EtcdWatchMessage: Sendable {
    case events([EtcdEvent], revision: Int64)
    /// The revision asked for was compacted away: list again from `revision`.
    case compacted(revision: Int64)
    /// A line of the stream passed `EtcdClient.maxWatchLine`: the stream was dropped unread; list
    /// again (the listing's revision is past the oversized change).
    case oversized
}

final class EtcdClient: Sendable {
    /// The longest watch line buffered: a member's record is a few KB, so only a damaged or
    /// hostile value gets near it (unbounded, it would take the memory of every instance).
    static let maxWatchLine = 4 << 20

    let endpoints: [String]
    private let http: HTTPClient
    private let username: String
    private let password: String
    private let preferred = Atomic<Int>(0)
    private let token = Mutex<String?>(nil)

    init(endpoints: [String], http: HTTPClient, username: String = "", password: String = "") {
        self.endpoints = endpoints
        self.http = http
        self.username = username
        self.password = password
    }

    // MARK: - Keys

    /// Every key starting with `prefix`, and the store's revision they were read at.
    func range(prefix: String) async throws(EtcdError) -> (items: [EtcdKeyValue], revision: Int64) {
        let reply = try await call(
            "/v3/kv/range", ["key": Self.encode(prefix), "range_end": Self.encode(Self.rangeEnd(prefix))])
        let items = (reply["kvs"] as? [[String: Any]] ?? []).compactMap(Self.keyValue)
        return (items, Self.revision(reply))
    }

    /// Puts and deletes in one transaction (all or none); returns the new revision.
    @discardableResult
    func transaction(puts: [(key: String, value: [UInt8], lease: Int64)], deletes: [String]) async throws(EtcdError) -> Int64 {
        var operations: [[String: Any]] = puts.map { put in
            ["request_put": ["key": Self.encode(put.key), "value": Data(put.value).base64EncodedString(), "lease": "\(put.lease)"]]
        }
        operations += deletes.map { ["request_delete_range": ["key": Self.encode($0)]] }
        let reply = try await call("/v3/kv/txn", ["compare": [] as [Any], "success": operations])
        return Self.revision(reply)
    }

    // MARK: - Leases

    /// A new lease of `ttl` seconds; returns its ID.
    func grantLease(ttl: Int) async throws(EtcdError) -> Int64 {
        let reply = try await call("/v3/lease/grant", ["TTL": "\(ttl)"])
        guard let id = Self.int64(reply["ID"]) else { throw EtcdError("lease grant: no ID in the answer") }
        return id
    }

    /// Renews a lease; returns its TTL now (0: the lease is gone).
    func keepAlive(_ lease: Int64) async throws(EtcdError) -> Int {
        let reply = try await call("/v3/lease/keepalive", ["ID": "\(lease)"])
        let result = reply["result"] as? [String: Any] ?? reply
        return Int(Self.int64(result["TTL"]) ?? 0)
    }

    /// Ends a lease and deletes its keys (best effort).
    func revoke(_ lease: Int64) async {
        _ = try? await call("/v3/lease/revoke", ["ID": "\(lease)"])
    }

    // MARK: - Election

    /// Waits until this lease's candidacy for `name` leads; returns the leader key (for resign).
    func campaign(name: String, lease: Int64, value: String) async throws(EtcdError) -> [String: Any] {
        let reply = try await call(
            "/v3/election/campaign",
            ["name": Self.encode(name), "lease": "\(lease)", "value": Self.encode(value)], timeout: nil)
        guard let leader = reply["leader"] as? [String: Any] else { throw EtcdError("campaign: no leader in the answer") }
        return leader
    }

    /// The value of the current leader of `name`, or nil when nobody leads.
    func leader(name: String) async throws(EtcdError) -> String? {
        do {
            let reply = try await call("/v3/election/leader", ["name": Self.encode(name)])
            guard let kv = reply["kv"] as? [String: Any], let value = kv["value"] as? String,
                let bytes = Data(base64Encoded: value)
            else { return nil }
            return String(decoding: bytes, as: UTF8.self)
        } catch where error.message.contains("no leader") {
            return nil
        }
    }

    // MARK: - Watch

    /// Watches every key under `prefix` from `revision` on; messages come until the stream ends
    /// (the connection or the endpoint went away) or an error is thrown.
    func watch(prefix: String, from revision: Int64, _ deliver: (EtcdWatchMessage) async -> Void) async throws(EtcdError) {
        let body: [String: Any] = [
            "create_request": [
                "key": Self.encode(prefix), "range_end": Self.encode(Self.rangeEnd(prefix)), "start_revision": "\(revision)",
            ]
        ]
        let endpoint = endpoints[preferred.load(ordering: .relaxed) % endpoints.count]
        let response: HTTPClientResponse
        do {
            let auth = try await currentToken(for: "/v3/watch")
            response = try await http.execute(try request(endpoint + "/v3/watch", body, token: auth), deadline: .distantFuture)
        } catch {
            rotate(from: endpoint)
            throw EtcdError("watch \(endpoint): \(error)", unreachable: true)
        }
        guard response.status == .ok else {
            if response.status == .unauthorized || response.status == .badRequest { token.withLock { $0 = nil } }
            throw EtcdError("watch \(endpoint): HTTP \(response.status.code)")
        }
        var pending: [UInt8] = []
        do {
            for try await chunk in response.body {
                pending += chunk.readableBytesView
                while let end = pending.firstIndex(of: 0x0A) {
                    let line = Array(pending[..<end])
                    pending.removeSubrange(...end)
                    guard let object = (try? JSONSerialization.jsonObject(with: Data(line))) as? [String: Any] else { continue }
                    if let error = object["error"] as? [String: Any] {
                        let message = error["message"] as? String ?? "error"
                        if message.contains("token") { token.withLock { $0 = nil } }  // fetched again next time
                        throw EtcdError("watch: \(message)")
                    }
                    guard let result = object["result"] as? [String: Any] else { continue }
                    if let compacted = Self.int64(result["compact_revision"]), compacted > 0 {
                        await deliver(.compacted(revision: compacted))
                        return
                    }
                    let events = (result["events"] as? [[String: Any]] ?? []).compactMap { event -> EtcdEvent? in
                        guard let kv = event["kv"] as? [String: Any], let item = Self.keyValue(kv) else { return nil }
                        return EtcdEvent(deleted: event["type"] as? String == "DELETE", item: item)
                    }
                    if !events.isEmpty { await deliver(.events(events, revision: Self.revision(result))) }
                }
                if pending.count > Self.maxWatchLine {
                    await deliver(.oversized)
                    return
                }
            }
        } catch let error as EtcdError {
            throw error
        } catch {
            rotate(from: endpoint)
            throw EtcdError("watch \(endpoint): \(error)", unreachable: true)
        }
        rotate(from: endpoint)
    }

    // MARK: - Requests

    /// POSTs `body` to `path`, trying every endpoint once, starting with the last that answered.
    private func call(_ path: String, _ body: [String: Any], timeout: TimeAmount? = .seconds(5)) async throws(EtcdError)
        -> [String: Any]
    {
        var lastError = EtcdError("no endpoint", unreachable: true)
        let first = preferred.load(ordering: .relaxed)
        for offset in 0..<endpoints.count {
            let index = (first + offset) % endpoints.count
            do {
                let reply = try await post(endpoints[index] + path, body, timeout: timeout, retryAuth: true)
                preferred.store(index, ordering: .relaxed)
                return reply
            } catch {
                lastError = error
                if !error.unreachable { throw error }
            }
        }
        throw lastError
    }

    private func post(_ url: String, _ body: [String: Any], timeout: TimeAmount?, retryAuth: Bool) async throws(EtcdError)
        -> [String: Any]
    {
        let response: HTTPClientResponse
        let bytes: ByteBuffer
        let auth = try await currentToken(for: url)
        do {
            let deadline = timeout.map { NIODeadline.now() + $0 } ?? .distantFuture
            response = try await http.execute(try request(url, body, token: auth), deadline: deadline)
            bytes = try await response.body.collect(upTo: 64 << 20)
        } catch let error as EtcdError {
            throw error
        } catch {
            throw EtcdError("\(url): \(error)", unreachable: true)
        }
        let object = (try? JSONSerialization.jsonObject(with: Data(buffer: bytes))) as? [String: Any] ?? [:]
        guard response.status == .ok else {
            let message = object["message"] as? String ?? object["error"] as? String ?? "HTTP \(response.status.code)"
            if retryAuth, !username.isEmpty, message.contains("token") {
                token.withLock { $0 = nil }
                return try await post(url, body, timeout: timeout, retryAuth: false)
            }
            // An endpoint that is up but not part of a working cluster counts as unreachable.
            let unavailable = response.status == .serviceUnavailable || message.contains("no leader")
                || message.contains("timed out")
            throw EtcdError("\(url): \(message)", unreachable: unavailable)
        }
        return object
    }

    private func request(_ url: String, _ body: [String: Any], token: String?) throws -> HTTPClientRequest {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        if let token { request.headers.add(name: "Authorization", value: token) }
        request.body = .bytes(try JSONSerialization.data(withJSONObject: body))
        return request
    }

    /// The auth token for a request to `url` (nil without a username, and for authenticating
    /// itself); fetched when missing.
    private func currentToken(for url: String) async throws(EtcdError) -> String? {
        guard !username.isEmpty, !url.hasSuffix("/v3/auth/authenticate") else { return nil }
        if let token = token.withLock({ $0 }) { return token }
        try await authenticate()
        return token.withLock { $0 }
    }

    /// Authenticates with the username and password; the token goes into later requests.
    func authenticate() async throws(EtcdError) {
        guard !username.isEmpty else { return }
        let reply = try await call("/v3/auth/authenticate", ["name": username, "password": password])
        guard let value = reply["token"] as? String else { throw EtcdError("authenticate: no token in the answer") }
        token.withLock { $0 = value }
    }

    private func rotate(from endpoint: String) {
        guard let index = endpoints.firstIndex(of: endpoint) else { return }
        preferred.store((index + 1) % endpoints.count, ordering: .relaxed)
    }

    // MARK: - Encoding

    static func encode(_ text: String) -> String { Data(text.utf8).base64EncodedString() }

    /// The end of the range of keys starting with `prefix` (its last byte plus one).
    static func rangeEnd(_ prefix: String) -> String {
        var bytes = Array(prefix.utf8)
        while let last = bytes.last {
            if last < 0xFF {
                bytes[bytes.count - 1] = last + 1
                return String(decoding: bytes, as: UTF8.self)
            }
            bytes.removeLast()
        }
        return "\0"
    }

    static func int64(_ value: Any?) -> Int64? {
        if let text = value as? String { return Int64(text) }
        if let number = value as? NSNumber { return number.int64Value }
        return nil
    }

    static func revision(_ reply: [String: Any]) -> Int64 {
        int64((reply["header"] as? [String: Any])?["revision"]) ?? 0
    }

    static func keyValue(_ object: [String: Any]) -> EtcdKeyValue? {
        guard let key = (object["key"] as? String).flatMap({ Data(base64Encoded: $0) }) else { return nil }
        let value = (object["value"] as? String).flatMap { Data(base64Encoded: $0) } ?? Data()
        return EtcdKeyValue(
            key: String(decoding: key, as: UTF8.self), value: [UInt8](value), modRevision: int64(object["mod_revision"]) ?? 0,
            lease: int64(object["lease"]) ?? 0)
    }
}
