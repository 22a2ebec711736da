import Testing
@testable import IPOPSwitch
import IPOPWire

struct MACTableTests {
    let t0 = ContinuousClock.now

    @Test func boundedTableEvictsTheLeastRecentlySeenEntry() {
        var table = MACTable(capacity: 3)
        #expect(table.learn(station(1), at: .link(linkA), now: t0) == .learned)
        #expect(table.learn(station(2), at: .link(linkA), now: t0 + .seconds(1)) == .learned)
        #expect(table.learn(station(3), at: .link(linkB), now: t0 + .seconds(2)) == .learned)
        // station(1) is heard again: station(2) is now the least recently seen.
        #expect(table.learn(station(1), at: .link(linkA), now: t0 + .seconds(3)) == .refreshed)
        // A lookup is not "seen": it must not protect station(2).
        #expect(table.lookup(station(2), now: t0 + .seconds(3)) == .link(linkA))
        #expect(table.learn(station(4), at: .link(linkC), now: t0 + .seconds(4)) == .learned)
        #expect(table.count == 3)
        #expect(table.lookup(station(2), now: t0 + .seconds(4)) == nil)
        #expect(table.counters.evicted == 1)
        #expect(table.counters.aged == 0)
        #expect(table.entries(now: t0 + .seconds(4)).map(\.mac) == [station(4), station(1), station(3)])
    }

    @Test func switchHonoursMaxEntries() {
        var sw = Switch(config: SwitchConfig(mtu: 1500, maxEntries: 2))
        let t0 = self.t0
        for n in 1...5 {
            _ = sw.link(linkA, frame(to: .broadcast, from: station(UInt64(n))), at: t0 + .seconds(n))
        }
        #expect(sw.table.count == 2)
        #expect(sw.counters.evicted == 3)
        #expect(sw.entries(now: t0 + .seconds(6)).map(\.mac) == [station(5), station(4)])
    }

    @Test func evictingAnExpiredEntryCountsAsAged() {
        var table = MACTable(capacity: 1, agingTime: .seconds(5))
        table.learn(station(1), at: .link(linkA), now: t0)
        table.learn(station(2), at: .link(linkA), now: t0 + .seconds(5))
        #expect(table.counters.aged == 1)
        #expect(table.counters.evicted == 0)
        #expect(table.counters.learned == 2)
    }

    @Test func capacityBelowOneIsTreatedAsOne() {
        var table = MACTable(capacity: 0)
        table.learn(station(1), at: .local, now: t0)
        table.learn(station(2), at: .local, now: t0)
        #expect(table.capacity == 1)
        #expect(table.count == 1)
        #expect(table.lookup(station(2), now: t0) == .local)
    }

    @Test func learningKnownMACsNeverGrowsStorage() {
        var table = MACTable(capacity: 8192)
        let before = table.storageCapacities
        #expect(before.index >= 8192 && before.slots >= 8192)
        for round in 0..<3 {
            for n in 0..<8192 {
                let link = LinkID(UInt32((n + round) % 7))
                table.learn(station(UInt64(n)), at: .link(link), now: t0 + .milliseconds(round * 10_000 + n))
            }
        }
        // Churn past the bound: new MACs evict old ones into the same storage.
        for n in 8192..<20_000 {
            table.learn(station(UInt64(n)), at: .link(linkA), now: t0 + .seconds(100))
        }
        table.expire(now: t0 + .seconds(100) + .seconds(299))
        table.flush(link: linkA)
        for n in 0..<8192 {
            table.learn(station(UInt64(n)), at: .local, now: t0 + .seconds(500))
        }
        let after = table.storageCapacities
        #expect(after.index == before.index)
        #expect(after.slots == before.slots)
        #expect(table.count == 8192)
    }

    @Test func expireRemovesOnlyExpiredEntries() {
        var table = MACTable(capacity: 100, agingTime: .seconds(300))
        for n in 0..<10 {
            table.learn(station(UInt64(n)), at: .link(linkA), now: t0 + .seconds(n))
        }
        #expect(table.expire(now: t0 + .seconds(304)) == 5)
        #expect(table.count == 5)
        #expect(table.entries(now: t0 + .seconds(304)).map(\.mac) == (5..<10).reversed().map { station(UInt64($0)) })
        #expect(table.expire(now: t0 + .seconds(304)) == 0)
        #expect(table.expire(now: t0 + .seconds(1000)) == 5)
        #expect(table.count == 0)
        #expect(table.counters.aged == 10)
        // Usable again after emptying.
        table.learn(station(1), at: .local, now: t0 + .seconds(1000))
        #expect(table.lookup(station(1), now: t0 + .seconds(1000)) == .local)
    }

    @Test func flushReturnsTheNumberRemoved() {
        var table = MACTable()
        table.learn(station(1), at: .link(linkA), now: t0)
        table.learn(station(2), at: .link(linkB), now: t0)
        table.learn(station(3), at: .link(linkA), now: t0)
        #expect(table.flush(link: linkA) == 2)
        #expect(table.flush(link: linkA) == 0)
        #expect(table.flush(link: linkC) == 0)
        #expect(table.count == 1)
        #expect(table.counters.flushed == 2)
        table.removeAll()
        #expect(table.count == 0)
        #expect(table.entries(now: t0).isEmpty)
    }

    @Test func moveReportsThePreviousLocation() {
        var table = MACTable()
        table.learn(station(1), at: .local, now: t0)
        #expect(table.learn(station(1), at: .link(linkA), now: t0) == .moved(from: .local))
        #expect(table.learn(station(1), at: .link(linkB), now: t0) == .moved(from: .link(linkA)))
        #expect(table.learn(station(1), at: .link(linkB), now: t0) == .refreshed)
        #expect(table.counters.moved == 2)
        #expect(table.learn(.broadcast, at: .link(linkB), now: t0) == .invalidSource)
    }

    /// Random operations against a naive reference model (dictionary + linear scans).
    @Test(arguments: [1, 2, 3, 4])
    func matchesAReferenceModel(seed: UInt64) {
        struct Model {
            var entries: [MACAddress: (location: MACTable.Location, seen: ContinuousClock.Instant, order: Int)] = [:]
            var order = 0
        }
        var rng = SplitMix64(seed: seed)
        let capacity = 16
        let aging = Duration.seconds(30)
        var table = MACTable(capacity: capacity, agingTime: aging)
        var model = Model()
        var now = t0
        for step in 0..<20_000 {
            now += .milliseconds(Int(rng.next() % 800))
            let mac = station(rng.next() % 40)
            let location: MACTable.Location = rng.next() % 5 == 0 ? .local : .link(LinkID(UInt32(rng.next() % 4)))
            switch rng.next() % 20 {
            case 0:
                let link = LinkID(UInt32(rng.next() % 4))
                let removed = table.flush(link: link)
                let before = model.entries.count
                model.entries = model.entries.filter { $0.value.location != .link(link) }
                #expect(removed == before - model.entries.count, "step \(step)")
            case 1:
                table.expire(now: now)
                model.entries = model.entries.filter { now - $0.value.seen < aging }
            default:
                table.learn(mac, at: location, now: now)
                model.order += 1
                if model.entries[mac] == nil, model.entries.count == capacity {
                    let victim = model.entries.min { $0.value.order < $1.value.order }!.key
                    model.entries[victim] = nil
                }
                model.entries[mac] = (location, now, model.order)
            }
            let expected = model.entries
                .filter { now - $0.value.seen < aging }
                .sorted { $0.value.order > $1.value.order }
                .map { MACTableEntry(mac: $0.key, location: $0.value.location, age: now - $0.value.seen) }
            let actual = table.entries(now: now)
            if actual != expected {
                Issue.record("step \(step): \(actual) != \(expected)")
                return
            }
            #expect(table.count == model.entries.count)
            let probe = station(rng.next() % 40)
            let modelLocation = model.entries[probe].flatMap { now - $0.seen < aging ? $0.location : nil }
            #expect(table.lookup(probe, now: now) == modelLocation)
        }
    }
}
