import Testing
@testable import IPOPSwitch
import IPOPWire

// MARK: - Fixtures shared by the Router*Tests files

func v4(_ text: String) -> IPv4Address { IPv4Address(text) ?? .any }
func v6(_ text: String) -> IPv6Address { IPv6Address(text) ?? .unspecified }
func mac(_ text: String) -> MACAddress { MACAddress(text) ?? .zero }
func prefix(_ text: String) -> IPv4Prefix { IPv4Prefix(text) ?? IPv4Prefix(.any, 99) }

/// The node's TAP MAC.
let tapMAC = mac("52:54:00:12:34:56")
/// A remote node's TAP MAC, as it appears as the source of frames arriving on links.
let remoteTapMAC = mac("52:54:00:65:43:21")
let virtualMAC = RouterConfig.defaultVirtualMAC

/// 10.0.3.1/24, fd50::1/64, MTU 1280.
func routerConfig(ip6: Bool = true) -> RouterConfig {
    RouterConfig(localMAC: tapMAC, ip4: v4("10.0.3.1"), ip4PrefixLength: 24,
                 ip6: ip6 ? v6("fd50::1") : nil, ip6PrefixLength: 64, mtu: 1280)
}

/// A router with linkA = 10.0.3.2 / fd50::2, linkB = 10.0.3.3 / fd50::3 + 192.168.5.0/24,
/// linkC = 10.0.3.4.
func standardRouter(ip6: Bool = true) throws -> Router {
    var router = Router(config: routerConfig(ip6: ip6))
    try router.addPeer(linkA, ip4: v4("10.0.3.2"), ip6: v6("fd50::2"))
    try router.addPeer(linkB, ip4: v4("10.0.3.3"), ip6: v6("fd50::3"), subnets: [prefix("192.168.5.0/24")])
    try router.addPeer(linkC, ip4: v4("10.0.3.4"))
    return router
}

/// RFC 1071 checksum written the obvious way over an array (independent of
/// `InternetChecksum`): one's-complement of the folded sum of big-endian 16-bit words.
func referenceChecksum(_ bytes: [UInt8]) -> UInt16 {
    var sum = 0
    var i = 0
    while i < bytes.count {
        let high = Int(bytes[i])
        let low = i + 1 < bytes.count ? Int(bytes[i + 1]) : 0
        sum += high << 8 | low
        i += 2
    }
    while sum > 0xFFFF { sum = (sum & 0xFFFF) + (sum >> 16) }
    return ~UInt16(sum)
}

/// ICMPv6 checksum by the reference: pseudo-header (source, destination, 32-bit length,
/// three zero bytes, next header 58) followed by the message.
func referenceICMPv6Checksum(source: IPv6Address, destination: IPv6Address, message: [UInt8]) -> UInt16 {
    let length = message.count
    let pseudo = source.bytes + destination.bytes
        + [UInt8(length >> 24 & 0xFF), UInt8(length >> 16 & 0xFF), UInt8(length >> 8 & 0xFF), UInt8(length & 0xFF)]
        + [0, 0, 0, 58]
    return referenceChecksum(pseudo + message)
}

func be16(_ value: UInt16) -> [UInt8] { [UInt8(value >> 8), UInt8(value & 0xFF)] }

func etherFrame(to destination: MACAddress, from source: MACAddress, type: UInt16, _ payload: [UInt8]) -> [UInt8] {
    destination.bytes + source.bytes + be16(type) + payload
}

/// A valid IPv4/UDP-ish packet (header checksum set) with `payload` bytes after the header.
func ipv4Packet(from source: IPv4Address, to destination: IPv4Address, payload: Int = 8) -> [UInt8] {
    let total = 20 + payload
    var header: [UInt8] = [0x45, 0x00] + be16(UInt16(total)) + [0x12, 0x34, 0x40, 0x00, 64, 17, 0, 0]
        + source.bytes + destination.bytes
    let checksum = referenceChecksum(header)
    header[10] = UInt8(checksum >> 8)
    header[11] = UInt8(checksum & 0xFF)
    return header + (0..<payload).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 1) }
}

func ipv4Frame(from source: IPv4Address, to destination: IPv4Address, payload: Int = 8,
               dstMAC: MACAddress = virtualMAC, srcMAC: MACAddress = tapMAC) -> [UInt8] {
    etherFrame(to: dstMAC, from: srcMAC, type: 0x0800, ipv4Packet(from: source, to: destination, payload: payload))
}

func ipv6Packet(from source: IPv6Address, to destination: IPv6Address, nextHeader: UInt8 = 17,
                hopLimit: UInt8 = 64, payload: [UInt8] = [1, 2, 3, 4, 5, 6, 7, 8]) -> [UInt8] {
    [0x60, 0, 0, 0] + be16(UInt16(payload.count)) + [nextHeader, hopLimit]
        + source.bytes + destination.bytes + payload
}

func ipv6Frame(from source: IPv6Address, to destination: IPv6Address, nextHeader: UInt8 = 17,
               hopLimit: UInt8 = 64, payload: [UInt8] = [1, 2, 3, 4, 5, 6, 7, 8],
               dstMAC: MACAddress = virtualMAC, srcMAC: MACAddress = tapMAC) -> [UInt8] {
    etherFrame(to: dstMAC, from: srcMAC, type: 0x86DD,
               ipv6Packet(from: source, to: destination, nextHeader: nextHeader, hopLimit: hopLimit, payload: payload))
}

/// The Ethernet multicast MAC of an IPv6 group (33:33 + low 32 bits).
func ipv6MulticastMAC(_ group: IPv6Address) -> MACAddress {
    MACAddress(rawValue: 0x3333_0000_0000 | (group.low & 0xFFFF_FFFF))
}

/// ARP request from the TAP (who has `target`? tell `senderIP`).
func arpRequest(target: IPv4Address, senderIP: IPv4Address = v4("10.0.3.1"), senderMAC: MACAddress = tapMAC,
                operation: UInt16 = 1, dstMAC: MACAddress = .broadcast) -> [UInt8] {
    let arp: [UInt8] = [0x00, 0x01, 0x08, 0x00, 6, 4] + be16(operation)
        + senderMAC.bytes + senderIP.bytes + [0, 0, 0, 0, 0, 0] + target.bytes
    return etherFrame(to: dstMAC, from: senderMAC, type: 0x0806, arp)
}

/// A Neighbor Solicitation from the TAP with a valid checksum; multicast to the target's
/// solicited-node group unless `destination` is given. A source link-layer address option
/// is included unless the source is unspecified.
func neighborSolicitation(target: IPv6Address, source: IPv6Address = v6("fd50::1"),
                          destination: IPv6Address? = nil, hopLimit: UInt8 = 255,
                          code: UInt8 = 0) -> [UInt8] {
    let destination = destination ?? target.solicitedNodeMulticast
    var message: [UInt8] = [135, code, 0, 0, 0, 0, 0, 0] + target.bytes
    if !source.isUnspecified { message += [1, 1] + tapMAC.bytes }
    let checksum = referenceICMPv6Checksum(source: source, destination: destination, message: message)
    message[2] = UInt8(checksum >> 8)
    message[3] = UInt8(checksum & 0xFF)
    let dstMAC = destination.isMulticast ? ipv6MulticastMAC(destination) : virtualMAC
    return ipv6Frame(from: source, to: destination, nextHeader: 58, hopLimit: hopLimit, payload: message,
                     dstMAC: dstMAC)
}

extension Router {
    /// `fromTap` over an array; returns the decision and the reply buffer (128 bytes, filled
    /// with 0xEE before the call so untouched bytes show).
    mutating func tap(_ bytes: [UInt8], at now: ContinuousClock.Instant = .now,
                      replyCapacity: Int = 128) -> (RouterTapDecision, [UInt8]) {
        var reply = [UInt8](repeating: 0xEE, count: replyCapacity)
        let decision = bytes.withUnsafeBytes { frame in
            reply.withUnsafeMutableBytes { fromTap(frame, reply: $0, now: now) }
        }
        return (decision, reply)
    }

    /// `fromLink` over a copy of `bytes`; returns the decision and the (rewritten) copy.
    mutating func link(_ link: LinkID, _ bytes: [UInt8], length: Int? = nil,
                       at now: ContinuousClock.Instant = .now) -> (RouterLinkDecision, [UInt8]) {
        var buffer = bytes
        let decision = buffer.withUnsafeMutableBytes {
            fromLink(link, frame: $0, length: length ?? $0.count, now: now)
        }
        return (decision, buffer)
    }
}

// MARK: - Forwarding from the TAP

struct RouterForwardingTests {
    @Test func routesIPv4ToThePeerHoldingTheDestination() throws {
        var router = try standardRouter()
        #expect(router.tap(ipv4Frame(from: v4("10.0.3.1"), to: v4("10.0.3.2"))).0 == .unicast(linkA))
        #expect(router.tap(ipv4Frame(from: v4("10.0.3.1"), to: v4("10.0.3.3"))).0 == .unicast(linkB))
        #expect(router.tap(ipv4Frame(from: v4("10.0.3.1"), to: v4("10.0.3.4"))).0 == .unicast(linkC))
        #expect(router.counters.routed == 3)
        #expect(router.counters.dropped == 0)
    }

    @Test func routesIntoAPeersSubnet() throws {
        var router = try standardRouter()
        #expect(router.tap(ipv4Frame(from: v4("10.0.3.1"), to: v4("192.168.5.77"))).0 == .unicast(linkB))
        #expect(router.tap(ipv4Frame(from: v4("10.0.3.1"), to: v4("192.168.5.255"))).0 == .unicast(linkB),
                "a peer LAN's directed broadcast goes to that peer, not everywhere")
        #expect(router.tap(ipv4Frame(from: v4("10.0.3.1"), to: v4("192.168.6.1"))).0 == .drop(.noRoute))
    }

    @Test func longestPrefixWinsAndHostRoutesBeatSubnets() throws {
        var router = Router(config: routerConfig())
        try router.addPeer(linkA, ip4: v4("10.0.3.2"), subnets: [prefix("192.168.0.0/16"), prefix("10.0.0.0/8")])
        try router.addPeer(linkB, ip4: v4("10.0.3.3"), subnets: [prefix("192.168.5.0/24")])
        try router.addPeer(linkC, ip4: v4("10.0.3.4"), subnets: [prefix("192.168.5.128/25")])
        let cases: [(String, LinkID)] = [
            ("192.168.9.1", linkA), ("192.168.5.7", linkB), ("192.168.5.127", linkB),
            ("192.168.5.128", linkC), ("192.168.5.200", linkC),
            ("10.0.3.4", linkC),        // host route, although 10.0.0.0/8 is A's
            ("10.0.3.77", linkA),       // nobody's host address: A's /8
            ("10.200.0.1", linkA),
        ]
        for (destination, link) in cases {
            #expect(router.tap(ipv4Frame(from: v4("10.0.3.1"), to: v4(destination))).0 == .unicast(link),
                    "\(destination)")
        }
        #expect(router.table.owner(of: v4("192.168.5.130")) == linkC)
        #expect(router.table.owner(of: v4("172.16.0.1")) == nil)
    }

    @Test(arguments: ["224.0.0.251", "239.255.255.250", "224.0.0.1", "255.255.255.255", "10.0.3.255"])
    func broadcastAndMulticastFlood(_ destination: String) throws {
        var router = try standardRouter()
        let dstMAC: MACAddress = v4(destination).isMulticast ? mac("01:00:5e:00:00:fb") : .broadcast
        #expect(router.tap(ipv4Frame(from: v4("10.0.3.1"), to: v4(destination), dstMAC: dstMAC)).0 == .flood)
        #expect(router.counters.flooded == 1)
        #expect(router.counters.routed == 0)
    }

    @Test func subnetBroadcastFollowsThePrefixLength() throws {
        var router = Router(config: RouterConfig(localMAC: tapMAC, ip4: v4("10.1.2.3"), ip4PrefixLength: 16, mtu: 1280))
        #expect(router.tap(ipv4Frame(from: v4("10.1.2.3"), to: v4("10.1.255.255"))).0 == .flood)
        #expect(router.tap(ipv4Frame(from: v4("10.1.2.3"), to: v4("10.1.2.255"))).0 == .drop(.noRoute),
                "x.x.x.255 is an ordinary host in a /16")
        var point = Router(config: RouterConfig(localMAC: tapMAC, ip4: v4("10.9.9.0"), ip4PrefixLength: 31, mtu: 1280))
        try point.addPeer(linkA, ip4: v4("10.9.9.1"))
        #expect(point.tap(ipv4Frame(from: v4("10.9.9.0"), to: v4("10.9.9.1"))).0 == .unicast(linkA),
                "a /31 has no broadcast address (RFC 3021)")
    }

    @Test func unknownDestinationIsDroppedAndCounted() throws {
        var router = try standardRouter()
        #expect(router.tap(ipv4Frame(from: v4("10.0.3.1"), to: v4("10.0.3.99"))).0 == .drop(.noRoute))
        #expect(router.tap(ipv4Frame(from: v4("10.0.3.1"), to: v4("8.8.8.8"))).0 == .drop(.noRoute))
        #expect(router.tap(ipv6Frame(from: v6("fd50::1"), to: v6("fd50::99"))).0 == .drop(.noRoute))
        #expect(router.counters.dropNoRoute == 3)
        #expect(router.counters.dropped == 3)
    }

    @Test func theFrameIsNotModifiedOnTheWayOut() throws {
        var router = try standardRouter()
        let frame = ipv4Frame(from: v4("10.0.3.1"), to: v4("10.0.3.2"), payload: 100)
        let copy = frame
        var reply = [UInt8](repeating: 0xEE, count: 128)
        let decision = copy.withUnsafeBytes { raw in
            reply.withUnsafeMutableBytes { router.fromTap(raw, reply: $0, now: .now) }
        }
        #expect(decision == .unicast(linkA))
        #expect(copy == frame)
        #expect(reply.allSatisfy { $0 == 0xEE }, "reply untouched unless the decision is .reply")
    }

    @Test func nonIPEtherTypesAreDropped() throws {
        var router = try standardRouter()
        let lldp = etherFrame(to: mac("01:80:c2:00:00:0e"), from: tapMAC, type: 0x88CC, [UInt8](repeating: 0, count: 46))
        #expect(router.tap(lldp).0 == .drop(.notIP))
        let rarp = etherFrame(to: .broadcast, from: tapMAC, type: 0x8035, [UInt8](repeating: 0, count: 46))
        #expect(router.tap(rarp).0 == .drop(.notIP))
        #expect(router.counters.dropNotIP == 2)
    }

    /// VLAN-tagged frames are not routed: the L3 TAP is an untagged IP interface (a tagged
    /// frame only appears if someone stacks a VLAN device on it). They count as notIP.
    @Test func vlanTaggedFramesAreDroppedAsNotIP() throws {
        var router = try standardRouter()
        let plain = ipv4Frame(from: v4("10.0.3.1"), to: v4("10.0.3.2"))
        let tagged = Array(plain[0..<12]) + [0x81, 0x00, 0x00, 0x05] + Array(plain[12...])
        #expect(router.tap(tagged).0 == .drop(.notIP))
        #expect(router.link(linkA, tagged).0 == .drop(.notIP))
        #expect(router.counters.dropNotIP == 2)
        #expect(router.counters.routed == 0)
    }

    @Test func tooBigIsMTUPlusTheEthernetHeader() throws {
        var router = try standardRouter()
        let fits = ipv4Frame(from: v4("10.0.3.1"), to: v4("10.0.3.2"), payload: 1280 - 20)
        #expect(fits.count == 1294)
        #expect(router.tap(fits).0 == .unicast(linkA))
        let tooBig = ipv4Frame(from: v4("10.0.3.1"), to: v4("10.0.3.2"), payload: 1280 - 20 + 1)
        #expect(router.tap(tooBig).0 == .drop(.tooBig))
        #expect(router.counters.dropTooBig == 1)
    }

    @Test func malformedFramesAreDropped() throws {
        var router = try standardRouter()
        let good = ipv4Frame(from: v4("10.0.3.1"), to: v4("10.0.3.2"))
        var badVersion = good
        badVersion[14] = 0x65
        var longTotal = good
        longTotal[16 + 1] = 200            // total length 200 > what is there
        var shortIHL = good
        shortIHL[14] = 0x44
        let cases: [[UInt8]] = [
            Array(good[0..<10]),                                   // no Ethernet header
            Array(good[0..<30]),                                   // truncated IPv4 header
            badVersion, longTotal, shortIHL,
            Array(ipv6Frame(from: v6("fd50::1"), to: v6("fd50::2")).dropLast(1)),  // payload short
            Array(arpRequest(target: v4("10.0.3.2"))[0..<30]),    // truncated ARP
        ]
        for frame in cases {
            #expect(router.tap(frame).0 == .drop(.malformed), "\(frame.count) bytes")
        }
        #expect(router.counters.dropMalformed == UInt64(cases.count))
    }

    @Test func trailingEthernetPaddingIsAccepted() throws {
        var router = try standardRouter()
        let padded = ipv4Frame(from: v4("10.0.3.1"), to: v4("10.0.3.2"), payload: 0) + [0, 0, 0, 0, 0, 0]
        #expect(padded.count == 40)
        #expect(router.tap(padded).0 == .unicast(linkA))
    }

    @Test func ipv4FromTheUnspecifiedAddressIsLinkScoped() throws {
        var router = try standardRouter()
        let discover = ipv4Frame(from: .any, to: .broadcast, dstMAC: .broadcast)
        #expect(router.tap(discover).0 == .drop(.linkScoped))
        #expect(router.counters.dropLinkScoped == 1)
        #expect(router.counters.flooded == 0)
    }

    @Test func countersDictionaryNamesEveryCounter() throws {
        var router = try standardRouter()
        _ = router.tap(ipv4Frame(from: v4("10.0.3.1"), to: v4("10.0.3.2")))
        _ = router.tap(arpRequest(target: v4("10.0.3.2")))
        let dictionary = router.counters.dictionary
        #expect(dictionary.count == 13)
        #expect(dictionary["routed"] == 1)
        #expect(dictionary["arpReplies"] == 1)
        #expect(Set(dictionary.keys) == [
            "arpReplies", "ndAdvertisements", "routed", "flooded", "deliveredToTap", "dropNoRoute",
            "dropSpoofed", "dropMalformed", "dropTooBig", "dropNotIP", "dropUnanswered", "dropLinkScoped",
            "duplicateAddressRefused",
        ])
    }
}
