// Config/: the reference of every key (docs/CONFIG.md), written from the key table. A unit test
// (ConfigSchemaTests) fails when the file differs from what this makes, and rewrites it when
// RESOLVERD_WRITE_CONFIG_REFERENCE=1 is set.

extension ConfigSchema {
    /// docs/CONFIG.md.
    static func reference() -> String {
        var text = """
            # Configuration reference

            <!-- Generated from the key table (Sources/Resolver/Config/ConfigSchema.swift); do not edit.
                 Regenerate: RESOLVERD_WRITE_CONFIG_REFERENCE=1 swift test --skip-build --filter ConfigSchemaTests -->

            resolverd reads one TOML 1.0 file (`--config`, default `config/resolverd.toml`, which sets
            every key to its default and explains it at length). Tables may be written as `[server]`
            headers, dotted keys (`server.threads = 4`) or inline tables. A key not listed here, a value
            of the wrong type or out of range stops resolverd at start with the key and its line
            (exit code 2), and makes a reload fail with the running config kept.

            **Reload**: `reload` — a reload (SIGHUP, `dig-lite reload`, `POST /v1/reload`) applies the
            key at once; `restart` — a reload leaves it as it runs and lists it under `restart_needed`.


            """
        for section in sections {
            if section.name == "forward" {
                text += "## [[forward]]\n\n\(section.doc)\n\n"
                text += table(forwardKeys.map { row($0, name: "forward." + $0.name) })
                continue
            }
            text += "## [\(section.name)]\n\n\(section.doc)\n\n"
            text += table(keys.filter { $0.path.first == section.name }.map { row($0, name: $0.name) })
        }
        text += "## Rules across keys\n\n"
        for pair in pairs {
            let (first, second) = (TOMLParser.display(pair.first), TOMLParser.display(pair.second))
            text += "- `\(first)` and `\(second)` go together (\(pair.what)): both or neither.\n"
        }
        for rule in rules { text += "- \(rule.doc).\n" }
        return text
    }

    private static func row<Target>(_ key: ConfigKey<Target>, name: String) -> [String] {
        let value: String =
            if let text = key.defaultText { "`\(text)`" } else if key.required { "required" } else { "unset" }
        return ["`\(name)`", key.type, value, key.allowed, key.reload.rawValue, key.doc]
    }

    private static func table(_ rows: [[String]]) -> String {
        var text = "| key | type | default | allowed | reload | meaning |\n|---|---|---|---|---|---|\n"
        for row in rows {
            text += "| " + row.map { $0.replacingPipes() }.joined(separator: " | ") + " |\n"
        }
        return text + "\n"
    }
}

extension String {
    /// `|` would end a Markdown table cell.
    fileprivate func replacingPipes() -> String {
        var result = ""
        for character in self { result += character == "|" ? "\\|" : String(character) }
        return result
    }
}
