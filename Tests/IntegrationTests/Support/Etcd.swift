// Support: a real etcd cluster on loopback (Debian's etcd-server, installed by
// scripts/install-deps.sh --test): three members with client and peer ports on 127.0.0.1, data in
// a temporary folder. Members can be killed and the whole cluster stopped and started again on
// the same data. Every process started here is stopped (SIGKILL in deinit at the latest).

import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

final class EtcdCluster: @unchecked Sendable {
    struct Member {
        var name: String
        var clientPort: UInt16
        var peerPort: UInt16
        var process: Process?
    }

    let directory: URL
    private(set) var members: [Member]
    /// Clients speak https and must show a certificate signed by `ca.pem` (files in `directory`:
    /// ca.pem, server.pem/.key, client.pem/.key).
    let tls: Bool

    /// Client URLs of every member.
    var endpoints: [String] { members.map { "\(tls ? "https" : "http")://127.0.0.1:\($0.clientPort)" } }

    func file(_ name: String) -> String { directory.appendingPathComponent(name).path }

    /// Starts `count` members and waits until the cluster has a leader.
    init(count: Int = 3, tls: Bool = false) async throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("etcd-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        self.tls = tls
        let ports = try Self.freePorts(2 * count)
        members = (0..<count).map { Member(name: "m\($0)", clientPort: ports[2 * $0], peerPort: ports[2 * $0 + 1]) }
        if tls { try makeCertificates() }
        try await start()
    }

    /// A CA, a server certificate for 127.0.0.1 and a client certificate, with openssl.
    private func makeCertificates() throws {
        let commands: [[String]] = [
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", file("ca.key"), "-out", file("ca.pem"),
             "-days", "2", "-subj", "/CN=resolverd-test-ca"],
        ]
        for command in commands { try Self.run(command) }
        // etcd's JSON gateway connects to etcd itself with the server's certificate: it needs
        // both usages.
        for (name, usage) in [("server", "serverAuth,clientAuth"), ("client", "clientAuth")] {
            try "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=\(usage)\n".write(
                toFile: file("\(name).ext"), atomically: true, encoding: .utf8)
            try Self.run([
                "openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", file("\(name).key"), "-out", file("\(name).csr"),
                "-subj", "/CN=\(name == "server" ? "127.0.0.1" : "resolverd")",
            ])
            try Self.run([
                "openssl", "x509", "-req", "-in", file("\(name).csr"), "-CA", file("ca.pem"), "-CAkey", file("ca.key"),
                "-CAcreateserial", "-out", file("\(name).pem"), "-days", "2", "-extfile", file("\(name).ext"),
            ])
        }
    }

    private static func run(_ command: [String]) throws {
        let result = try runCommand(command, timeout: .seconds(30))
        guard result.status == 0 else { throw POSIXTestError(call: command.prefix(2).joined(separator: " ") + ": " + result.stderr, code: result.status) }
    }

    /// Starts every member that is not running (on its data folder, when it has one) and waits
    /// until each answers and the cluster has a leader.
    func start() async throws {
        let initial = members.map { "\($0.name)=http://127.0.0.1:\($0.peerPort)" }.joined(separator: ",")
        for index in members.indices where members[index].process?.isRunning != true {
            let member = members[index]
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = [
                "etcd", "--name", member.name, "--data-dir", directory.appendingPathComponent(member.name).path,
                "--listen-client-urls", "\(tls ? "https" : "http")://127.0.0.1:\(member.clientPort)",
                "--advertise-client-urls", "\(tls ? "https" : "http")://127.0.0.1:\(member.clientPort)",
                "--listen-peer-urls", "http://127.0.0.1:\(member.peerPort)",
                "--initial-advertise-peer-urls", "http://127.0.0.1:\(member.peerPort)",
                "--initial-cluster", initial, "--initial-cluster-token", directory.lastPathComponent,
                "--initial-cluster-state", "new", "--heartbeat-interval", "50", "--election-timeout", "500",
                "--log-level", "warn",
            ] + (tls ? [
                "--cert-file", file("server.pem"), "--key-file", file("server.key"), "--trusted-ca-file", file("ca.pem"),
                "--client-cert-auth",
            ] : [])
            let log = directory.appendingPathComponent("\(member.name).log")
            if !FileManager.default.fileExists(atPath: log.path) { _ = FileManager.default.createFile(atPath: log.path, contents: nil) }
            let handle = try FileHandle(forWritingTo: log)
            handle.seekToEndOfFile()
            process.standardOutput = handle
            process.standardError = handle
            process.standardInput = FileHandle.nullDevice
            try process.run()
            members[index].process = process
        }
        try await waitUntil("etcd to have a leader", timeout: .seconds(30), interval: .milliseconds(100)) { [self] in
            await healthy()
        }
    }

    /// Whether every running member says the cluster is healthy.
    func healthy() async -> Bool {
        if tls {
            let urls = members.filter { $0.process?.isRunning == true }.map { "https://127.0.0.1:\($0.clientPort)/health" }
            let files = (file("ca.pem"), file("client.pem"), file("client.key"))
            return (try? await offPool {
                try urls.allSatisfy { url in
                    try runCommand(["curl", "-s", "--cacert", files.0, "--cert", files.1, "--key", files.2, url]).stdout
                        .contains("\"true\"")
                }
            }) ?? false
        }
        for member in members where member.process?.isRunning == true {
            guard let url = URL(string: "http://127.0.0.1:\(member.clientPort)/health"),
                let (data, _) = try? await URLSession.shared.data(from: url),
                String(decoding: data, as: UTF8.self).contains("\"true\"")
            else { return false }
        }
        return true
    }

    /// Turns etcd's authentication on with a root user (etcd's API: add the user and the root
    /// role, grant it, enable).
    func enableAuth(password: String) async throws {
        let api = APIClient(base: try #require(endpoints.first))
        for (path, body) in [
            ("/v3/auth/user/add", #"{"name": "root", "password": "\#(password)"}"#), ("/v3/auth/role/add", #"{"name": "root"}"#),
            ("/v3/auth/user/grant", #"{"user": "root", "role": "root"}"#), ("/v3/auth/enable", "{}"),
        ] {
            let response = try await api.send("POST", path, body: body)
            #expect(response.status == 200, "\(path): \(String(decoding: response.body, as: UTF8.self))")
        }
    }

    /// SIGKILL to one member.
    func kill(_ index: Int) {
        guard let process = members[index].process, process.isRunning else { return }
        Glibc.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    /// Stops every member (SIGTERM, SIGKILL after 5 s); the data stays for `start`.
    func stop() {
        for member in members {
            guard let process = member.process, process.isRunning else { continue }
            Glibc.kill(process.processIdentifier, SIGTERM)
            let clock = ContinuousClock()
            let deadline = clock.now + .seconds(5)
            while process.isRunning, clock.now < deadline { usleep(10_000) }
            if process.isRunning { Glibc.kill(process.processIdentifier, SIGKILL) }
            process.waitUntilExit()
        }
    }

    /// Stops the cluster and removes its data.
    func remove() {
        stop()
        try? FileManager.default.removeItem(at: directory)
    }

    deinit {
        for member in members where member.process?.isRunning == true {
            if let process = member.process { Glibc.kill(process.processIdentifier, SIGKILL) }
        }
    }

    /// Ports free on 127.0.0.1 now (bound at once, then released).
    static func freePorts(_ count: Int) throws -> [UInt16] {
        var sockets: [Int32] = []
        defer { for descriptor in sockets { close(descriptor) } }
        var ports: [UInt16] = []
        for _ in 0..<count {
            let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            sockets.append(descriptor)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard bound == 0 else { throw POSIXTestError(call: "bind", code: errno) }
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            _ = withUnsafeMutablePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
            }
            ports.append(UInt16(bigEndian: address.sin_port))
        }
        return ports
    }
}
