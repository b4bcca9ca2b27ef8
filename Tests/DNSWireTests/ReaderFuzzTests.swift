// MessageReader under 100,000 random and mutated packets (seeded, so a failure repeats): no
// trap, no hang, and everything it accepts is usable — RDATA expands, the message converts,
// and the writer writes it back into bytes the reader reads as the same message.

import DNSWire
import WireTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite("Reader fuzzing")
struct ReaderFuzzTests {
    static let labels = ["www", "mail", "Example", "example", "com", "ns1", "NS2", "a", "_sip", "_tcp", "org", "*"]

    static func randomName(_ random: inout SplitMix64) -> [UInt8] {
        var wire: [UInt8] = []
        for _ in 0..<Int.random(in: 0...4, using: &random) {
            let label = Array(labels[Int.random(in: 0..<labels.count, using: &random)].utf8)
            wire += [UInt8(label.count)] + label
        }
        return wire + [0]
    }

    static func bytes(_ count: Int, _ random: inout SplitMix64) -> [UInt8] {
        (0..<count).map { _ in UInt8.random(in: 0...255, using: &random) }
    }

    /// A record of one of the types the reader knows the layout of, or of an opaque one.
    static func randomRecord(_ random: inout SplitMix64) -> ResourceRecord {
        let types: [UInt16] = [1, 28, 2, 5, 6, 12, 15, 16, 33, 35, 39, 43, 46, 47, 48, 50, 64, 65534, 250]
        let type = types[Int.random(in: 0..<types.count, using: &random)]
        var rdata: [UInt8]
        switch type {
        case 1: rdata = bytes(4, &random)
        case 28: rdata = bytes(16, &random)
        case 2, 5, 12, 39: rdata = randomName(&random)
        case 6: rdata = randomName(&random) + randomName(&random) + bytes(20, &random)
        case 15: rdata = bytes(2, &random) + randomName(&random)
        case 33: rdata = bytes(6, &random) + randomName(&random)
        case 35: rdata = bytes(4, &random) + [1, 0x55, 0, 2, 0x61, 0x62] + randomName(&random)
        case 46: rdata = bytes(18, &random) + randomName(&random) + bytes(Int.random(in: 0...40, using: &random), &random)
        case 47, 250: rdata = randomName(&random) + bytes(Int.random(in: 0...8, using: &random), &random)
        case 64: rdata = bytes(2, &random) + randomName(&random) + bytes(Int.random(in: 0...8, using: &random), &random)
        default: rdata = bytes(Int.random(in: 0...30, using: &random), &random)
        }
        return ResourceRecord(
            name: DomainName(uncheckedWire: randomName(&random)), type: RecordType(rawValue: type),
            ttl: UInt32.random(in: 0...0x7FFF_FFFF, using: &random), rdata: rdata)
    }

    static func randomMessage(_ random: inout SplitMix64) -> [UInt8] {
        var writer = MessageWriter(
            id: UInt16.random(in: 0...UInt16.max, using: &random), flags: [.qr],
            compression: Bool.random(using: &random) ? .exactCase : .ignoringCase)
        do {
            for _ in 0..<Int.random(in: 0...2, using: &random) {
                try writer.add(Question(name: DomainName(uncheckedWire: randomName(&random)), type: .a))
            }
            for section in MessageSection.allCases {
                for _ in 0..<Int.random(in: 0...4, using: &random) {
                    var record = randomRecord(&random)
                    if record.type.rawValue == 250 { record.type = .txt }  // TSIG only last: not worth arranging
                    try writer.add(record, to: section)
                }
            }
            if Bool.random(using: &random) {
                try writer.addOPT(
                    udpPayloadSize: 1232, dnssecOK: true,
                    options: Bool.random(using: &random) ? [EDNSOption(code: 10, data: bytes(8, &random))] : [])
            }
            return try writer.finish().bytes
        } catch {
            Issue.record("the generator wrote something the writer refused: \(error)")
            return []
        }
    }

    /// One to four edits that hit what a reader is most likely to get wrong: lengths, counts,
    /// pointers, ends.
    static func mutate(_ input: [UInt8], _ random: inout SplitMix64) -> [UInt8] {
        var bytes = input
        for _ in 0..<Int.random(in: 1...4, using: &random) {
            guard !bytes.isEmpty else { break }
            let index = Int.random(in: 0..<bytes.count, using: &random)
            switch Int.random(in: 0..<9, using: &random) {
            case 0: bytes[index] = UInt8.random(in: 0...255, using: &random)
            case 1: bytes[index] ^= 1 << UInt8.random(in: 0...7, using: &random)
            case 2: bytes.removeSubrange(index...)
            case 3: bytes.insert(UInt8.random(in: 0...255, using: &random), at: index)
            case 4: bytes.remove(at: index)
            case 5:
                // A compression pointer anywhere, to anywhere.
                if index + 1 < bytes.count {
                    bytes[index] = 0xC0 | UInt8.random(in: 0...1, using: &random)
                    bytes[index + 1] = UInt8.random(in: 0...255, using: &random)
                }
            case 6: bytes[index] = [0, 1, 63, 64, 0x80, 0xBF, 0xC0, 0xFF][Int.random(in: 0..<8, using: &random)]
            case 7: if bytes.count >= 12 { bytes[4 + Int.random(in: 0..<8, using: &random)] = UInt8.random(in: 0...5, using: &random) }
            default:
                // A chunk of the message repeated: names and records out of place.
                let end = min(bytes.count, index + Int.random(in: 1...40, using: &random))
                bytes.insert(contentsOf: bytes[index..<end], at: Int.random(in: 0...bytes.count, using: &random))
            }
        }
        return bytes
    }

    @Test("100,000 random and mutated packets", .timeLimit(.minutes(3)))
    func survivesRandomInput() {
        var random = SplitMix64(seed: 0x5EED_DA7A)
        let seeds = (0..<200).map { _ in Self.randomMessage(&random) }
        var accepted = 0
        var reasons: [MalformedReason: Int] = [:]
        // Per packet, the thread's CPU time, not the wall clock: a busy machine descheduling the
        // test (one CI run saw 0.87 s) is not a slow reader.
        var slowest: Duration = .zero
        let clock = ContinuousClock()
        let started = clock.now
        for iteration in 0..<100_000 {
            let packet: [UInt8]
            switch iteration % 10 {
            case 0: packet = Self.bytes(Int.random(in: 0...300, using: &random), &random)
            case 1: packet = Self.bytes(12, &random) + Self.bytes(Int.random(in: 0...300, using: &random), &random).map { $0 & 0xC3 }
            default: packet = Self.mutate(seeds[Int.random(in: 0..<seeds.count, using: &random)], &random)
            }
            let before = Self.threadCPUTime()
            do throws(MalformedReason) {
                let view = try MessageReader.read(packet)
                accepted += 1
                check(view, packet)
            } catch {
                reasons[error, default: 0] += 1
            }
            slowest = max(slowest, Self.threadCPUTime() - before)
        }
        let elapsed = clock.now - started
        print("fuzz: 100,000 packets in \(elapsed), slowest \(slowest); accepted \(accepted); refused \(reasons.sorted { $0.value > $1.value }.map { "\($0.key): \($0.value)" }.joined(separator: ", "))")
        #expect(accepted > 5_000, "the mutations should leave many packets readable")
        #expect(reasons.count >= 8, "and reach most of the reasons to refuse one")
        #expect(slowest < .milliseconds(250), "no packet may take long (CPU time)")
    }

    /// CPU time this thread has used.
    static func threadCPUTime() -> Duration {
        var spec = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &spec)
        return .seconds(Int64(spec.tv_sec)) + .nanoseconds(Int64(spec.tv_nsec))
    }

    /// What an accepted packet must allow.
    private func check(_ view: MessageView, _ packet: [UInt8]) {
        for record in view.records {
            guard record.rdataRange.upperBound <= packet.count, record.ttlOffset >= 12 else {
                Issue.record("record outside the packet: \(record)")
                return
            }
            _ = view.expandedRDATA(of: record)
            if (try? view.name(at: record.ownerOffset)) != record.owner {
                Issue.record("owner at \(record.ownerOffset) reads differently")
            }
        }
        let message = view.message()
        do {
            let again = try MessageReader.decode(try MessageWriter.encode(message))
            if again != message { Issue.record("write(read(p)) reads back differently: \(packet)") }
        } catch MessageWriteError.messageTooLong {
            // Names expanded in RDATA the writer must not compress (SRV, RRSIG...) can grow a
            // message past 65,535 octets: refused, not a crash (resolverd's fuzzing finding F1).
        } catch {
            Issue.record("the writer refused what the reader accepted: \(error) \(packet)")
        }
    }
}
