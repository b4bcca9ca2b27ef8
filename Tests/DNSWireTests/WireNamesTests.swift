// Wire/QueryReader: WireNames.skip and WireNames.read over names with backward compression
// pointers, as they appear in responses (RFC 1035 §4.1.4).

import Testing

@testable import DNSWire
import WireTestSupport

@Suite("WireNames")
struct WireNamesTests {
    /// The names-and-pointers buffer of WireTestSupport (offsets described there).
    static let response = TestWire.pointerChains

    private func skip(_ bytes: [UInt8], at start: Int) -> Result<Int, MalformedReason> {
        bytes.withUnsafeBytes { buffer in
            do throws(MalformedReason) {
                return .success(try WireNames.skip(buffer, at: start))
            } catch {
                return .failure(error)
            }
        }
    }

    private func read(_ bytes: [UInt8], at start: Int) -> Result<DomainName, MalformedReason> {
        bytes.withUnsafeBytes { buffer in
            do throws(MalformedReason) {
                return .success(try WireNames.read(buffer, at: start))
            } catch {
                return .failure(error)
            }
        }
    }

    @Test func layoutIsAsDocumented() {
        #expect(Self.response.count == 58)
        #expect(Self.response[45] == 4)
        #expect(Self.response[52] == 1)
    }

    @Test(
        "skip returns the end of the name in the buffer, not of the name it points to",
        arguments: [
            (12, 29), (33, 35), (45, 52), (52, 56), (56, 58),
        ])
    func skipsNames(start: Int, end: Int) {
        #expect(skip(Self.response, at: start) == .success(end))
    }

    @Test(
        "read expands every pointer",
        arguments: [
            (12, "www.Example.com."), (33, "www.Example.com."), (45, "mail.Example.com."),
            (52, "x.mail.Example.com."), (56, "x.mail.Example.com."), (16, "Example.com."), (24, "com."),
        ])
    func readsNames(start: Int, text: String) throws {
        let name = try read(Self.response, at: start).get()
        #expect(name.description == text)
        #expect(name == DomainName(text))
    }

    @Test func readKeepsLetterCase() throws {
        let name = try read(Self.response, at: 33).get()
        #expect(name.wire == TestWire.name("www.Example.com"))
        #expect(name.wire != TestWire.name("www.example.com"))
        #expect(name.lowercased.wire == TestWire.name("www.example.com"))
    }

    @Test func readsTheRoot() throws {
        let name = try read([0], at: 0).get()
        #expect(name == .root)
        #expect(name.isRoot)
        #expect(skip([0], at: 0) == .success(1))
    }

    @Test func readsAPointerToTheRoot() throws {
        let bytes: [UInt8] = [0, 0xC0, 0x00]
        #expect(skip(bytes, at: 1) == .success(3))
        #expect(try read(bytes, at: 1).get() == .root)
    }

    @Test func countsTheExpandedLengthAgainstTheLimit() {
        // 193 octets at 0 (three 63-octet labels and the root); then a label and a pointer to 0.
        let long = TestWire.name(labels: 3, length: 63)
        let fits = long + [61] + [UInt8](repeating: 0x62, count: 61) + [0xC0, 0x00]  // 62 + 193 = 255
        let tooLong = long + [62] + [UInt8](repeating: 0x62, count: 62) + [0xC0, 0x00]  // 63 + 193 = 256
        #expect(skip(fits, at: long.count) == .success(fits.count))
        #expect((try? read(fits, at: long.count).get())?.wire.count == 255)
        #expect(skip(tooLong, at: long.count) == .failure(.nameTooLong))
        #expect(read(tooLong, at: long.count) == .failure(.nameTooLong))
    }

    @Test(
        "read fails exactly where skip fails",
        arguments: [
            ([0xC0, 0x00], 0, MalformedReason.badPointer),  // pointer to itself
            ([0xC0, 0x02, 0], 0, .badPointer),  // forward pointer
            ([1, 0x61, 0xC0, 0x00], 0, .badPointer),  // back to the start of the same name
            ([0, 1, 0x61, 0xC0, 0x01], 1, .badPointer),  // into the name's own first label
            ([2, 0x61], 0, .truncated),
            ([1, 0x61], 0, .truncated),
            ([0xC0], 0, .truncated),
            ([64] + [UInt8](repeating: 0x61, count: 64) + [0], 0, .labelTooLong),
            ([0x80, 0], 0, .labelTooLong),
        ] as [([UInt8], Int, MalformedReason)])
    func rejectsBadNames(bytes: [UInt8], start: Int, reason: MalformedReason) {
        #expect(skip(bytes, at: start) == .failure(reason))
        #expect(read(bytes, at: start) == .failure(reason))
    }

    @Test func rejectsAStartPastTheEnd() {
        #expect(skip([0], at: 1) == .failure(.truncated))
        #expect(skip([], at: 0) == .failure(.truncated))
    }

    @Test func rejectsAPointerChainThatTurnsForward() {
        // 0: `a` root. 3: pointer to 0 — fine. 5: `b` + pointer to 8, which lies ahead: forward.
        let bytes: [UInt8] = [1, 0x61, 0, 0xC0, 0x00, 1, 0x62, 0xC0, 0x08, 0]
        #expect(skip(bytes, at: 3) == .success(5))
        #expect(skip(bytes, at: 5) == .failure(.badPointer))
    }
}
