// API/: the cache's routes. GET /v1/cache gives its figures; POST /v1/cache/flush removes
// entries (answers, and in recursive mode the delegations and records learned): with no body (or `{}`) all of them, with `{"name": "example.com"}` every type of one
// name, and with `"subtree": true` the name and everything below it.

import Foundation
import Hummingbird

/// `POST /v1/cache/flush`'s body.
public struct FlushRequest: Codable, Sendable {
    public var name: String?
    public var subtree: Bool?

    public init(name: String?, subtree: Bool?) {
        self.name = name
        self.subtree = subtree
    }
}

/// `POST /v1/cache/flush`'s answer.
public struct FlushResponse: ResponseEncodable, Decodable, Sendable {
    public var flushed: Int
}

extension CacheStatistics: ResponseEncodable {}

extension AdminAPI {
    func addCacheRoutes(to router: Router<BasicRequestContext>) {
        let cache = self.cache
        let records = self.records
        if let workers {
            router.get("/v1/cache") { _, _ in await workers.cache() }
            router.post("/v1/cache/flush") { request, _ -> FlushResponse in
                let body = try await request.body.collect(upTo: 4096)
                _ = try Self.flush(from: Data(buffer: body))  // a bad body is a 400 here, not in each worker
                return await workers.flush(body: Array(buffer: body))
            }
            return
        }
        router.get("/v1/cache") { _, _ in cache.statistics() }
        router.post("/v1/cache/flush") { request, _ -> FlushResponse in
            let body = try await request.body.collect(upTo: 4096)
            let flush = try Self.flush(from: Data(buffer: body))
            // Recursion's delegations and records go too, or the next answer would be rebuilt
            // from what the operator just flushed.
            records?.flush(flush)
            return FlushResponse(flushed: cache.flush(flush))
        }
    }

    /// Reads a flush request; a bad one is a 400 naming the field.
    static func flush(from body: Data) throws(HTTPError) -> CacheFlush {
        guard !body.isEmpty else { return .all }
        let request: FlushRequest
        do {
            request = try JSONDecoder().decode(FlushRequest.self, from: body)
        } catch {
            throw HTTPError(.badRequest, message: "body: expected {\"name\": \"example.com\", \"subtree\": true}")
        }
        guard let text = request.name else {
            guard request.subtree != true else { throw HTTPError(.badRequest, message: "subtree: needs a name") }
            return .all
        }
        guard let name = DomainName(text) else { throw HTTPError(.badRequest, message: "name: '\(text)' is not a domain name") }
        return request.subtree == true ? .subtree(name) : .name(name)
    }
}
