// Config/: what one key of the config file is — its name, type, default, allowed values, whether
// a reload applies it, a line of documentation, and where its value goes in `Config`. The table
// of all of them is ConfigSchema.swift; this file has the building blocks.

/// Where a value was read: the dotted key and its line, for errors.
struct ConfigSite: Sendable {
    /// `resolver.timeout_ms`, `forward[2].servers`, `api.group_tokens.web`.
    let key: String
    let line: Int?

    func error(_ message: String) -> ConfigError { ConfigError(key: key, line: line, message: message) }

    /// A key inside this one's table value.
    func child(_ name: String, line: Int) -> ConfigSite {
        ConfigSite(key: key + "." + TOMLParser.display([name]), line: line)
    }
}

/// Whether a reload (SIGHUP, POST /v1/reload) applies a key.
enum ConfigReload: String, Sendable {
    /// Applied at once by a reload.
    case live = "reload"
    /// Kept as it was until a restart; a reload that changes it names it in `restart_needed`.
    case restart = "restart"
}

/// How a key's value is written and checked, and what it becomes: an integer in a range, one of
/// some words, a list of addresses, ….
struct ConfigValueKind<Value: Sendable>: Sendable {
    /// For the reference: "integer", "string", "array of addresses", ….
    let type: String
    /// For the reference: the values allowed beyond the type ("0 to 256"); empty when any goes.
    let allowed: String
    let read: @Sendable (TOMLValue, ConfigSite) throws(ConfigError) -> Value
    /// The value as TOML, for the reference and the check that every default reads back; nil
    /// when TOML cannot write it (an unset optional key).
    let render: @Sendable (Value) -> String?

    /// The same kind with one more rule: `problem` says why a value is refused, or returns nil.
    func checked(_ rule: String, _ problem: @escaping @Sendable (Value) -> String?) -> Self {
        let read = self.read
        return Self(
            type: type, allowed: allowed.isEmpty ? rule : "\(allowed); \(rule)",
            read: { (value, site) throws(ConfigError) -> Value in
                let result = try read(value, site)
                if let message = problem(result) { throw site.error(message) }
                return result
            },
            render: render)
    }

    /// A kind whose values are made from this one's (a string that names a domain, …); `back`
    /// turns one back, for rendering.
    func map<Other: Sendable>(
        type: String? = nil, allowed: String? = nil,
        _ transform: @escaping @Sendable (Value, ConfigSite) throws(ConfigError) -> Other,
        back: @escaping @Sendable (Other) -> Value?
    ) -> ConfigValueKind<Other> {
        let read = self.read
        let render = self.render
        return ConfigValueKind<Other>(
            type: type ?? self.type, allowed: allowed ?? self.allowed,
            read: { (value, site) throws(ConfigError) -> Other in try transform(try read(value, site), site) },
            render: { back($0).flatMap(render) })
    }

    /// The same kind for an optional setting: nil (unset) is the default and cannot be written.
    var optional: ConfigValueKind<Value?> {
        let read = self.read
        let render = self.render
        return ConfigValueKind<Value?>(
            type: type, allowed: allowed, read: { (value, site) throws(ConfigError) -> Value? in try read(value, site) },
            render: { $0.flatMap(render) })
    }
}

// MARK: - The kinds of value

extension ConfigValueKind where Value == Bool {
    static var boolean: Self {
        Self(
            type: "boolean", allowed: "",
            read: { (value, site) throws(ConfigError) -> Bool in
                guard case .boolean(let flag) = value else { throw site.error("expected true or false, found \(value.kind)") }
                return flag
            },
            render: { "\($0)" })
    }
}

extension ConfigValueKind where Value: FixedWidthInteger {
    /// An integer in `range` (both ends included).
    static func integer(_ range: ClosedRange<Int>) -> Self {
        Self(
            type: "integer", allowed: "\(range.lowerBound) to \(range.upperBound)",
            read: { (value, site) throws(ConfigError) -> Value in
                guard case .integer(let number) = value else { throw site.error("expected an integer, found \(value.kind)") }
                guard number >= Int64(range.lowerBound), number <= Int64(range.upperBound), let result = Value(exactly: number)
                else { throw site.error("must be between \(range.lowerBound) and \(range.upperBound), not \(number)") }
                return result
            },
            render: { "\($0)" })
    }
}

extension ConfigValueKind where Value == Double {
    /// A number from 0 to 1 (an integer 0 or 1 is accepted too).
    static var fraction: Self {
        Self(
            type: "float", allowed: "0 to 1",
            read: { (value, site) throws(ConfigError) -> Double in
                let number: Double
                switch value {
                case .float(let float): number = float
                case .integer(let integer): number = Double(integer)
                default: throw site.error("expected a number from 0 to 1, found \(value.kind)")
                }
                guard number >= 0, number <= 1 else { throw site.error("must be between 0 and 1, not \(number)") }
                return number
            },
            render: { "\($0)" })
    }
}

extension ConfigValueKind where Value == String {
    static var string: Self {
        Self(
            type: "string", allowed: "",
            read: { (value, site) throws(ConfigError) -> String in
                guard case .string(let text) = value else { throw site.error("expected a string, found \(value.kind)") }
                return text
            },
            render: { "\"\(TOMLParser.escaped($0))\"" })
    }

    /// One of `words`, as it is written.
    static func oneOf(_ words: [String]) -> Self { choice(words.map { ($0, $0) }) }
}

extension ConfigValueKind where Value: Equatable {
    /// One of some words, each standing for a value.
    static func choice(_ options: [(word: String, value: Value)]) -> Self {
        let words = options.map(\.word)
        let list =
            words.count == 2
            ? "\"\(words[0])\" or \"\(words[1])\"" : "one of \(words.joined(separator: ", "))"
        return ConfigValueKind<String>.string.map(
            allowed: words.map { "`\"\($0)\"`" }.joined(separator: ", "),
            { (text, site) throws(ConfigError) -> Value in
                guard let match = options.first(where: { $0.word == text }) else {
                    throw site.error("must be \(list), not \"\(text)\"")
                }
                return match.value
            },
            back: { value in options.first { $0.value == value }?.word })
    }
}

extension ConfigValueKind where Value: RawRepresentable & Equatable, Value.RawValue == String {
    /// One of `cases`, written as their raw values.
    static func choice(_ cases: [Value]) -> Self { choice(cases.map { ($0.rawValue, $0) }) }
}

extension ConfigValueKind where Value == [String] {
    static var strings: Self {
        Self(
            type: "array of strings", allowed: "",
            read: { (value, site) throws(ConfigError) -> [String] in
                guard case .array(let elements) = value else {
                    throw site.error("expected an array of strings, found \(value.kind)")
                }
                var result: [String] = []
                for element in elements {
                    guard case .string(let text) = element else {
                        throw site.error("expected an array of strings, found \(element.kind) in it")
                    }
                    result.append(text)
                }
                return result
            },
            render: { "[" + $0.map { "\"\(TOMLParser.escaped($0))\"" }.joined(separator: ", ") + "]" })
    }

    /// Strings each of which `problem` accepts (it returns why one is refused, or nil).
    static func strings(each rule: String, _ problem: @escaping @Sendable (String) -> String?) -> Self {
        strings.checked(rule) { texts in texts.lazy.compactMap(problem).first }
    }
}

extension ConfigValueKind where Value == [ServerAddress] {
    /// `IP`, `IP:PORT` or `[IPv6]:PORT` (port 53 when none is given).
    static var addresses: Self {
        ConfigValueKind<[String]>.strings.map(
            type: "array of addresses",
            { (texts, site) throws(ConfigError) -> [ServerAddress] in try addresses(texts, site) },
            back: { $0.map(\.description) })
    }

    static func addresses(_ texts: [String], _ site: ConfigSite) throws(ConfigError) -> [ServerAddress] {
        var result: [ServerAddress] = []
        for text in texts {
            guard let address = ServerAddress(text) else {
                throw site.error("'\(text)' is not an address (IP, IP:PORT or [IPv6]:PORT)")
            }
            result.append(address)
        }
        return result
    }
}

extension ConfigValueKind where Value == ServerAddress {
    /// One address written as a string, `port` when it names none.
    static func address(defaultPort port: UInt16) -> Self {
        ConfigValueKind<String>.string.map(
            type: "address",
            { (text, site) throws(ConfigError) -> ServerAddress in
                guard let address = ServerAddress(text, defaultPort: port) else {
                    throw site.error("'\(text)' is not an address (IP:PORT or [IPv6]:PORT)")
                }
                return address
            },
            back: { $0.description })
    }
}

extension ConfigValueKind where Value == [IPNetwork] {
    /// CIDR networks (`10.0.0.0/8`; a bare address is a host).
    static var networks: Self {
        ConfigValueKind<[String]>.strings.map(
            type: "array of networks",
            { (texts, site) throws(ConfigError) -> [IPNetwork] in
                var result: [IPNetwork] = []
                for text in texts {
                    guard let network = IPNetwork(text) else {
                        throw site.error("'\(text)' is not a network (IP or IP/PREFIX)")
                    }
                    result.append(network)
                }
                return result
            },
            back: { $0.map(\.description) })
    }
}

extension ConfigValueKind where Value == DomainName {
    /// A domain name below the root.
    static var subdomain: Self {
        ConfigValueKind<String>.string.map(
            type: "domain name", allowed: "below the root",
            { (text, site) throws(ConfigError) -> DomainName in
                guard let domain = DomainName(text), !domain.isRoot else {
                    throw site.error("'\(text)' is not a domain name below the root")
                }
                return domain
            },
            back: { $0.description })
    }

    /// Any domain name, the root (".") included.
    static var domain: Self {
        ConfigValueKind<String>.string.map(
            type: "domain name",
            { (text, site) throws(ConfigError) -> DomainName in
                guard !text.isEmpty, let domain = DomainName(text) else {
                    throw site.error("'\(text)' is not a domain name")
                }
                return domain
            },
            back: { $0.description })
    }
}

extension ConfigValueKind where Value == [String: String] {
    /// `{ web = "…", db = "…" }`: a token per group (a DNS label; a token of at least 16
    /// characters; no token shared by two groups). The table may be a `[api.group_tokens]` too.
    static var groupTokens: Self {
        Self(
            type: "table of strings", allowed: "group = token, a token of \(APIToken.minimumLength)+ characters each",
            read: { (value, site) throws(ConfigError) -> [String: String] in
                guard case .table(let table) = value else {
                    throw site.error("expected a table ({ name = \"value\", … }), found \(value.kind)")
                }
                var tokens: [String: String] = [:]
                for entry in table.entries {
                    let entrySite = site.child(entry.key, line: entry.line)
                    guard let group = ServiceLabel.normalize(entry.key) else {
                        throw site.error("'\(entry.key)' is not a group name (a DNS label)")
                    }
                    guard case .string(let token) = entry.value else {
                        throw entrySite.error("expected a string, found \(entry.value.kind)")
                    }
                    guard APIToken.isStrong(token) else {
                        throw entrySite.error("must be at least \(APIToken.minimumLength) ASCII characters without spaces")
                    }
                    guard !tokens.values.contains(token) else { throw entrySite.error("another group has the same token") }
                    tokens[group] = token
                }
                return tokens
            },
            render: { tokens in
                tokens.isEmpty
                    ? "{}"
                    : "{ " + tokens.sorted { $0.key < $1.key }.map { "\($0.key) = \"\(TOMLParser.escaped($0.value))\"" }
                        .joined(separator: ", ") + " }"
            })
    }
}

// MARK: - The key

/// One key of the config file, and where its value goes in `Target` (`Config`, or one
/// `[[forward]]` zone).
struct ConfigKey<Target>: Sendable {
    /// The path from the top of the file: `["resolver", "timeout_ms"]`; in an array of tables,
    /// from its element: `["zone"]`.
    let path: [String]
    let type: String
    let allowed: String
    /// The default as TOML; nil when the key is required or its default is "unset".
    let defaultText: String?
    /// Must be given (in each element of an array of tables).
    let required: Bool
    let reload: ConfigReload
    /// One line for the reference.
    let doc: String
    /// Reads the value (naming `site` on error) into the target.
    let apply: @Sendable (TOMLValue, ConfigSite, inout Target) throws(ConfigError) -> Void
    /// Whether two targets differ in this key.
    let differs: @Sendable (Target, Target) -> Bool
    /// Sets this key of the first target to the second's.
    let keep: @Sendable (inout Target, Target) -> Void

    /// The dotted name: `resolver.timeout_ms`.
    var name: String { TOMLParser.display(path) }

    /// A key whose value goes to `field` of the target. `defaults` gives the default (nil: the
    /// key is required).
    init<Value: Equatable & Sendable>(
        _ name: String, _ field: any WritableKeyPath<Target, Value> & Sendable, _ kind: ConfigValueKind<Value>,
        _ reload: ConfigReload, defaults: Target?, _ doc: String
    ) {
        path = name.split(separator: ".").map(String.init)
        type = kind.type
        allowed = kind.allowed
        defaultText = defaults.flatMap { kind.render($0[keyPath: field]) }
        required = defaults == nil
        self.reload = reload
        self.doc = doc
        let read = kind.read
        apply = { (value, site, target) throws(ConfigError) in target[keyPath: field] = try read(value, site) }
        differs = { $0[keyPath: field] != $1[keyPath: field] }
        keep = { $0[keyPath: field] = $1[keyPath: field] }
    }

    /// A required key whose value goes to an optional `field` of a draft (nil until read).
    init<Value: Equatable & Sendable>(
        required name: String, _ field: any WritableKeyPath<Target, Value?> & Sendable, _ kind: ConfigValueKind<Value>,
        _ reload: ConfigReload, _ doc: String
    ) {
        self.init(name, field, kind.optional, reload, defaults: nil, doc)
    }
}

/// Two keys set together or not at all (a certificate and its key, a user and a password).
struct ConfigKeyPair: Sendable {
    let first: [String]
    let second: [String]
    /// What the two are, for the message: "the API's certificate and its key".
    let what: String
    let isSet: @Sendable (Config) -> (first: Bool, second: Bool)

    init(
        _ first: String, _ firstField: any KeyPath<Config, String> & Sendable, _ second: String,
        _ secondField: any KeyPath<Config, String> & Sendable, _ what: String
    ) {
        self.first = first.split(separator: ".").map(String.init)
        self.second = second.split(separator: ".").map(String.init)
        self.what = what
        isSet = { (!$0[keyPath: firstField].isEmpty, !$0[keyPath: secondField].isEmpty) }
    }

    /// The error when one is set without the other: it names the one set, at its line.
    func check(_ config: Config, _ lines: ConfigLines) throws(ConfigError) {
        let (firstSet, secondSet) = isSet(config)
        guard firstSet != secondSet else { return }
        let names = "\(first.last ?? "") and \(second.last ?? "") go together (\(what))"
        throw lines.site(firstSet ? first : second).error(names)
    }
}

/// A rule across keys (`cache.min_ttl` ≤ `cache.max_ttl`, …), checked once every key is read.
struct ConfigRule: Sendable {
    /// One line for the reference.
    let doc: String
    let check: @Sendable (Config, ConfigLines) throws(ConfigError) -> Void
}

/// The lines the file gave keys and tables on, so that a rule across keys names the right one.
struct ConfigLines: Sendable {
    var lines: [[String]: Int] = [:]

    /// The key `path`: its line, or else the line of the nearest table around it in the file.
    func site(_ path: [String]) -> ConfigSite {
        var prefix = path[...]
        while !prefix.isEmpty {
            if let line = lines[Array(prefix)] { return ConfigSite(key: TOMLParser.display(path), line: line) }
            prefix = prefix.dropLast()
        }
        return ConfigSite(key: TOMLParser.display(path), line: nil)
    }

    func site(_ name: String) -> ConfigSite { site(name.split(separator: ".").map(String.init)) }
}
