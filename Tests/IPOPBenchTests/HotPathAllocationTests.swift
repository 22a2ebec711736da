import CAllocCounter
import IPOPBench
import Testing

/// Guards the data path's heap allocations per forwarded frame (the `ipop-hotpath-bench` loop).
///
/// The counter is per thread (CAllocCounter), so tests running in parallel do not disturb it;
/// each test body is synchronous and stays on one thread.
@Suite struct HotPathAllocationTests {
    /// The forwarding path allocates nothing per frame in steady state: the switch, the link
    /// engine and the cipher (in place, TransportCipher) work on the caller's buffers. Any
    /// allocation per frame is a regression.
    static let budgetPerFrame: UInt64 = 0

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

    @Test func noStageAllocates() throws {
        let path = try HotPath()
        path.run(2_000)
        let frames: UInt64 = 2_000
        let stages = Dictionary(uniqueKeysWithValues: path.perStage(Int(frames)) { ipop_alloc_count_thread() }
            .map { ($0.stage, $0.total) })
        #expect(stages[.fromTap] == 0)
        #expect(stages[.fromLink] == 0)
        #expect(stages[.seal] == 0, "seal: \(Double(stages[.seal] ?? 0) / Double(frames))/frame")
        #expect(stages[.receive] == 0, "receive: \(Double(stages[.receive] ?? 0) / Double(frames))/frame")
    }
}
