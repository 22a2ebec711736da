/// Per-source-address token bucket for handshake initiations (checked after mac1, before any DH).
///
/// Keyed by IPv4 address only (not port), so a source cannot dodge it by changing ports.
public struct HandshakeRateLimiter: Sendable {
    public let ratePerSecond: Double
    public let burst: Double
    /// Bound on tracked addresses; beyond it unknown sources are refused until `prune` frees room.
    public let maxSources: Int

    private struct Bucket {
        var tokens: Double
        var updated: ContinuousClock.Instant
    }

    private var buckets: [UInt32: Bucket] = [:]

    public init(ratePerSecond: Double = 20, burst: Double = 5, maxSources: Int = 65_536) {
        self.ratePerSecond = max(0, ratePerSecond)
        self.burst = max(1, burst)
        self.maxSources = max(1, maxSources)
    }

    /// Takes one token for `address`; false when the bucket is empty (rate limited).
    public mutating func allow(_ address: UInt32, now: ContinuousClock.Instant) -> Bool {
        guard var bucket = buckets[address] else {
            guard buckets.count < maxSources else { return false }
            buckets[address] = Bucket(tokens: burst - 1, updated: now)
            return true
        }
        let elapsed = Self.seconds(bucket.updated.duration(to: now))
        if elapsed > 0 {
            bucket.tokens = min(burst, bucket.tokens + elapsed * ratePerSecond)
            bucket.updated = now
        }
        guard bucket.tokens >= 1 else {
            buckets[address] = bucket
            return false
        }
        bucket.tokens -= 1
        buckets[address] = bucket
        return true
    }

    /// Forgets sources whose bucket has refilled completely (they behave as new again).
    public mutating func prune(now: ContinuousClock.Instant) {
        let refill = ratePerSecond > 0 ? burst / ratePerSecond : .infinity
        buckets = buckets.filter { Self.seconds($0.value.updated.duration(to: now)) < refill }
    }

    public var trackedSources: Int { buckets.count }

    static func seconds(_ duration: Duration) -> Double {
        let (seconds, attoseconds) = duration.components
        return Double(seconds) + Double(attoseconds) * 1e-18
    }
}
