import Testing
@testable import IPOPSwitch
import IPOPWire

struct SwitchForwardingTests {
    let t0 = ContinuousClock.now
    let local = station(0x01)
    let remote = station(0x02)

    @Test func learnsSourceFromLinkAndUnicastsToIt() {
        var sw = Switch(config: SwitchConfig(mtu: 1500))
        #expect(sw.link(linkA, frame(to: local, from: remote), at: t0) == .deliverToTap)
        #expect(sw.tap(frame(to: remote, from: local), at: t0 + .seconds(1)) == .unicast(linkA))
        #expect(sw.lookup(remote, now: t0) == .link(linkA))
        #expect(sw.counters.learned == 2)       // remote on linkA, local as .local
        #expect(sw.counters.unicast == 1)
        #expect(sw.counters.deliveredToTap == 1)
        #expect(sw.counters.flooded == 0)
    }

    @Test func unknownUnicastFloodsToEveryLink() {
        var sw = Switch(config: SwitchConfig(mtu: 1500))
        #expect(sw.tap(frame(to: remote, from: local), at: t0) == .flood)
        #expect(sw.counters.flooded == 1)
        #expect(sw.counters.unknownUnicast == 1)
    }

    @Test func broadcastFloodsEvenWhenEverythingIsKnown() {
        var sw = Switch(config: SwitchConfig(mtu: 1500))
        _ = sw.link(linkA, frame(to: local, from: remote), at: t0)
        #expect(sw.tap(frame(to: .broadcast, from: local), at: t0) == .flood)
        #expect(sw.counters.flooded == 1)
        #expect(sw.counters.unknownUnicast == 0)
    }

    @Test(arguments: ["01:00:5e:00:00:fb", "33:33:00:00:00:01", "01:80:c2:00:00:00"])
    func multicastFloods(_ text: String) throws {
        var sw = Switch(config: SwitchConfig(mtu: 1500))
        let group = try #require(MACAddress(text))
        #expect(sw.tap(frame(to: group, from: local), at: t0) == .flood)
        #expect(sw.counters.unknownUnicast == 0)
    }

    @Test func macSeenOnANewLinkMoves() {
        var sw = Switch(config: SwitchConfig(mtu: 1500))
        _ = sw.link(linkA, frame(to: local, from: remote), at: t0)
        _ = sw.link(linkB, frame(to: local, from: remote), at: t0 + .seconds(1))
        #expect(sw.tap(frame(to: remote, from: local), at: t0 + .seconds(2)) == .unicast(linkB))
        #expect(sw.counters.moved == 1)
        #expect(sw.counters.learned == 2)       // remote once, local once
        #expect(sw.entries(now: t0 + .seconds(2)).filter { $0.mac == remote }.map(\.link) == [linkB])
    }

    @Test func entryAgesOutAtExactlyTheBoundary() {
        var sw = Switch(config: SwitchConfig(mtu: 1500))
        _ = sw.link(linkA, frame(to: local, from: remote), at: t0)
        let justBefore = t0 + .seconds(300) - .nanoseconds(1)
        #expect(sw.tap(frame(to: remote, from: local), at: justBefore) == .unicast(linkA))
        #expect(sw.tap(frame(to: remote, from: local), at: t0 + .seconds(300)) == .flood,
                "age == agingTime counts as unknown")
        #expect(sw.counters.unknownUnicast == 1)

        sw.expire(now: justBefore)
        #expect(sw.counters.aged == 0)
        #expect(sw.table.count == 2)
        sw.expire(now: t0 + .seconds(300))
        #expect(sw.counters.aged == 1)
        #expect(sw.lookup(remote, now: t0 + .seconds(300)) == nil)
        #expect(sw.lookup(local, now: t0 + .seconds(300)) == .local, "refreshed just before")
        #expect(sw.table.count == 1)
    }

    @Test func trafficRefreshesTheEntry() {
        var sw = Switch(config: SwitchConfig(mtu: 1500))
        _ = sw.link(linkA, frame(to: local, from: remote), at: t0)
        _ = sw.link(linkA, frame(to: local, from: remote), at: t0 + .seconds(200))
        #expect(sw.tap(frame(to: remote, from: local), at: t0 + .seconds(301)) == .unicast(linkA))
        #expect(sw.tap(frame(to: remote, from: local), at: t0 + .seconds(500)) == .flood)
    }

    @Test func agingTimeIsConfigurable() {
        var sw = Switch(config: SwitchConfig(mtu: 1500, agingTime: .seconds(10)))
        _ = sw.link(linkA, frame(to: local, from: remote), at: t0)
        #expect(sw.tap(frame(to: remote, from: local), at: t0 + .milliseconds(9_999)) == .unicast(linkA))
        #expect(sw.tap(frame(to: remote, from: local), at: t0 + .seconds(10)) == .flood)
    }

    @Test func expiredEntryRelearnedCountsAgedThenLearned() {
        var sw = Switch(config: SwitchConfig(mtu: 1500))
        _ = sw.link(linkA, frame(to: local, from: remote), at: t0)
        _ = sw.link(linkB, frame(to: local, from: remote), at: t0 + .seconds(301))
        #expect(sw.counters.aged == 1)
        #expect(sw.counters.moved == 0, "an expired entry does not move, it is learned anew")
        #expect(sw.lookup(remote, now: t0 + .seconds(301)) == .link(linkB))
    }

    @Test func linkRemovalFlushesOnlyItsEntries() {
        var sw = Switch(config: SwitchConfig(mtu: 1500))
        let onA = [station(0x10), station(0x11)]
        let onB = station(0x20)
        for mac in onA { _ = sw.link(linkA, frame(to: local, from: mac), at: t0) }
        _ = sw.link(linkB, frame(to: local, from: onB), at: t0)
        _ = sw.tap(frame(to: .broadcast, from: local), at: t0)
        sw.linkRemoved(linkA)
        #expect(sw.counters.flushed == 2)
        for mac in onA {
            #expect(sw.tap(frame(to: mac, from: local), at: t0) == .flood)
        }
        #expect(sw.tap(frame(to: onB, from: local), at: t0) == .unicast(linkB))
        #expect(sw.lookup(local, now: t0) == .local)
        #expect(sw.table.count == 2)
    }

    @Test func splitHorizonLinkFramesOnlyEverGoToTheTap() {
        var sw = Switch(config: SwitchConfig(mtu: 1500))
        let onA = station(0x10)
        let onB = station(0x20)
        _ = sw.link(linkA, frame(to: local, from: onA), at: t0)
        _ = sw.link(linkB, frame(to: local, from: onB), at: t0)
        let now = t0 + .seconds(1)
        // Broadcast, unknown unicast, known on another link, known on the same link.
        #expect(sw.link(linkA, frame(to: .broadcast, from: onA), at: now) == .deliverToTap)
        #expect(sw.link(linkA, frame(to: station(0x99), from: onA), at: now) == .deliverToTap)
        #expect(sw.link(linkA, frame(to: onB, from: onA), at: now) == .deliverToTap)
        #expect(sw.link(linkA, frame(to: onA, from: station(0x11)), at: now) == .deliverToTap)
        #expect(sw.counters.deliveredToTap == 6)
        #expect(sw.counters.flooded == 0 && sw.counters.unicast == 0)
    }

    @Test func vlanTaggedFramesPassAndLearnTheOuterSource() {
        var sw = Switch(config: SwitchConfig(mtu: 1500))
        #expect(sw.link(linkA, frame(to: local, from: remote, tags: [42]), at: t0) == .deliverToTap)
        #expect(sw.tap(frame(to: remote, from: local, tags: [42]), at: t0) == .unicast(linkA))
        #expect(sw.tap(frame(to: remote, from: local, tags: [7]), at: t0) == .unicast(linkA),
                "one table for all VLANs")
        #expect(sw.link(linkB, frame(to: local, from: station(0x30), tags: [100, 42]), at: t0) == .deliverToTap)
        #expect(sw.tap(frame(to: station(0x30), from: local, tags: [100, 42]), at: t0) == .unicast(linkB))
        #expect(sw.tap(frame(to: .broadcast, from: local, tags: [42]), at: t0) == .flood)
    }

    @Test func tooBigFramesAreDroppedWithoutATag() {
        var sw = Switch(config: SwitchConfig(mtu: 1500))
        #expect(sw.tap(frame(to: remote, from: local, length: 1514), at: t0) == .flood)
        #expect(sw.tap(frame(to: remote, from: local, length: 1515), at: t0) == .drop(.tooBig))
        #expect(sw.link(linkA, frame(to: local, from: remote, length: 1514), at: t0) == .deliverToTap)
        #expect(sw.link(linkA, frame(to: local, from: remote, length: 1515), at: t0) == .drop(.tooBig))
        #expect(sw.counters.dropTooBig == 2)
    }

    @Test func tooBigAllowsFourBytesPerVLANTag() {
        var sw = Switch(config: SwitchConfig(mtu: 1400))
        #expect(sw.tap(frame(to: remote, from: local, tags: [5], length: 1418), at: t0) == .flood)
        #expect(sw.tap(frame(to: remote, from: local, tags: [5], length: 1419), at: t0) == .drop(.tooBig))
        #expect(sw.link(linkA, frame(to: local, from: remote, tags: [5, 6], length: 1422), at: t0) == .deliverToTap)
        #expect(sw.link(linkA, frame(to: local, from: remote, tags: [5, 6], length: 1423), at: t0) == .drop(.tooBig))
        #expect(sw.counters.dropTooBig == 2)
    }

    @Test func tooBigFrameTeachesNothing() {
        var sw = Switch(config: SwitchConfig(mtu: 1500))
        _ = sw.link(linkA, frame(to: local, from: remote, length: 9000), at: t0)
        #expect(sw.lookup(remote, now: t0) == nil)
        #expect(sw.counters.learned == 0)
    }

    @Test func malformedFramesAreDropped() {
        var sw = Switch(config: SwitchConfig(mtu: 1500))
        let full = frame(to: remote, from: local)
        for length in 0..<14 {
            let bytes = Array(full.prefix(length))
            #expect(sw.tap(bytes, at: t0) == .drop(.malformed))
            #expect(sw.link(linkA, bytes, at: t0) == .drop(.malformed))
        }
        // An 802.1Q tag announced but cut short.
        let tagged = Array(frame(to: remote, from: local, tags: [9]).prefix(16))
        #expect(sw.tap(tagged, at: t0) == .drop(.malformed))
        #expect(sw.link(linkA, tagged, at: t0) == .drop(.malformed))
        #expect(sw.counters.dropMalformed == 30)
        #expect(sw.counters.learned == 0)
        #expect(sw.table.count == 0)
    }

    @Test(arguments: ["ff:ff:ff:ff:ff:ff", "01:00:5e:00:00:01", "33:33:00:00:00:01", "03:00:00:00:00:00", "00:00:00:00:00:00"])
    func noLearningFromMulticastBroadcastOrZeroSource(_ text: String) throws {
        var sw = Switch(config: SwitchConfig(mtu: 1500))
        let bad = try #require(MACAddress(text))
        #expect(sw.link(linkA, frame(to: local, from: bad), at: t0) == .drop(.invalidSource))
        #expect(sw.tap(frame(to: remote, from: bad), at: t0) == .drop(.invalidSource))
        #expect(sw.lookup(bad, now: t0) == nil)
        #expect(sw.table.count == 0)
        #expect(sw.counters.invalidSource == 2)
        #expect(sw.counters.dropInvalidSource == 2)
        #expect(sw.counters.learned == 0)
    }

    @Test func tapSourcesAreRecordedAsLocalNotAsLinks() {
        var sw = Switch(config: SwitchConfig(mtu: 1500))
        _ = sw.tap(frame(to: .broadcast, from: local), at: t0)
        #expect(sw.lookup(local, now: t0) == .local)
        let entries = sw.entries(now: t0 + .seconds(5))
        #expect(entries.count == 1)
        #expect(entries.first?.isLocal == true)
        #expect(entries.first?.link == nil)
        #expect(entries.first?.age == .seconds(5))
    }

    @Test func tapFrameToALocalMACIsDropped() {
        var sw = Switch(config: SwitchConfig(mtu: 1500))
        let otherLocal = station(0x03)
        _ = sw.tap(frame(to: .broadcast, from: otherLocal), at: t0)
        #expect(sw.tap(frame(to: otherLocal, from: local), at: t0) == .drop(.localDestination))
        #expect(sw.counters.dropLocalDestination == 1)
    }

    @Test func localMACHeardOnALinkMovesThere() {
        var sw = Switch(config: SwitchConfig(mtu: 1500))
        let migrated = station(0x03)
        _ = sw.tap(frame(to: .broadcast, from: migrated), at: t0)
        _ = sw.link(linkA, frame(to: .broadcast, from: migrated), at: t0 + .seconds(1))
        #expect(sw.counters.moved == 1)
        #expect(sw.tap(frame(to: migrated, from: local), at: t0 + .seconds(2)) == .unicast(linkA))
    }

    @Test func entriesShowMACLinkAndAgeMostRecentFirst() {
        var sw = Switch(config: SwitchConfig(mtu: 1500))
        _ = sw.link(linkA, frame(to: local, from: station(0x10)), at: t0)
        _ = sw.link(linkB, frame(to: local, from: station(0x20)), at: t0 + .seconds(10))
        _ = sw.link(linkC, frame(to: local, from: station(0x30)), at: t0 + .seconds(20))
        let entries = sw.entries(now: t0 + .seconds(305))
        #expect(entries.map(\.mac) == [station(0x30), station(0x20)], "the first one has expired")
        #expect(entries.map(\.link) == [linkC, linkB])
        #expect(entries.map(\.age) == [.seconds(285), .seconds(295)])
    }

    @Test func countersStartAtZero() {
        let sw = Switch(config: SwitchConfig(mtu: 1500))
        #expect(sw.counters == SwitchCounters())
        #expect(sw.counters.dropped == 0)
        #expect(sw.config == SwitchConfig(mtu: 1500, agingTime: .seconds(300), maxEntries: 8192))
        #expect(sw.table.capacity == 8192)
    }
}
