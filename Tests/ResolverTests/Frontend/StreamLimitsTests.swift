// Frontend/StreamFramer, ClientPrefixes and SlotLimiter: messages out of a DNS byte stream however
// it is cut, clients counted by network (an IPv6 host is its /64), and the server keys for them.

import NIOCore
import Testing

@testable import Resolver

@Suite("StreamFramer")
struct StreamFramerTests {
    private func framed(_ payloads: [[UInt8]]) -> [UInt8] {
        payloads.flatMap { [UInt8($0.count >> 8), UInt8($0.count & 0xFF)] + $0 }
    }

    private func feed(_ framer: inout StreamFramer, _ bytes: ArraySlice<UInt8>) {
        var buffer = ByteBuffer(bytes: bytes)
        framer.append(&buffer)
    }

    private func drain(_ framer: inout StreamFramer) -> [[UInt8]] {
        var messages: [[UInt8]] = []
        while let message = framer.next() { messages.append(Array(message.readableBytesView)) }
        return messages
    }

    @Test("messages come out whole however the stream is cut", arguments: [1, 2, 3, 7, 64, 10_000])
    func anyCut(chunk: Int) {
        let payloads: [[UInt8]] = [[1, 2, 3], [], Array(repeating: 9, count: 300), [4]]
        let stream = framed(payloads)
        var framer = StreamFramer()
        var messages: [[UInt8]] = []
        var offset = 0
        while offset < stream.count {
            let end = min(stream.count, offset + chunk)
            feed(&framer, stream[offset..<end])
            messages += drain(&framer)
            offset = end
        }
        #expect(messages == payloads)
        #expect(framer.bufferedBytes == 0)
        #expect(!framer.hasPartialMessage)
    }

    @Test func partialMessagesAreTold() {
        var framer = StreamFramer()
        feed(&framer, [0][...])
        #expect(framer.hasPartialMessage && !framer.hasWholeMessage)
        feed(&framer, [3, 1, 2][...])
        #expect(framer.hasPartialMessage)
        #expect(framer.next() == nil)
        feed(&framer, [3, 0][...])
        #expect(framer.hasWholeMessage && !framer.hasPartialMessage)
        #expect(framer.next().map { Array($0.readableBytesView) } == [1, 2, 3])
        #expect(framer.hasPartialMessage)  // the next message's first length octet
        #expect(framer.bufferedBytes == 1)
    }

    @Test("a long stream taken message by message keeps only what is unread")
    func bufferStaysSmall() {
        var framer = StreamFramer()
        let message = Array(repeating: UInt8(7), count: 100)
        for _ in 0..<1_000 {
            feed(&framer, framed([message, message])[...])
            #expect(drain(&framer).count == 2)
            #expect(framer.bufferedBytes == 0)
        }
    }
}

@Suite("ClientPrefixes")
struct ClientPrefixesTests {
    private func ip(_ text: String) throws -> IPAddress { try #require(IPAddress(text)) }

    @Test func anIPv6HostIsItsSlash64() throws {
        let prefixes = ClientPrefixes()
        let network = prefixes.network(of: try ip("2001:db8:1:2::1"))
        #expect(prefixes.network(of: try ip("2001:db8:1:2:ffff:ffff:ffff:ffff")) == network)
        #expect(prefixes.network(of: try ip("2001:db8:1:3::1")) != network)
        // IPv4 addresses count one by one by default, and never equal an IPv6 network.
        #expect(prefixes.network(of: try ip("192.0.2.1")) != prefixes.network(of: try ip("192.0.2.2")))
        #expect(prefixes.network(of: try ip("0.0.0.0")) != prefixes.network(of: try ip("::")))
        let wide = ClientPrefixes(ipv4: 24, ipv6: 48)
        #expect(wide.network(of: try ip("192.0.2.1")) == wide.network(of: try ip("192.0.2.254")))
        #expect(wide.network(of: try ip("2001:db8:1:2::1")) == wide.network(of: try ip("2001:db8:1:ffff::1")))
    }

    @Test("a host changing its IPv6 address within its /64 does not get more slots")
    func slotsPerNetwork() throws {
        let limiter = SlotLimiter(limit: 1_000)
        var taken = 0
        for host in 1...100 {
            if limiter.tryAcquire(client: try ip("2001:db8:0:1::\(String(host, radix: 16))"), perClient: 10) { taken += 1 }
        }
        #expect(taken == 10)
        #expect(limiter.clientCount == 1)
        #expect(limiter.tryAcquire(client: try ip("2001:db8:0:2::1"), perClient: 10))
        limiter.release(client: try ip("2001:db8:0:1::ab"))
        #expect(limiter.tryAcquire(client: try ip("2001:db8:0:1::cd"), perClient: 10))
        for host in 1...10 { limiter.release(client: try ip("2001:db8:0:1::\(host)")) }
        limiter.release(client: try ip("2001:db8:0:2::1"))
        #expect(limiter.clientCount == 0)
    }
}

@Suite("Server limits config")
struct ServerLimitsConfigTests {
    static let minimal = "[[forward]]\nzone = \".\"\nservers = [\"192.0.2.1\"]\n"

    @Test func defaultsAndValues() throws {
        let defaults = try Config.parse(Self.minimal)
        #expect(defaults.server.tcpQueryTimeoutMs == 3_000)
        #expect(defaults.server.maxTCPQueuedBytesPerConnection == 131_072)
        #expect(defaults.server.maxTCPQueuedBytes == 16 << 20)
        #expect(defaults.server.clientPrefixes == ClientPrefixes(ipv4: 32, ipv6: 64))
        let config = try Config.parse(
            """
            [server]
            tcp_query_timeout_ms = 500
            max_tcp_queued_bytes_per_connection = 65537
            max_tcp_queued_bytes = 1048576
            client_ipv4_prefix = 24
            client_ipv6_prefix = 56
            """ + "\n" + Self.minimal)
        #expect(config.server.tcpQueryTimeoutMs == 500)
        #expect(config.server.maxTCPQueuedBytesPerConnection == 65_537)
        #expect(config.server.maxTCPQueuedBytes == 1 << 20)
        #expect(config.server.clientPrefixes == ClientPrefixes(ipv4: 24, ipv6: 56))
    }

    @Test(
        "a queue too small for one message, or a prefix past the host part, is refused with key and line",
        arguments: [
            ("max_tcp_queued_bytes_per_connection", 65_536), ("max_tcp_queued_bytes", 1_000),
            ("client_ipv6_prefix", 65), ("client_ipv4_prefix", 33), ("tcp_query_timeout_ms", 0),
        ])
    func refused(key: String, value: Int) {
        do {
            _ = try Config.parse("[server]\n\(key) = \(value)\n" + Self.minimal)
            Issue.record("\(key) = \(value) was accepted")
        } catch {
            #expect(error.key == "server.\(key)")
            #expect(error.line == 2)
        }
    }
}
