// Frontend/: the UDP fast path, hand-written because measurement said so (BENCHMARKS.md, cache
// hits): NIO's DatagramChannel turns every sender's address into text (inet_ntop) and wraps each
// datagram in an envelope on its way through the channel pipeline, which cost more per cached
// answer than the whole lookup. Here one thread per socket (SO_REUSEPORT, one socket per event
// loop) reads up to 32 datagrams with one recvmmsg, runs each through the same QueryPipeline,
// and sends every ready reply with one sendmmsg. Queries that must go upstream leave as tasks
// and send their reply with sendto when it is ready. TCP stays on NIO.

import CBatchIO
import Logging
import NIOCore
import NIOPosix
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A UDP socket, closed when the listener and every reply still in flight are done with it (so
/// a late reply can never go out through a reused descriptor).
final class UDPSocketHandle: Sendable {
    let descriptor: Int32

    init(descriptor: Int32) { self.descriptor = descriptor }

    deinit { close(descriptor) }

    /// Sends one datagram; a full send buffer drops it, as the network would.
    func send(_ bytes: UnsafeRawBufferPointer, to address: ClientAddress) {
        var storage = address.storage
        _ = withUnsafePointer(to: &storage) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                sendto(descriptor, bytes.baseAddress, bytes.count, Int32(MSG_DONTWAIT), $0, address.length)
            }
        }
    }
}

/// A datagram's sender, kept for the reply.
struct ClientAddress: @unchecked Sendable {
    var storage: sockaddr_storage
    var length: socklen_t
}

/// Errors binding the fast path's sockets.
public struct UDPBindError: Error, CustomStringConvertible {
    public let address: ServerAddress
    public let call: String
    public let code: Int32

    public var description: String { "udp \(address): \(call): \(String(cString: strerror(code)))" }
}

/// One socket and the thread that serves it.
public final class UDPBatchListener: Sendable {
    static let batch = 128
    /// Largest datagram read; a longer query is cut and gets FORMERR.
    static let slotSize = 4096

    let socket: UDPSocketHandle
    public let address: ServerAddress
    private let pipeline: QueryPipeline
    private let logger: Logger
    private let stopping = Atomic<Bool>(false)
    private let thread: NIOThreadPool

    /// Binds `address` (port 0: the kernel picks) with SO_REUSEPORT and starts serving it.
    public init(address: ServerAddress, pipeline: QueryPipeline, logger: Logger) throws(UDPBindError) {
        let descriptor = try Self.bind(address)
        socket = UDPSocketHandle(descriptor: descriptor)
        self.address = Self.localAddress(descriptor) ?? address
        self.pipeline = pipeline
        self.logger = logger
        thread = NIOThreadPool(numberOfThreads: 1)
        thread.start()
        thread.submit { [self] _ in serve() }
    }

    /// Stops the thread (it notices within its 100 ms receive timeout).
    public func stop() async {
        stopping.store(true, ordering: .relaxed)
        try? await thread.shutdownGracefully()
    }

    // MARK: - The loop

    private func serve() {
        let batch = Self.batch
        let slot = Self.slotSize
        let receiveBuffers = UnsafeMutableRawBufferPointer.allocate(byteCount: batch * slot, alignment: 16)
        let addresses = UnsafeMutablePointer<sockaddr_storage>.allocate(capacity: batch)
        let inVectors = UnsafeMutablePointer<iovec>.allocate(capacity: batch)
        let inMessages = UnsafeMutablePointer<CBatchIO_message>.allocate(capacity: batch)
        let outVectors = UnsafeMutablePointer<iovec>.allocate(capacity: batch)
        let outMessages = UnsafeMutablePointer<CBatchIO_message>.allocate(capacity: batch)
        defer {
            receiveBuffers.deallocate()
            addresses.deallocate()
            inVectors.deallocate()
            inMessages.deallocate()
            outVectors.deallocate()
            outMessages.deallocate()
        }
        var replies: [ByteBuffer] = []
        replies.reserveCapacity(batch)
        let allocator = ByteBufferAllocator()
        let waitForOne = CBatchIO_waitForOne()
        var logLimiter = LogRateLimiter(perSecond: 5)

        while !stopping.load(ordering: .relaxed) {
            for index in 0..<batch {
                inVectors[index] = iovec(iov_base: receiveBuffers.baseAddress.map { $0 + index * slot }, iov_len: slot)
                inMessages[index] = CBatchIO_message(
                    header: msghdr(
                        msg_name: UnsafeMutableRawPointer(addresses + index),
                        msg_namelen: socklen_t(MemoryLayout<sockaddr_storage>.size), msg_iov: inVectors + index,
                        msg_iovlen: 1, msg_control: nil, msg_controllen: 0, msg_flags: 0),
                    length: 0)
            }
            let received = CBatchIO_receive(socket.descriptor, inMessages, UInt32(batch), waitForOne)
            if received <= 0 { continue }  // the 100 ms timeout, or an interrupted call

            replies.removeAll(keepingCapacity: true)
            var outCount = 0
            for index in 0..<Int(received) {
                let length = Int(inMessages[index].length)
                guard let base = receiveBuffers.baseAddress else { break }
                let bytes = UnsafeRawBufferPointer(start: base + index * slot, count: length)
                let client = addresses + index
                let permitted = permits(client)
                switch pipeline.process(
                    bytes, permitted: permitted, transport: .udp, allocator: allocator, client: { Self.describe(client) })
                {
                case .reply(let reply):
                    replies.append(reply)
                    outMessages[outCount] = CBatchIO_message(
                        header: msghdr(
                            msg_name: UnsafeMutableRawPointer(client), msg_namelen: inMessages[index].header.msg_namelen,
                            msg_iov: outVectors + outCount, msg_iovlen: 1, msg_control: nil, msg_controllen: 0,
                            msg_flags: 0),
                        length: 0)
                    outCount += 1
                case .drop(let reason):
                    if logLimiter.allow(nowNanoseconds: NIODeadline.now().uptimeNanoseconds) {
                        logger.debug(
                            "dropped a packet", metadata: ["reason": "\(reason.rawValue)", "suppressed": "\(logLimiter.suppressed)"])
                        logLimiter.resetSuppressed()
                    }
                case .resolve(let pending):
                    let address = ClientAddress(storage: client.pointee, length: inMessages[index].header.msg_namelen)
                    let socket = self.socket
                    let pipeline = self.pipeline
                    // No task: a forwarded question leaves from this thread, and its reply from
                    // the thread that receives the answer.
                    pipeline.resolve(pending, allocator: allocator) { reply in
                        reply.withUnsafeReadableBytes { socket.send($0, to: address) }
                    }
                }
            }
            guard outCount > 0 else { continue }
            // The replies' storage stays alive in `replies` until sendmmsg has copied it.
            for index in 0..<outCount {
                replies[index].withUnsafeReadableBytes {
                    outVectors[index] = iovec(iov_base: UnsafeMutableRawPointer(mutating: $0.baseAddress), iov_len: $0.count)
                }
            }
            var sent = 0
            var attempts = 0
            while sent < outCount, attempts < 4 {
                attempts += 1
                let result = CBatchIO_send(socket.descriptor, outMessages + sent, UInt32(outCount - sent), 0)
                if result > 0 {
                    sent += Int(result)
                } else if result < 0, errno != EINTR {
                    sent += 1  // this datagram cannot go (e.g. unreachable); skip it, send the rest
                }
            }
        }
    }

    /// The client's address, for the per-client caps and the query log (only queries that go
    /// upstream or get logged pay for it).
    private static func describe(_ client: UnsafeMutablePointer<sockaddr_storage>) -> ServerAddress? {
        let address: SocketAddress? =
            switch Int32(client.pointee.ss_family) {
            case AF_INET: client.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { SocketAddress($0.pointee) }
            case AF_INET6: client.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { SocketAddress($0.pointee) }
            default: nil
            }
        return address.flatMap(ServerAddress.init)
    }

    private func permits(_ client: UnsafeMutablePointer<sockaddr_storage>) -> Bool {
        switch Int32(client.pointee.ss_family) {
        case AF_INET:
            return client.withMemoryRebound(to: sockaddr_in.self, capacity: 1) {
                pipeline.policy.current.access.permits(v4: UInt32(bigEndian: $0.pointee.sin_addr.s_addr))
            }
        case AF_INET6:
            return client.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { pointer in
                withUnsafeBytes(of: pointer.pointee.sin6_addr) { pipeline.policy.current.access.permits(v6: $0) }
            }
        default:
            return false
        }
    }

    // MARK: - Sockets

    private static func bind(_ address: ServerAddress) throws(UDPBindError) -> Int32 {
        let socketAddress: SocketAddress
        do {
            socketAddress = try address.socketAddress()
        } catch {
            throw UDPBindError(address: address, call: "address", code: EINVAL)
        }
        let family = socketAddress.protocol.rawValue
        let descriptor = Glibc.socket(family, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { throw UDPBindError(address: address, call: "socket", code: errno) }
        @discardableResult
        func option(_ level: Int32, _ name: Int32, _ value: Int32) -> Bool {
            var value = value
            return setsockopt(descriptor, level, name, &value, socklen_t(MemoryLayout<Int32>.size)) == 0
        }
        option(SOL_SOCKET, SO_REUSEADDR, 1)
        option(SOL_SOCKET, SO_REUSEPORT, 1)
        // A burst of hundreds of queries must fit in the kernel's queue while we are busy. With
        // CAP_NET_ADMIN the FORCE options pass net.core.rmem_max/wmem_max; without, the plain ones
        // get what the system allows.
        if !option(SOL_SOCKET, SO_RCVBUFFORCE, 4 << 20) { option(SOL_SOCKET, SO_RCVBUF, 4 << 20) }
        if !option(SOL_SOCKET, SO_SNDBUFFORCE, 4 << 20) { option(SOL_SOCKET, SO_SNDBUF, 4 << 20) }
        if family == AF_INET6 { option(Int32(IPPROTO_IPV6), IPV6_V6ONLY, 1) }
        // The loop wakes this often to notice a stop.
        var timeout = timeval(tv_sec: 0, tv_usec: 100_000)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let result = socketAddress.withSockAddr { Glibc.bind(descriptor, $0, socklen_t($1)) }
        guard result == 0 else {
            let code = errno
            close(descriptor)
            throw UDPBindError(address: address, call: "bind", code: code)
        }
        return descriptor
    }

    /// The address a socket is bound to.
    static func localAddress(_ descriptor: Int32) -> ServerAddress? {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let result = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        guard result == 0 else { return nil }
        let address: SocketAddress? =
            switch Int32(storage.ss_family) {
            case AF_INET: withUnsafeBytes(of: &storage) { SocketAddress($0.load(as: sockaddr_in.self)) }
            case AF_INET6: withUnsafeBytes(of: &storage) { SocketAddress($0.load(as: sockaddr_in6.self)) }
            default: nil
            }
        return address.flatMap(ServerAddress.init)
    }
}
