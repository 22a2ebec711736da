import Testing
@testable import IPOPSwitch
import IPOPWire

struct RouterNDTests {
    /// Checks that `reply[0..<86]` is a Neighbor Advertisement for `target`, sent to
    /// `solicitor` at `solicitorMAC`, field by field, with the checksum verified by the
    /// reference implementation.
    func expectAdvertisement(_ reply: [UInt8], target: IPv6Address, solicitor: IPv6Address,
                             solicitorMAC: MACAddress = tapMAC) {
        let frame = Array(reply[0..<86])
        // Ethernet
        #expect(Array(frame[0..<6]) == solicitorMAC.bytes)
        #expect(Array(frame[6..<12]) == virtualMAC.bytes)
        #expect(Array(frame[12..<14]) == [0x86, 0xDD])
        // IPv6
        let ip = Array(frame[14..<54])
        #expect(Array(ip[0..<4]) == [0x60, 0, 0, 0], "version 6, traffic class 0, flow 0")
        #expect(Array(ip[4..<6]) == [0, 32], "payload length")
        #expect(ip[6] == 58, "next header ICMPv6")
        #expect(ip[7] == 255, "hop limit")
        #expect(Array(ip[8..<24]) == target.bytes, "from the target address")
        #expect(Array(ip[24..<40]) == solicitor.bytes, "to the solicitor")
        // ICMPv6 Neighbor Advertisement
        let icmp = Array(frame[54..<86])
        #expect(icmp[0] == 136)
        #expect(icmp[1] == 0)
        #expect(Array(icmp[4..<8]) == [0x60, 0, 0, 0], "R=0 S=1 O=1, reserved zero")
        #expect(Array(icmp[8..<24]) == target.bytes)
        #expect(Array(icmp[24..<26]) == [2, 1], "target link-layer address option, 8 bytes")
        #expect(Array(icmp[26..<32]) == virtualMAC.bytes)
        // Checksum, computed independently.
        var zeroed = icmp
        zeroed[2] = 0
        zeroed[3] = 0
        let expected = referenceICMPv6Checksum(source: target, destination: solicitor, message: zeroed)
        #expect(UInt16(icmp[2]) << 8 | UInt16(icmp[3]) == expected)
        #expect(referenceICMPv6Checksum(source: target, destination: solicitor, message: icmp) == 0,
                "the whole message verifies")
    }

    @Test func answersASolicitationForAPeerAddressWithAValidAdvertisement() throws {
        var router = try standardRouter()
        let (decision, reply) = router.tap(neighborSolicitation(target: v6("fd50::2")))
        #expect(decision == .reply(86))
        expectAdvertisement(reply, target: v6("fd50::2"), solicitor: v6("fd50::1"))
        #expect(reply[86...].allSatisfy { $0 == 0xEE })
        #expect(router.counters.ndAdvertisements == 1)
        #expect(router.counters.flooded == 0, "the solicited-node multicast is answered, not flooded")
    }

    @Test func answersUnicastSolicitationsAndLinkLocalSolicitors() throws {
        var router = try standardRouter()
        // Neighbour unreachability detection: unicast to the target.
        let (unicast, reply) = router.tap(neighborSolicitation(target: v6("fd50::3"), destination: v6("fd50::3")))
        #expect(unicast == .reply(86))
        expectAdvertisement(reply, target: v6("fd50::3"), solicitor: v6("fd50::1"))
        // The kernel may solicit from its link-local address.
        let (fromLinkLocal, reply2) = router.tap(neighborSolicitation(target: v6("fd50::2"), source: v6("fe80::5054:ff:fe12:3456")))
        #expect(fromLinkLocal == .reply(86))
        expectAdvertisement(reply2, target: v6("fd50::2"), solicitor: v6("fe80::5054:ff:fe12:3456"))
    }

    @Test func answersForAnyAddressInTheOverlayPrefix() throws {
        var router = try standardRouter()
        #expect(router.tap(neighborSolicitation(target: v6("fd50::abcd"))).0 == .reply(86))
    }

    @Test func answersForAPeerAddressWhenTheNodeHasNoIPv6() throws {
        var router = Router(config: routerConfig(ip6: false))
        try router.addPeer(linkA, ip4: v4("10.0.3.2"), ip6: v6("2001:db8::2"))
        let (decision, reply) = router.tap(neighborSolicitation(target: v6("2001:db8::2"), source: v6("fe80::1")))
        #expect(decision == .reply(86))
        expectAdvertisement(reply, target: v6("2001:db8::2"), solicitor: v6("fe80::1"))
        #expect(router.tap(neighborSolicitation(target: v6("2001:db8::3"), source: v6("fe80::1"))).0
                == .drop(.unanswered))
    }

    @Test func doesNotAnswerForOwnOutsideOrDuplicateAddressDetection() throws {
        var router = try standardRouter()
        let cases: [[UInt8]] = [
            neighborSolicitation(target: v6("fd50::1")),                             // own address
            neighborSolicitation(target: v6("fd51::2")),                             // outside the prefix
            neighborSolicitation(target: v6("fe80::2"), source: v6("fe80::1")),      // link-local target
            neighborSolicitation(target: v6("fd50::2"), source: .unspecified),       // DAD
        ]
        for frame in cases {
            let (decision, reply) = router.tap(frame)
            #expect(decision == .drop(.unanswered))
            #expect(reply.allSatisfy { $0 == 0xEE })
        }
        #expect(router.counters.dropUnanswered == 4)
        #expect(router.counters.flooded == 0)
    }

    @Test func invalidSolicitationsAreMalformed() throws {
        var router = try standardRouter()
        #expect(router.tap(neighborSolicitation(target: v6("fd50::2"), hopLimit: 64)).0 == .drop(.malformed),
                "hop limit must be 255 (RFC 4861 §7.1.1)")
        #expect(router.tap(neighborSolicitation(target: v6("fd50::2"), code: 1)).0 == .drop(.malformed))
        #expect(router.tap(neighborSolicitation(target: v6("ff02::1"))).0 == .drop(.malformed))
        let short = ipv6Frame(from: v6("fd50::1"), to: v6("ff02::1:ff00:2"), nextHeader: 58, hopLimit: 255,
                              payload: [135, 0, 0, 0, 0, 0, 0, 0, 0xfd, 0x50])
        #expect(router.tap(short).0 == .drop(.malformed))
        #expect(router.counters.dropMalformed == 4)
    }

    @Test(arguments: [UInt8(133), 134, 136, 137])
    func otherNeighborDiscoveryStaysOnTheNode(_ type: UInt8) throws {
        var router = try standardRouter()
        let message: [UInt8] = [type, 0, 0, 0] + [UInt8](repeating: 0, count: 20)
        let frame = ipv6Frame(from: v6("fe80::1"), to: v6("ff02::2"), nextHeader: 58, hopLimit: 255,
                              payload: message, dstMAC: mac("33:33:00:00:00:02"))
        #expect(router.tap(frame).0 == .drop(.linkScoped))
        #expect(router.counters.flooded == 0)
    }

    @Test func routesIPv6UnicastToThePeer() throws {
        var router = try standardRouter()
        #expect(router.tap(ipv6Frame(from: v6("fd50::1"), to: v6("fd50::2"))).0 == .unicast(linkA))
        #expect(router.tap(ipv6Frame(from: v6("fd50::1"), to: v6("fd50::3"))).0 == .unicast(linkB))
        // An ICMPv6 echo is ordinary traffic.
        #expect(router.tap(ipv6Frame(from: v6("fd50::1"), to: v6("fd50::3"), nextHeader: 58,
                                     payload: [128, 0, 0, 0, 0, 1, 0, 1])).0 == .unicast(linkB))
        #expect(router.counters.routed == 3)
    }

    @Test(arguments: ["ff02::1", "ff02::fb", "ff05::1:3", "ff0e::101"])
    func ipv6MulticastFloods(_ group: String) throws {
        var router = try standardRouter()
        let frame = ipv6Frame(from: v6("fd50::1"), to: v6(group), dstMAC: ipv6MulticastMAC(v6(group)))
        #expect(router.tap(frame).0 == .flood)
        #expect(router.counters.flooded == 1)
    }

    @Test func ipv6FromLinkLocalOrUnspecifiedSourcesStaysOnTheNode() throws {
        var router = try standardRouter()
        // e.g. MLD reports and mDNS from the TAP's link-local address: peers would refuse them.
        #expect(router.tap(ipv6Frame(from: v6("fe80::1"), to: v6("ff02::16"))).0 == .drop(.linkScoped))
        #expect(router.tap(ipv6Frame(from: v6("fe80::1"), to: v6("fd50::2"))).0 == .drop(.linkScoped))
        #expect(router.tap(ipv6Frame(from: .unspecified, to: v6("ff02::16"))).0 == .drop(.linkScoped))
        #expect(router.counters.dropLinkScoped == 3)
    }

    @Test func internetChecksumMatchesTheReferenceAndKnownVectors() {
        // Known vectors: the classic IPv4 header example (checksum b861), and an ICMPv6 echo
        // request ::1 -> ::1 generated by the Linux kernel and captured with tcpdump, which
        // reported "icmp6 sum ok" (checksum 2837).
        let ipv4: [UInt8] = [0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00,
                             0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7]
        #expect(referenceChecksum(ipv4) == 0xB861)
        #expect(ipv4.withUnsafeBytes { InternetChecksum.finish(InternetChecksum.add($0)) } == 0xB861)
        let echo: [UInt8] = [0x80, 0x00, 0x00, 0x00, 0x56, 0x79, 0x00, 0x01,
                             0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00]
        #expect(referenceICMPv6Checksum(source: .loopback, destination: .loopback, message: echo) == 0x2837)
        let pseudo = InternetChecksum.ipv6PseudoHeader(source: .loopback, destination: .loopback,
                                                       upperLayerLength: echo.count, nextHeader: 58)
        #expect(echo.withUnsafeBytes { InternetChecksum.finish(InternetChecksum.add($0, to: pseudo)) } == 0x2837)

        var generator = SplitMix64(seed: 7)
        for length in 0..<80 {
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            #expect(bytes.withUnsafeBytes { InternetChecksum.finish(InternetChecksum.add($0)) } == referenceChecksum(bytes),
                    "length \(length)")
        }
    }

    @Test func solicitedNodeAndPrefixHelpers() {
        #expect(v6("fd50::12:3456").solicitedNodeMulticast == v6("ff02::1:ff12:3456"))
        #expect(v6("ff02::1:ff12:3456").isSolicitedNodeMulticast)
        #expect(!v6("ff02::1").isSolicitedNodeMulticast)
        #expect(v6("fd50::1").isIn(v6("fd50::"), prefixLength: 64))
        #expect(!v6("fd50:0:0:1::1").isIn(v6("fd50::"), prefixLength: 64))
        #expect(v6("fd50:0:0:1::1").isIn(v6("fd50::"), prefixLength: 47))
        #expect(v6("2001:db8::1").isIn(v6("::"), prefixLength: 0))
        #expect(!v6("fd50::1").isIn(v6("fd50::2"), prefixLength: 127))
        #expect(v6("fd50::2").isIn(v6("fd50::3"), prefixLength: 127))
        #expect(!v6("fd50::2").isIn(v6("fd50::3"), prefixLength: 128))
    }
}
