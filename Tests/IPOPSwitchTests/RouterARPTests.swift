import Testing
@testable import IPOPSwitch
import IPOPWire

struct RouterARPTests {
    @Test func answersARPForAPeerAddressWithTheVirtualMAC() throws {
        var router = try standardRouter()
        let (decision, reply) = router.tap(arpRequest(target: v4("10.0.3.2")))
        #expect(decision == .reply(42))
        let expected: [UInt8] = [
            // Ethernet: to the requester, from the virtual MAC, ARP
            0x52, 0x54, 0x00, 0x12, 0x34, 0x56,
            0x02, 0x69, 0x70, 0x6f, 0x70, 0x01,
            0x08, 0x06,
            // ARP: Ethernet/IPv4, 6/4, reply
            0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x02,
            // sender: 10.0.3.2 is at 02:69:70:6f:70:01
            0x02, 0x69, 0x70, 0x6f, 0x70, 0x01, 10, 0, 3, 2,
            // target: the requester, 52:54:00:12:34:56 / 10.0.3.1
            0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 10, 0, 3, 1,
        ]
        #expect(Array(reply[0..<42]) == expected)
        #expect(reply[42...].allSatisfy { $0 == 0xEE }, "nothing written past the reply")
        #expect(router.counters.arpReplies == 1)
        #expect(router.counters.routed == 0 && router.counters.flooded == 0)
    }

    @Test func answersForAnyOverlayAddressEvenWithoutAPeer() throws {
        // As IPOP: the whole overlay subnet is "on link" behind the virtual MAC; a packet to
        // an address nobody holds is then dropped as noRoute.
        var router = try standardRouter()
        let (decision, reply) = router.tap(arpRequest(target: v4("10.0.3.200")))
        #expect(decision == .reply(42))
        #expect(Array(reply[28..<32]) == [10, 0, 3, 200])
        #expect(router.tap(ipv4Frame(from: v4("10.0.3.1"), to: v4("10.0.3.200"))).0 == .drop(.noRoute))
    }

    @Test func answersForAnAddressInAPeersSubnet() throws {
        var router = try standardRouter()
        let (decision, reply) = router.tap(arpRequest(target: v4("192.168.5.9")))
        #expect(decision == .reply(42))
        #expect(Array(reply[22..<32]) == virtualMAC.bytes + [192, 168, 5, 9])
    }

    @Test func doesNotAnswerForTheNodesOwnAddress() throws {
        var router = try standardRouter()
        let (decision, reply) = router.tap(arpRequest(target: v4("10.0.3.1"), senderIP: v4("10.0.3.1")))
        #expect(decision == .drop(.unanswered), "the kernel owns its own address (gratuitous ARP)")
        #expect(reply.allSatisfy { $0 == 0xEE })
        #expect(router.counters.arpReplies == 0)
        #expect(router.counters.dropUnanswered == 1)
    }

    @Test(arguments: ["10.0.4.1", "192.168.6.1", "8.8.8.8", "10.0.3.255", "224.0.0.1", "0.0.0.0"])
    func doesNotAnswerOutsideTheOverlay(_ target: String) throws {
        var router = try standardRouter()
        let (decision, reply) = router.tap(arpRequest(target: v4(target)))
        #expect(decision == .drop(.unanswered))
        #expect(reply.allSatisfy { $0 == 0xEE })
    }

    @Test func answersUnicastRequestsToo() throws {
        // The kernel re-validates its neighbour entry with a unicast request to the MAC it has.
        var router = try standardRouter()
        #expect(router.tap(arpRequest(target: v4("10.0.3.3"), dstMAC: virtualMAC)).0 == .reply(42))
    }

    @Test func probesAreAnsweredOnlyWhenAPeerHoldsTheAddress() throws {
        var router = try standardRouter()
        #expect(router.tap(arpRequest(target: v4("10.0.3.2"), senderIP: .any)).0 == .reply(42),
                "conflict: a peer holds it")
        #expect(router.tap(arpRequest(target: v4("10.0.3.50"), senderIP: .any)).0 == .drop(.unanswered),
                "free address: no false conflict")
        let (_, reply) = router.tap(arpRequest(target: v4("10.0.3.2"), senderIP: .any))
        #expect(Array(reply[38..<42]) == [0, 0, 0, 0], "reply goes to the prober's 0.0.0.0")
    }

    @Test func arpRepliesAreNotAnswered() throws {
        var router = try standardRouter()
        #expect(router.tap(arpRequest(target: v4("10.0.3.2"), operation: 2)).0 == .drop(.unanswered))
    }

    @Test func nonEthernetIPv4ARPIsMalformed() throws {
        var router = try standardRouter()
        var frame = arpRequest(target: v4("10.0.3.2"))
        frame[14 + 1] = 6              // hardware type 6 (IEEE 802)
        #expect(router.tap(frame).0 == .drop(.malformed))
    }

    @Test func aTooSmallReplyBufferIsReportedNotOverrun() throws {
        var router = try standardRouter()
        let (decision, reply) = router.tap(arpRequest(target: v4("10.0.3.2")), replyCapacity: 41)
        #expect(decision == .drop(.replyBufferTooSmall))
        #expect(reply.allSatisfy { $0 == 0xEE })
        #expect(Router.minimumReplyCapacity == 86)
    }

    @Test func arpFromALinkIsNotIP() throws {
        var router = try standardRouter()
        var frame = arpRequest(target: v4("10.0.3.1"), senderIP: v4("10.0.3.2"), senderMAC: remoteTapMAC)
        let original = frame
        let decision = frame.withUnsafeMutableBytes {
            router.fromLink(linkA, frame: $0, length: $0.count, now: .now)
        }
        #expect(decision == .drop(.notIP))
        #expect(frame == original)
    }
}
