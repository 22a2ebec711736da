import Testing
@testable import IPOPSwitch
import IPOPWire

struct MACIndexTests {
    /// Random inserts and removals on a crowded index (long probe runs, wrap-around)
    /// against a dictionary; exercises backward-shift deletion.
    @Test(arguments: [0, 1, 0xDEAD_BEEF] as [UInt64])
    func matchesADictionaryUnderChurn(seed: UInt64) {
        var rng = SplitMix64(seed: seed &+ 100)
        let capacity = 24          // 64 buckets
        var index = MACIndex(capacity: capacity, seed: seed)
        var model: [MACAddress: Int] = [:]
        for step in 0..<50_000 {
            let mac = station(rng.next() % 64)
            if model[mac] == nil, model.count < capacity, rng.next() % 2 == 0 {
                index.insert(mac, slot: step)
                model[mac] = step
            } else {
                index.remove(mac)
                model[mac] = nil
            }
            #expect(index.count == model.count)
            let probe = station(rng.next() % 64)
            if index.find(probe) != model[probe] {
                Issue.record("step \(step): \(probe) -> \(String(describing: index.find(probe))) != \(String(describing: model[probe]))")
                return
            }
        }
        for n in 0..<64 {
            #expect(index.find(station(UInt64(n))) == model[station(UInt64(n))])
        }
        index.removeAll()
        #expect(index.count == 0)
        #expect(index.find(station(1)) == nil)
    }

    @Test func sizedForHalfLoad() {
        #expect(MACIndex(capacity: 8192, seed: 0).bucketCount == 16384)
        #expect(MACIndex(capacity: 1, seed: 0).bucketCount == 16)
        #expect(MACIndex(capacity: 9000, seed: 0).bucketCount == 32768)
    }

    @Test func removingAnAbsentKeyIsHarmless() {
        var index = MACIndex(capacity: 4, seed: 0)
        index.insert(station(1), slot: 0)
        index.remove(station(2))
        #expect(index.count == 1)
        #expect(index.find(station(1)) == 0)
    }
}
