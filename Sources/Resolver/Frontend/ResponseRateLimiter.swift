// Frontend/: response rate limiting (RRL-style) for UDP. Answers to one client network (a /24
// or /56 by default: a spoofed flood comes from many addresses of a network) are limited to
// `responses_per_second` with a token bucket; past it, answers are dropped, except every
// `slip`-th, which goes out empty with TC set, so a real client behind that network retries over
// TCP (which is not limited) while an amplification attack gains nothing. Buckets live in a
// fixed table indexed by a hash of the network: memory is bounded whatever the flood, and two
// networks sharing a slot only share a bucket. Only immediate answers (cache and local) pass
// through it; cache misses are bounded per client by `server.max_pending_per_client`.

import Synchronization

/// `[rate_limit]`.
public struct RateLimitSettings: Sendable, Equatable {
    /// Answers per second to one client network; 0 turns rate limiting off.
    public var responsesPerSecond = 0
    public var ipv4Prefix = 24
    public var ipv6Prefix = 56
    /// Every slip-th limited answer is sent truncated instead of dropped; 0: drop them all.
    public var slip = 2

    public init() {}
}

/// What to do with one answer.
public enum RateLimitVerdict: Sendable, Equatable {
    case send, drop, slip
}

/// Token buckets per client network, in a bounded table.
final class ResponseRateLimiter: Sendable {
    private struct Bucket {
        var network: ClientNetwork?
        var tokens = 0.0
        var last: UInt64 = 0
        var limited: UInt32 = 0
    }

    private final class Shard: Sendable {
        let buckets: Mutex<[Bucket]>
        init(size: Int) { buckets = Mutex([Bucket](repeating: Bucket(), count: size)) }
    }

    let settings: RateLimitSettings
    private let shards: [Shard]
    private static let shardCount = 16
    private static let bucketsPerShard = 4096

    init(settings: RateLimitSettings) {
        self.settings = settings
        shards = (0..<Self.shardCount).map { _ in Shard(size: Self.bucketsPerShard) }
    }

    /// The verdict for one answer to `client` at `now` (uptime nanoseconds).
    func verdict(for client: IPAddress, now: UInt64) -> RateLimitVerdict {
        let network = Self.network(of: client, settings: settings)
        var hasher = Hasher()
        hasher.combine(network)
        let hash = UInt(bitPattern: hasher.finalize())
        let shard = shards[Int(hash % UInt(Self.shardCount))]
        let slot = Int((hash / UInt(Self.shardCount)) % UInt(Self.bucketsPerShard))
        let rate = Double(settings.responsesPerSecond)
        let slip = UInt32(settings.slip)
        return shard.buckets.withLock { buckets in
            var bucket = buckets[slot]
            if bucket.network != network {
                // A network not seen (or evicted): a full second's worth to start with.
                bucket = Bucket(network: network, tokens: rate, last: now, limited: 0)
            } else {
                let elapsed = Double(now &- bucket.last) / 1e9
                bucket.tokens = min(rate, bucket.tokens + elapsed * rate)
                bucket.last = now
            }
            let verdict: RateLimitVerdict
            if bucket.tokens >= 1 {
                bucket.tokens -= 1
                verdict = .send
            } else {
                bucket.limited &+= 1
                verdict = slip > 0 && bucket.limited % slip == 0 ? .slip : .drop
            }
            buckets[slot] = bucket
            return verdict
        }
    }

    /// The client's network: the prefix bits and the family.
    static func network(of address: IPAddress, settings: RateLimitSettings) -> ClientNetwork {
        ClientPrefixes(ipv4: settings.ipv4Prefix, ipv6: settings.ipv6Prefix).network(of: address)
    }
}
