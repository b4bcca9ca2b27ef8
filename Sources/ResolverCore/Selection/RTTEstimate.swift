// Selection/: round-trip time arithmetic (RFC 6298 §2): a smoothed RTT, its variance, and the
// retransmit time derived from them, clamped. Pure value type, no clock.

import NIOCore

/// A server's smoothed round-trip time and its variance, in nanoseconds.
public struct RTTEstimate: Sendable, Equatable {
    public private(set) var smoothed: Int64
    public private(set) var variance: Int64
    /// Measurements taken in (saturating).
    public private(set) var samples: Int = 1

    /// RFC 6298 §2.2: the first measurement R sets SRTT = R and RTTVAR = R/2.
    public init(firstSample sample: TimeAmount) {
        smoothed = max(0, sample.nanoseconds)
        variance = smoothed / 2
    }

    /// RFC 6298 §2.3: RTTVAR ← 3/4·RTTVAR + 1/4·|SRTT − R|, then SRTT ← 7/8·SRTT + 1/8·R.
    ///
    /// While fewer than `warmUp` samples are in, SRTT is instead the smallest sample, and a
    /// sample below it starts the estimate again from that sample (as a first one: RTTVAR = R/2):
    /// one slow first answer (a cold cache, a page fault) must bury a fast server neither by its
    /// SRTT nor by the variance it leaves behind — servers are ranked by SRTT + 4·RTTVAR, and a
    /// server ranked too low is measured only by rare probes, while one ranked too high becomes
    /// the first choice and is corrected by the next few answers.
    public mutating func update(_ sample: TimeAmount, warmUp: Int = 0) {
        let r = max(0, sample.nanoseconds)
        if samples < warmUp, r < smoothed {
            smoothed = r
            variance = r / 2
        } else {
            variance = (3 * variance + abs(smoothed - r)) / 4
            if samples >= warmUp { smoothed = (7 * smoothed + r) / 8 }
        }
        samples = min(samples + 1, Int(Int32.max))
    }

    /// Raises SRTT to at least `floor` (a timeout's penalty), leaving the variance.
    public mutating func penalise(atLeast floor: TimeAmount) {
        smoothed = max(smoothed, floor.nanoseconds)
    }

    /// RFC 6298 §2.3: RTO = SRTT + 4·RTTVAR (K = 4), clamped to `floor`…`ceiling`.
    public func retransmitTimeout(floor: TimeAmount, ceiling: TimeAmount) -> TimeAmount {
        let rto = smoothed + 4 * variance
        return .nanoseconds(min(max(rto, floor.nanoseconds), ceiling.nanoseconds))
    }

    public var smoothedRTT: TimeAmount { .nanoseconds(smoothed) }
    public var rttVariance: TimeAmount { .nanoseconds(variance) }
}
