// Benchmark: a typical upstream answer (~300 octets: a CNAME chain, addresses, NS, glue, OPT)
// read 100,000 times, plus the conversion to DNSMessage and the write back. Prints ns/op to
// compare builds and changes; asserts nothing about speed. It runs only when asked for, with
// RESOLVERD_WIRE_BENCH=1 (13 s of a debug build's CPU would starve the suites beside it):
// `RESOLVERD_WIRE_BENCH=1 swift test -c release --filter Benchmark` for meaningful figures.

import DNSWire
import Testing
import WireTestSupport

#if canImport(Glibc)
import Glibc
#endif

@Suite("Benchmark", .enabled(if: getenv("RESOLVERD_WIRE_BENCH") != nil, "set RESOLVERD_WIRE_BENCH=1 to run"))
struct ReaderBenchmarkTests {
    static func typicalResponse() throws -> [UInt8] {
        func record(_ owner: String, _ type: RecordType, _ ttl: UInt32, _ rdata: [UInt8]) -> ResourceRecord {
            ResourceRecord(name: name(owner), type: type, ttl: ttl, rdata: rdata)
        }
        let message = DNSMessage(
            id: 0x4D2A, flags: [.qr, .rd, .ra], questions: [Question(name: name("www.example.com"), type: .a)],
            answers: [
                record("www.example.com", .cname, 300, TestWire.name("www.example.com.edgekey.net")),
                record("www.example.com.edgekey.net", .cname, 60, TestWire.name("e1234.a.akamaiedge.net")),
                record("e1234.a.akamaiedge.net", .a, 20, [23, 45, 67, 89]),
                record("e1234.a.akamaiedge.net", .a, 20, [23, 45, 67, 90]),
            ],
            authorities: [
                record("a.akamaiedge.net", .ns, 4000, TestWire.name("n0a.akamaiedge.net")),
                record("a.akamaiedge.net", .ns, 4000, TestWire.name("n1a.akamaiedge.net")),
                record("a.akamaiedge.net", .ns, 4000, TestWire.name("n2a.akamaiedge.net")),
                record("a.akamaiedge.net", .ns, 4000, TestWire.name("n3a.akamaiedge.net")),
            ],
            additionals: [
                record("n0a.akamaiedge.net", .a, 4000, [88, 221, 81, 192]),
                record("n1a.akamaiedge.net", .a, 4000, [88, 221, 81, 193]),
                record("n2a.akamaiedge.net", .a, 4000, [88, 221, 81, 194]),
                record("n0a.akamaiedge.net", .aaaa, 4000, [0x20, 0x01, 0x0D, 0xB8] + [UInt8](repeating: 0, count: 11) + [1]),
            ],
            edns: EDNS(udpPayloadSize: 1232, dnssecOK: true))
        return try MessageWriter.encode(message)
    }

    static func measure(_ label: String, iterations: Int, _ body: () throws -> Int) rethrows -> Double {
        var sink = 0
        for _ in 0..<1000 { sink &+= try body() }  // warm up
        let clock = ContinuousClock()
        let start = clock.now
        for _ in 0..<iterations { sink &+= try body() }
        let elapsed = clock.now - start
        let nanoseconds = Double(elapsed.components.seconds) * 1e9 + Double(elapsed.components.attoseconds) / 1e9
        let perOperation = nanoseconds / Double(iterations)
        print("benchmark: \(label): \(Int(perOperation.rounded())) ns/op (\(iterations) iterations, checksum \(sink))")
        return perOperation
    }

    @Test func readsATypicalResponse() throws {
        let bytes = try Self.typicalResponse()
        print("benchmark: typical response is \(bytes.count) octets, 12 records + OPT")
        #expect((250...350).contains(bytes.count))
        let message = try MessageReader.decode(bytes)
        let read = try Self.measure("MessageReader.read", iterations: 100_000) {
            try MessageReader.read(bytes).records.count
        }
        _ = try Self.measure("MessageReader.read + message()", iterations: 100_000) {
            try MessageReader.read(bytes).message().answers.count
        }
        _ = try Self.measure("MessageWriter.encode(DNSMessage)", iterations: 100_000) {
            try MessageWriter.encode(message).count
        }
        #expect(read > 0)
    }
}
