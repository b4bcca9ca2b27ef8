// Fuzz/fuzz-config: libFuzzer target for the config reader (Config/TOML.swift, Config/Config.swift,
// Config/Addresses.swift). The input is a config file's text (bytes that are not UTF-8 are
// repaired, as String(decoding:) does for a file read from disk). Config.parse must return a
// config or throw a ConfigError, never trap; an error's line must be one of the file's lines.

@testable import Resolver

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    let lines = text.utf8.reduce(1) { $1 == UInt8(ascii: "\n") ? $0 + 1 : $0 }

    do {
        _ = try TOMLParser.parse(text)
    } catch {
        if error.line < 1 || error.line > lines { fatalError("TOML error on line \(error.line) of \(lines)") }
    }
    do {
        let config = try Config.parse(text)
        _ = config.server.listen.map(\.description)
        _ = config.server.allow.map(\.description)
        _ = config.forwards.map { ($0.zone.description, $0.servers.map(\.description)) }
        _ = config.cluster.domain.description
    } catch {
        if let line = error.line, line < 0 || line > lines { fatalError("config error on line \(line) of \(lines)") }
        _ = error.description
    }
    return 0
}
