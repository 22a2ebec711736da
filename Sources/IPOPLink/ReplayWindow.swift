/// Sliding anti-replay window over 64-bit transport counters: a ring of 64-bit words (a bitmap
/// of 4096 counters) where whole words are recycled as the window moves forward.
///
/// Counters up to `windowSize` (4032) below the highest accepted counter are accepted once each;
/// anything older, any duplicate, and any counter at or above `rejectAfterMessages` is rejected.
public struct ReplayWindow: Sendable {
    static let wordCount = 64                                 // power of two
    static let bitsTotal = UInt64(wordCount * 64)
    /// How far behind the highest accepted counter a packet may arrive and still be accepted.
    /// One word less than the bitmap: the word holding the top counter is only partly in use.
    public static let windowSize: UInt64 = bitsTotal - 64

    public let rejectAfterMessages: UInt64
    private var bitmap: [UInt64]
    /// One past the highest accepted counter (0: nothing accepted yet).
    private var next: UInt64 = 0

    public init(rejectAfterMessages: UInt64 = UInt64.max - (1 << 13)) {
        self.rejectAfterMessages = rejectAfterMessages
        bitmap = [UInt64](repeating: 0, count: Self.wordCount)
    }

    /// The highest counter accepted so far, if any.
    public var highest: UInt64? { next == 0 ? nil : next - 1 }

    /// Cheap pre-check before authenticating a packet; does not change the window.
    public func mayAccept(_ counter: UInt64) -> Bool {
        guard counter < rejectAfterMessages else { return false }
        if counter >= next { return true }
        if next - 1 - counter > Self.windowSize { return false }
        return bitmap[Self.slot(counter)] & Self.bit(counter) == 0
    }

    /// Records an authenticated counter. Returns false (and changes nothing) for a replay,
    /// a counter too old for the window, or one past the message limit.
    public mutating func accept(_ counter: UInt64) -> Bool {
        guard counter < rejectAfterMessages else { return false }
        if counter >= next {
            if next > 0 {
                // Zero the words the window moves onto (at most the whole ring).
                let topWord = (next - 1) >> 6
                let newWord = counter >> 6
                let steps = min(newWord - topWord, UInt64(Self.wordCount))
                var step: UInt64 = 1
                while step <= steps {
                    bitmap[Int((topWord &+ step) & UInt64(Self.wordCount - 1))] = 0
                    step += 1
                }
            }
            next = counter + 1
        } else if next - 1 - counter > Self.windowSize {
            return false
        }
        let slot = Self.slot(counter)
        let bit = Self.bit(counter)
        if bitmap[slot] & bit != 0 { return false }
        bitmap[slot] |= bit
        return true
    }

    private static func slot(_ counter: UInt64) -> Int { Int((counter >> 6) & UInt64(wordCount - 1)) }
    private static func bit(_ counter: UInt64) -> UInt64 { 1 << (counter & 63) }
}
