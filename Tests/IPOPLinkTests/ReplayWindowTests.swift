import Testing
@testable import IPOPLink

@Suite struct ReplayWindowTests {
    @Test func acceptsCountersInOrderOnce() {
        let window = WindowBox(ReplayWindow())
        for counter in UInt64(0)..<5000 {
            #expect(window.mayAccept(counter))
            #expect(window.accept(counter))
        }
        #expect(window.highest == 4999)
    }

    @Test func acceptsReorderingWithinTheWindow() {
        let window = WindowBox(ReplayWindow())
        #expect(window.accept(3000))
        for counter in stride(from: UInt64(2999), through: 0, by: -1) where 3000 - counter <= ReplayWindow.windowSize {
            #expect(window.accept(counter), "counter \(counter)")
        }
        #expect(window.accept(3002))
        #expect(window.accept(3001))
        #expect(ReplayWindow.windowSize >= 2048)
    }

    @Test func rejectsDuplicates() {
        let window = WindowBox(ReplayWindow())
        #expect(window.accept(0))
        #expect(window.accept(7))
        #expect(!window.mayAccept(7))
        #expect(!window.accept(7))
        #expect(!window.accept(0))
        #expect(window.accept(5))
        #expect(!window.accept(5))
    }

    @Test func rejectsCountersOlderThanTheWindow() {
        let window = WindowBox(ReplayWindow())
        #expect(window.accept(10_000))
        let oldest = 10_000 - ReplayWindow.windowSize
        #expect(window.mayAccept(oldest))
        #expect(!window.mayAccept(oldest - 1))
        #expect(!window.accept(oldest - 1))
        #expect(window.accept(oldest))
    }

    @Test func farJumpAheadClearsTheWholeBitmap() {
        let window = WindowBox(ReplayWindow())
        for counter in UInt64(0)..<4096 { #expect(window.accept(counter)) }
        let far: UInt64 = 1 << 40
        #expect(window.accept(far))
        // Everything near the new top is fresh, even slots that aliased old counters.
        for counter in (far - 100)..<far { #expect(window.accept(counter)) }
        #expect(!window.accept(4095))
        #expect(!window.accept(far))
    }

    @Test func jumpOfExactlyOneRingKeepsOnlyTheWindow() {
        let window = WindowBox(ReplayWindow())
        #expect(window.accept(63))
        #expect(window.accept(63 + 4096))
        #expect(!window.accept(63))                // too old
        #expect(window.accept(63 + 4096 - 64))     // same ring slot as 63, freshly cleared
    }

    @Test func mayAcceptDoesNotMutate() {
        let window = WindowBox(ReplayWindow())
        #expect(window.mayAccept(9))
        #expect(window.mayAccept(9))
        #expect(window.highest == nil)
        #expect(window.accept(9))
    }

    @Test func rejectsCountersAtTheMessageLimitNearWrap() {
        let window = WindowBox(ReplayWindow())
        let limit = UInt64.max - (1 << 13)
        #expect(window.rejectAfterMessages == limit)
        #expect(window.accept(limit - 2))
        #expect(window.accept(limit - 1))
        #expect(!window.mayAccept(limit))
        #expect(!window.accept(limit))
        #expect(!window.accept(UInt64.max))
        #expect(window.accept(limit - 3))
        #expect(!window.accept(limit - 1))

        let small = WindowBox(ReplayWindow(rejectAfterMessages: 10))
        #expect(small.accept(9))
        #expect(!small.accept(10))
    }
}

/// Reference wrapper so mutating calls can sit inside `#expect`.
private final class WindowBox {
    var window: ReplayWindow
    init(_ window: ReplayWindow) { self.window = window }
    func accept(_ counter: UInt64) -> Bool { window.accept(counter) }
    func mayAccept(_ counter: UInt64) -> Bool { window.mayAccept(counter) }
    var highest: UInt64? { window.highest }
    var rejectAfterMessages: UInt64 { window.rejectAfterMessages }
}
