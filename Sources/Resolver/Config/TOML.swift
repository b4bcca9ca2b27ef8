// Config/: a TOML 1.0 reader that remembers the line of every key, so that a bad setting is
// reported as "key 'resolver.timeout_ms' at line 12". It reads the whole language: bare, quoted
// and dotted keys, `[a.b]` tables and `[[a.b]]` arrays of tables, basic and literal strings on one
// line or several, integers (decimal, hex, octal, binary), floats, booleans, offset and local
// date-times, dates and times, arrays over several lines, inline tables, and it enforces the
// rules on defining a key or a table twice.
//
// Why not a library: TOMLKit (toml++) reports positions only for syntax errors, not for the
// values it returns, and the config must name the line of a bad value; it would also add a C++
// build. The reader is small, bounded (nesting depth) and fuzzed (Fuzz/fuzz-config).

/// A TOML value. The line of a value is kept by the table entry that holds it.
public indirect enum TOMLValue: Sendable, Equatable {
    case string(String)
    case integer(Int64)
    case float(Double)
    case boolean(Bool)
    /// An offset date-time, a local date-time, a local date or a local time.
    case dateTime(TOMLDateTime)
    case array([TOMLValue])
    case table(TOMLTable)

    /// A word for error messages: "a string", "an integer", ….
    var kind: String {
        switch self {
        case .string: "a string"
        case .integer: "an integer"
        case .float: "a float"
        case .boolean: "a boolean"
        case .dateTime(let value): value.kind
        case .array: "an array"
        case .table: "a table"
        }
    }
}

/// A TOML date and time value: an offset date-time (`1979-05-27T07:32:00Z`), a local date-time
/// (no offset), a local date (`1979-05-27`) or a local time (`07:32:00.5`).
public struct TOMLDateTime: Sendable, Equatable, CustomStringConvertible {
    public struct Date: Sendable, Equatable {
        public var year: Int
        public var month: Int
        public var day: Int
    }

    public struct Time: Sendable, Equatable {
        public var hour: Int
        public var minute: Int
        public var second: Int
        /// Fractional seconds, truncated to nanoseconds.
        public var nanosecond: Int = 0
    }

    public var date: Date?
    public var time: Time?
    /// Minutes east of UTC (`Z`: 0); nil for a local value.
    public var offsetMinutes: Int?

    var kind: String {
        switch (date, time, offsetMinutes) {
        case (.some, .some, .some): "an offset date-time"
        case (.some, .some, nil): "a local date-time"
        case (.some, nil, _): "a local date"
        default: "a local time"
        }
    }

    /// RFC 3339 text: `1979-05-27T07:32:00.5-07:00`.
    public var description: String {
        var text = ""
        if let date {
            text += Self.digits(date.year, 4) + "-" + Self.digits(date.month, 2) + "-" + Self.digits(date.day, 2)
        }
        if let time {
            if date != nil { text += "T" }
            text += Self.digits(time.hour, 2) + ":" + Self.digits(time.minute, 2) + ":" + Self.digits(time.second, 2)
            if time.nanosecond > 0 {
                var fraction = Self.digits(time.nanosecond, 9)
                while fraction.hasSuffix("0") { fraction.removeLast() }
                text += "." + fraction
            }
        }
        if let offsetMinutes {
            if offsetMinutes == 0 {
                text += "Z"
            } else {
                let magnitude = abs(offsetMinutes)
                text += (offsetMinutes < 0 ? "-" : "+") + Self.digits(magnitude / 60, 2) + ":" + Self.digits(magnitude % 60, 2)
            }
        }
        return text
    }

    private static func digits(_ value: Int, _ count: Int) -> String {
        let text = String(value)
        return String(repeating: "0", count: max(0, count - text.count)) + text
    }
}

/// A TOML table: keys in file order, each with its value and line.
public struct TOMLTable: Sendable, Equatable {
    public struct Entry: Sendable, Equatable {
        public let key: String
        public var value: TOMLValue
        /// The line of the key (for a table: of the header or the first dotted key that made it).
        public let line: Int
    }

    public var entries: [Entry] = []
    /// The line of the `[header]` that opened this table (0 for the top level; for a table made
    /// by dotted keys, the line of the first of them; for an inline table, the line of its `{`).
    public var line: Int = 0

    public subscript(key: String) -> Entry? { entries.first { $0.key == key } }
}

/// A syntax error, with its line.
public struct TOMLError: Error, Sendable, Equatable, CustomStringConvertible {
    public let line: Int
    public let message: String
    public var description: String { "line \(line): \(message)" }
}

/// Parses TOML text into a `TOMLTable`.
public struct TOMLParser {
    private let bytes: [UInt8]
    private var offset = 0
    private var line = 1
    /// Arrays and inline tables open around the current value (bounded: no stack overflow).
    private var depth = 0
    /// At most this many arrays and inline tables inside each other, and at most this many
    /// tables from the top to a key.
    static let maxDepth = 32

    public static func parse(_ text: String) throws(TOMLError) -> TOMLTable {
        var parser = TOMLParser(bytes: Array(text.utf8))
        return try parser.document()
    }

    private init(bytes: [UInt8]) { self.bytes = bytes }

    // MARK: Document structure

    private mutating func document() throws(TOMLError) -> TOMLTable {
        let root = Node(line: 0)
        // Where key/value lines go: the top level, the last `[name]` or the last `[[name]]` element.
        var current = root
        var currentPath: [String] = []
        // Tables that dotted keys made or added to in the current section: once the section ends
        // they are defined, and neither a header nor another section's dotted keys may reopen them.
        var dotted: [Node] = []
        while true {
            try skipBlankLines()
            guard let byte = peek() else { break }
            if byte == UInt8(ascii: "[") {
                for node in dotted { node.defined = true }
                dotted = []
                (current, currentPath) = try header(root)
            } else {
                try keyValue(into: current, path: currentPath, dotted: &dotted)
                try endOfLine()
            }
        }
        return root.freeze()
    }

    /// `[a.b]` or `[[a.b]]`: the table that the following key/value lines fill.
    private mutating func header(_ root: Node) throws(TOMLError) -> (Node, [String]) {
        let headerLine = line
        advance()  // [
        let isArray = peek() == UInt8(ascii: "[")
        if isArray { advance() }
        skipSpaces()
        let path = try key()
        guard path.count <= Self.maxDepth else { throw error("tables nested deeper than \(Self.maxDepth)") }
        skipSpaces()
        try expect("]")
        if isArray { try expect("]") }
        try endOfLine(after: "the header")
        var node = root
        for index in path.indices.dropLast() {
            node = try descend(node, path[index], path: path[...index], line: headerLine)
        }
        let name = Self.display(path)
        guard let last = path.last else { throw TOMLError(line: headerLine, message: "expected a key") }
        if isArray {
            let element = Node(line: headerLine)
            element.defined = true
            switch node[last] {
            case nil:
                node[last] = .tables([element], line: headerLine)
            case .tables(var elements, let line):
                elements.append(element)
                node[last] = .tables(elements, line: line)
            case .table(let table):
                throw TOMLError(line: headerLine, message: "'\(name)' is not an array of tables (it is a table, line \(table.line))")
            case .value(let value, let line):
                throw TOMLError(
                    line: headerLine,
                    message: "'\(name)' is not an array of tables (it is \(value.kind) at line \(line), which cannot be extended)")
            }
            return (element, path)
        }
        switch node[last] {
        case nil:
            let table = Node(line: headerLine)
            table.defined = true
            node[last] = .table(table)
            return (table, path)
        case .table(let table):
            // Made on the way to a deeper header (`[a.b]` makes `a`): this defines it.
            guard !table.defined else {
                throw TOMLError(line: headerLine, message: "table '\(name)' is defined twice (first at line \(table.line))")
            }
            table.defined = true
            table.line = headerLine
            return (table, path)
        case .tables(_, let line):
            throw TOMLError(
                line: headerLine, message: "table '\(name)' is defined twice (first as [[\(name)]] at line \(line))")
        case .value(let value, let line):
            throw TOMLError(
                line: headerLine, message: "table '\(name)' is defined twice (first as \(value.kind) at line \(line))")
        }
    }

    /// The table `part` of `node` on the way to a header, made when missing.
    private func descend(_ node: Node, _ part: String, path: ArraySlice<String>, line: Int) throws(TOMLError) -> Node {
        switch node[part] {
        case nil:
            let table = Node(line: line)
            node[part] = .table(table)
            return table
        case .table(let table):
            return table
        case .tables(let elements, _):
            // `[[a]]` then `[a.b]`: b goes in a's last element.
            guard let last = elements.last else { throw TOMLError(line: line, message: "'\(Self.display(path))' is empty") }
            return last
        case .value(let value, let valueLine):
            throw TOMLError(line: line, message: Self.notExtendable(Self.display(path), value, line: valueLine))
        }
    }

    /// `key = value` (the key may be dotted) into `table`, whose path from the top is `prefix`.
    private mutating func keyValue(into table: Node, path prefix: [String], dotted: inout [Node]) throws(TOMLError) {
        let keyLine = line
        let parts = try key()
        guard prefix.count + parts.count <= Self.maxDepth else {
            throw error("tables nested deeper than \(Self.maxDepth)")
        }
        skipSpaces()
        try expect("=")
        skipSpaces()
        // The structure is checked before the value is read, so that errors name the key's line.
        var node = table
        for index in parts.indices.dropLast() {
            let path = prefix + parts[...index]
            switch node[parts[index]] {
            case nil:
                let made = Node(line: keyLine)
                node[parts[index]] = .table(made)
                dotted.append(made)
                node = made
            case .table(let existing):
                guard !existing.defined else {
                    throw error(
                        "cannot add to table '\(Self.display(path))' with a dotted key: it is defined at line \(existing.line)")
                }
                dotted.append(existing)
                node = existing
            case .tables(_, let line):
                throw error(
                    "cannot add to the array of tables '\(Self.display(path))' (line \(line)) with a dotted key")
            case .value(let value, let line):
                throw error(Self.notExtendable(Self.display(path), value, line: line))
            }
        }
        guard let last = parts.last else { throw error("expected a key") }
        if let existing = node[last] {
            throw error("key '\(Self.display(prefix + parts))' is defined twice (first at line \(existing.line))")
        }
        let value = try self.value()
        node[last] = .value(value, line: keyLine)
    }

    private static func notExtendable(_ name: String, _ value: TOMLValue, line: Int) -> String {
        if case .table = value { return "cannot extend the inline table '\(name)' (line \(line))" }
        return "'\(name)' is \(value.kind) (line \(line)), not a table"
    }

    /// A key as written, for messages: `a.b`, `site."google.com"`.
    static func display(_ path: some Collection<String>) -> String {
        path.map { part in
            !part.isEmpty && part.utf8.allSatisfy(isBareKey) ? part : "\"" + escaped(part) + "\""
        }.joined(separator: ".")
    }

    // MARK: Keys

    /// A key: one or more parts separated by dots.
    private mutating func key() throws(TOMLError) -> [String] {
        var parts: [String] = []
        while true {
            parts.append(try simpleKey())
            skipSpaces()
            guard peek() == UInt8(ascii: ".") else { return parts }
            advance()
            skipSpaces()
        }
    }

    private mutating func simpleKey() throws(TOMLError) -> String {
        guard let byte = peek() else { throw error("expected a key") }
        if byte == UInt8(ascii: "\"") {
            if matches("\"\"\"") { throw error("a key cannot be a multi-line string") }
            return try basicString()
        }
        if byte == UInt8(ascii: "'") {
            if matches("'''") { throw error("a key cannot be a multi-line string") }
            return try literalString()
        }
        let start = offset
        while let c = peek(), Self.isBareKey(c) { advance() }
        guard offset > start else {
            if byte == UInt8(ascii: "\n") || byte == UInt8(ascii: "\r") { throw error("expected a key") }
            throw error("expected a key, found '\(Character(Unicode.Scalar(byte)))'")
        }
        return String(decoding: bytes[start..<offset], as: UTF8.self)
    }

    private static func isBareKey(_ c: UInt8) -> Bool {
        (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || (c >= 0x30 && c <= 0x39)
            || c == UInt8(ascii: "_") || c == UInt8(ascii: "-")
    }

    // MARK: Values

    private mutating func value() throws(TOMLError) -> TOMLValue {
        guard let byte = peek() else { throw error("expected a value") }
        switch byte {
        case UInt8(ascii: "\""):
            return .string(matches("\"\"\"") ? try multilineString(literal: false) : try basicString())
        case UInt8(ascii: "'"):
            return .string(matches("'''") ? try multilineString(literal: true) : try literalString())
        case UInt8(ascii: "["), UInt8(ascii: "{"):
            // Fuzzing finding F3: unbounded nesting overflowed the stack instead of failing.
            guard depth < Self.maxDepth else { throw error("arrays and tables nested deeper than \(Self.maxDepth)") }
            depth += 1
            defer { depth -= 1 }
            return byte == UInt8(ascii: "[") ? try array() : try inlineTable()
        case UInt8(ascii: "t"), UInt8(ascii: "f"):
            if let flag = word(["true": true, "false": false]) { return .boolean(flag) }
            return try scalar()
        default:
            return try scalar()
        }
    }

    /// `true` or `false` when the text here is one of `words` followed by the end of the value.
    private mutating func word(_ words: [String: Bool]) -> Bool? {
        for (text, flag) in words where matches(text) {
            let end = offset + text.utf8.count
            if end == bytes.count || Self.isValueEnd(bytes[end]) {
                offset = end
                return flag
            }
        }
        return nil
    }

    /// A number, a date or a time, read as one token up to the end of the value.
    private mutating func scalar() throws(TOMLError) -> TOMLValue {
        let start = offset
        while let c = peek(), !Self.isValueEnd(c) { advance() }
        // `1979-05-27 07:32:00`: a space may stand between the date and the time.
        if offset - start == 10, bytes[start + 4] == UInt8(ascii: "-"), offset + 3 < bytes.count,
            bytes[offset] == UInt8(ascii: " "), Self.isDigit(bytes[offset + 1]), Self.isDigit(bytes[offset + 2]),
            bytes[offset + 3] == UInt8(ascii: ":")
        {
            advance()
            while let c = peek(), !Self.isValueEnd(c) { advance() }
        }
        let token = Array(bytes[start..<offset])
        let text = String(decoding: token, as: UTF8.self)
        guard !token.isEmpty else { throw error("expected a value") }
        if token.count >= 5, token[4] == UInt8(ascii: "-"), token.prefix(4).allSatisfy(Self.isDigit) {
            guard let value = Self.dateTime(token) else { throw error("'\(text)' is not a valid date or date-time") }
            return .dateTime(value)
        }
        if token.count >= 3, token[2] == UInt8(ascii: ":"), token.prefix(2).allSatisfy(Self.isDigit) {
            guard let time = Self.time(token[...]), time.rest.isEmpty else { throw error("'\(text)' is not a valid time") }
            return .dateTime(TOMLDateTime(time: time.time))
        }
        return try number(token, text: text)
    }

    private func number(_ token: [UInt8], text: String) throws(TOMLError) -> TOMLValue {
        var rest = token[...]
        var sign = ""
        if let first = rest.first, first == UInt8(ascii: "+") || first == UInt8(ascii: "-") {
            sign = first == UInt8(ascii: "-") ? "-" : ""
            rest = rest.dropFirst()
        }
        switch String(decoding: rest, as: UTF8.self) {
        case "inf": return .float(sign.isEmpty ? .infinity : -.infinity)
        case "nan": return .float(.nan)
        default: break
        }
        let invalid = TOMLError(line: line, message: "'\(text)' is not a valid value")
        guard let first = rest.first else { throw invalid }
        guard Self.isDigit(first) else {
            throw TOMLError(line: line, message: "expected a value, found '\(text)' (strings need quotes)")
        }
        // 0x, 0o, 0b: no sign; underscores between digits.
        if rest.count > 2, first == UInt8(ascii: "0"), let radix = Self.radix(rest[rest.index(after: rest.startIndex)]) {
            guard sign.isEmpty, token.first != UInt8(ascii: "+") else {
                throw TOMLError(line: line, message: "'\(text)' is not a valid value (no sign before 0x, 0o or 0b)")
            }
            guard let digits = Self.digits(rest.dropFirst(2), radix: radix) else { throw invalid }
            guard let value = Int64(digits, radix: radix) else {
                throw TOMLError(line: line, message: "'\(text)' is not a valid value (past 64 bits)")
            }
            return .integer(value)
        }
        // Decimal: an integer part without leading zeros, then a fraction and/or an exponent.
        var integerPart = rest
        var fraction: ArraySlice<UInt8>? = nil
        var exponent: ArraySlice<UInt8>? = nil
        if let e = rest.firstIndex(where: { $0 == UInt8(ascii: "e") || $0 == UInt8(ascii: "E") }) {
            exponent = rest[(e + 1)...]
            integerPart = rest[..<e]
        }
        if let dot = integerPart.firstIndex(of: UInt8(ascii: ".")) {
            fraction = integerPart[(dot + 1)...]
            integerPart = integerPart[..<dot]
        }
        guard let whole = Self.digits(integerPart, radix: 10) else { throw invalid }
        guard whole == "0" || !whole.hasPrefix("0") else {
            throw TOMLError(line: line, message: "'\(text)' is not a valid value (leading zeros)")
        }
        var plain = sign + whole
        if let fraction {
            guard let digits = Self.digits(fraction, radix: 10) else { throw invalid }
            plain += "." + digits
        }
        if var exponent {
            var exponentSign = ""
            if let first = exponent.first, first == UInt8(ascii: "+") || first == UInt8(ascii: "-") {
                exponentSign = first == UInt8(ascii: "-") ? "-" : ""
                exponent = exponent.dropFirst()
            }
            guard let digits = Self.digits(exponent, radix: 10) else { throw invalid }
            plain += "e" + exponentSign + digits
        }
        if fraction == nil, exponent == nil {
            guard let value = Int64(plain) else {
                throw TOMLError(line: line, message: "'\(text)' is not a valid value (past 64 bits)")
            }
            return .integer(value)
        }
        guard let value = Double(plain) else { throw invalid }
        return .float(value)
    }

    private static func radix(_ c: UInt8) -> Int? {
        switch c {
        case UInt8(ascii: "x"): 16
        case UInt8(ascii: "o"): 8
        case UInt8(ascii: "b"): 2
        default: nil
        }
    }

    /// The digits of `text` without underscores, when every underscore stands between two digits.
    private static func digits(_ text: ArraySlice<UInt8>, radix: Int) -> String? {
        var result: [UInt8] = []
        var previousWasDigit = false
        for c in text {
            if c == UInt8(ascii: "_") {
                guard previousWasDigit else { return nil }
                previousWasDigit = false
                continue
            }
            guard isDigit(c, radix: radix) else { return nil }
            result.append(c)
            previousWasDigit = true
        }
        guard previousWasDigit else { return nil }
        return String(decoding: result, as: UTF8.self)
    }

    private static func isDigit(_ c: UInt8) -> Bool { c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") }

    private static func isDigit(_ c: UInt8, radix: Int) -> Bool {
        switch radix {
        case 16: isDigit(c) || (c >= UInt8(ascii: "a") && c <= UInt8(ascii: "f")) || (c >= UInt8(ascii: "A") && c <= UInt8(ascii: "F"))
        case 8: c >= UInt8(ascii: "0") && c <= UInt8(ascii: "7")
        case 2: c == UInt8(ascii: "0") || c == UInt8(ascii: "1")
        default: isDigit(c)
        }
    }

    private static func isValueEnd(_ c: UInt8) -> Bool {
        c == UInt8(ascii: " ") || c == UInt8(ascii: "\t") || c == UInt8(ascii: "\n") || c == UInt8(ascii: "\r")
            || c == UInt8(ascii: ",") || c == UInt8(ascii: "]") || c == UInt8(ascii: "}") || c == UInt8(ascii: "#")
    }

    // MARK: Dates and times (RFC 3339 as TOML 1.0 takes it)

    /// `YYYY-MM-DD`, optionally followed by `T` (or `t`, or a space) and a time, optionally with
    /// an offset (`Z`, `+hh:mm`, `-hh:mm`).
    private static func dateTime(_ token: [UInt8]) -> TOMLDateTime? {
        guard token.count >= 10, let year = decimal(token[0..<4]), token[4] == UInt8(ascii: "-"),
            let month = decimal(token[5..<7]), token[7] == UInt8(ascii: "-"), let day = decimal(token[8..<10]),
            (1...12).contains(month), day >= 1, day <= daysIn(month: month, year: year)
        else { return nil }
        var value = TOMLDateTime(date: TOMLDateTime.Date(year: year, month: month, day: day))
        if token.count == 10 { return value }
        let separator = token[10]
        guard separator == UInt8(ascii: "T") || separator == UInt8(ascii: "t") || separator == UInt8(ascii: " "),
            let (time, rest) = time(token[11...])
        else { return nil }
        value.time = time
        if rest.isEmpty { return value }
        if rest.count == 1, rest.first == UInt8(ascii: "Z") || rest.first == UInt8(ascii: "z") {
            value.offsetMinutes = 0
            return value
        }
        guard rest.count == 6, let sign = rest.first, sign == UInt8(ascii: "+") || sign == UInt8(ascii: "-"),
            let hours = decimal(rest.dropFirst().prefix(2)), rest[rest.startIndex + 3] == UInt8(ascii: ":"),
            let minutes = decimal(rest.suffix(2)), hours <= 23, minutes <= 59
        else { return nil }
        value.offsetMinutes = (sign == UInt8(ascii: "-") ? -1 : 1) * (hours * 60 + minutes)
        return value
    }

    /// `hh:mm:ss` with optional fractional seconds, and what follows it.
    private static func time(_ text: ArraySlice<UInt8>) -> (time: TOMLDateTime.Time, rest: ArraySlice<UInt8>)? {
        guard text.count >= 8 else { return nil }
        let s = text.startIndex
        guard let hour = decimal(text[s..<(s + 2)]), text[s + 2] == UInt8(ascii: ":"),
            let minute = decimal(text[(s + 3)..<(s + 5)]), text[s + 5] == UInt8(ascii: ":"),
            let second = decimal(text[(s + 6)..<(s + 8)]), hour <= 23, minute <= 59, second <= 60
        else { return nil }
        var time = TOMLDateTime.Time(hour: hour, minute: minute, second: second)
        var rest = text[(s + 8)...]
        if rest.first == UInt8(ascii: ".") {
            let digits = rest.dropFirst().prefix(while: isDigit)
            guard !digits.isEmpty else { return nil }
            var nanoseconds = 0
            for (index, digit) in digits.prefix(9).enumerated() {
                nanoseconds += Int(digit - UInt8(ascii: "0")) * pow10(8 - index)
            }
            time.nanosecond = nanoseconds
            rest = rest[digits.endIndex...]
        }
        return (time, rest)
    }

    private static func pow10(_ exponent: Int) -> Int {
        var value = 1
        for _ in 0..<exponent { value *= 10 }
        return value
    }

    private static func decimal(_ digits: ArraySlice<UInt8>) -> Int? {
        guard !digits.isEmpty, digits.allSatisfy(isDigit) else { return nil }
        return digits.reduce(0) { $0 * 10 + Int($1 - UInt8(ascii: "0")) }
    }

    private static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    // MARK: Arrays and inline tables

    private mutating func array() throws(TOMLError) -> TOMLValue {
        advance()  // [
        var elements: [TOMLValue] = []
        while true {
            try skipBlankLines()
            if peek() == UInt8(ascii: "]") {
                advance()
                return .array(elements)
            }
            elements.append(try value())
            try skipBlankLines()
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

    /// `{ a = 1, b.c = "x" }`: on one line (values inside may span lines), no trailing comma, and
    /// closed for good: no header or dotted key outside may add to it.
    private mutating func inlineTable() throws(TOMLError) -> TOMLValue {
        let openLine = line
        advance()  // {
        let table = Node(line: openLine)
        var dotted: [Node] = []
        skipSpaces()
        if peek() == UInt8(ascii: "}") {
            advance()
            return .table(table.freeze())
        }
        while true {
            skipSpaces()
            try inlineTableContinues()
            try keyValue(into: table, path: [], dotted: &dotted)
            skipSpaces()
            try inlineTableContinues()
            if peek() == UInt8(ascii: ",") {
                advance()
            } else if peek() == UInt8(ascii: "}") {
                advance()
                return .table(table.freeze())
            } else {
                throw error("expected ',' or '}' in an inline table")
            }
        }
    }

    private func inlineTableContinues() throws(TOMLError) {
        if peek() == nil || peek() == UInt8(ascii: "\n") || peek() == UInt8(ascii: "\r") || peek() == UInt8(ascii: "#") {
            throw error("an inline table must be closed on its line (only its values may span lines)")
        }
    }

    // MARK: Strings

    private mutating func basicString() throws(TOMLError) -> String {
        advance()  // "
        var result: [UInt8] = []
        while let c = peek() {
            // Checked before advancing, so the error names the string's own line.
            if c == UInt8(ascii: "\n") || c == UInt8(ascii: "\r") { throw error("string is not closed on its line") }
            switch c {
            case UInt8(ascii: "\""):
                advance()
                return String(decoding: result, as: UTF8.self)
            case UInt8(ascii: "\\"):
                advance()
                try escape(into: &result)
            default:
                try checkControl(c)
                advance()
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
            if c == UInt8(ascii: "\n") || c == UInt8(ascii: "\r") { break }
            try checkControl(c)
            advance()
        }
        throw error("string is not closed on its line")
    }

    /// `"""…"""` or `'''…'''`: a newline right after the opening is dropped; in a basic one a
    /// backslash at the end of a line drops it and the white space after it; one or two quotes
    /// may stand just before the closing three.
    private mutating func multilineString(literal: Bool) throws(TOMLError) -> String {
        let startLine = line
        let quote = literal ? UInt8(ascii: "'") : UInt8(ascii: "\"")
        offset += 3
        if matches("\r\n") {
            offset += 1
            advance()
        } else if peek() == UInt8(ascii: "\n") {
            advance()
        }
        var result: [UInt8] = []
        while let c = peek() {
            switch c {
            case quote:
                var count = 0
                while offset + count < bytes.count, bytes[offset + count] == quote, count < 5 { count += 1 }
                if count >= 3 {
                    result.append(contentsOf: repeatElement(quote, count: count - 3))
                    offset += count
                    return String(decoding: result, as: UTF8.self)
                }
                result.append(contentsOf: repeatElement(quote, count: count))
                offset += count
            case UInt8(ascii: "\\") where !literal:
                advance()
                if lineEndingBackslash() {
                    while let d = peek(), d == UInt8(ascii: " ") || d == UInt8(ascii: "\t") || d == UInt8(ascii: "\n")
                        || (d == UInt8(ascii: "\r") && matches("\r\n"))
                    {
                        advance()
                    }
                } else {
                    try escape(into: &result)
                }
            case UInt8(ascii: "\n"):
                advance()
                result.append(c)
            case UInt8(ascii: "\r"):
                guard matches("\r\n") else { throw error("a carriage return must be followed by a line feed") }
                offset += 1
            default:
                try checkControl(c)
                advance()
                result.append(c)
            }
        }
        throw TOMLError(line: startLine, message: "multi-line string is not closed")
    }

    /// After a backslash: only spaces or tabs up to the end of the line?
    private func lineEndingBackslash() -> Bool {
        var index = offset
        while index < bytes.count, bytes[index] == UInt8(ascii: " ") || bytes[index] == UInt8(ascii: "\t") { index += 1 }
        guard index < bytes.count else { return false }
        return bytes[index] == UInt8(ascii: "\n")
            || (bytes[index] == UInt8(ascii: "\r") && index + 1 < bytes.count && bytes[index + 1] == UInt8(ascii: "\n"))
    }

    /// The escape after a backslash: \b \t \n \f \r \" \\ \uXXXX \UXXXXXXXX.
    private mutating func escape(into result: inout [UInt8]) throws(TOMLError) {
        guard let escaped = peek() else { throw error("string is not closed") }
        switch escaped {
        case UInt8(ascii: "b"): result.append(0x08)
        case UInt8(ascii: "f"): result.append(0x0C)
        case UInt8(ascii: "n"): result.append(0x0A)
        case UInt8(ascii: "t"): result.append(0x09)
        case UInt8(ascii: "r"): result.append(0x0D)
        case UInt8(ascii: "\""), UInt8(ascii: "\\"): result.append(escaped)
        case UInt8(ascii: "u"), UInt8(ascii: "U"):
            let count = escaped == UInt8(ascii: "u") ? 4 : 8
            let start = offset + 1
            guard start + count <= bytes.count, bytes[start..<(start + count)].allSatisfy({ Self.isDigit($0, radix: 16) }),
                let code = UInt32(String(decoding: bytes[start..<(start + count)], as: UTF8.self), radix: 16),
                let scalar = Unicode.Scalar(code)
            else { throw error("invalid unicode escape") }
            offset = start + count
            result.append(contentsOf: Array(String(Character(scalar)).utf8))
            return
        case UInt8(ascii: "\n"), UInt8(ascii: "\r"):
            throw error("string is not closed on its line")
        default:
            throw error("unknown escape '\\\(Character(Unicode.Scalar(escaped)))'")
        }
        advance()
    }

    /// Control characters other than tab must be escaped in strings and may not stand in comments.
    private func checkControl(_ c: UInt8) throws(TOMLError) {
        if (c < 0x20 && c != UInt8(ascii: "\t")) || c == 0x7F {
            let code = String(c, radix: 16, uppercase: true).leftPadded(4)
            throw error("control character U+\(code) is not allowed here (in a string, escape it)")
        }
    }

    // MARK: Lexing helpers

    private func peek() -> UInt8? { offset < bytes.count ? bytes[offset] : nil }

    private mutating func advance() {
        if offset < bytes.count, bytes[offset] == UInt8(ascii: "\n") { line += 1 }
        offset += 1
    }

    private func matches(_ text: String) -> Bool {
        let pattern = text.utf8
        return offset + pattern.count <= bytes.count && bytes[offset..<(offset + pattern.count)].elementsEqual(pattern)
    }

    private mutating func expect(_ text: String) throws(TOMLError) {
        guard matches(text) else { throw error("expected '\(text)'") }
        offset += text.utf8.count
    }

    private mutating func skipSpaces() {
        while let c = peek(), c == UInt8(ascii: " ") || c == UInt8(ascii: "\t") { advance() }
    }

    /// Spaces, comments and line ends (LF or CRLF).
    private mutating func skipBlankLines() throws(TOMLError) {
        while let c = peek() {
            if c == UInt8(ascii: " ") || c == UInt8(ascii: "\t") || c == UInt8(ascii: "\n") {
                advance()
            } else if c == UInt8(ascii: "\r") {
                guard matches("\r\n") else { throw error("a carriage return must be followed by a line feed") }
                offset += 1
            } else if c == UInt8(ascii: "#") {
                try comment()
            } else {
                return
            }
        }
    }

    private mutating func comment() throws(TOMLError) {
        advance()  // #
        while let c = peek(), c != UInt8(ascii: "\n") {
            if c == UInt8(ascii: "\r"), matches("\r\n") { return }
            try checkControl(c)
            advance()
        }
    }

    /// After a key/value pair or a header: only spaces and a comment may follow on the line.
    private mutating func endOfLine(after what: String = "the value") throws(TOMLError) {
        skipSpaces()
        if peek() == UInt8(ascii: "#") { try comment() }
        guard let c = peek() else { return }
        if c == UInt8(ascii: "\r") {
            guard matches("\r\n") else { throw error("a carriage return must be followed by a line feed") }
            offset += 1
            advance()
            return
        }
        guard c == UInt8(ascii: "\n") else { throw error("unexpected text after \(what)") }
        advance()
    }

    private func error(_ message: String) -> TOMLError { TOMLError(line: line, message: message) }

    /// `text` escaped for a basic string.
    static func escaped(_ text: String) -> String {
        var result = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case "\t": result += "\\t"
            case "\r": result += "\\r"
            case _ where scalar.value < 0x20 || scalar.value == 0x7F:
                result += "\\u" + String(scalar.value, radix: 16, uppercase: true).leftPadded(4)
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result
    }
}

/// A table while the document is read: entries can still be added (through headers and dotted
/// keys) until it is frozen into a `TOMLTable`.
private final class Node {
    enum Slot {
        /// A value written with `=` (inline tables and arrays included: closed for good).
        case value(TOMLValue, line: Int)
        case table(Node)
        /// `[[name]]` elements, and the line of the first.
        case tables([Node], line: Int)

        var line: Int {
            switch self {
            case .value(_, let line), .tables(_, let line): line
            case .table(let node): node.line
            }
        }
    }

    var line: Int
    /// Defined by a header, or by dotted keys of a section that has ended: it cannot be opened
    /// again by a header or added to by dotted keys.
    var defined = false
    private var order: [String] = []
    private var slots: [String: Slot] = [:]

    init(line: Int) { self.line = line }

    subscript(key: String) -> Slot? {
        get { slots[key] }
        set {
            if slots[key] == nil { order.append(key) }
            slots[key] = newValue
        }
    }

    func freeze() -> TOMLTable {
        var table = TOMLTable()
        table.line = line
        for key in order {
            switch slots[key] {
            case .value(let value, let line):
                table.entries.append(TOMLTable.Entry(key: key, value: value, line: line))
            case .table(let node):
                table.entries.append(TOMLTable.Entry(key: key, value: .table(node.freeze()), line: node.line))
            case .tables(let nodes, let line):
                table.entries.append(TOMLTable.Entry(key: key, value: .array(nodes.map { .table($0.freeze()) }), line: line))
            case nil:
                break
            }
        }
        return table
    }
}

extension String {
    fileprivate func leftPadded(_ width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}
