/// Switch event counts since creation, for status. All plain wrapping `UInt64`s.
///
/// Per-frame outcomes (each frame lands in exactly one of the first group):
/// - `unicast`: TAP frames sent to one known link.
/// - `flooded`: TAP frames flooded to every link (broadcast, multicast, unknown unicast).
/// - `deliveredToTap`: link frames handed to the TAP.
/// - `dropTooBig`, `dropMalformed`, `dropInvalidSource`, `dropLocalDestination`: drops.
///
/// Breakdowns and table events:
/// - `unknownUnicast`: the part of `flooded` that was unicast to an unknown (or expired) MAC.
/// - `learned`, `moved`, `aged`, `evicted`, `flushed`: forwarding-table events
///   (see `MACTable`); `flushed` counts entries removed by `linkRemoved`.
/// - `invalidSource`: frames whose source MAC was broadcast, multicast or zero
///   (never learned; such frames are dropped, so this equals `dropInvalidSource`).
public struct SwitchCounters: Hashable, Sendable {
    public var unicast: UInt64 = 0
    public var flooded: UInt64 = 0
    public var deliveredToTap: UInt64 = 0
    public var dropTooBig: UInt64 = 0
    public var dropMalformed: UInt64 = 0
    public var dropInvalidSource: UInt64 = 0
    public var dropLocalDestination: UInt64 = 0
    public var unknownUnicast: UInt64 = 0
    public var learned: UInt64 = 0
    public var moved: UInt64 = 0
    public var aged: UInt64 = 0
    public var evicted: UInt64 = 0
    public var flushed: UInt64 = 0
    public var invalidSource: UInt64 = 0

    public init() {}

    /// Every counter by field name (allocates; for status output).
    public var dictionary: [String: UInt64] {
        [
            "unicast": unicast, "flooded": flooded, "deliveredToTap": deliveredToTap,
            "dropTooBig": dropTooBig, "dropMalformed": dropMalformed,
            "dropInvalidSource": dropInvalidSource, "dropLocalDestination": dropLocalDestination,
            "unknownUnicast": unknownUnicast, "learned": learned, "moved": moved, "aged": aged,
            "evicted": evicted, "flushed": flushed, "invalidSource": invalidSource,
        ]
    }

    /// All drops.
    public var dropped: UInt64 {
        dropTooBig &+ dropMalformed &+ dropInvalidSource &+ dropLocalDestination
    }
}
