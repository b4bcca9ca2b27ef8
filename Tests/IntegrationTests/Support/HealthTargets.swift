// Servers the health-check tests point members at, on loopback: a TCP listener that can stop
// listening (connections refused) and start again on the same port, and an HTTP server whose
// status code the test sets. Plus a small JSON client for resolverd's API.

import Foundation
import NIOCore
import NIOPosix
import Synchronization
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// A TCP port that accepts connections while `listening`.
final class TCPTarget: @unchecked Sendable {
    private var descriptor: Int32 = -1
    private(set) var port: UInt16 = 0

    init() throws { try listen() }

    /// Binds 127.0.0.1 (the same port after the first time) and listens.
    func listen() throws {
        descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var one: Int32 = 1
        setsockopt(descriptor, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, Glibc.listen(descriptor, 128) == 0 else { throw POSIXTestError(call: "bind/listen", code: errno) }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        port = UInt16(bigEndian: address.sin_port)
    }

    /// Closes the socket: connections are refused until `listen` again.
    func close() {
        if descriptor >= 0 { Glibc.close(descriptor) }
        descriptor = -1
    }

    deinit { close() }
}

struct POSIXTestError: Error {
    var call: String
    var code: Int32
}

/// An HTTP server on 127.0.0.1 answering every request with `status`.
final class HTTPTarget: Sendable {
    /// What the server answers, and how often it was asked.
    final class State: Sendable {
        let status = Atomic<Int>(200)
        let requests = Atomic<Int>(0)
    }

    let state: State
    private let channel: any Channel
    var port: UInt16 { UInt16(channel.localAddress?.port ?? 0) }

    /// The status code of the next answers.
    func answer(_ code: Int) { state.status.store(code, ordering: .relaxed) }
    var requests: Int { state.requests.load(ordering: .relaxed) }

    init() async throws {
        let state = State()
        self.state = state
        channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(Responder(state: state))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
    }

    func stop() async {
        try? await channel.close()
    }

    /// Answers once the request head has arrived (a blank line), then closes.
    private final class Responder: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        let state: State
        var received = ""

        init(state: State) { self.state = state }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            received += String(buffer: unwrapInboundIn(data))
            guard received.contains("\r\n\r\n") else { return }
            state.requests.add(1, ordering: .relaxed)
            let code = state.status.load(ordering: .relaxed)
            let response = "HTTP/1.1 \(code) Status\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: response)), promise: nil)
            context.close(promise: nil)
        }
    }
}

/// resolverd's HTTP API, for tests.
struct APIClient {
    let base: String
    var token: String? = nil

    struct Response {
        var status: Int
        var body: Data
        var json: [String: Any] { (try? JSONSerialization.jsonObject(with: body)) as? [String: Any] ?? [:] }
        /// `{"error": {"message": …}}`'s message.
        var message: String { ((json["error"] as? [String: Any])?["message"] as? String) ?? String(decoding: body, as: UTF8.self) }
    }

    func send(_ method: String, _ path: String, body: String? = nil, headers: [String: String] = [:]) async throws -> Response {
        guard let url = URL(string: base + path) else { throw URLError(.badURL) }
        var request = URLRequest(url: url, timeoutInterval: 10)
        request.httpMethod = method
        if let body {
            request.httpBody = Data(body.utf8)
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        }
        if let token { request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
        for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
        let (data, response) = try await URLSession.shared.data(for: request)
        return Response(status: (response as? HTTPURLResponse)?.statusCode ?? 0, body: data)
    }

    /// Registers a member; expects 201 or 200.
    @discardableResult
    func register(_ group: String, _ id: String, _ body: String) async throws -> Response {
        let response = try await send("PUT", "/v1/groups/\(group)/members/\(id)", body: body)
        #expect(response.status == 201 || response.status == 200, "register \(group)/\(id): \(response.status) \(response.message)")
        return response
    }
}
