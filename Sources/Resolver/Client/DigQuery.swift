// Client/: what dig-lite does with its words. Parses dig's query syntax
// (`@server -p port name type class +tcp +short …`) into a `DigQuery`, and prints answers in
// dig's shape. In the library, not the executable, so both are unit-tested.

/// One dig-lite query, parsed from dig-style arguments.
public struct DigQuery: Sendable, Equatable {
    public var server: String?
    public var port: UInt16 = 53
    public var name: DomainName = .root
    public var type: RecordType = .a
    public var recordClass: RecordClass = .in
    public var tcp = false
    public var short = false
    public var recursionDesired = true
    public var dnssecOK = false
    public var checkingDisabled = false
    public var edns = true
    /// Seconds to wait for each try (dig's +timeout, default 5).
    public var timeoutSeconds = 5
    /// Tries over UDP before giving up (dig's +tries, default 3).
    public var tries = 3

    public init() {}

    /// A usage error: what was wrong with which word.
    public struct UsageError: Error, Sendable, Equatable, CustomStringConvertible {
        public let message: String
        public var description: String { message }
    }

    /// Parses dig-style words. Names, types and classes may come in any order, as with dig.
    public static func parse(_ words: [String]) throws(UsageError) -> DigQuery {
        var query = DigQuery()
        var nameSeen = false
        var typeSeen = false
        var classSeen = false
        var index = 0
        func value(after flag: String) throws(UsageError) -> String {
            index += 1
            guard index < words.count else { throw UsageError(message: "\(flag) needs a value") }
            return words[index]
        }
        while index < words.count {
            let word = words[index]
            if word.hasPrefix("@") {
                query.server = String(word.dropFirst())
                guard query.server?.isEmpty == false else { throw UsageError(message: "'@' needs a server address") }
            } else if word.hasPrefix("+") {
                try query.applyOption(String(word.dropFirst()))
            } else if word == "-p" {
                let text = try value(after: "-p")
                guard let port = UInt16(text), port > 0 else { throw UsageError(message: "-p: '\(text)' is not a port") }
                query.port = port
            } else if word == "-x" {
                let text = try value(after: "-x")
                guard let reverse = reverseName(text) else { throw UsageError(message: "-x: '\(text)' is not an IP address") }
                query.name = reverse
                query.type = typeSeen ? query.type : .ptr
                nameSeen = true
            } else if word == "-t" {
                let text = try value(after: "-t")
                guard let type = RecordType(mnemonic: text) else { throw UsageError(message: "-t: unknown type '\(text)'") }
                query.type = type
                typeSeen = true
            } else if word == "-c" {
                let text = try value(after: "-c")
                guard let recordClass = RecordClass(mnemonic: text) else {
                    throw UsageError(message: "-c: unknown class '\(text)'")
                }
                query.recordClass = recordClass
            } else if word == "-q" {
                let text = try value(after: "-q")
                guard let name = DomainName(text) else { throw UsageError(message: "-q: '\(text)' is not a domain name") }
                query.name = name
                nameSeen = true
            } else if word.hasPrefix("-") {
                throw UsageError(message: "unknown option '\(word)'")
            } else if !typeSeen, let type = RecordType(mnemonic: word) {
                // As in dig: a word that names a type is the type, the first time.
                query.type = type
                typeSeen = true
            } else if !classSeen, let recordClass = RecordClass(mnemonic: word) {
                query.recordClass = recordClass
                classSeen = true
            } else if !nameSeen {
                guard let name = DomainName(word) else { throw UsageError(message: "'\(word)' is not a domain name") }
                query.name = name
                nameSeen = true
            } else {
                throw UsageError(message: "unexpected '\(word)' (name already given as \(query.name))")
            }
            index += 1
        }
        guard nameSeen || typeSeen else { throw UsageError(message: "no name to look up") }
        return query
    }

    private mutating func applyOption(_ option: String) throws(UsageError) {
        let parts = option.split(separator: "=", maxSplits: 1).map(String.init)
        let key = parts.first ?? ""
        let argument = parts.count > 1 ? parts[1] : nil
        func number(_ range: ClosedRange<Int>) throws(UsageError) -> Int {
            guard let argument, let value = Int(argument), range.contains(value) else {
                throw UsageError(message: "+\(key) needs a number from \(range.lowerBound) to \(range.upperBound)")
            }
            return value
        }
        switch key {
        case "tcp", "vc": tcp = true
        case "notcp", "novc": tcp = false
        case "short": short = true
        case "noshort": short = false
        case "recurse", "rec": recursionDesired = true
        case "norecurse", "norec": recursionDesired = false
        case "dnssec": dnssecOK = true
        case "nodnssec": dnssecOK = false
        case "cd", "cdflag": checkingDisabled = true
        case "nocd", "nocdflag": checkingDisabled = false
        case "edns": edns = true
        case "noedns": edns = false
        case "timeout", "time": timeoutSeconds = try number(1...60)
        case "tries": tries = try number(1...10)
        case "retry": tries = try number(0...9) + 1
        default: throw UsageError(message: "unknown option '+\(option)'")
        }
    }

    /// The reverse-lookup name of an address (RFC 1035 §3.5 in-addr.arpa, RFC 3596 §2.5 ip6.arpa).
    public static func reverseName(_ text: String) -> DomainName? {
        guard let address = IPAddress(text) else { return nil }
        switch address {
        case .v4:
            return DomainName(address.bytes.reversed().map(String.init).joined(separator: ".") + ".in-addr.arpa.")
        case .v6(let bytes):
            let hex = Array("0123456789abcdef")
            let nibbles = bytes.reversed().flatMap { [hex[Int($0 & 0x0F)], hex[Int($0 >> 4)]] }
            return DomainName(nibbles.map(String.init).joined(separator: ".") + ".ip6.arpa.")
        }
    }
}
