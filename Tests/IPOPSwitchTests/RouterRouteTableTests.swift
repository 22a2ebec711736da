import Testing
@testable import IPOPSwitch
import IPOPWire

struct RouterRouteTableTests {
    /// Runs `body` and returns the `RouteError` it threw, or nil.
    func refusal(_ body: () throws(RouteError) -> Void) -> RouteError? {
        do throws(RouteError) {
            try body()
            return nil
        } catch {
            return error
        }
    }

    @Test func duplicateIPv4IsRefusedNamingTheHolder() throws {
        var router = try standardRouter()
        let error = refusal { () throws(RouteError) in try router.addPeer(LinkID(9), ip4: v4("10.0.3.2")) }
        #expect(error == .duplicateAddress(.ipv4(v4("10.0.3.2")), heldBy: linkA))
        #expect(error?.description == "10.0.3.2 is already held by link#1")
        #expect(router.counters.duplicateAddressRefused == 1)
        #expect(router.table.peer(LinkID(9)) == nil, "nothing added")
        #expect(router.tap(ipv4Frame(from: v4("10.0.3.1"), to: v4("10.0.3.2"))).0 == .unicast(linkA))
    }

    @Test func duplicateIPv6AndSubnetAreRefusedNamingTheHolder() throws {
        var router = try standardRouter()
        #expect(refusal { () throws(RouteError) in try router.addPeer(LinkID(9), ip4: v4("10.0.3.9"), ip6: v6("fd50::3")) }
                == .duplicateAddress(.ipv6(v6("fd50::3")), heldBy: linkB))
        #expect(refusal { () throws(RouteError) in
            try router.addPeer(LinkID(9), ip4: v4("10.0.3.9"), subnets: [prefix("192.168.5.0/24")])
        } == .duplicateAddress(.subnet(prefix("192.168.5.0/24")), heldBy: linkB))
        #expect(refusal { () throws(RouteError) in
            try router.addPeer(LinkID(9), ip4: v4("10.0.3.9"), subnets: [prefix("10.0.3.4/32")])
        } == .duplicateAddress(.subnet(prefix("10.0.3.4/32")), heldBy: linkC), "a host address is its /32")
        #expect(router.counters.duplicateAddressRefused == 3)
        #expect(router.table.peerCount == 3)
    }

    @Test func aHostAddressCannotTakeAnotherPeersSlash32() throws {
        var router = Router(config: routerConfig())
        try router.addPeer(linkA, ip4: v4("10.0.3.2"), subnets: [prefix("10.0.3.50/32")])
        #expect(refusal { () throws(RouteError) in try router.addPeer(linkB, ip4: v4("10.0.3.50")) }
                == .duplicateAddress(.ipv4(v4("10.0.3.50")), heldBy: linkA))
    }

    @Test func overlappingPrefixesOfDifferentLengthsAreAllowed() throws {
        var router = Router(config: routerConfig())
        try router.addPeer(linkA, ip4: v4("10.0.3.2"), subnets: [prefix("192.168.0.0/16")])
        try router.addPeer(linkB, ip4: v4("10.0.3.3"), subnets: [prefix("192.168.5.0/24")])
        #expect(router.table.owner(of: v4("192.168.5.1")) == linkB)
        #expect(router.table.owner(of: v4("192.168.6.1")) == linkA)
    }

    @Test func unusableAddressesAreRefused() throws {
        var router = Router(config: routerConfig())
        let cases: [(() throws(RouteError) -> Void, RouteError)] = [
            ({ () throws(RouteError) in try router.addPeer(linkA, ip4: v4("10.0.3.1")) },
             .localAddress(.ipv4(v4("10.0.3.1")))),
            ({ () throws(RouteError) in try router.addPeer(linkA, ip4: v4("10.0.4.2")) },
             .outsideOverlay(.ipv4(v4("10.0.4.2")))),
            ({ () throws(RouteError) in try router.addPeer(linkA, ip4: v4("10.0.3.255")) },
             .invalidAddress(.ipv4(v4("10.0.3.255")))),
            ({ () throws(RouteError) in try router.addPeer(linkA, ip4: v4("224.0.0.1")) },
             .invalidAddress(.ipv4(v4("224.0.0.1")))),
            ({ () throws(RouteError) in try router.addPeer(linkA, ip4: v4("10.0.3.2"), ip6: v6("fd50::1")) },
             .localAddress(.ipv6(v6("fd50::1")))),
            ({ () throws(RouteError) in try router.addPeer(linkA, ip4: v4("10.0.3.2"), ip6: v6("fd51::2")) },
             .outsideOverlay(.ipv6(v6("fd51::2")))),
            ({ () throws(RouteError) in try router.addPeer(linkA, ip4: v4("10.0.3.2"), ip6: v6("fe80::2")) },
             .invalidAddress(.ipv6(v6("fe80::2")))),
            ({ () throws(RouteError) in try router.addPeer(linkA, ip4: v4("10.0.3.2"), subnets: [prefix("192.168.5.1/24")]) },
             .invalidPrefix(prefix("192.168.5.1/24"))),
            ({ () throws(RouteError) in try router.addPeer(linkA, ip4: v4("10.0.3.2"), subnets: [IPv4Prefix(v4("10.0.0.0"), 33)]) },
             .invalidPrefix(IPv4Prefix(v4("10.0.0.0"), 33))),
            ({ () throws(RouteError) in try router.addPeer(linkA, ip4: v4("10.0.3.2"), subnets: [prefix("10.0.3.1/32")]) },
             .localAddress(.subnet(prefix("10.0.3.1/32")))),
        ]
        for (add, expected) in cases {
            #expect(refusal(add) == expected)
        }
        #expect(router.table.peerCount == 0)
        #expect(router.counters.duplicateAddressRefused == 0, "only duplicates count there")
    }

    @Test func removingAPeerRemovesItsRoutes() throws {
        var router = try standardRouter()
        let removed = router.removePeer(linkB)
        let removedAgain = router.removePeer(linkB)
        #expect(removed)
        #expect(!removedAgain, "already gone")
        #expect(router.tap(ipv4Frame(from: v4("10.0.3.1"), to: v4("10.0.3.3"))).0 == .drop(.noRoute))
        #expect(router.tap(ipv4Frame(from: v4("10.0.3.1"), to: v4("192.168.5.7"))).0 == .drop(.noRoute))
        #expect(router.tap(ipv6Frame(from: v6("fd50::1"), to: v6("fd50::3"))).0 == .drop(.noRoute))
        #expect(router.tap(arpRequest(target: v4("192.168.5.7"))).0 == .drop(.unanswered),
                "its LAN is no longer proxied")
        #expect(router.routes(now: .now).allSatisfy { $0.link != linkB })
        // Its addresses are free again.
        try router.addPeer(LinkID(9), ip4: v4("10.0.3.3"), ip6: v6("fd50::3"), subnets: [prefix("192.168.5.0/24")])
        #expect(router.tap(ipv4Frame(from: v4("10.0.3.1"), to: v4("192.168.5.7"))).0 == .unicast(LinkID(9)))
    }

    @Test func addingAKnownLinkAgainReplacesItsAddresses() throws {
        var router = try standardRouter()
        try router.addPeer(linkA, ip4: v4("10.0.3.2"), ip6: v6("fd50::2"))       // same: no self-conflict
        try router.addPeer(linkA, ip4: v4("10.0.3.20"), subnets: [prefix("172.16.0.0/12")])
        #expect(router.tap(ipv4Frame(from: v4("10.0.3.1"), to: v4("10.0.3.2"))).0 == .drop(.noRoute))
        #expect(router.tap(ipv6Frame(from: v6("fd50::1"), to: v6("fd50::2"))).0 == .drop(.noRoute))
        #expect(router.tap(ipv4Frame(from: v4("10.0.3.1"), to: v4("10.0.3.20"))).0 == .unicast(linkA))
        #expect(router.tap(ipv4Frame(from: v4("10.0.3.1"), to: v4("172.20.1.1"))).0 == .unicast(linkA))
        #expect(router.table.peer(linkA) == PeerAddresses(ip4: v4("10.0.3.20"), ip6: nil, subnets: [prefix("172.16.0.0/12")]))
    }

    @Test func routesListsPrefixesLinksAndUse() throws {
        var router = try standardRouter()
        let t0 = ContinuousClock.now
        _ = router.tap(ipv4Frame(from: v4("10.0.3.1"), to: v4("192.168.5.7")), at: t0)
        _ = router.tap(ipv4Frame(from: v4("10.0.3.1"), to: v4("192.168.5.8")), at: t0)
        _ = router.link(linkA, ipv4Frame(from: v4("10.0.3.2"), to: v4("10.0.3.1")), at: t0 + .seconds(1))
        let routes = router.routes(now: t0 + .seconds(5))
        #expect(routes.map(\.prefix) == ["10.0.3.2/32", "fd50::2/128", "10.0.3.3/32", "fd50::3/128",
                                         "192.168.5.0/24", "10.0.3.4/32"])
        #expect(routes.map(\.link) == [linkA, linkA, linkB, linkB, linkB, linkC])
        let lan = try #require(routes.first { $0.prefix == "192.168.5.0/24" })
        #expect(lan.packetsOut == 2 && lan.packetsIn == 0)
        #expect(lan.idle == .seconds(5))
        let a = try #require(routes.first { $0.prefix == "10.0.3.2/32" })
        #expect(a.packetsIn == 1 && a.packetsOut == 0)
        #expect(a.idle == .seconds(4))
        #expect(routes.first { $0.prefix == "10.0.3.4/32" }?.idle == nil, "never used")
    }

    @Test func manyPeersStayFindable() throws {
        // Insertion order must not matter to the sorted arrays.
        var router = Router(config: RouterConfig(localMAC: tapMAC, ip4: v4("10.0.0.1"), ip4PrefixLength: 16,
                                                 ip6: v6("fd50::1"), mtu: 1280))
        var generator = SplitMix64(seed: 42)
        let hosts = Array(2...600).shuffled(using: &generator)
        for host in hosts {
            try router.addPeer(LinkID(UInt32(host)), ip4: IPv4Address(10, 0, UInt8(host >> 8), UInt8(host & 0xFF)),
                               ip6: IPv6Address(high: 0xFD50_0000_0000_0000, low: UInt64(host)))
        }
        for host in 2...600 {
            #expect(router.table.owner(of: IPv4Address(10, 0, UInt8(host >> 8), UInt8(host & 0xFF))) == LinkID(UInt32(host)))
            #expect(router.table.owner(of: IPv6Address(high: 0xFD50_0000_0000_0000, low: UInt64(host))) == LinkID(UInt32(host)))
        }
        #expect(router.table.owner(of: IPv4Address(10, 0, 3, 0)) == nil)
        for host in hosts.prefix(300) { router.removePeer(LinkID(UInt32(host))) }
        for host in hosts.dropFirst(300) {
            #expect(router.table.owner(of: IPv4Address(10, 0, UInt8(host >> 8), UInt8(host & 0xFF))) == LinkID(UInt32(host)))
        }
        #expect(router.table.peerCount == 299)
    }

    @Test(arguments: [
        ("192.168.5.0/24", true), ("0.0.0.0/0", true), ("10.0.3.2/32", true),
        ("192.168.5.1/24", false),
    ])
    func prefixesParseAndValidate(_ text: String, _ valid: Bool) throws {
        let parsed = try #require(IPv4Prefix(text))
        #expect(parsed.description == text)
        #expect(parsed.isValid == valid)
    }

    @Test(arguments: ["192.168.5.0", "192.168.5.0/33", "192.168.5.0/", "/24", "192.168.5.0/-1",
                      "192.168.5.0/24/1", "192.168.5.0/+8", "300.1.1.1/8", "1.2.3.4/008"])
    func badPrefixTextIsRejected(_ text: String) {
        #expect(IPv4Prefix(text) == nil)
    }

    @Test func prefixContainmentAndOverlap() {
        #expect(prefix("192.168.0.0/16").contains(v4("192.168.255.1")))
        #expect(!prefix("192.168.0.0/16").contains(v4("192.169.0.1")))
        #expect(prefix("0.0.0.0/0").contains(v4("1.2.3.4")))
        #expect(prefix("192.168.0.0/16").overlaps(prefix("192.168.5.0/24")))
        #expect(prefix("192.168.5.0/24").overlaps(prefix("192.168.0.0/16")))
        #expect(!prefix("192.168.5.0/24").overlaps(prefix("192.168.6.0/24")))
        #expect(routerConfig().ip4Subnet == prefix("10.0.3.0/24"))
        #expect(routerConfig().ip4SubnetBroadcast == v4("10.0.3.255"))
    }
}
