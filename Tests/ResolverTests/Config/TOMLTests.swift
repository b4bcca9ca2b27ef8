// Config/TOML: values, tables, arrays of tables, comments, line numbers, and clear errors with
// their lines. TOML 1.0's other features and the spec's examples: TOMLSpecTests.swift.

import Testing

@testable import Resolver

@Suite("TOMLParser")
struct TOMLTests {
    private func parse(_ text: String) -> Result<TOMLTable, TOMLError> {
        do {
            return .success(try TOMLParser.parse(text))
        } catch {
            return .failure(error)
        }
    }

    /// The value of `v` in the one-line document `v = <text>`.
    private func value(_ text: String) throws -> TOMLValue {
        let table = try parse("v = \(text)").get()
        return try #require(table["v"]).value
    }

    /// The syntax error for `text`, recording an issue when it parses.
    private func failure(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) -> TOMLError? {
        switch parse(text) {
        case .success:
            Issue.record("expected a syntax error", sourceLocation: sourceLocation)
            return nil
        case .failure(let error):
            return error
        }
    }

    // MARK: Values

    @Test(
        "integers",
        arguments: [
            ("0", 0), ("42", 42), ("-17", -17), ("+5", 5), ("1_000", 1_000), ("268_435_456", 268_435_456),
            ("0x1F", 31), ("0xdead_beef", 0xDEAD_BEEF), ("9223372036854775807", Int64.max),
            ("-9223372036854775808", Int64.min),
        ] as [(String, Int64)])
    func readsIntegers(text: String, expected: Int64) throws {
        #expect(try value(text) == .integer(expected))
    }

    @Test(
        "floats",
        arguments: [
            ("3.14", 3.14), ("-0.5", -0.5), ("1e3", 1000), ("6.02E23", 6.02e23), ("1_000.5", 1000.5), ("0.05", 0.05),
            ("inf", .infinity), ("+inf", .infinity), ("-inf", -.infinity),
        ] as [(String, Double)])
    func readsFloats(text: String, expected: Double) throws {
        #expect(try value(text) == .float(expected))
    }

    @Test func readsNaN() throws {
        guard case .float(let number) = try value("nan") else {
            Issue.record("nan is a float")
            return
        }
        #expect(number.isNaN)
    }

    @Test func readsBooleans() throws {
        #expect(try value("true") == .boolean(true))
        #expect(try value("false") == .boolean(false))
    }

    @Test(
        "basic strings and their escapes",
        arguments: [
            ("\"plain\"", "plain"), ("\"\"", ""), ("\"a # not a comment\"", "a # not a comment"),
            ("\"tab\\there\"", "tab\there"), ("\"line\\nbreak\"", "line\nbreak"), ("\"cr\\r\"", "cr\r"),
            ("\"q\\\"uote\"", "q\"uote"), ("\"back\\\\slash\"", "back\\slash"), ("\"caf\\u00e9\"", "café"),
            ("\"\\U0001F600\"", "😀"), ("\"ünïcödé\"", "ünïcödé"), ("\"'single'\"", "'single'"),
        ])
    func readsBasicStrings(text: String, expected: String) throws {
        #expect(try value(text) == .string(expected))
    }

    @Test(
        "literal strings take backslashes as they are",
        arguments: [
            ("'C:\\path\\n'", "C:\\path\\n"), ("''", ""), ("'say \"hi\"'", "say \"hi\""),
            ("'# no comment'", "# no comment"),
        ])
    func readsLiteralStrings(text: String, expected: String) throws {
        #expect(try value(text) == .string(expected))
    }

    @Test func readsArrays() throws {
        #expect(try value("[]") == .array([]))
        #expect(try value("[1, 2, 3]") == .array([.integer(1), .integer(2), .integer(3)]))
        #expect(try value("[ \"a\" , 'b' ]") == .array([.string("a"), .string("b")]))
        #expect(
            try value("[1, \"mixed\", true, 2.5]")
                == .array([.integer(1), .string("mixed"), .boolean(true), .float(2.5)]))
        #expect(
            try value("[[1, 2], [\"a\"], []]")
                == .array([
                    .array([.integer(1), .integer(2)]), .array([.string("a")]), .array([]),
                ]))
    }

    @Test func readsArraysSpanningLinesWithCommentsAndATrailingComma() throws {
        let table = try parse(
            """
            servers = [
                "192.0.2.1",   # the first
                # a whole-line comment
                "192.0.2.2:5353",

                "[::1]:53",
            ]
            after = 1
            """
        ).get()
        let servers = try #require(table["servers"])
        #expect(servers.value == .array([.string("192.0.2.1"), .string("192.0.2.2:5353"), .string("[::1]:53")]))
        #expect(servers.line == 1)
        #expect(table["after"]?.line == 8)
    }

    @Test func readsInlineTables() throws {
        guard case .table(let table) = try value("{ name = \"web\", port = 8080, tls = false, tags = [\"a\"] }") else {
            Issue.record("expected an inline table")
            return
        }
        #expect(table.entries.map(\.key) == ["name", "port", "tls", "tags"])
        #expect(table["name"]?.value == .string("web"))
        #expect(table["port"]?.value == .integer(8080))
        #expect(table["tls"]?.value == .boolean(false))
        #expect(table["tags"]?.value == .array([.string("a")]))
        #expect(try value("{}") == .table(TOMLTable(entries: [], line: 1)))
    }

    @Test func readsNestedInlineTables() throws {
        guard case .table(let outer) = try value("{ inner = { x = 1 }, list = [{ y = 2 }] }"),
            case .table(let inner)? = outer["inner"]?.value,
            case .array(let list)? = outer["list"]?.value, case .table(let element)? = list.first
        else {
            Issue.record("expected nested inline tables")
            return
        }
        #expect(inner["x"]?.value == .integer(1))
        #expect(element["y"]?.value == .integer(2))
    }

    @Test func rejectsADuplicateKeyInAnInlineTable() throws {
        let error = try #require(failure("\n t = { a = 1, a = 2 }"))
        #expect(error.line == 2)
        #expect(error.message.contains("'a'"))
    }

    // MARK: Document structure

    @Test func keepsKeysInFileOrderWithTheirLines() throws {
        let table = try parse(
            """
            # leading comment

            zeta = 1
            alpha = "two"   # trailing comment
            \tmiddle\t=\t3.0
            """
        ).get()
        #expect(table.entries.map(\.key) == ["zeta", "alpha", "middle"])
        #expect(table.entries.map(\.line) == [3, 4, 5])
        #expect(table["alpha"]?.value == .string("two"))
        #expect(table["middle"]?.value == .float(3))
        #expect(table.line == 0)
        #expect(table["missing"] == nil)
    }

    @Test func readsTables() throws {
        let root = try parse(
            """
            top = 1

            [server]  # the server
            listen = ["127.0.0.1:53"]
            threads = 2

            [resolver]
            mode = "forward"
            """
        ).get()
        #expect(root.entries.map(\.key) == ["top", "server", "resolver"])
        guard case .table(let server)? = root["server"]?.value, case .table(let resolver)? = root["resolver"]?.value
        else {
            Issue.record("expected two tables")
            return
        }
        #expect(root["server"]?.line == 3)
        #expect(server.line == 3)
        #expect(server.entries.map(\.key) == ["listen", "threads"])
        #expect(server["threads"]?.line == 5)
        #expect(resolver.line == 7)
        #expect(resolver["mode"]?.value == .string("forward"))
        #expect(resolver["mode"]?.line == 8)
    }

    @Test func readsArraysOfTables() throws {
        let root = try parse(
            """
            [[forward]]
            zone = "a."

            [[forward]]
            zone = "b."
            servers = []

            [[forward]]
            """
        ).get()
        guard case .array(let elements)? = root["forward"]?.value else {
            Issue.record("expected an array of tables")
            return
        }
        #expect(root["forward"]?.line == 1)
        let tables = elements.compactMap { element -> TOMLTable? in
            if case .table(let table) = element { table } else { nil }
        }
        #expect(tables.count == 3)
        #expect(tables.map(\.line) == [1, 4, 8])
        #expect(tables[0]["zone"]?.value == .string("a."))
        #expect(tables[1]["zone"]?.line == 5)
        #expect(tables[1]["servers"]?.value == .array([]))
        #expect(tables[2].entries.isEmpty)
    }

    @Test func acceptsQuotedKeysWithDots() throws {
        let table = try parse("\"a.b\" = 1\n'c d' = 2\nbare-key_9 = 3\n").get()
        #expect(table.entries.map(\.key) == ["a.b", "c d", "bare-key_9"])
    }

    @Test func acceptsCRLFLineEndings() throws {
        let table = try parse("[server]\r\nthreads = 1\r\n\r\n[log]\r\nlevel = \"info\"\r\n").get()
        guard case .table(let log)? = table["log"]?.value else {
            Issue.record("expected [log]")
            return
        }
        #expect(log["level"]?.value == .string("info"))
        #expect(log["level"]?.line == 5)
    }

    @Test func readsAnEmptyDocument() throws {
        #expect(try parse("").get().entries.isEmpty)
        #expect(try parse("\n\n# only a comment\n   \n").get().entries.isEmpty)
    }

    // MARK: Errors with lines

    @Test(
        "syntax errors carry their line",
        arguments: [
            ("a = 1\nb = \n", 2, "expected a value"),
            ("a = 1\n\nb 2\n", 3, "expected '='"),
            ("a = 1 2\n", 1, "unexpected text after the value"),
            ("a = 1\n[server\n", 2, "expected ']'"),
            ("[[forward]\n", 1, "expected ']'"),
            ("\n\na = 'open\n", 3, "not closed"),
            ("a = \"bad \\q escape\"\n", 1, "unknown escape"),
            ("a = \"\\u12\"\n", 1, "invalid unicode escape"),
            ("a = \"\\uD800\"\n", 1, "invalid unicode escape"),
            ("a = [1, 2\nb = 3\n", 2, "expected ',' or ']'"),
            ("a = { b = 1 c = 2 }\n", 1, "expected ',' or '}'"),
            ("a = yes\n", 1, "strings need quotes"),
            ("a = 9223372036854775808\n", 1, "not a valid value"),
            ("a = tru\n", 1, "expected a value"),
            ("= 1\n", 1, "expected a key"),
            ("a = 1\na = 2\n", 2, "defined twice"),
            ("[t]\n[t]\n", 2, "defined twice"),
            ("a = 1\n[[a]]\n", 2, "not an array of tables"),
            ("[[a]]\n[a]\n", 2, "defined twice"),
            ("a = \"open", 1, "not closed"),
        ])
    func reportsSyntaxErrors(text: String, line: Int, message: String) throws {
        let error = try #require(failure(text))
        #expect(error.line == line)
        #expect(error.message.contains(message))
        #expect(error.description == "line \(line): \(error.message)")
    }

    @Test
    func reportsTheLineOfAnUnclosedBasicString() throws {
        let error = try #require(failure("a = 1\nb = \"open\nc = 2\n"))
        #expect(error.line == 2)
        #expect(error.message.contains("not closed"))
    }
}
