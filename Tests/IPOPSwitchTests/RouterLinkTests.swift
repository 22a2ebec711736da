import Testing
@testable import IPOPSwitch
import IPOPWire

struct RouterLinkTests {
    @Test func unicastIsDeliveredWithBothMACsRewritten() throws {
        var router = try standardRouter()
        // As the remote node sent it: to the virtual MAC (its own proxy ARP answer), from its TAP.
        let received = ipv4Frame(from: v4("10.0.3.2"), to: v4("10.0.3.1"), payload: 64,
                                 dstMAC: virtualMAC, srcMAC: remoteTapMAC)
        let (decision, delivered) = router.link(linkA, received)
        #expect(decision == .deliverToTap)
        #expect(Array(delivered[0..<6]) == tapMAC.bytes, "to the TAP's own MAC, or the kernel drops it")
        #expect(Array(delivered[6..<12]) == virtualMAC.bytes, "from the MAC the kernel resolved the peer to")
        #expect(Array(delivered[12...]) == Array(received[12...]), "nothing else changes")
        #expect(router.counters.deliveredToTap == 1)
    }

    @Test func ipv6UnicastIsRewrittenToo() throws {
        var router = try standardRouter()
        let received = ipv6Frame(from: v6("fd50::3"), to: v6("fd50::1"), dstMAC: virtualMAC, srcMAC: remoteTapMAC)
        let (decision, delivered) = router.link(linkB, received)
        #expect(decision == .deliverToTap)
        #expect(Array(delivered[0..<12]) == tapMAC.bytes + virtualMAC.bytes)
        #expect(Array(delivered[12...]) == Array(received[12...]))
    }

    @Test(arguments: [("255.255.255.255", "ff:ff:ff:ff:ff:ff"), ("10.0.3.255", "ff:ff:ff:ff:ff:ff"),
                      ("224.0.0.251", "01:00:5e:00:00:fb")])
    func broadcastAndMulticastKeepTheirDestinationMAC(_ destination: String, _ groupMAC: String) throws {
        var router = try standardRouter()
        let received = ipv4Frame(from: v4("10.0.3.2"), to: v4(destination), dstMAC: mac(groupMAC), srcMAC: remoteTapMAC)
        let (decision, delivered) = router.link(linkA, received)
        #expect(decision == .deliverToTap)
        #expect(Array(delivered[0..<6]) == mac(groupMAC).bytes)
        #expect(Array(delivered[6..<12]) == virtualMAC.bytes)
    }

    @Test func ipv6MulticastKeepsItsDestinationMAC() throws {
        var router = try standardRouter()
        let group = v6("ff02::1")
        let received = ipv6Frame(from: v6("fd50::2"), to: group, dstMAC: ipv6MulticastMAC(group), srcMAC: remoteTapMAC)
        let (decision, delivered) = router.link(linkA, received)
        #expect(decision == .deliverToTap)
        #expect(Array(delivered[0..<6]) == [0x33, 0x33, 0, 0, 0, 1])
    }

    @Test func unicastIPInABroadcastFrameGetsTheTapMAC() throws {
        var router = try standardRouter()
        let received = ipv4Frame(from: v4("10.0.3.2"), to: v4("10.0.3.1"), dstMAC: .broadcast, srcMAC: remoteTapMAC)
        let (decision, delivered) = router.link(linkA, received)
        #expect(decision == .deliverToTap)
        #expect(Array(delivered[0..<6]) == tapMAC.bytes)
    }

    @Test func spoofedSourcesAreDroppedAndCounted() throws {
        var router = try standardRouter()
        let cases: [(LinkID, [UInt8])] = [
            (linkB, ipv4Frame(from: v4("10.0.3.2"), to: v4("10.0.3.1"))),         // A's address from B
            (linkA, ipv4Frame(from: v4("10.0.3.99"), to: v4("10.0.3.1"))),        // nobody's
            (linkA, ipv4Frame(from: v4("10.0.3.1"), to: v4("10.0.3.1"))),         // ours
            (linkA, ipv4Frame(from: v4("192.168.5.7"), to: v4("10.0.3.1"))),      // B's LAN from A
            (linkA, ipv4Frame(from: v4("8.8.8.8"), to: v4("10.0.3.1"))),
            (linkA, ipv4Frame(from: v4("224.0.0.1"), to: v4("10.0.3.1"))),
            (linkA, ipv6Frame(from: v6("fd50::3"), to: v6("fd50::1"))),           // B's address from A
            (linkA, ipv6Frame(from: v6("fd50::1"), to: v6("fd50::1"))),           // ours
            (linkC, ipv6Frame(from: v6("fd50::4"), to: v6("fd50::1"))),           // C has no IPv6
        ]
        for (link, frame) in cases {
            let (decision, after) = router.link(link, frame)
            #expect(decision == .drop(.spoofed), "\(link)")
            #expect(after == frame, "dropped frames are left as they were")
        }
        #expect(router.counters.dropSpoofed == UInt64(cases.count))
        #expect(router.counters.deliveredToTap == 0)
    }

    @Test func aPeerMaySendFromItsSubnet() throws {
        var router = try standardRouter()
        #expect(router.link(linkB, ipv4Frame(from: v4("192.168.5.7"), to: v4("10.0.3.1"))).0 == .deliverToTap)
    }

    @Test func sourcesAreCheckedByStrictReversePath() throws {
        var router = Router(config: routerConfig())
        try router.addPeer(linkA, ip4: v4("10.0.3.2"), subnets: [prefix("192.168.0.0/16")])
        try router.addPeer(linkB, ip4: v4("10.0.3.3"), subnets: [prefix("192.168.5.0/24")])
        #expect(router.link(linkA, ipv4Frame(from: v4("192.168.9.1"), to: v4("10.0.3.1"))).0 == .deliverToTap)
        #expect(router.link(linkA, ipv4Frame(from: v4("192.168.5.1"), to: v4("10.0.3.1"))).0 == .drop(.spoofed),
                "replies to 192.168.5.1 would go to B, so only B may send from it")
        #expect(router.link(linkB, ipv4Frame(from: v4("192.168.5.1"), to: v4("10.0.3.1"))).0 == .deliverToTap)
    }

    @Test func linkScopedTrafficFromALinkIsDropped() throws {
        var router = try standardRouter()
        let neighborAdvertisement = ipv6Frame(from: v6("fd50::2"), to: v6("fd50::1"), nextHeader: 58, hopLimit: 255,
                                              payload: [136, 0, 0, 0, 0x60, 0, 0, 0] + v6("fd50::9").bytes)
        let cases: [[UInt8]] = [
            neighborAdvertisement,                                        // would poison the kernel's cache
            ipv6Frame(from: v6("fe80::2"), to: v6("ff02::1")),
            ipv6Frame(from: .unspecified, to: v6("ff02::16")),
            ipv4Frame(from: .any, to: .broadcast, dstMAC: .broadcast),
        ]
        for frame in cases {
            #expect(router.link(linkA, frame).0 == .drop(.linkScoped))
        }
        #expect(router.counters.dropLinkScoped == UInt64(cases.count))
    }

    @Test func onlyTheFirstLengthBytesAreTheFrame() throws {
        var router = try standardRouter()
        let frame = ipv4Frame(from: v4("10.0.3.2"), to: v4("10.0.3.1"))
        let buffer = frame + [UInt8](repeating: 0xAB, count: 2000)       // a receive buffer, mostly unused
        let (decision, delivered) = router.link(linkA, buffer, length: frame.count)
        #expect(decision == .deliverToTap, "the buffer's size is not the frame's (not too big)")
        #expect(Array(delivered[frame.count...]).allSatisfy { $0 == 0xAB })
        #expect(router.link(linkA, frame, length: frame.count + 1).0 == .drop(.malformed))
        #expect(router.link(linkA, frame, length: -1).0 == .drop(.malformed))
        #expect(router.link(linkA, frame, length: 13).0 == .drop(.malformed))
    }

    @Test func malformedAndTooBigFromALink() throws {
        var router = try standardRouter()
        let frame = ipv4Frame(from: v4("10.0.3.2"), to: v4("10.0.3.1"))
        #expect(router.link(linkA, Array(frame[0..<30])).0 == .drop(.malformed))
        #expect(router.link(linkA, Array(ipv6Frame(from: v6("fd50::2"), to: v6("fd50::1")).dropLast())).0
                == .drop(.malformed))
        let big = ipv4Frame(from: v4("10.0.3.2"), to: v4("10.0.3.1"), payload: 1261)
        #expect(router.link(linkA, big).0 == .drop(.tooBig))
        let other = etherFrame(to: tapMAC, from: remoteTapMAC, type: 0x88B5, [UInt8](repeating: 0, count: 46))
        #expect(router.link(linkA, other).0 == .drop(.notIP))
        #expect(router.counters.dropMalformed == 2)
        #expect(router.counters.dropTooBig == 1)
        #expect(router.counters.dropNotIP == 1)
    }

    @Test func aRemovedPeerCanNoLongerSend() throws {
        var router = try standardRouter()
        router.removePeer(linkA)
        #expect(router.link(linkA, ipv4Frame(from: v4("10.0.3.2"), to: v4("10.0.3.1"))).0 == .drop(.spoofed))
    }
}
