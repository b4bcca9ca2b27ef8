// dig-lite: query a DNS server as dig does, and manage resolverd over its HTTP API. Wiring only:
// the query syntax and output shape live in Resolver/Client, the sending in Resolver/Upstream.

import ArgumentParser
import Logging
import NIOPosix
import Resolver

#if canImport(Glibc)
import Glibc
#endif

@main
struct DigLite: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dig-lite",
        abstract: "Query DNS servers (like dig) and manage resolverd.",
        usage: """
            dig-lite [@SERVER] [-p PORT] NAME [TYPE] [CLASS] [+tcp] [+short] [+norecurse] [-x ADDR] [+timeout=N] [+tries=N]
            dig-lite servers|stats|cache|flush|reload|groups|group|register|heartbeat|deregister|registry-reset [--api URL] [--token-file PATH] [--json]
            """,
        version: resolverdVersion,
        subcommands: [
            Query.self, Servers.self, Stats.self, Workers.self, Cache.self, Flush.self, Reload.self, Groups.self, Group.self, Register.self, Heartbeat.self,
            Deregister.self, RegistryReset.self,
        ],
        defaultSubcommand: Query.self)
}

/// `dig-lite [@server] name …`: one DNS query, printed as dig prints it.
struct Query: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Send one DNS query (the default verb).",
        usage: "dig-lite [@SERVER] [-p PORT] NAME [TYPE] [CLASS] [+tcp] [+short] [+norecurse] [-x ADDR] [+timeout=N] [+tries=N]")

    @Argument(parsing: .captureForPassthrough, help: "dig-style query words.")
    var words: [String] = []

    /// dig's exit status when no server replied.
    static let noReply: Int32 = 9

    func run() async throws {
        let query: DigQuery
        do {
            query = try DigQuery.parse(words)
        } catch {
            writeStandardError("dig-lite: \(error)\n\(DigLite.helpMessage())\n")
            throw ExitCode(1)
        }
        let serverText = query.server ?? Self.defaultServer()
        guard let ip = IPAddress(serverText) else {
            writeStandardError("dig-lite: '\(serverText)' is not an IP address\n")
            throw ExitCode(1)
        }
        let server = ServerAddress(ip: ip, port: query.port)
        var logger = Logger(label: "dig-lite")
        logger.logLevel = .critical
        let client = UpstreamClient(
            group: MultiThreadedEventLoopGroup.singleton, timeout: .seconds(Int64(query.timeoutSeconds)), logger: logger)
        let upstreamQuery = UpstreamQuery(
            question: Question(name: query.name, type: query.type, recordClass: query.recordClass),
            dnssecOK: query.dnssecOK, checkingDisabled: query.checkingDisabled, recursionDesired: query.recursionDesired)

        for attempt in 1...(query.tcp ? 1 : query.tries) {
            do throws(UpstreamError) {
                let answer = try await client.exchange(
                    upstreamQuery, server: server, transport: query.tcp ? .tcp : .udp, edns: query.edns)
                if query.short {
                    print(DigOutput.short(answer.message), terminator: "")
                } else {
                    let reply = DigReply(
                        message: answer.message, server: server, milliseconds: answer.rtt.nanoseconds / 1_000_000,
                        size: answer.wire.count, overTCP: answer.overTCP)
                    print(DigOutput.full(reply, commandLine: CommandLine.arguments.dropFirst().joined(separator: " ")))
                }
                return
            } catch {
                let kind = error == .timeout ? "timed out" : "\(error)"
                print(";; communications error to \(server.ip)#\(server.port): \(kind) (try \(attempt))")
            }
        }
        print(";; no servers could be reached")
        throw ExitCode(Self.noReply)
    }

    /// The first nameserver of /etc/resolv.conf, as dig does, or 127.0.0.1.
    static func defaultServer() -> String {
        SystemResolvers.parse(readTextFile("/etc/resolv.conf") ?? "", excluding: []).first?.ip.description ?? "127.0.0.1"
    }
}
