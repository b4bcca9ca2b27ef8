// Frontend/ResponseRateLimiter: token buckets per client network, slip, refill, prefixes.

import Testing

@testable import Resolver

@Suite("ResponseRateLimiter")
struct ResponseRateLimiterTests {
    func limiter(rate: Int = 10, slip: Int = 2) -> ResponseRateLimiter {
        var settings = RateLimitSettings()
        settings.responsesPerSecond = rate
        settings.slip = slip
        return ResponseRateLimiter(settings: settings)
    }

    func ip(_ text: String) throws -> IPAddress { try #require(IPAddress(text)) }

    @Test func aNetworkGetsItsRateThenEverySecondAnswerSlips() throws {
        let rrl = limiter()
        let start: UInt64 = 1_000_000_000
        let verdicts = try (0..<20).map { _ in rrl.verdict(for: try ip("192.0.2.7"), now: start) }
        #expect(verdicts.prefix(10).allSatisfy { $0 == .send })
        #expect(Array(verdicts.dropFirst(10)) == [.drop, .slip, .drop, .slip, .drop, .slip, .drop, .slip, .drop, .slip])
        // The same /24 shares the bucket; another /24 has its own.
        #expect(rrl.verdict(for: try ip("192.0.2.200"), now: start) != .send)
        #expect(rrl.verdict(for: try ip("192.0.3.7"), now: start) == .send)
        // Half a second refills half the rate.
        let later = start + 500_000_000
        let refilled = try (0..<6).map { _ in rrl.verdict(for: try ip("192.0.2.7"), now: later) }
        #expect(refilled.filter { $0 == .send }.count == 5)
    }

    @Test func slipZeroDropsEverything() throws {
        let rrl = limiter(rate: 1, slip: 0)
        #expect(rrl.verdict(for: try ip("10.0.0.1"), now: 1) == .send)
        #expect(try (0..<10).allSatisfy { _ in rrl.verdict(for: try ip("10.0.0.1"), now: 1) == .drop })
    }

    @Test func prefixesGroupAddresses() throws {
        let settings = RateLimitSettings()
        let network = { (text: String) throws -> ClientNetwork in ResponseRateLimiter.network(of: try self.ip(text), settings: settings) }
        #expect(try network("192.0.2.1") == network("192.0.2.254"))
        #expect(try network("192.0.2.1") != network("192.0.3.1"))
        #expect(try network("2001:db8:0:100::1") == network("2001:db8:0:1ff::2"))  // the same /56
        #expect(try network("2001:db8:0:100::1") != network("2001:db8:0:200::1"))
        #expect(try network("0.0.0.0") != network("::"))
        // Neighbouring networks stay apart at the longest prefix (the family tag once took a bit).
        var longest = settings
        longest.ipv6Prefix = 64
        let exact = { (text: String) throws -> ClientNetwork in ResponseRateLimiter.network(of: try self.ip(text), settings: longest) }
        #expect(try exact("2001:db8:0:2::1") != exact("2001:db8:0:3::1"))
        #expect(try exact("fd00::1") != exact("0.0.0.0"))
    }
}
