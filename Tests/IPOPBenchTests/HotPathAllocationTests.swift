import CAllocCounter
import IPOPBench
import Testing

/// Guards the data path's heap allocations per forwarded frame (the `ipop-hotpath-bench` loop).
///
/// The counter is per thread (CAllocCounter), so tests running in parallel do not disturb it;
/// each test body is synchronous and stays on one thread.
@Suite struct HotPathAllocationTests {
    /// Allocations per frame the whole path may make in steady state. The switch and the link
    /// engine make none; what remains is inside swift-crypto's ChaChaPoly, whose public API
    /// returns `Data` and has no in-place variant (see TransportCipher). Lower it when that
    /// changes; a rise is a regression.
    static let budgetPerFrame: UInt64 = 19
    /// Per stage: seal and open are swift-crypto's; the switch must stay at zero.
    static let sealBudget: UInt64 = 13
    static let openBudget: UInt64 = 6

    @Test func counterSeesAllocations() {
        #expect(ipop_alloc_counter_active() == 1)
        let before = ipop_alloc_count_thread()
        let array = [Int](repeating: 7, count: Int.random(in: 100...200))
        #expect(ipop_alloc_count_thread() > before)
        #expect(array.count >= 100)
    }

    @Test func steadyStateAllocationsPerFrameStayWithinBudget() throws {
        let path = try HotPath()
        #expect(path.run(2_000) == 0)           // warm-up: tables, caches, first-use allocations
        let frames: UInt64 = 5_000
        let before = ipop_alloc_count_thread()
        let failed = path.run(Int(frames))
        let used = ipop_alloc_count_thread() - before
        #expect(failed == 0)
        #expect(path.lastFrameIntact)
        #expect(used <= Self.budgetPerFrame * frames, "allocations/frame \(Double(used) / Double(frames)) > budget \(Self.budgetPerFrame)")
    }

    @Test func switchStagesAllocateNothingAndCipherStaysWithinBudget() throws {
        let path = try HotPath()
        path.run(2_000)
        let frames: UInt64 = 2_000
        let stages = Dictionary(uniqueKeysWithValues: path.perStage(Int(frames)) { ipop_alloc_count_thread() }
            .map { ($0.stage, $0.total) })
        #expect(stages[.fromTap] == 0)
        #expect(stages[.fromLink] == 0)
        #expect(stages[.seal]! <= Self.sealBudget * frames, "seal: \(Double(stages[.seal]!) / Double(frames))/frame")
        #expect(stages[.receive]! <= Self.openBudget * frames, "receive: \(Double(stages[.receive]!) / Double(frames))/frame")
    }
}
