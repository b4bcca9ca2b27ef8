// dig-lite: admin verbs over resolverd's HTTP API. The API address and token come from flags or
// the environment (RESOLVERD_API, RESOLVERD_TOKEN).

import ArgumentParser
import Foundation
import Resolver

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Where the API is and how to authenticate; shared by every admin verb.
struct APIOptions: ParsableArguments {
    @Option(help: "resolverd's API base URL (default: $RESOLVERD_API or http://127.0.0.1:8053).")
    var api: String?

    @Option(help: "Bearer token (default: $RESOLVERD_TOKEN).")
    var token: String?

    @Flag(help: "Print the API's JSON instead of a table.")
    var json = false

    /// GETs `path` and returns the body; errors print a clear line and exit 1.
    func get(_ path: String) async throws -> Data {
        let environment = ProcessInfo.processInfo.environment
        let base = api ?? environment["RESOLVERD_API"] ?? "http://127.0.0.1:8053"
        guard let url = URL(string: base + path) else {
            writeStandardError("dig-lite: '\(base)' is not a URL\n")
            throw ExitCode(1)
        }
        var request = URLRequest(url: url, timeoutInterval: 10)
        if let token = token ?? environment["RESOLVERD_TOKEN"], !token.isEmpty {
            request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization")
        }
        let (data, response): (Data, URLResponse)
        do {
            (data, response) = try await URLSession.shared.data(for: request)
        } catch {
            writeStandardError("dig-lite: cannot reach \(url): \(error.localizedDescription)\n")
            throw ExitCode(1)
        }
        guard let status = (response as? HTTPURLResponse)?.statusCode, (200..<300).contains(status) else {
            let code = (response as? HTTPURLResponse)?.statusCode ?? 0
            writeStandardError("dig-lite: \(url) answered \(code): \(String(decoding: data, as: UTF8.self))\n")
            throw ExitCode(1)
        }
        return data
    }
}

/// `dig-lite servers`: every zone's servers in selection order, with their figures.
struct Servers: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show every zone's servers in selection order (SRTT, RTTVAR, queries, timeouts, state).")

    @OptionGroup var options: APIOptions

    func run() async throws {
        let data = try await options.get("/v1/servers")
        if options.json {
            print(String(decoding: data, as: UTF8.self))
            return
        }
        let response = try JSONDecoder().decode(ServersResponse.self, from: data)
        print(ServersTable.render(response), terminator: "")
    }
}
