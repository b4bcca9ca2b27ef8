// ServiceGroups/EtcdClient: the watch stream's line cap, against a fake gateway on loopback that
// answers a watch with one endless line (a raw socket: the test owns every byte sent).

import AsyncHTTPClient
import Foundation
import Synchronization
import Testing

@testable import Resolver

#if canImport(Glibc)
import Glibc
#endif

/// Answers one HTTP request on 127.0.0.1 with a chunked body of `bytes` octets and no newline.
private final class EndlessLineServer: Sendable {
    let port: UInt16
    private let listener: Int32

    init(bytes: Int) throws {
        listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let descriptor = listener
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { socketAddress in
                bind(descriptor, socketAddress, length) == 0 && listen(descriptor, 4) == 0
                    && getsockname(descriptor, socketAddress, &length) == 0
            }
        }
        guard bound else { throw POSIXError(.EADDRINUSE) }
        port = UInt16(bigEndian: address.sin_port)
        let listener = self.listener
        Thread {
            let connection = accept(listener, nil, nil)
            guard connection >= 0 else { return }
            defer { close(connection) }
            var request = [UInt8](repeating: 0, count: 65_536)
            _ = recv(connection, &request, request.count, 0)
            func write(_ data: [UInt8]) -> Bool {
                data.withUnsafeBytes { send(connection, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) == $0.count }
            }
            guard write(Array("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n".utf8))
            else { return }
            let chunk = [UInt8](repeating: UInt8(ascii: "a"), count: 65_536)
            var sent = 0
            while sent < bytes {
                guard write(Array(String(chunk.count, radix: 16).utf8) + [13, 10] + chunk + [13, 10]) else { return }
                sent += chunk.count
            }
            _ = write(Array("0\r\n\r\n".utf8))
            // Closing with the request's bytes unread would send a reset, and the client's kernel
            // would drop what it had not yet read: finish sending, then wait for the client to go
            // (at most 10 s).
            shutdown(connection, Int32(SHUT_WR))
            var wait = timeval(tv_sec: 10, tv_usec: 0)
            setsockopt(connection, SOL_SOCKET, SO_RCVTIMEO, &wait, socklen_t(MemoryLayout<timeval>.size))
            var rest = [UInt8](repeating: 0, count: 65_536)
            while recv(connection, &rest, rest.count, 0) > 0 {}
        }.start()
    }

    deinit { close(listener) }
}

@Suite("EtcdWatch")
struct EtcdWatchTests {
    @Test("a watch line past 4 MiB is not buffered on: the stream is dropped and a listing asked for")
    func oversizedLine() async throws {
        let server = try EndlessLineServer(bytes: 6 << 20)
        let http = HTTPClient(eventLoopGroupProvider: .singleton)
        let client = EtcdClient(endpoints: ["http://127.0.0.1:\(server.port)"], http: http)
        let oversized = Atomic<Bool>(false)
        do {
            try await client.watch(prefix: "/p/", from: 1) { message in
                if case .oversized = message { oversized.store(true, ordering: .relaxed) }
            }
        } catch {
            Issue.record("the watch failed instead: \(error)")
        }
        let seen = oversized.load(ordering: .relaxed)
        #expect(seen)
        try await http.shutdown()
    }
}
