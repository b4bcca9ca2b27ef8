// Config/: a TOML reader that remembers the line of every key, so that a bad setting is
// reported as "key 'resolver.timeout_ms' at line 12". It reads the TOML that a config file
// needs (tables, arrays of tables, strings, integers, floats, booleans, arrays, inline tables);
// dotted keys, dates and multi-line strings are rejected with a clear message.

/// A TOML value with the line it was written on.
public indirect enum TOMLValue: Sendable, Equatable {
    case string(String)
    case integer(Int64)
    case float(Double)
    case boolean(Bool)
    case array([TOMLValue])
    case table(TOMLTable)

    /// A word for error messages: "a string", "an integer", ….
    var kind: String {
        switch self {
        case .string: "a string"
        case .integer: "an integer"
        case .float: "a float"
        case .boolean: "a boolean"
        case .array: "an array"
        case .table: "a table"
        }
    }
}

/// A TOML table: keys in file order, each with its value and line.
public struct TOMLTable: Sendable, Equatable {
    public struct Entry: Sendable, Equatable {
        public let key: String
        public var value: TOMLValue
        public let line: Int
    }

    public var entries: [Entry] = []
    /// The line of the `[header]` that opened this table (0 for the top level).
    public var line: Int = 0

    public subscript(key: String) -> Entry? { entries.first { $0.key == key } }

    mutating func set(_ key: String, _ value: TOMLValue, line: Int) throws(TOMLError) {
        guard self[key] == nil else {
            let previous = self[key]?.line ?? line
            throw TOMLError(line: line, message: "key '\(key)' is defined twice (first at line \(previous))")
        }
        entries.append(Entry(key: key, value: value, line: line))
    }
}

/// A syntax error, with its line.
public struct TOMLError: Error, Sendable, Equatable, CustomStringConvertible {
    public let line: Int
    public let message: String
    public var description: String { "line \(line): \(message)" }
}

/// Parses TOML text into a `TOMLTable`.
public struct TOMLParser {
    private var bytes: [UInt8]
    private var offset = 0
    private var line = 1
    /// Arrays and inline tables open around the current value (bounded: no stack overflow).
    private var depth = 0
    static let maxDepth = 32

    public static func parse(_ text: String) throws(TOMLError) -> TOMLTable {
        var parser = TOMLParser(bytes: Array(text.utf8))
        return try parser.document()
    }

    private init(bytes: [UInt8]) { self.bytes = bytes }

    // MARK: Document structure

    /// Where the key/value lines currently go: the top level, `[name]` or the last `[[name]]`.
    private enum Target { case root, table(String), arrayElement(String) }

    private mutating func document() throws(TOMLError) -> TOMLTable {
        var root = TOMLTable()
        var target = Target.root
        while true {
            skipWhitespaceAndComments(newlines: true)
            guard let byte = peek() else { break }
            if byte == UInt8(ascii: "[") {
                let headerLine = line
                advance()
                let isArray = peek() == UInt8(ascii: "[")
                if isArray { advance() }
                skipSpaces()
                let name = try key()
                skipSpaces()
                try expect("]")
                if isArray { try expect("]") }
                try endOfLine()
                if isArray {
                    var element = TOMLTable()
                    element.line = headerLine
                    if let index = root.entries.firstIndex(where: { $0.key == name }) {
                        guard case .array(var elements) = root.entries[index].value,
                            elements.allSatisfy({ if case .table = $0 { true } else { false } })
                        else { throw TOMLError(line: headerLine, message: "'\(name)' is not an array of tables") }
                        elements.append(.table(element))
                        root.entries[index].value = .array(elements)
                    } else {
                        try root.set(name, .array([.table(element)]), line: headerLine)
                    }
                    target = .arrayElement(name)
                } else {
                    var table = TOMLTable()
                    table.line = headerLine
                    try root.set(name, .table(table), line: headerLine)
                    target = .table(name)
                }
                continue
            }
            let keyLine = line
            let name = try key()
            skipSpaces()
            try expect("=")
            skipSpaces()
            let value = try self.value()
            try endOfLine()
            try insert(name, value, line: keyLine, into: &root, target: target)
        }
        return root
    }

    private func insert(_ key: String, _ value: TOMLValue, line: Int, into root: inout TOMLTable, target: Target)
        throws(TOMLError)
    {
        switch target {
        case .root:
            try root.set(key, value, line: line)
        case .table(let name), .arrayElement(let name):
            guard let index = root.entries.firstIndex(where: { $0.key == name }) else { return }
            switch root.entries[index].value {
            case .table(var table):
                try table.set(key, value, line: line)
                root.entries[index].value = .table(table)
            case .array(var elements):
                guard case .table(var table)? = elements.last else { return }
                try table.set(key, value, line: line)
                elements[elements.count - 1] = .table(table)
                root.entries[index].value = .array(elements)
            default:
                return
            }
        }
    }

    // MARK: Keys and values

    private mutating func key() throws(TOMLError) -> String {
        guard let byte = peek() else { throw error("expected a key") }
        var name: String
        if byte == UInt8(ascii: "\"") {
            name = try basicString()
        } else if byte == UInt8(ascii: "'") {
            name = try literalString()
        } else {
            let start = offset
            while let c = peek(), Self.isBareKey(c) { advance() }
            guard offset > start else { throw error("expected a key, found '\(Character(UnicodeScalar(byte)))'") }
            name = String(decoding: bytes[start..<offset], as: UTF8.self)
        }
        skipSpaces()
        if peek() == UInt8(ascii: ".") {
            throw error("dotted keys are not supported here: write '[\(name)]' as a table header instead")
        }
        return name
    }

    private static func isBareKey(_ c: UInt8) -> Bool {
        (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || (c >= 0x30 && c <= 0x39)
            || c == UInt8(ascii: "_") || c == UInt8(ascii: "-")
    }

    private mutating func value() throws(TOMLError) -> TOMLValue {
        guard let byte = peek() else { throw error("expected a value") }
        switch byte {
        case UInt8(ascii: "\""):
            if matches("\"\"\"") { throw error("multi-line strings are not supported") }
            return .string(try basicString())
        case UInt8(ascii: "'"):
            if matches("'''") { throw error("multi-line strings are not supported") }
            return .string(try literalString())
        case UInt8(ascii: "["), UInt8(ascii: "{"):
            // Fuzzing finding F3: unbounded nesting overflowed the stack instead of failing.
            guard depth < Self.maxDepth else { throw error("arrays and tables nested deeper than \(Self.maxDepth)") }
            depth += 1
            defer { depth -= 1 }
            return byte == UInt8(ascii: "[") ? try array() : try inlineTable()
        case UInt8(ascii: "t"), UInt8(ascii: "f"):
            if matches("true") {
                offset += 4
                return .boolean(true)
            }
            if matches("false") {
                offset += 5
                return .boolean(false)
            }
            throw error("expected a value")
        default:
            return try number()
        }
    }

    private mutating func number() throws(TOMLError) -> TOMLValue {
        let start = offset
        while let c = peek(), !Self.isValueEnd(c) { advance() }
        let text = String(decoding: bytes[start..<offset], as: UTF8.self)
        let plain = text.replacingUnderscores()
        guard !plain.isEmpty else { throw error("expected a value") }
        if let integer = Int64(plain) { return .integer(integer) }
        if plain.hasPrefix("0x"), let integer = Int64(plain.dropFirst(2), radix: 16) { return .integer(integer) }
        if plain.contains(where: { $0 == "." || $0 == "e" || $0 == "E" }), let float = Double(plain) {
            return .float(float)
        }
        switch plain {
        case "inf", "+inf": return .float(.infinity)
        case "-inf": return .float(-.infinity)
        case "nan", "+nan", "-nan": return .float(.nan)
        default: throw error("'\(text)' is not a valid value (strings need quotes)")
        }
    }

    private static func isValueEnd(_ c: UInt8) -> Bool {
        c == UInt8(ascii: " ") || c == UInt8(ascii: "\t") || c == UInt8(ascii: "\n") || c == UInt8(ascii: "\r")
            || c == UInt8(ascii: ",") || c == UInt8(ascii: "]") || c == UInt8(ascii: "}") || c == UInt8(ascii: "#")
    }

    private mutating func array() throws(TOMLError) -> TOMLValue {
        advance()  // [
        var elements: [TOMLValue] = []
        while true {
            skipWhitespaceAndComments(newlines: true)
            if peek() == UInt8(ascii: "]") {
                advance()
                return .array(elements)
            }
            elements.append(try value())
            skipWhitespaceAndComments(newlines: true)
            if peek() == UInt8(ascii: ",") {
                advance()
            } else if peek() == UInt8(ascii: "]") {
                advance()
                return .array(elements)
            } else {
                throw error("expected ',' or ']' in an array")
            }
        }
    }

    private mutating func inlineTable() throws(TOMLError) -> TOMLValue {
        advance()  // {
        var table = TOMLTable()
        table.line = line
        skipSpaces()
        if peek() == UInt8(ascii: "}") {
            advance()
            return .table(table)
        }
        while true {
            skipSpaces()
            let keyLine = line
            let name = try key()
            skipSpaces()
            try expect("=")
            skipSpaces()
            try table.set(name, try value(), line: keyLine)
            skipSpaces()
            if peek() == UInt8(ascii: ",") {
                advance()
            } else if peek() == UInt8(ascii: "}") {
                advance()
                return .table(table)
            } else {
                throw error("expected ',' or '}' in an inline table")
            }
        }
    }

    private mutating func basicString() throws(TOMLError) -> String {
        advance()  // "
        var result: [UInt8] = []
        while let c = peek() {
            // Checked before advancing, so the error names the string's own line.
            if c == UInt8(ascii: "\n") { throw error("string is not closed on its line") }
            advance()
            switch c {
            case UInt8(ascii: "\""):
                return String(decoding: result, as: UTF8.self)
            case UInt8(ascii: "\\"):
                guard let escaped = peek() else { throw error("string is not closed") }
                advance()
                switch escaped {
                case UInt8(ascii: "b"): result.append(0x08)
                case UInt8(ascii: "f"): result.append(0x0C)
                case UInt8(ascii: "n"): result.append(0x0A)
                case UInt8(ascii: "t"): result.append(0x09)
                case UInt8(ascii: "r"): result.append(0x0D)
                case UInt8(ascii: "\""), UInt8(ascii: "\\"): result.append(escaped)
                case UInt8(ascii: "u"), UInt8(ascii: "U"):
                    let digits = escaped == UInt8(ascii: "u") ? 4 : 8
                    guard offset + digits <= bytes.count,
                        let code = UInt32(String(decoding: bytes[offset..<(offset + digits)], as: UTF8.self), radix: 16),
                        let scalar = Unicode.Scalar(code)
                    else { throw error("invalid unicode escape") }
                    offset += digits
                    result.append(contentsOf: Array(String(Character(scalar)).utf8))
                default:
                    throw error("unknown escape '\\\(Character(UnicodeScalar(escaped)))'")
                }
            default:
                result.append(c)
            }
        }
        throw error("string is not closed")
    }

    private mutating func literalString() throws(TOMLError) -> String {
        advance()  // '
        let start = offset
        while let c = peek() {
            if c == UInt8(ascii: "'") {
                let text = String(decoding: bytes[start..<offset], as: UTF8.self)
                advance()
                return text
            }
            if c == UInt8(ascii: "\n") { break }
            advance()
        }
        throw error("string is not closed on its line")
    }

    // MARK: Lexing helpers

    private func peek() -> UInt8? { offset < bytes.count ? bytes[offset] : nil }

    private mutating func advance() {
        if offset < bytes.count, bytes[offset] == UInt8(ascii: "\n") { line += 1 }
        offset += 1
    }

    private func matches(_ text: String) -> Bool {
        let pattern = Array(text.utf8)
        return offset + pattern.count <= bytes.count && Array(bytes[offset..<(offset + pattern.count)]) == pattern
    }

    private mutating func expect(_ text: String) throws(TOMLError) {
        guard matches(text) else { throw error("expected '\(text)'") }
        offset += text.utf8.count
    }

    private mutating func skipSpaces() {
        while let c = peek(), c == UInt8(ascii: " ") || c == UInt8(ascii: "\t") { advance() }
    }

    private mutating func skipWhitespaceAndComments(newlines: Bool) {
        while let c = peek() {
            if c == UInt8(ascii: " ") || c == UInt8(ascii: "\t") || c == UInt8(ascii: "\r")
                || (newlines && c == UInt8(ascii: "\n"))
            {
                advance()
            } else if c == UInt8(ascii: "#") {
                while let d = peek(), d != UInt8(ascii: "\n") { advance() }
            } else {
                return
            }
        }
    }

    /// After a key/value pair or a header: only spaces and a comment may follow on the line.
    private mutating func endOfLine() throws(TOMLError) {
        skipWhitespaceAndComments(newlines: false)
        guard let c = peek() else { return }
        guard c == UInt8(ascii: "\n") else { throw error("unexpected text after the value") }
        advance()
    }

    private func error(_ message: String) -> TOMLError { TOMLError(line: line, message: message) }
}

extension String {
    fileprivate func replacingUnderscores() -> String { String(filter { $0 != "_" }) }
}
