import Foundation

/// Wall time derived from the injected monotonic `now`: a pair (instant, Unix time) taken once.
///
/// Handshake initiations carry a TAI64N timestamp so a responder can refuse a replayed initiation;
/// it must keep growing across restarts of the initiator, hence wall time rather than a monotonic clock.
public struct WallClock: Sendable {
    public var anchor: ContinuousClock.Instant
    /// Nanoseconds since the Unix epoch at `anchor`.
    public var unixNanosecondsAtAnchor: UInt64

    public init(anchor: ContinuousClock.Instant, unixNanoseconds: UInt64) {
        self.anchor = anchor
        self.unixNanosecondsAtAnchor = unixNanoseconds
    }

    /// Anchors on the system clocks. The module's only clock read; it happens once, when an engine
    /// is built with the default argument. Tests pass an explicit anchor.
    public static func system() -> WallClock {
        let seconds = max(0, Date().timeIntervalSince1970)
        return WallClock(anchor: .now, unixNanoseconds: UInt64(seconds * 1e9))
    }

    public func unixNanoseconds(at now: ContinuousClock.Instant) -> UInt64 {
        let (seconds, attoseconds) = anchor.duration(to: now).components
        let delta = seconds * 1_000_000_000 + attoseconds / 1_000_000_000
        if delta >= 0 { return unixNanosecondsAtAnchor &+ UInt64(delta) }
        let back = UInt64(-delta)
        return back > unixNanosecondsAtAnchor ? 0 : unixNanosecondsAtAnchor - back
    }

    /// 12-byte TAI64N-style label: 8-byte big-endian (2^62 + seconds), 4-byte big-endian nanoseconds.
    /// Big-endian so that byte-wise comparison orders timestamps.
    public func timestamp(at now: ContinuousClock.Instant) -> [UInt8] {
        Self.timestamp(unixNanoseconds: unixNanoseconds(at: now))
    }

    public static func timestamp(unixNanoseconds: UInt64) -> [UInt8] {
        let seconds = (1 << 62) + unixNanoseconds / 1_000_000_000
        let nanos = UInt32(unixNanoseconds % 1_000_000_000)
        var out = [UInt8](repeating: 0, count: timestampSize)
        for index in 0..<8 { out[index] = UInt8(truncatingIfNeeded: seconds >> (56 - 8 * UInt64(index))) }
        for index in 0..<4 { out[8 + index] = UInt8(truncatingIfNeeded: nanos >> (24 - 8 * UInt32(index))) }
        return out
    }

    public static let timestampSize = 12

    /// True when `a` is strictly later than `b` (both 12-byte timestamps).
    static func isLater(_ a: [UInt8], than b: [UInt8]) -> Bool {
        b.lexicographicallyPrecedes(a)
    }
}
