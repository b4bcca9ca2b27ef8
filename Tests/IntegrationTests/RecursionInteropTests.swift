// Recursion against real authoritative servers: the hierarchy of Support/Hierarchy.swift served
// by NSD (Debian's `nsd`, one process per server so that no server holds a zone and its
// parent), all inside a network namespace with resolverd on 127.0.0.1:53, and asked by dig,
// drill and glibc's `getent`.

import Foundation
import Resolver
import Testing

@Suite("RecursionInterop", .timeLimit(.minutes(3)))
struct RecursionInteropTests {
    /// One NSD process serving the zones of `server`, in its own folder.
    static func nsdConfig(for server: HierarchyServer, layout: HierarchyLayout, directory: URL) throws -> URL {
        // Each server's records, split by zone (the SOA owners): one zone file per zone.
        let records = try server.records.map { try DNSCodec.record(fromPresentation: $0) }
        let apexes = records.filter { $0.type == .soa }.map(\.name)
        var config = """
            server:
                ip-address: \(layout.address(server.host))@53
                database: ""
                zonesdir: "\(directory.path)"
                pidfile: "\(directory.path)/nsd.pid"
                xfrdfile: "\(directory.path)/xfrd.state"
                zonelistfile: "\(directory.path)/zone.list"
                xfrdir: "\(directory.path)"
                logfile: "\(directory.path)/nsd.log"
                username: ""
                chroot: ""
                server-count: 1
                verbosity: 1
            remote-control:
                control-enable: no

            """
        for (index, apex) in apexes.enumerated() {
            let inZone = zip(server.records, records).filter { _, record in
                apexes.filter { record.name.isSubdomain(of: $0) }.max(by: { $0.labelCount < $1.labelCount }) == apex
            }
            let file = "zone\(index).zone"
            try inZone.map(\.0).joined(separator: "\n").appending("\n")
                .write(to: directory.appendingPathComponent(file), atomically: true, encoding: .utf8)
            config += "zone:\n    name: \"\(apex)\"\n    zonefile: \"\(file)\"\n"
        }
        let url = directory.appendingPathComponent("nsd.conf")
        try config.write(to: url, atomically: true, encoding: .utf8)
        return url
    }

    @Test("NSD-served hierarchy: dig, drill and getent get the same answers as from the fakes")
    func nsdHierarchy() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: "/usr/sbin/nsd"), "needs nsd (scripts/install-deps.sh --test)")
        let namespace = try NetworkNamespace()
        defer { namespace.remove() }
        let layout = HierarchyLayout()
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("nsd-\(namespace.name)")
        defer { try? FileManager.default.removeItem(at: base) }
        // NSD processes are killed with the namespace (they ignore the SIGTERM the runner blocks).
        // The servers that behave (NSD has no lame or wildcard mode): root, TLDs and the zones.
        for server in layout.servers where [1, 2, 3, 4, 5, 6, 9].contains(server.host) {
            let directory = base.appendingPathComponent("\(server.host)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            let config = try Self.nsdConfig(for: server, layout: layout, directory: directory)
            let check = try runCommand(["nsd-checkconf", config.path])
            try #require(check.status == 0, "nsd-checkconf: \(check.stderr)")
            _ = try namespace.spawn(["/usr/sbin/nsd", "-d", "-c", config.path], output: directory.appendingPathComponent("out.log"))
        }
        // Ready when each answers its own zone's SOA.
        for (host, zone) in [(1, "."), (2, "test."), (3, "lab."), (4, "inb.test."), (5, "outb.test."), (6, "hosts.lab."), (9, "lame.test.")] {
            try await waitUntil("NSD on \(layout.address(host))", timeout: .seconds(15)) {
                let result = try namespace.run(["dig", "@\(layout.address(host))", zone, "SOA", "+norec", "+short", "+time=1", "+tries=1"])
                return result.status == 0 && !result.stdout.isEmpty
            }
        }
        let daemon = try await Daemon(
            config: layout.config().replacingOccurrences(of: "listen = [\"127.0.0.1:0\"]", with: "listen = [\"127.0.0.1:53\"]"),
            prefix: namespace.prefix)

        func dig(_ arguments: [String]) throws -> String {
            try namespace.run(["dig", "@127.0.0.1", "+tries=1", "+time=5"] + arguments).stdout
        }
        #expect(try dig(["www.inb.test", "+short"]) == "192.0.2.1\n", "\(daemon.log)")
        #expect(try dig(["www.outb.test", "+short"]) == "192.0.2.3\n")
        #expect(try dig(["start.inb.test", "+short"]) == "mid.hosts.lab.\nend.outb.test.\n192.0.2.4\n")
        let dname = try dig(["www.d.inb.test"])
        #expect(dname.contains("d.inb.test.\t\t300\tIN\tDNAME\thosts.lab."), "\(dname)")
        #expect(dname.contains("192.0.2.2"))
        #expect(try dig(["www.lame.test", "+short"]) == "192.0.2.5\n")
        let nx = try dig(["nope.inb.test"])
        #expect(nx.contains("status: NXDOMAIN"))
        #expect(nx.contains("inb.test.\t\t300\tIN\tSOA"))
        let nodata = try dig(["www.inb.test", "AAAA"])
        #expect(nodata.contains("status: NOERROR") && nodata.contains("ANSWER: 0"))

        let drill = try namespace.run(["drill", "www.hosts.lab", "@127.0.0.1"])
        #expect(drill.stdout.contains("rcode: NOERROR") && drill.stdout.contains("192.0.2.2"))
        let drillChain = try namespace.run(["drill", "-t", "start.inb.test", "@127.0.0.1"])
        #expect(drillChain.stdout.contains("192.0.2.4"))

        let getent = try namespace.run(["getent", "ahostsv4", "start.inb.test"])
        #expect(getent.stdout.contains("192.0.2.4"), "\(getent.stdout)\(getent.stderr)")
        let hosts = try namespace.run(["getent", "hosts", "www.outb.test"])
        #expect(hosts.stdout.contains("192.0.2.3"))
        #expect(try namespace.run(["getent", "hosts", "nope.inb.test"]).status == 2)
        try await daemon.stop()
    }
}
