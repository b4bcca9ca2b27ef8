// Support: a bare UDP socket for sending hand-made (and malformed) datagrams to the daemon.

import Foundation
import Resolver

/// A blocking UDP socket with a receive timeout, connected to one server. Calls that may block
/// long (a slow upstream behind the daemon) go through `offPool` so they do not hold one of the
/// few threads of Swift's cooperative pool, which every other test's waits need.
final class RawUDPClient: @unchecked Sendable {
    private let socketDescriptor: Int32

    /// A socket connected to `server`, bound to `source` (an IPv4 address of this host) if given.
    init(server: ServerAddress, receiveTimeoutMs: Int = 2000, source: String? = nil) throws {
        guard case .v4(let ip) = server.ip else { throw POSIXError(.EAFNOSUPPORT) }
        socketDescriptor = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        guard socketDescriptor >= 0 else { throw POSIXError(.EMFILE) }
        if let source, case .v4(let local)? = IPAddress(source) {
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = local.bigEndian
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    bind(socketDescriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
            guard bound == 0 else { throw POSIXError(.EADDRNOTAVAIL) }
        }
        var timeout = timeval(tv_sec: receiveTimeoutMs / 1000, tv_usec: Int((receiveTimeoutMs % 1000) * 1000))
        setsockopt(socketDescriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        // Room for a burst of replies (FORCE passes net.core.rmem_max when running as root).
        var size: Int32 = 4 << 20
        if setsockopt(socketDescriptor, SOL_SOCKET, SO_RCVBUFFORCE, &size, socklen_t(MemoryLayout<Int32>.size)) != 0 {
            setsockopt(socketDescriptor, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = server.port.bigEndian
        address.sin_addr.s_addr = ip.bigEndian
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(socketDescriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard result == 0 else { throw POSIXError(.ECONNREFUSED) }
    }

    deinit { close(socketDescriptor) }

    func send(_ bytes: [UInt8]) {
        _ = bytes.withUnsafeBytes { Glibc.send(socketDescriptor, $0.baseAddress, $0.count, 0) }
    }

    /// The next datagram, or nil after the receive timeout.
    func receive() -> [UInt8]? {
        var buffer = [UInt8](repeating: 0, count: 65535)
        let count = buffer.withUnsafeMutableBytes { recv(socketDescriptor, $0.baseAddress, $0.count, 0) }
        return count >= 0 ? Array(buffer[0..<count]) : nil
    }

    /// Sends a query and returns the decoded reply.
    func ask(_ message: DNSMessage) throws -> DNSMessage? {
        send(try DNSCodec.encode(message))
        return try receive().map { try DNSCodec.decode($0) }
    }
}

/// Runs a blocking call on a thread of its own and waits for it without blocking the pool.
func offPool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread.detachNewThread {
            do {
                continuation.resume(returning: try body())
            } catch {
                continuation.resume(throwing: error)
            }
        }
    }
}
