// Real clients against the real daemon: dig-lite, dig, drill, kdig, and glibc's resolver
// (`getent hosts`) inside a network namespace whose resolv.conf points at resolverd.

import FakeDNS
import Foundation
import Resolver
import Testing

@Suite("Clients", .timeLimit(.minutes(3)))
struct ClientsTests {
    @Test("dig-lite prints dig's shape, +short, +tcp, -x, and exit codes 0, 9 and 1")
    func digLite() async throws {
        let (fake, upstream) = try await Fixtures.upstream(
            Fixtures.zone + ["10.2.0.192.in-addr.arpa. 300 IN PTR www.example.test."])
        let daemon = try await Daemon(config: forwardingConfig([(".", [upstream])]))
        let digLite = Binaries.path("dig-lite")
        let port = "\(daemon.port)"

        let full = try runCommand([digLite, "@127.0.0.1", "-p", port, "www.example.test", "A"])
        #expect(full.status == 0)
        #expect(full.stdout.contains(";; ->>HEADER<<- opcode: QUERY, status: NOERROR, id: "))
        #expect(full.stdout.contains(";; flags: qr rd ra; QUERY: 1, ANSWER: 1, AUTHORITY: 0, ADDITIONAL: 1"))
        #expect(full.stdout.contains(";; QUESTION SECTION:\n;www.example.test.\t\t\tIN\tA"))
        #expect(full.stdout.contains(";; ANSWER SECTION:\nwww.example.test.\t300\tIN\tA\t192.0.2.10"))
        #expect(full.stdout.contains(";; Query time: "))
        #expect(full.stdout.contains(";; SERVER: 127.0.0.1#\(port)(127.0.0.1) (UDP)"))
        #expect(full.stdout.contains(";; MSG SIZE  rcvd: "))

        let short = try runCommand([digLite, "@127.0.0.1", "-p", port, "+short", "www.example.test", "AAAA"])
        #expect(short.stdout == "2001:db8::10\n")
        let tcp = try runCommand([digLite, "@127.0.0.1", "-p", port, "big.example.test", "TXT", "+tcp"])
        #expect(tcp.stdout.contains("ANSWER: 30"))
        #expect(tcp.stdout.contains("(TCP)"))
        let truncatedThenTCP = try runCommand([digLite, "@127.0.0.1", "-p", port, "big.example.test", "TXT", "+noedns"])
        #expect(truncatedThenTCP.stdout.contains("ANSWER: 30"))
        let reverse = try runCommand([digLite, "@127.0.0.1", "-p", port, "-x", "192.0.2.10", "+short"])
        #expect(reverse.stdout == "www.example.test.\n")
        let nx = try runCommand([digLite, "@127.0.0.1", "-p", port, "nope.example.test"])
        #expect(nx.status == 0)
        #expect(nx.stdout.contains("status: NXDOMAIN"))

        // Nobody listening: dig's exit status 9.
        try await daemon.stop()
        let silent = try runCommand([digLite, "@127.0.0.1", "-p", port, "www.example.test", "+timeout=1", "+tries=1"])
        #expect(silent.status == 9)
        #expect(silent.stdout.contains("no servers could be reached"))
        // Bad arguments: usage and exit 1.
        for bad in [["-p"], ["+bogus", "x"], ["-p", "notaport", "x"], ["a..b"], []] {
            let result = try runCommand([digLite] + bad)
            #expect(result.status == 1, "dig-lite \(bad)")
            #expect(result.stderr.contains("USAGE"), "dig-lite \(bad)")
        }
        await fake.stop()
    }

    @Test("dig, drill and kdig get answers over UDP and TCP")
    func realClients() async throws {
        let (fake, upstream) = try await Fixtures.upstream()
        let daemon = try await Daemon(config: forwardingConfig([(".", [upstream])]))
        let port = "\(daemon.port)"
        let dig = try runCommand(["dig", "@127.0.0.1", "-p", port, "alias.example.test", "+tries=1"])
        #expect(dig.stdout.contains("status: NOERROR"))
        #expect(dig.stdout.contains("alias.example.test.\t300\tIN\tCNAME\twww.example.test."))
        #expect(dig.stdout.contains("www.example.test.\t300\tIN\tA\t192.0.2.10"))
        let digTCP = try runCommand(["dig", "@127.0.0.1", "-p", port, "mail.example.test", "MX", "+tcp", "+short"])
        #expect(digTCP.stdout == "10 www.example.test.\n")
        let drill = try runCommand(["drill", "-p", port, "www.example.test", "@127.0.0.1"])
        #expect(drill.status == 0)
        #expect(drill.stdout.contains("rcode: NOERROR"))
        #expect(drill.stdout.contains("192.0.2.10"))
        let drillTCP = try runCommand(["drill", "-t", "-p", port, "www.example.test", "AAAA", "@127.0.0.1"])
        #expect(drillTCP.stdout.contains("2001:db8::10"))
        let kdig = try runCommand(["kdig", "@127.0.0.1", "-p", port, "www.example.test", "+short"])
        #expect(kdig.stdout == "192.0.2.10\n")
        try await daemon.stop()
        await fake.stop()
    }

    @Test("glibc resolves through resolverd in a network namespace (getent hosts), service groups too")
    func glibcInNamespace() async throws {
        let namespace = try NetworkNamespace()
        defer { namespace.remove() }

        // The namespace has its own loopback: the fake upstream and resolverd both run inside it,
        // resolverd on port 53 because resolv.conf cannot name another port.
        let zoneFile = FileManager.default.temporaryDirectory.appendingPathComponent("\(namespace.name).zone")
        try Fixtures.zone.joined(separator: "\n").write(to: zoneFile, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: zoneFile) }
        let fake = try namespace.spawn([Binaries.path("fake-dns"), "--listen", "127.0.0.2:53", "--zone-file", zoneFile.path])
        defer { fake.stop() }
        let config = """
            [server]
            listen = ["127.0.0.1:53"]
            [api]
            listen = "127.0.0.1:8053"
            [[forward]]
            zone = "."
            servers = ["127.0.0.2:53"]
            """
        let daemon = try await Daemon(config: config, prefix: namespace.prefix)
        let result = try namespace.run(["getent", "hosts", "www.example.test"])
        #expect(result.status == 0, "\(result.stderr)\n\(daemon.log)")
        #expect(result.stdout.contains("2001:db8::10") || result.stdout.contains("192.0.2.10"))
        let ipv4 = try namespace.run(["getent", "ahostsv4", "alias.example.test"])
        #expect(ipv4.stdout.contains("192.0.2.10"))
        let missing = try namespace.run(["getent", "hosts", "nope.example.test"])
        #expect(missing.status == 2)  // getent: key not found

        // A service group: registered with dig-lite over the API, resolved by glibc.
        let register = try namespace.run(
            [Binaries.path("dig-lite"), "register", "web", "n1", "127.0.0.7", "--ttl", "60",
             "--api", "127.0.0.1:8053", "--token-file", daemon.tokenFile ?? ""])
        #expect(register.status == 0, "\(register.stdout)\(register.stderr)")
        let group = try namespace.run(["getent", "hosts", "web.cluster.internal"])
        #expect(group.stdout.contains("127.0.0.7"), "\(group.stdout)\(group.stderr)\n\(daemon.log)")
        try await daemon.stop()
    }
}
