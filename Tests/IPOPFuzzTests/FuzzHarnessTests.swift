import IPOPFuzz
import Testing

/// The fuzz harness in the ordinary test run: its seeds and a bounded batch of random and mutated
/// inputs must run without a crash or a violated invariant (`scripts/fuzz` runs it coverage-guided).
@Suite struct FuzzHarnessTests {
    @Test func seedsCoverEveryTargetAndRun() {
        let harness = FuzzHarness()
        #expect(harness.recorded.count >= 3, "handshake initiation, response and a transport datagram")
        let seeds = harness.seeds()
        #expect(Set(seeds.compactMap { $0.first.map { Int($0) % FuzzHarness.targets } }).count == FuzzHarness.targets)
        for seed in seeds { seed.withUnsafeBytes { harness.run($0) } }
    }

    @Test func mutatedSeedsAndRandomInputsNeverTrap() {
        let harness = FuzzHarness()
        let seeds = harness.seeds()
        var rng = SystemRandomNumberGenerator()
        for i in 0 ..< 30_000 {
            var input: [UInt8]
            if i % 2 == 0 {
                input = seeds[Int.random(in: 0 ..< seeds.count, using: &rng)]
                for _ in 0 ..< Int.random(in: 1 ... 8, using: &rng) where input.count > 1 {
                    let at = Int.random(in: 1 ..< input.count, using: &rng)
                    switch Int.random(in: 0 ..< 3, using: &rng) {
                    case 0: input[at] = UInt8.random(in: 0 ... 255, using: &rng)
                    case 1: input.removeSubrange(at...)
                    default: input.insert(UInt8.random(in: 0 ... 255, using: &rng), at: at)
                    }
                }
            } else {
                input = (0 ..< Int.random(in: 0 ... 300, using: &rng)).map { _ in UInt8.random(in: 0 ... 255, using: &rng) }
            }
            input.withUnsafeBytes { harness.run($0) }
        }
    }
}
