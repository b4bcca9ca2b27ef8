// Config/TOML: the examples of the TOML 1.0 specification (toml.io/en/v1.0.0), valid ones read
// to the values the spec gives and invalid ones refused with their line, and the features the
// config reader gained for them: dotted keys, `[a.b]` and `[[a.b]]` headers, multi-line strings,
// radix integers, dates and times, and the rules on defining a key or a table twice.

import Testing

@testable import Resolver

@Suite("TOML 1.0")
struct TOMLSpecTests {
    private func parse(_ text: String) -> Result<TOMLTable, TOMLError> {
        do {
            return .success(try TOMLParser.parse(text))
        } catch {
            return .failure(error)
        }
    }

    /// `text` read and written back compactly: `{a = 1, b = {c = "x"}}`, keys in file order.
    private func shape(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) -> String? {
        switch parse(text) {
        case .success(let table): return Self.shape(.table(table))
        case .failure(let error):
            Issue.record("\(error)", sourceLocation: sourceLocation)
            return nil
        }
    }

    static func shape(_ value: TOMLValue) -> String {
        switch value {
        case .string(let text): text.debugDescription
        case .integer(let number): "\(number)"
        case .float(let number): number.isNaN ? "nan" : "\(number)"
        case .boolean(let flag): "\(flag)"
        case .dateTime(let value): value.description
        case .array(let elements): "[" + elements.map(shape).joined(separator: ", ") + "]"
        case .table(let table):
            "{" + table.entries.map { "\(TOMLParser.display([$0.key])) = \(shape($0.value))" }.joined(separator: ", ") + "}"
        }
    }

    /// The syntax error for `text`, recording an issue when it parses.
    private func failure(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) -> TOMLError? {
        switch parse(text) {
        case .success(let table):
            Issue.record("expected a syntax error, read \(Self.shape(.table(table)))", sourceLocation: sourceLocation)
            return nil
        case .failure(let error):
            return error
        }
    }

    /// The value of `v` in `v = <text>`.
    private func value(_ text: String) throws -> TOMLValue {
        try #require(try parse("v = \(text)").get()["v"]).value
    }

    // MARK: Comments, keys

    @Test func comments() {
        #expect(
            shape(
                """
                # This is a full-line comment
                key = "value"  # This is a comment at the end of a line
                another = "# This is not a comment"
                """) == ##"{key = "value", another = "# This is not a comment"}"##)
    }

    @Test func bareAndQuotedKeys() {
        #expect(
            shape(
                """
                key = "value"
                bare_key = "value"
                bare-key = "value"
                1234 = "value"
                "127.0.0.1" = "value"
                "character encoding" = "value"
                "ʎǝʞ" = "value"
                'key2' = "value"
                'quoted "value"' = "value"
                "" = "blank"
                """)
                == #"{key = "value", bare_key = "value", bare-key = "value", 1234 = "value", "127.0.0.1" = "value", "#
                + #""character encoding" = "value", "ʎǝʞ" = "value", key2 = "value", "quoted \"value\"" = "value", "" = "blank"}"#)
        #expect(shape("'' = 'blank'") == #"{"" = "blank"}"#)
    }

    @Test func dottedKeys() {
        #expect(
            shape(
                """
                name = "Orange"
                physical.color = "orange"
                physical.shape = "round"
                site."google.com" = true
                """) == #"{name = "Orange", physical = {color = "orange", shape = "round"}, site = {"google.com" = true}}"#)
        #expect(
            shape(
                """
                fruit.name = "banana"     # this is best practice
                fruit. color = "yellow"    # same as above
                fruit . flavor = "banana"   # same as above
                """) == #"{fruit = {name = "banana", color = "yellow", flavor = "banana"}}"#)
        #expect(
            shape("fruit.apple.smooth = true\nfruit.orange = 2\n") == "{fruit = {apple = {smooth = true}, orange = 2}}")
        // Out of order: valid but discouraged.
        #expect(
            shape(
                """
                apple.type = "fruit"
                orange.type = "fruit"
                apple.skin = "thin"
                orange.skin = "thick"
                apple.color = "red"
                orange.color = "orange"
                """)
                == #"{apple = {type = "fruit", skin = "thin", color = "red"}, orange = {type = "fruit", skin = "thick", color = "orange"}}"#
        )
        #expect(shape(#"3.14159 = "pi""#) == #"{3 = {14159 = "pi"}}"#)
        #expect(
            shape("fruit.apple.color = \"red\"\nfruit.apple.taste.sweet = true\n")
                == #"{fruit = {apple = {color = "red", taste = {sweet = true}}}}"#)
    }

    @Test func dottedKeysInsideTablesAndInlineTables() throws {
        #expect(
            shape("[dog.\"tater.man\"]\ntype.name = \"pug\"\n") == #"{dog = {"tater.man" = {type = {name = "pug"}}}}"#)
        #expect(
            shape(
                """
                name = { first = "Tom", last = "Preston-Werner" }
                point = { x = 1, y = 2 }
                animal = { type.name = "pug" }
                """)
                == #"{name = {first = "Tom", last = "Preston-Werner"}, point = {x = 1, y = 2}, animal = {type = {name = "pug"}}}"#)
        #expect(shape("t = { a.b = 1, a.c = 2 }") == "{t = {a = {b = 1, c = 2}}}")
    }

    // MARK: Strings

    @Test func basicStringEscapes() throws {
        #expect(
            try value(#""I'm a string. \"You can quote me\". Name\tJos\u00E9\nLocation\tSF.""#)
                == .string("I'm a string. \"You can quote me\". Name\tJos\u{E9}\nLocation\tSF."))
        #expect(try value(#""\b\f\\""#) == .string("\u{8}\u{C}\\"))
        #expect(try value(#""\U0001F600 \u00e9""#) == .string("😀 é"))
    }

    @Test func multiLineBasicStrings() throws {
        #expect(try value("\"\"\"\nRoses are red\nViolets are blue\"\"\"") == .string("Roses are red\nViolets are blue"))
        // The spec's three ways of writing one line.
        let table = try parse(
            """
            str1 = "The quick brown fox jumps over the lazy dog."

            str2 = \"\"\"
            The quick brown \\


              fox jumps over \\
                the lazy dog.\"\"\"

            str3 = \"\"\"\\
                   The quick brown \\
                   fox jumps over \\
                   the lazy dog.\\
                   \"\"\"
            after = 1
            """
        ).get()
        let expected = TOMLValue.string("The quick brown fox jumps over the lazy dog.")
        #expect(table["str1"]?.value == expected)
        #expect(table["str2"]?.value == expected)
        #expect(table["str3"]?.value == expected)
        // Every value keeps the line its key is on, after strings spanning lines too.
        #expect(table.entries.map(\.line) == [1, 3, 10, 15])
        // Quotes inside and right before the closing delimiter.
        // (Not raw strings here: `#"""` would open a multi-line literal.)
        let q = "\""
        #expect(
            try value(q + q + q + "Here are two quotation marks: \"\". Simple enough." + q + q + q)
                == .string("Here are two quotation marks: \"\". Simple enough."))
        #expect(
            try value(q + q + q + #"Here are three quotation marks: ""\"."# + q + q + q)
                == .string("Here are three quotation marks: \"\"\"."))
        #expect(
            try value(q + q + q + #"Here are fifteen quotation marks: ""\"""\"""\"""\"""\"."# + q + q + q)
                == .string("Here are fifteen quotation marks: " + String(repeating: q, count: 15) + "."))
        #expect(
            try value(q + q + q + #""This," she said, "is just a pointless statement.""# + q + q + q)
                == .string(#""This," she said, "is just a pointless statement.""#))
        // CRLF: the newline after the opening is dropped, the others read as LF.
        #expect(try value("\"\"\"\r\na\r\nb\"\"\"") == .string("a\nb"))
        // A tab is allowed as it is.
        #expect(try value("\"\"\"a\tb\"\"\"") == .string("a\tb"))
    }

    @Test func literalStrings() throws {
        #expect(try value(#"'C:\Users\nodejs\templates'"#) == .string(#"C:\Users\nodejs\templates"#))
        #expect(try value(#"'\\ServerX\admin$\system32\'"#) == .string(#"\\ServerX\admin$\system32\"#))
        #expect(try value(#"'Tom "Dubs" Preston-Werner'"#) == .string(#"Tom "Dubs" Preston-Werner"#))
        #expect(try value(#"'<\i\c*\s*>'"#) == .string(#"<\i\c*\s*>"#))
        #expect(try value(#"'''I [dw]on't need \d{2} apples'''"#) == .string(#"I [dw]on't need \d{2} apples"#))
        #expect(
            try value("'''\nThe first newline is\ntrimmed in raw strings.\n   All other whitespace\n   is preserved.\n'''")
                == .string("The first newline is\ntrimmed in raw strings.\n   All other whitespace\n   is preserved.\n"))
        #expect(
            try value("'''Here are fifteen quotation marks: " + String(repeating: "\"", count: 15) + "'''")
                == .string("Here are fifteen quotation marks: " + String(repeating: "\"", count: 15)))
        #expect(
            try value(#"''''That,' she said, 'is still pointless.''''"#) == .string("'That,' she said, 'is still pointless.'"))
        #expect(try value(#"'''a \ b'''"#) == .string(#"a \ b"#))
    }

    // MARK: Numbers, booleans, dates

    @Test(
        "integers",
        arguments: [
            ("+99", 99), ("42", 42), ("0", 0), ("-17", -17), ("1_000", 1000), ("5_349_221", 5_349_221),
            ("53_49_221", 5_349_221), ("1_2_3_4_5", 12345), ("0xDEADBEEF", 0xDEAD_BEEF), ("0xdeadbeef", 0xDEAD_BEEF),
            ("0xdead_beef", 0xDEAD_BEEF), ("0o01234567", 0o01234567), ("0o755", 0o755), ("0b11010110", 0b11010110),
            ("+0", 0), ("-0", 0), ("0x7FFFFFFFFFFFFFFF", Int64.max), ("0x00ff", 255),
        ] as [(String, Int64)])
    func integers(text: String, expected: Int64) throws {
        #expect(try value(text) == .integer(expected))
    }

    @Test(
        "floats",
        arguments: [
            ("+1.0", 1.0), ("3.1415", 3.1415), ("-0.01", -0.01), ("5e+22", 5e22), ("1e06", 1e6), ("-2E-2", -2e-2),
            ("6.626e-34", 6.626e-34), ("224_617.445_991_228", 224_617.445_991_228), ("inf", .infinity),
            ("+inf", .infinity), ("-inf", -.infinity), ("0e0", 0), ("-0.0", 0), ("1e1_0", 1e10),
        ] as [(String, Double)])
    func floats(text: String, expected: Double) throws {
        #expect(try value(text) == .float(expected))
    }

    @Test func notANumber() throws {
        for text in ["nan", "+nan", "-nan"] {
            guard case .float(let number) = try value(text) else {
                Issue.record("\(text) is a float")
                continue
            }
            #expect(number.isNaN)
        }
    }

    @Test func datesAndTimes() throws {
        let table = try parse(
            """
            odt1 = 1979-05-27T07:32:00Z
            odt2 = 1979-05-27T00:32:00-07:00
            odt3 = 1979-05-27T00:32:00.999999-07:00
            odt4 = 1979-05-27 07:32:00Z
            ldt1 = 1979-05-27T07:32:00
            ldt2 = 1979-05-27T00:32:00.999999
            ld1 = 1979-05-27
            lt1 = 07:32:00
            lt2 = 00:32:00.999999
            lower = 1987-07-05t17:45:00z
            leap = 2000-02-29
            """
        ).get()
        #expect(
            table.entries.map { Self.shape($0.value) } == [
                "1979-05-27T07:32:00Z", "1979-05-27T00:32:00-07:00", "1979-05-27T00:32:00.999999-07:00",
                "1979-05-27T07:32:00Z", "1979-05-27T07:32:00", "1979-05-27T00:32:00.999999", "1979-05-27", "07:32:00",
                "00:32:00.999999", "1987-07-05T17:45:00Z", "2000-02-29",
            ])
        #expect(
            table.entries.map(\.value.kind) == [
                "an offset date-time", "an offset date-time", "an offset date-time", "an offset date-time",
                "a local date-time", "a local date-time", "a local date", "a local time", "a local time",
                "an offset date-time", "a local date",
            ])
        guard case .dateTime(let odt2)? = table["odt2"]?.value else {
            Issue.record("odt2 is a date-time")
            return
        }
        #expect(odt2.date == TOMLDateTime.Date(year: 1979, month: 5, day: 27))
        #expect(odt2.time == TOMLDateTime.Time(hour: 0, minute: 32, second: 0))
        #expect(odt2.offsetMinutes == -420)
        #expect(try value("[1979-05-27, 07:32:00]") == .array([
            .dateTime(TOMLDateTime(date: .init(year: 1979, month: 5, day: 27))),
            .dateTime(TOMLDateTime(time: .init(hour: 7, minute: 32, second: 0))),
        ]))
    }

    @Test func booleans() throws {
        #expect(try value("true") == .boolean(true))
        #expect(try value("false") == .boolean(false))
    }

    // MARK: Arrays, tables, arrays of tables

    @Test func arrays() {
        #expect(
            shape(
                """
                integers = [ 1, 2, 3 ]
                colors = [ "red", "yellow", "green" ]
                nested_arrays_of_ints = [ [ 1, 2 ], [3, 4, 5] ]
                nested_mixed_array = [ [ 1, 2 ], ["a", "b", "c"] ]
                string_array = [ "all", 'strings', \"\"\"are the same\"\"\", '''type''' ]
                numbers = [ 0.1, 0.2, 0.5, 1, 2, 5 ]
                contributors = [
                  "Foo Bar <foo@example.com>",
                  { name = "Baz Qux", email = "bazqux@example.com", url = "https://example.com/bazqux" }
                ]
                integers2 = [
                  1, 2, 3
                ]
                integers3 = [
                  1,
                  2, # this is ok
                ]
                """)
                == "{integers = [1, 2, 3], colors = [\"red\", \"yellow\", \"green\"], "
                + "nested_arrays_of_ints = [[1, 2], [3, 4, 5]], nested_mixed_array = [[1, 2], [\"a\", \"b\", \"c\"]], "
                + "string_array = [\"all\", \"strings\", \"are the same\", \"type\"], numbers = [0.1, 0.2, 0.5, 1, 2, 5], "
                + "contributors = [\"Foo Bar <foo@example.com>\", {name = \"Baz Qux\", email = \"bazqux@example.com\", "
                + "url = \"https://example.com/bazqux\"}], integers2 = [1, 2, 3], integers3 = [1, 2]}")
    }

    @Test func tables() {
        #expect(
            shape(
                """
                [table-1]
                key1 = "some string"
                key2 = 123

                [table-2]
                key1 = "another string"
                key2 = 456
                """)
                == #"{table-1 = {key1 = "some string", key2 = 123}, table-2 = {key1 = "another string", key2 = 456}}"#)
        #expect(
            shape(
                """
                [a.b.c]            # this is best practice
                [ d.e.f ]          # same as [d.e.f]
                [ g .  h  . i ]    # same as [g.h.i]
                [ j . "ʞ" . 'l' ]  # same as [j."ʞ".'l']
                """) == #"{a = {b = {c = {}}}, d = {e = {f = {}}}, g = {h = {i = {}}}, j = {"ʞ" = {l = {}}}}"#)
        // A super-table after its sub-table, and tables out of order.
        #expect(shape("[x.y.z.w]\n[x]\nk = 1\n") == "{x = {y = {z = {w = {}}}, k = 1}}")
        #expect(
            shape("[fruit.apple]\n[animal]\n[fruit.orange]\n") == "{fruit = {apple = {}, orange = {}}, animal = {}}")
        #expect(
            shape("name = \"Fido\"\nbreed = \"pug\"\n\n[owner]\nname = \"Regina Dogman\"\nmember_since = 1999-08-04\n")
                == #"{name = "Fido", breed = "pug", owner = {name = "Regina Dogman", member_since = 1999-08-04}}"#)
        // Sub-tables of a table made by dotted keys.
        #expect(
            shape(
                """
                [fruit]
                apple.color = "red"
                apple.taste.sweet = true

                [fruit.apple.texture]  # you can add sub-tables
                smooth = true
                """) == #"{fruit = {apple = {color = "red", taste = {sweet = true}, texture = {smooth = true}}}}"#)
    }

    @Test func arraysOfTables() throws {
        #expect(
            shape(
                """
                [[products]]
                name = "Hammer"
                sku = 738594937

                [[products]]  # empty table within the array

                [[products]]
                name = "Nail"
                sku = 284758393

                color = "gray"
                """)
                == #"{products = [{name = "Hammer", sku = 738594937}, {}, {name = "Nail", sku = 284758393, color = "gray"}]}"#)
        let text = """
            [[fruits]]
            name = "apple"

            [fruits.physical]  # subtable
            color = "red"
            shape = "round"

            [[fruits.varieties]]  # nested array of tables
            name = "red delicious"

            [[fruits.varieties]]
            name = "granny smith"


            [[fruits]]
            name = "banana"

            [[fruits.varieties]]
            name = "plantain"
            """
        #expect(
            shape(text)
                == #"{fruits = [{name = "apple", physical = {color = "red", shape = "round"}, "#
                + #"varieties = [{name = "red delicious"}, {name = "granny smith"}]}, "#
                + #"{name = "banana", varieties = [{name = "plantain"}]}]}"#)
        // Lines: each element's header, and each key's own line.
        let fruits = try parse(text).get()
        guard case .array(let elements)? = fruits["fruits"]?.value, case .table(let apple)? = elements.first,
            case .table(let physical)? = apple["physical"]?.value, case .array(let varieties)? = apple["varieties"]?.value,
            case .table(let granny)? = varieties.last
        else {
            Issue.record("expected the fruits")
            return
        }
        #expect(fruits["fruits"]?.line == 1)
        #expect(physical.line == 4 && physical["shape"]?.line == 6)
        #expect(granny.line == 11 && granny["name"]?.line == 12)
        #expect(
            shape("points = [ { x = 1, y = 2, z = 3 }, { x = 7, y = 8, z = 9 } ]")
                == "{points = [{x = 1, y = 2, z = 3}, {x = 7, y = 8, z = 9}]}")
    }

    @Test func linesOfDottedKeysAndImplicitTables() throws {
        let root = try parse("# c\nserver.threads = 4\n\nserver.listen = []\n[api]\ngroup_tokens.web = \"x\"\n").get()
        guard case .table(let server)? = root["server"]?.value, case .table(let api)? = root["api"]?.value,
            case .table(let tokens)? = api["group_tokens"]?.value
        else {
            Issue.record("expected server and api")
            return
        }
        #expect(root["server"]?.line == 2 && server.line == 2)
        #expect(server["threads"]?.line == 2 && server["listen"]?.line == 4)
        #expect(api.line == 5 && tokens.line == 6 && tokens["web"]?.line == 6)
    }

    // MARK: Invalid documents

    @Test(
        "the spec's invalid examples and other errors carry their line",
        arguments: [
            // Keys and values
            ("key = # INVALID\n", 1, "expected a value"),
            ("first = \"Tom\" last = \"Preston-Werner\" # INVALID\n", 1, "unexpected text"),
            ("= \"no key name\"  # INVALID\n", 1, "expected a key"),
            ("name = \"Tom\"\nname = \"Pradyun\"\n", 2, "key 'name' is defined twice (first at line 1)"),
            ("spelling = \"favorite\"\n\"spelling\" = \"favourite\"\n", 2, "defined twice"),
            ("fruit.apple = 1\nfruit.apple.smooth = true\n", 2, "'fruit.apple' is an integer (line 1), not a table"),
            ("a.b = 1\na.b = 2\n", 2, "key 'a.b' is defined twice"),
            ("a = \"\"\"x\"\"\"\"\"\"\n", 1, "unexpected text"),
            ("a = '''x''''''\n", 1, "unexpected text"),
            ("a = \"\"\"\nnot closed\n", 1, "multi-line string is not closed"),
            ("a = '''\n\nnot closed\n", 1, "multi-line string is not closed"),
            ("a = \"\"\"bad \\q\"\"\"\n", 1, "unknown escape"),
            ("a = \"\"\"a \\ b\"\"\"\n", 1, "unknown escape"),
            ("a = \"\\x41\"\n", 1, "unknown escape"),
            ("a = \"\\e\"\n", 1, "unknown escape"),
            ("a = \"tab\u{1}\"\n", 1, "control character U+0001"),
            ("a = 1 # bell \u{7}\n", 1, "control character U+0007"),
            ("a = 1\rb = 2\n", 1, "carriage return"),
            ("\"\"\"key\"\"\" = 1\n", 1, "a key cannot be a multi-line string"),
            // Numbers and dates
            ("invalid_float_1 = .7\n", 1, "expected a value"),
            ("invalid_float_2 = 7.\n", 1, "not a valid value"),
            ("invalid_float_3 = 3.e+20\n", 1, "not a valid value"),
            ("a = 01\n", 1, "leading zeros"),
            ("a = 1__0\n", 1, "not a valid value"),
            ("a = _1\n", 1, "expected a value"),
            ("a = 1_\n", 1, "not a valid value"),
            ("a = 0X1F\n", 1, "not a valid value"),
            ("a = +0x1F\n", 1, "no sign"),
            ("a = -0o7\n", 1, "no sign"),
            ("a = 0b102\n", 1, "not a valid value"),
            ("a = 0x10000000000000000\n", 1, "past 64 bits"),
            ("a = 1e\n", 1, "not a valid value"),
            ("a = infinity\n", 1, "strings need quotes"),
            ("a = 1979-13-01\n", 1, "not a valid date"),
            ("a = 1979-02-29\n", 1, "not a valid date"),
            ("a = 1979-05-27T25:00:00\n", 1, "not a valid date"),
            ("a = 1979-05-27T07:32\n", 1, "not a valid date"),
            ("a = 1979-05-27T07:32:00+7:00\n", 1, "not a valid date"),
            ("a = 07:60:00\n", 1, "not a valid time"),
            ("a = 07:32:00.\n", 1, "not a valid time"),
            // Arrays and inline tables
            ("a = [1,,2]\n", 1, "expected a value"),
            ("a = [,]\n", 1, "expected a value"),
            ("a = { b = 1, }\n", 1, "expected a key"),
            ("a = { b = 1,\n c = 2 }\n", 1, "must be closed on its line"),
            ("a = { b = 1 # c\n}\n", 1, "must be closed on its line"),
            ("[product]\ntype = { name = \"Nail\" }\ntype.edible = false\n", 3, "cannot extend the inline table 'product.type'"),
            ("[product]\ntype.name = \"Nail\"\ntype = { edible = false }\n", 3, "key 'product.type' is defined twice"),
            ("a = { b = 1 }\n[a.c]\n", 2, "cannot extend the inline table 'a'"),
            ("a = { b = 1 }\n[a]\n", 2, "table 'a' is defined twice (first as a table at line 1)"),
            ("a = [{ b = 1 }]\n[[a]]\n", 2, "which cannot be extended"),
            ("t = { a = { b = 1 }, a.c = 2 }\n", 1, "cannot extend the inline table 'a'"),
            // Tables
            ("[fruit]\napple = \"red\"\n[fruit]\norange = \"orange\"\n", 3, "table 'fruit' is defined twice (first at line 1)"),
            ("[fruit]\napple = \"red\"\n[fruit.apple]\ntexture = \"smooth\"\n", 3, "table 'fruit.apple' is defined twice (first as a string at line 2)"),
            ("[fruit]\napple.color = \"red\"\napple.taste.sweet = true\n[fruit.apple]\n", 4, "table 'fruit.apple' is defined twice"),
            ("[fruit]\napple.color = \"red\"\napple.taste.sweet = true\n[fruit.apple.taste]\n", 4, "defined twice"),
            ("a.b = 1\n[a]\n", 2, "table 'a' is defined twice"),
            ("[a.b.c]\nz = 9\n[a]\nb.c.t = 1\n", 4, "cannot add to table 'a.b.c' with a dotted key: it is defined at line 1"),
            ("[a]\nb.c = 1\n[x]\n[a]\n", 4, "defined twice"),
            ("[]\n", 1, "expected a key"),
            ("[a.]\n", 1, "expected a key"),
            ("[a] b = 1\n", 1, "unexpected text after the header"),
            ("[[a] ]\n", 1, "expected ']'"),
            // Arrays of tables
            ("[fruit.physical]\ncolor = \"red\"\n[[fruit]]\n", 3, "'fruit' is not an array of tables (it is a table, line 1)"),
            ("fruits = []\n\n[[fruits]] # Not allowed\n", 3, "'fruits' is not an array of tables (it is an array at line 1"),
            ("[[fruits]]\nname = \"apple\"\n[[fruits.varieties]]\nname = \"red delicious\"\n[fruits.varieties]\n", 5,
             "table 'fruits.varieties' is defined twice (first as [[fruits.varieties]] at line 3)"),
            ("[[fruits]]\n[fruits.physical]\ncolor = \"red\"\n[[fruits.physical]]\n", 4, "'fruits.physical' is not an array of tables"),
            ("[[a]]\n[x]\n[a]\n", 3, "defined twice"),
            ("b = 1\n[[b.c]]\n", 2, "'b' is an integer (line 1), not a table"),
        ])
    func invalidDocuments(text: String, line: Int, message: String) throws {
        let error = try #require(failure(text))
        #expect(error.line == line, "\(error)")
        #expect(error.message.contains(message), "\(error.message)")
    }

    @Test func dottedKeyIntoAnArrayOfTables() throws {
        // `[[a]]` then, back at a table where `a` is reachable, a dotted key through it.
        let error = try #require(failure("[[x.a]]\nb = 1\n[x]\na.c = 2\n"))
        #expect(error.line == 4 && error.message.contains("array of tables 'x.a'"), "\(error)")
    }

    @Test func validRedefinitionsAreAccepted() {
        // Each `[[a]]` element has its own sub-tables.
        #expect(shape("[[a]]\n[a.b]\nx = 1\n[[a]]\n[a.b]\nx = 2\n") == "{a = [{b = {x = 1}}, {b = {x = 2}}]}")
        // A table made on the way to a header, defined later; dotted keys under one made by a header path.
        #expect(shape("[a.b.c]\n[a]\nb.d = 1\n") == "{a = {b = {c = {}, d = 1}}}")
        #expect(shape("a.b.c = 1\n[a.x]\n") == "{a = {b = {c = 1}, x = {}}}")
    }

    @Test func nestingIsBounded() throws {
        let deep = (0..<33).map { "k\($0)" }.joined(separator: ".")
        #expect(failure("\(deep) = 1\n")?.message.contains("nested deeper than 32") == true)
        #expect(failure("[\(deep)]\n")?.message.contains("nested deeper than 32") == true)
        let fits = (0..<32).map { "k\($0)" }.joined(separator: ".")
        #expect((try? parse("\(fits) = 1\n").get()) != nil)
        // Header and key together.
        #expect(failure("[\(fits)]\nx = 1\n")?.message.contains("nested deeper than 32") == true)
    }
}
