import IPOPWire

/// L3 router parameters: the node's own overlay addresses (those of its TAP).
public struct RouterConfig: Hashable, Sendable {
    /// The TAP's MAC: the destination written into unicast frames delivered to the TAP.
    public var localMAC: MACAddress
    /// The TAP's IPv4 overlay address.
    public var ip4: IPv4Address
    /// The overlay subnet's prefix length (`ip4_mask`), 0...32.
    public var ip4PrefixLength: Int
    /// The TAP's IPv6 overlay address, if any.
    public var ip6: IPv6Address?
    /// The IPv6 overlay prefix length, 0...128 (used only with `ip6`).
    public var ip6PrefixLength: Int
    /// The TAP MTU: a frame longer than `mtu + 14` is too big.
    public var mtu: Int
    /// The MAC the router answers ARP and Neighbor Solicitations with, and the source MAC of
    /// every frame it delivers to the TAP: to the kernel every overlay address is "at" this
    /// one address (it never appears on any wire).
    public var virtualMAC: MACAddress

    /// `02:69:70:6f:70:01` ("\x02ipop\x01": locally administered, unicast).
    public static let defaultVirtualMAC = MACAddress(rawValue: 0x0269_706F_7001)

    public init(
        localMAC: MACAddress, ip4: IPv4Address, ip4PrefixLength: Int,
        ip6: IPv6Address? = nil, ip6PrefixLength: Int = 64,
        mtu: Int, virtualMAC: MACAddress = RouterConfig.defaultVirtualMAC
    ) {
        self.localMAC = localMAC
        self.ip4 = ip4
        self.ip4PrefixLength = min(max(ip4PrefixLength, 0), 32)
        self.ip6 = ip6
        self.ip6PrefixLength = min(max(ip6PrefixLength, 0), 128)
        self.mtu = mtu
        self.virtualMAC = virtualMAC
    }

    /// The overlay IPv4 subnet, `ip4` with its host bits cleared.
    public var ip4Subnet: IPv4Prefix {
        let prefix = IPv4Prefix(ip4, ip4PrefixLength)
        return IPv4Prefix(IPv4Address(ip4.rawValue & prefix.mask), ip4PrefixLength)
    }

    /// The overlay subnet's directed broadcast address; nil for /31 and /32 (RFC 3021: no
    /// broadcast address there).
    public var ip4SubnetBroadcast: IPv4Address? {
        guard ip4PrefixLength <= 30 else { return nil }
        return IPv4Address(ip4.rawValue | ~ip4Subnet.mask)
    }
}
