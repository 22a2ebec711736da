/// Exponential reconnect backoff with "equal jitter": attempt n waits a random time in
/// [c/2, c] where c = min(max, min * 2^n).
public struct ReconnectBackoff: Sendable {
    public let minimum: Duration
    public let maximum: Duration
    public private(set) var attempt = 0

    public init(minimum: Duration, maximum: Duration) {
        self.minimum = minimum
        self.maximum = max(maximum, minimum)
    }

    public mutating func reset() { attempt = 0 }

    public mutating func nextDelay<R: RandomNumberGenerator>(using rng: inout R) -> Duration {
        let minS = Self.seconds(minimum)
        let maxS = Self.seconds(maximum)
        let ceiling = max(0, min(maxS, minS * Double(1 << min(attempt, 30))))
        attempt += 1
        let s = min(ceiling / 2 + Double.random(in: 0...(ceiling / 2), using: &rng), 1e9)
        return .nanoseconds(Int64((s * 1e9).rounded()))
    }

    public mutating func nextDelay() -> Duration {
        var rng = SystemRandomNumberGenerator()
        return nextDelay(using: &rng)
    }

    static func seconds(_ d: Duration) -> Double {
        let c = d.components
        return Double(c.seconds) + Double(c.attoseconds) / 1e18
    }
}
