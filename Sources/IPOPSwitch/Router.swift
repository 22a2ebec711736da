import IPOPWire

/// Why the router dropped a frame.
public enum RouterDropReason: Hashable, Sendable {
    /// Truncated Ethernet/IP/ARP/ND headers, bad IP version or lengths, an NS with a hop
    /// limit other than 255 or a multicast target, a `length` beyond the buffer.
    case malformed
    /// Longer than `mtu + 14`.
    case tooBig
    /// Not IPv4/IPv6 (and not ARP from the TAP): other EtherTypes, ARP from a link, and every
    /// VLAN-tagged frame (the L3 TAP is an untagged IP interface; the kernel only tags if a
    /// VLAN device is stacked on it, which L3 mode does not support).
    case notIP
    /// No link owns the destination.
    case noRoute
    /// From a link, with a source address that link does not own (strict reverse path: the
    /// route to the source must lead back to that link), or with the node's own address, or a
    /// multicast/broadcast source.
    case spoofed
    /// ARP or a Neighbor Solicitation the router handles but does not answer (target is the
    /// node's own address, outside the overlay, a duplicate-address probe), and ARP replies.
    case unanswered
    /// Link-scoped traffic, which never crosses the overlay: IPv6 from a link-local or
    /// unspecified source, IPv4 from 0.0.0.0, Neighbor Discovery messages other than a
    /// solicitation the router answers (and any Neighbor Discovery from a link).
    case linkScoped
    /// The request deserved an answer but `reply` is smaller than
    /// `Router.minimumReplyCapacity` (a caller bug; counted in `dropUnanswered`).
    case replyBufferTooSmall
}

/// What to do with a frame read from the TAP.
public enum RouterTapDecision: Hashable, Sendable {
    /// Write the first `length` bytes of `reply` back to the TAP (an ARP reply or a
    /// Neighbor Advertisement). Nothing goes to the links.
    case reply(Int)
    /// Send the whole frame to this link (the receiver rewrites the MACs).
    case unicast(LinkID)
    /// Send a copy of the whole frame to every link (broadcast and multicast).
    case flood
    case drop(RouterDropReason)
}

/// What to do with a frame received on a link.
public enum RouterLinkDecision: Hashable, Sendable {
    /// Write the (rewritten) frame to the TAP.
    case deliverToTap
    case drop(RouterDropReason)
}

/// IPOP's L3 mode, as pure logic: between the node's TAP and its overlay links, the node
/// behaves like a router with proxy ARP / proxy ND for the whole overlay. No I/O, no clock
/// reads (time is passed in), no locks; no allocation per frame.
///
/// The TAP holds the node's overlay address (`config.ip4`/`ip4PrefixLength`, optionally
/// `ip6`/`ip6PrefixLength`). Each peer (one link) owns one IPv4 overlay address, optionally
/// one IPv6 address, and optionally IPv4 subnets behind it (IPOP's router mode); see
/// `RouteTable`.
///
/// **From the TAP** (`fromTap`), untagged Ethernet only:
/// - ARP request for an overlay address (anything in the overlay subnet except the node's
///   own address and the subnet broadcast, or an address inside a peer's subnet) →
///   `.reply`: an ARP reply "target is at `virtualMAC`", written into `reply`.
///   An ARP probe (sender 0.0.0.0, RFC 5227) is answered only when a peer holds the target
///   (a real conflict). Anything else ARP → `.drop(.unanswered)`.
/// - ICMPv6 Neighbor Solicitation (hop limit 255, code 0, non-multicast target) for an
///   overlay IPv6 address (in the node's IPv6 prefix other than its own, or a peer's) →
///   `.reply`: a Neighbor Advertisement from the target to the solicitor, flags S|O, target
///   link-layer address `virtualMAC`, valid checksum. Duplicate-address-detection NS (source
///   `::`) is not answered (no peer can hold the node's own address). Other Neighbor
///   Discovery (RS, RA, NA, redirect) → `.drop(.linkScoped)`.
/// - IPv4 to 224.0.0.0/4, 255.255.255.255 or the overlay subnet's broadcast address, IPv6
///   to ff00::/8 → `.flood`.
/// - Other IPv4/IPv6 → `.unicast(owner of the destination)` or `.drop(.noRoute)`.
///   Sources are not checked except that link-scoped ones (IPv6 `fe80::/10` or `::`, IPv4
///   `0.0.0.0`) are dropped: peers would refuse them.
/// - The frame is forwarded unchanged; TTL / hop limit are not decremented (as IPOP: the
///   overlay is one hop); too-big frames are dropped without an ICMP error.
///
/// **From a link** (`fromLink`): IPv4/IPv6 whose source the link owns (strict reverse path
/// through the route table, so a LAN behind a peer can send only through that peer) is
/// delivered to the TAP after rewriting, in place, the destination MAC to `localMAC`
/// (unless it is a group address and the IP destination is multicast/broadcast: then it
/// stays) and the source MAC to `virtualMAC` (the kernel's neighbour entry for every
/// overlay address). Destinations are not checked: what the node's kernel does with a packet
/// not for itself is its own forwarding policy.
public struct Router: Sendable {
    public let config: RouterConfig
    /// The routes (read-only here; change them with `addPeer`/`removePeer`).
    public private(set) var table = RouteTable()
    public private(set) var counters = RouterCounters()

    /// `reply` must hold at least this many bytes (the Neighbor Advertisement, 86).
    public static let minimumReplyCapacity = max(NeighborAdvertisement.frameSize, ARPPacket.frameSize)

    private let subnetMask: UInt32
    private let subnetNetwork: UInt32
    /// Host order; `nil` for /31, /32.
    private let subnetBroadcast: IPv4Address?

    public init(config: RouterConfig) {
        self.config = config
        let subnet = config.ip4Subnet
        self.subnetMask = subnet.mask
        self.subnetNetwork = subnet.network.rawValue
        self.subnetBroadcast = config.ip4SubnetBroadcast
    }

    // MARK: - Routes (control path)

    /// Adds a peer, or replaces the addresses of a link already present. Refuses, changing
    /// nothing, an address or exact prefix another link holds (`duplicateAddress`, naming the
    /// holder; counted in `duplicateAddressRefused`), the node's own address, an IPv4 address
    /// outside the overlay subnet (IPv6: outside the node's prefix, when it has one), unusable
    /// addresses and invalid prefixes.
    public mutating func addPeer(
        _ link: LinkID, ip4: IPv4Address, ip6: IPv6Address? = nil, subnets: [IPv4Prefix] = []
    ) throws(RouteError) {
        do throws(RouteError) {
            try table.validate(link: link, ip4: ip4, ip6: ip6, subnets: subnets, local: config)
        } catch {
            if case .duplicateAddress = error { counters.duplicateAddressRefused &+= 1 }
            throw error
        }
        table.insert(link: link, ip4: ip4, ip6: ip6, subnets: subnets)
    }

    /// Removes every route of `link`; returns whether it had any.
    @discardableResult
    public mutating func removePeer(_ link: LinkID) -> Bool {
        table.remove(link: link)
    }

    /// Every route with its link and use (allocates; for status).
    public func routes(now: ContinuousClock.Instant) -> [RouteEntry] {
        table.entries(now: now)
    }

    // MARK: - From the TAP

    /// Decides what to do with a frame read from the TAP. `reply` receives an ARP reply or
    /// Neighbor Advertisement when the decision is `.reply(length)`; it is not touched
    /// otherwise.
    public mutating func fromTap(
        _ frame: UnsafeRawBufferPointer, reply: UnsafeMutableRawBufferPointer, now: ContinuousClock.Instant
    ) -> RouterTapDecision {
        let ethernet: EthernetFrame
        do throws(FrameError) {
            ethernet = try EthernetFrame(frame)
        } catch {
            return tapDrop(.malformed)
        }
        guard ethernet.vlanTagCount == 0 else { return tapDrop(.notIP) }
        guard ethernet.length <= config.mtu + EthernetFrame.headerSize else { return tapDrop(.tooBig) }
        switch ethernet.etherType.rawValue {
        case EtherType.ipv4.rawValue: return tapIPv4(ethernet.payload, now: now)
        case EtherType.ipv6.rawValue: return tapIPv6(ethernet, reply: reply, now: now)
        case EtherType.arp.rawValue: return tapARP(ethernet, reply: reply)
        default: return tapDrop(.notIP)
        }
    }

    @inline(__always)
    private mutating func tapDrop(_ reason: RouterDropReason) -> RouterTapDecision {
        counters.count(reason)
        return .drop(reason)
    }

    @inline(__always)
    private func isIPv4Group(_ address: IPv4Address) -> Bool {
        address.isMulticast || address.isLimitedBroadcast || address == subnetBroadcast
    }

    private mutating func tapIPv4(_ packet: UnsafeRawBufferPointer, now: ContinuousClock.Instant) -> RouterTapDecision {
        let header: IPv4Header
        do throws(IPv4HeaderError) {
            header = try IPv4Header(packet)
        } catch {
            return tapDrop(.malformed)
        }
        guard !header.source.isUnspecified else { return tapDrop(.linkScoped) }
        let destination = header.destination
        if isIPv4Group(destination) {
            counters.flooded &+= 1
            return .flood
        }
        guard let link = table.routeOut(destination, stamp: MACTable.stamp(now)) else {
            return tapDrop(.noRoute)
        }
        counters.routed &+= 1
        return .unicast(link)
    }

    private mutating func tapIPv6(
        _ ethernet: EthernetFrame, reply: UnsafeMutableRawBufferPointer, now: ContinuousClock.Instant
    ) -> RouterTapDecision {
        let header: IPv6Header
        do throws(IPv6HeaderError) {
            header = try IPv6Header(ethernet.payload)
        } catch {
            return tapDrop(.malformed)
        }
        if header.nextHeader == IPProtocolNumber.ipv6ICMP, header.payloadLength > 0,
           ICMPv6Type.isNeighborDiscovery(header.payload[0]) {
            return tapNeighborDiscovery(ethernet, header, reply: reply)
        }
        let source = header.source
        guard !source.isUnspecified, !source.isLinkLocal else { return tapDrop(.linkScoped) }
        let destination = header.destination
        if destination.isMulticast {
            counters.flooded &+= 1
            return .flood
        }
        guard let link = table.routeOut(destination, stamp: MACTable.stamp(now)) else {
            return tapDrop(.noRoute)
        }
        counters.routed &+= 1
        return .unicast(link)
    }

    // MARK: - Proxy ARP / proxy ND

    /// True when the router answers address resolution for `target` (IPv4).
    /// `probe`: the request is an RFC 5227 probe (sender address 0.0.0.0).
    @inline(__always)
    private func answersIPv4(_ target: IPv4Address, probe: Bool) -> Bool {
        if target == config.ip4 || target.isMulticast || target.isLimitedBroadcast || target.isUnspecified {
            return false
        }
        if probe { return table.owner(of: target) != nil }
        if target.rawValue & subnetMask == subnetNetwork { return target != subnetBroadcast }
        return table.owner(of: target) != nil
    }

    /// True when the router answers Neighbor Solicitations for `target`.
    @inline(__always)
    private func answersIPv6(_ target: IPv6Address) -> Bool {
        if let own = config.ip6 {
            if target == own { return false }
            if target.isIn(own, prefixLength: config.ip6PrefixLength) { return true }
        }
        return table.owner(of: target) != nil
    }

    private mutating func tapARP(_ ethernet: EthernetFrame, reply: UnsafeMutableRawBufferPointer) -> RouterTapDecision {
        let arp: ARPPacket
        do throws(ARPError) {
            arp = try ARPPacket(ethernet.payload)
        } catch {
            return tapDrop(.malformed)
        }
        guard arp.operation == .request,
              answersIPv4(arp.targetProtocol, probe: arp.senderProtocol.isUnspecified) else {
            return tapDrop(.unanswered)
        }
        let length = arp.writeReply(into: reply, answeringWith: config.virtualMAC)
        guard length > 0 else { return tapDrop(.replyBufferTooSmall) }
        counters.arpReplies &+= 1
        return .reply(length)
    }

    private mutating func tapNeighborDiscovery(
        _ ethernet: EthernetFrame, _ header: IPv6Header, reply: UnsafeMutableRawBufferPointer
    ) -> RouterTapDecision {
        guard header.payload[0] == ICMPv6Type.neighborSolicitation else { return tapDrop(.linkScoped) }
        let solicitation: NeighborSolicitation
        do throws(NeighborDiscoveryError) {
            solicitation = try NeighborSolicitation(header.payload)
        } catch {
            return tapDrop(.malformed)
        }
        let target = solicitation.target
        // RFC 4861 §7.1.1 validity checks that matter here.
        guard header.hopLimit == 255, !target.isMulticast else { return tapDrop(.malformed) }
        let solicitor = header.source
        guard !solicitor.isUnspecified, !solicitor.isMulticast, answersIPv6(target) else {
            return tapDrop(.unanswered)
        }
        let length = NeighborAdvertisement.writeFrame(
            into: reply, destinationMAC: ethernet.source, sourceMAC: config.virtualMAC,
            source: target, destination: solicitor,
            target: target, targetLinkLayer: config.virtualMAC,
            flags: NeighborAdvertisement.solicitedFlag | NeighborAdvertisement.overrideFlag)
        guard length > 0 else { return tapDrop(.replyBufferTooSmall) }
        counters.ndAdvertisements &+= 1
        return .reply(length)
    }

    // MARK: - From a link

    /// Decides what to do with the first `length` bytes of `frame`, received on `link`; on
    /// `.deliverToTap` the MACs have been rewritten in place (write those `length` bytes).
    public mutating func fromLink(
        _ link: LinkID, frame: UnsafeMutableRawBufferPointer, length: Int, now: ContinuousClock.Instant
    ) -> RouterLinkDecision {
        guard length >= 0, length <= frame.count else { return linkDrop(.malformed) }
        let bytes = UnsafeRawBufferPointer(rebasing: frame[0..<length])
        let ethernet: EthernetFrame
        do throws(FrameError) {
            ethernet = try EthernetFrame(bytes)
        } catch {
            return linkDrop(.malformed)
        }
        guard ethernet.vlanTagCount == 0 else { return linkDrop(.notIP) }
        guard ethernet.length <= config.mtu + EthernetFrame.headerSize else { return linkDrop(.tooBig) }

        let groupDestination: Bool
        switch ethernet.etherType.rawValue {
        case EtherType.ipv4.rawValue:
            let header: IPv4Header
            do throws(IPv4HeaderError) {
                header = try IPv4Header(ethernet.payload)
            } catch {
                return linkDrop(.malformed)
            }
            let source = header.source
            if source.isUnspecified { return linkDrop(.linkScoped) }
            guard source != config.ip4, !isIPv4Group(source),
                  table.acceptIn(source, from: link, stamp: MACTable.stamp(now)) else {
                return linkDrop(.spoofed)
            }
            groupDestination = isIPv4Group(header.destination)
        case EtherType.ipv6.rawValue:
            let header: IPv6Header
            do throws(IPv6HeaderError) {
                header = try IPv6Header(ethernet.payload)
            } catch {
                return linkDrop(.malformed)
            }
            if header.nextHeader == IPProtocolNumber.ipv6ICMP, header.payloadLength > 0,
               ICMPv6Type.isNeighborDiscovery(header.payload[0]) {
                return linkDrop(.linkScoped)
            }
            let source = header.source
            if source.isUnspecified || source.isLinkLocal { return linkDrop(.linkScoped) }
            guard source != config.ip6, !source.isMulticast,
                  table.acceptIn(source, from: link, stamp: MACTable.stamp(now)) else {
                return linkDrop(.spoofed)
            }
            groupDestination = header.destination.isMulticast
        default:
            return linkDrop(.notIP)
        }

        if !(groupDestination && ethernet.destination.isMulticast) {
            config.localMAC.write(to: frame, offset: 0)
        }
        config.virtualMAC.write(to: frame, offset: 6)
        counters.deliveredToTap &+= 1
        return .deliverToTap
    }

    @inline(__always)
    private mutating func linkDrop(_ reason: RouterDropReason) -> RouterLinkDecision {
        counters.count(reason)
        return .drop(reason)
    }
}
