// ServiceGroups/: reading a registration (`PUT /v1/groups/{group}/members/{id}`'s body) into a
// Member, checking every field and naming the first bad one. The body is read as untyped JSON
// first, so a wrong type, an unknown field and an out-of-range value each get their own message.

import Foundation

/// Any JSON value.
public enum JSONValue: Sendable, Equatable, Decodable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    /// Deeper bodies are refused: each level's failed tries cost in proportion to the depth
    /// (fuzzing finding F4: 511 levels took a second of CPU).
    static let maxDepth = 16

    public init(from decoder: any Decoder) throws {
        guard decoder.codingPath.count <= Self.maxDepth else {
            throw DecodingError.dataCorrupted(
                .init(codingPath: decoder.codingPath, debugDescription: "nested deeper than \(Self.maxDepth) levels"))
        }
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Double.self) {
            self = .number(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([JSONValue].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: JSONValue].self))
        }
    }

    var kind: String {
        switch self {
        case .null: "null"
        case .bool: "a boolean"
        case .number: "a number"
        case .string: "a string"
        case .array: "an array"
        case .object: "an object"
        }
    }
}

/// The registration request's rules.
public enum Registration {
    public static let ttlRange = 1...86_400
    public static let timeoutRange = 100...60_000
    public static let maxTags = 32

    /// The member a registration body describes, registered at `now`. `group` and `id` come from
    /// the path.
    public static func member(group: String, id: String, body: Data, now: UnixMillis) throws(FieldError) -> Member {
        let fields: [String: JSONValue]
        do {
            guard case .object(let object) = try JSONDecoder().decode(JSONValue.self, from: body) else {
                throw FieldError("body", "expected a JSON object")
            }
            fields = object
        } catch let error as FieldError {
            throw error
        } catch {
            throw FieldError("body", "not valid JSON")
        }
        return try member(group: group, id: id, fields: fields, now: now)
    }

    /// The member `fields` describe: the one check of a registration, for the API's bodies and for
    /// what is read back from a store or a channel (a damaged record is refused, never trusted).
    public static func member(group: String, id: String, fields: [String: JSONValue], now: UnixMillis) throws(FieldError)
        -> Member
    {
        let group = try ServiceLabel.validated(group, field: "group")
        let id = try ServiceLabel.validated(id, field: "id")
        let known: Set = ["address", "port", "ttl_s", "check", "tags", "service", "proto"]
        if let unknown = fields.keys.sorted().first(where: { !known.contains($0) }) {
            throw FieldError(unknown, "unknown field (known: \(known.sorted().joined(separator: ", ")))")
        }

        guard let addressText = try string(fields, "address") else { throw FieldError("address", "is required") }
        guard let address = IPAddress(addressText) else { throw FieldError("address", "'\(addressText)' is not an IPv4 or IPv6 address") }
        let port = try integer(fields, "port", in: 1...65_535).map { UInt16($0) }
        guard let ttl = try integer(fields, "ttl_s", in: ttlRange) else { throw FieldError("ttl_s", "is required") }
        let service = try string(fields, "service").map { text throws(FieldError) in
            try ServiceLabel.validated(text, field: "service", maxLength: ServiceLabel.maxServiceLength)
        }
        let proto = (try string(fields, "proto") ?? "tcp").lowercased()
        guard proto == "tcp" || proto == "udp" else { throw FieldError("proto", "must be \"tcp\" or \"udp\", not \"\(proto)\"") }
        let tags = try self.tags(fields)
        let check = try self.check(fields, port: port)
        return Member(
            group: group, id: id, address: address, port: port, service: service, proto: proto, tags: tags, ttlSeconds: ttl,
            check: check, registeredAt: now)
    }

    private static func check(_ fields: [String: JSONValue], port: UInt16?) throws(FieldError) -> HealthCheck {
        guard let value = fields["check"], value != .null else { return HealthCheck(kind: .none) }
        guard case .object(let check) = value else { throw FieldError("check", "expected an object, found \(value.kind)") }
        let known: Set = ["type", "path", "timeout_ms"]
        if let unknown = check.keys.sorted().first(where: { !known.contains($0) }) {
            throw FieldError("check.\(unknown)", "unknown field (known: path, timeout_ms, type)")
        }
        guard let kindText = try string(check, "type", path: "check.type") else { throw FieldError("check.type", "is required") }
        guard let kind = HealthCheck.Kind(rawValue: kindText) else {
            throw FieldError("check.type", "must be \"tcp\", \"http\" or \"none\", not \"\(kindText)\"")
        }
        if kind != .none, port == nil { throw FieldError("port", "is required for a \(kind) check") }
        var path = try string(check, "path", path: "check.path")
        if let text = path {
            guard kind == .http else { throw FieldError("check.path", "only an http check has a path") }
            guard text.hasPrefix("/"), text.utf8.count <= 1024, !text.contains(where: { $0.isWhitespace || $0.isNewline })
            else { throw FieldError("check.path", "must start with / and hold no spaces (at most 1024 bytes)") }
        } else if kind == .http {
            path = "/"
        }
        let timeout = try integer(check, "timeout_ms", in: timeoutRange, path: "check.timeout_ms") ?? HealthCheck.defaultTimeoutMs
        return HealthCheck(kind: kind, path: path, timeoutMs: timeout)
    }

    private static func tags(_ fields: [String: JSONValue]) throws(FieldError) -> [String] {
        guard let value = fields["tags"], value != .null else { return [] }
        guard case .array(let elements) = value else { throw FieldError("tags", "expected an array of strings, found \(value.kind)") }
        guard elements.count <= maxTags else { throw FieldError("tags", "at most \(maxTags) tags") }
        var tags: [String] = []
        for (index, element) in elements.enumerated() {
            guard case .string(let text) = element,
                let tag = ServiceLabel.normalize(text, maxLength: ServiceLabel.maxServiceLength)
            else {
                throw FieldError(
                    "tags[\(index)]", "expected a DNS label (letters, digits, hyphens; 1 to \(ServiceLabel.maxServiceLength))")
            }
            if !tags.contains(tag) { tags.append(tag) }
        }
        return tags
    }

    private static func string(_ fields: [String: JSONValue], _ key: String, path: String? = nil) throws(FieldError) -> String? {
        switch fields[key] {
        case nil, .null?: return nil
        case .string(let text)?: return text
        case let value?: throw FieldError(path ?? key, "expected a string, found \(value.kind)")
        }
    }

    private static func integer(
        _ fields: [String: JSONValue], _ key: String, in range: ClosedRange<Int>, path: String? = nil
    ) throws(FieldError) -> Int? {
        let field = path ?? key
        switch fields[key] {
        case nil, .null?:
            return nil
        case .number(let number)?:
            guard number.rounded() == number, number >= Double(range.lowerBound), number <= Double(range.upperBound) else {
                throw FieldError(field, "must be a whole number from \(range.lowerBound) to \(range.upperBound)")
            }
            return Int(number)
        case let value?:
            throw FieldError(field, "expected a number, found \(value.kind)")
        }
    }
}
