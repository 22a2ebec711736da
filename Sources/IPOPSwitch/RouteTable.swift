import IPOPWire

/// An IPv4 prefix, `network/length` (e.g. a LAN behind a peer: `192.168.5.0/24`).
///
/// The initializer stores what it is given; `isValid` says whether it is a proper prefix
/// (length 0...32, no bits set past the length). The route table refuses invalid ones.
public struct IPv4Prefix: Hashable, Sendable, CustomStringConvertible {
    public let network: IPv4Address
    public let length: Int

    public init(_ network: IPv4Address, _ length: Int) {
        self.network = network
        self.length = length
    }

    /// Parses `a.b.c.d/n` (n in 0...32). Host bits may be set: check `isValid`.
    public init?(_ text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let address = IPv4Address(String(parts[0])),
              !parts[1].isEmpty, parts[1].count <= 2,
              parts[1].utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
              let length = Int(parts[1]), length <= 32 else { return nil }
        self.init(address, length)
    }

    /// The netmask (host order): `length` leading one bits.
    @inlinable @inline(__always)
    public var mask: UInt32 {
        length <= 0 ? 0 : (length >= 32 ? ~0 : ~UInt32(0) << UInt32(32 - length))
    }

    /// Length in 0...32 and no host bits set.
    public var isValid: Bool {
        length >= 0 && length <= 32 && network.rawValue & ~mask == 0
    }

    @inlinable @inline(__always)
    public func contains(_ address: IPv4Address) -> Bool {
        address.rawValue & mask == network.rawValue & mask
    }

    /// True when the two prefixes share at least one address (one contains the other).
    public func overlaps(_ other: IPv4Prefix) -> Bool {
        let shorter = min(mask, other.mask)
        return network.rawValue & shorter == other.network.rawValue & shorter
    }

    /// `a.b.c.d/n`.
    public var description: String { "\(network)/\(length)" }
}

/// An address or prefix a peer holds; names what was refused in a `RouteError`.
public enum OverlayAddress: Hashable, Sendable, CustomStringConvertible {
    case ipv4(IPv4Address)
    case ipv6(IPv6Address)
    case subnet(IPv4Prefix)

    public var description: String {
        switch self {
        case .ipv4(let address): return address.description
        case .ipv6(let address): return address.description
        case .subnet(let prefix): return prefix.description
        }
    }
}

/// Why `addPeer` refused a peer's addresses. Nothing changes when it throws.
public enum RouteError: Error, Hashable, Sendable, CustomStringConvertible {
    /// Another link already holds this address or exactly this prefix (a peer's IPv4 address
    /// counts as its /32). Overlapping prefixes of different lengths are allowed: the
    /// longest match wins.
    case duplicateAddress(OverlayAddress, heldBy: LinkID)
    /// The node's own TAP address.
    case localAddress(OverlayAddress)
    /// Outside the overlay subnet (`ip4`/`ip4PrefixLength`, or the IPv6 prefix when the node
    /// has an IPv6 address).
    case outsideOverlay(OverlayAddress)
    /// Unusable as a host address: unspecified, multicast, limited or subnet broadcast,
    /// loopback, IPv6 link-local.
    case invalidAddress(OverlayAddress)
    /// A subnet whose length is outside 0...32 or that has host bits set.
    case invalidPrefix(IPv4Prefix)

    public var description: String {
        switch self {
        case .duplicateAddress(let address, let holder): return "\(address) is already held by \(holder)"
        case .localAddress(let address): return "\(address) is this node's own address"
        case .outsideOverlay(let address): return "\(address) is outside the overlay subnet"
        case .invalidAddress(let address): return "\(address) is not a usable host address"
        case .invalidPrefix(let prefix): return "\(prefix) is not a valid prefix (host bits set or bad length)"
        }
    }
}

/// One route as shown by status.
public struct RouteEntry: Hashable, Sendable {
    /// `10.0.3.2/32`, `fd50::2/128`, `192.168.5.0/24`.
    public let prefix: String
    public let link: LinkID
    /// Packets from the TAP sent to `link` through this route.
    public let packetsOut: UInt64
    /// Packets accepted from `link` whose source matched this route.
    public let packetsIn: UInt64
    /// Time since the last packet either way; nil when never used.
    public let idle: Duration?

    public init(prefix: String, link: LinkID, packetsOut: UInt64, packetsIn: UInt64, idle: Duration?) {
        self.prefix = prefix
        self.link = link
        self.packetsOut = packetsOut
        self.packetsIn = packetsIn
        self.idle = idle
    }
}

/// The addresses one peer was added with.
public struct PeerAddresses: Hashable, Sendable {
    public let ip4: IPv4Address
    public let ip6: IPv6Address?
    public let subnets: [IPv4Prefix]
}

/// The L3 router's routing table: which link owns each overlay address.
///
/// - IPv4 host routes (each peer's overlay address): exact match, binary search over a
///   sorted array.
/// - IPv4 subnet routes (LANs behind peers, IPOP's router mode): longest-prefix match,
///   a scan of an array kept sorted longest prefix first (peers with LANs are few).
///   A host route always beats a subnet route (it is the /32).
/// - IPv6 host routes: exact match, binary search. (No IPv6 subnets.)
///
/// Lookups never allocate; changes (`add`/`remove`) rebuild nothing, only insert/remove
/// array elements (control path). Per route, packet counts and last use are kept for status.
/// The table is a value type with no locks; the router owns it.
public struct RouteTable: Sendable {
    struct Host4 {
        var address: UInt32
        var link: LinkID
        var usage = Usage()
    }

    struct Host6 {
        var address: IPv6Address
        var link: LinkID
        var usage = Usage()
    }

    struct Subnet4 {
        var prefix: IPv4Prefix
        var mask: UInt32
        var link: LinkID
        var usage = Usage()
    }

    struct Usage {
        var packetsOut: UInt64 = 0
        var packetsIn: UInt64 = 0
        /// `MACTable.Stamp` of the last packet; nil when never used.
        var lastUsed: Duration?

        @inline(__always)
        mutating func out(_ stamp: Duration) {
            packetsOut &+= 1
            lastUsed = stamp
        }

        @inline(__always)
        mutating func into(_ stamp: Duration) {
            packetsIn &+= 1
            lastUsed = stamp
        }
    }

    /// Which array a hit is in.
    enum Hit4 {
        case host(Int)
        case subnet(Int)
    }

    private var hosts4: [Host4] = []
    private var hosts6: [Host6] = []
    /// Longest prefix first; ties by network.
    private var subnets4: [Subnet4] = []
    private var peers: [LinkID: PeerAddresses] = [:]

    public init() {}

    /// Number of peers.
    public var peerCount: Int { peers.count }

    /// Addresses of `link`, or nil when it is not in the table.
    public func peer(_ link: LinkID) -> PeerAddresses? { peers[link] }

    /// Links in the table, ascending.
    public var links: [LinkID] { peers.keys.sorted() }

    // MARK: - Changes (control path)

    /// The holder (other than `link`) of exactly `address` (as a /32) or nil.
    private func otherHolder(of address: IPv4Address, except link: LinkID) -> LinkID? {
        if let i = hostIndex(address.rawValue), hosts4[i].link != link { return hosts4[i].link }
        for subnet in subnets4 where subnet.prefix.length == 32 && subnet.prefix.network == address
            && subnet.link != link {
            return subnet.link
        }
        return nil
    }

    /// Checks that `link` may hold these addresses, without changing anything.
    /// `local` describes the node itself (its own addresses are never a peer's).
    func validate(
        link: LinkID, ip4: IPv4Address, ip6: IPv6Address?, subnets: [IPv4Prefix], local: RouterConfig
    ) throws(RouteError) {
        let overlay = IPv4Prefix(local.ip4, local.ip4PrefixLength)
        let broadcast = local.ip4SubnetBroadcast
        if ip4.isUnspecified || ip4.isMulticast || ip4.isLimitedBroadcast || ip4.isLoopback
            || (broadcast != nil && ip4 == broadcast) {
            throw .invalidAddress(.ipv4(ip4))
        }
        if ip4 == local.ip4 { throw .localAddress(.ipv4(ip4)) }
        if !overlay.contains(ip4) { throw .outsideOverlay(.ipv4(ip4)) }
        if let holder = otherHolder(of: ip4, except: link) {
            throw .duplicateAddress(.ipv4(ip4), heldBy: holder)
        }

        if let ip6 {
            if ip6.isUnspecified || ip6.isMulticast || ip6.isLoopback || ip6.isLinkLocal {
                throw .invalidAddress(.ipv6(ip6))
            }
            if let own = local.ip6 {
                if ip6 == own { throw .localAddress(.ipv6(ip6)) }
                if !ip6.isIn(own, prefixLength: local.ip6PrefixLength) { throw .outsideOverlay(.ipv6(ip6)) }
            }
            if let i = host6Index(ip6), hosts6[i].link != link {
                throw .duplicateAddress(.ipv6(ip6), heldBy: hosts6[i].link)
            }
        }

        for (n, prefix) in subnets.enumerated() {
            guard prefix.isValid else { throw .invalidPrefix(prefix) }
            // The same prefix twice in one peer's list is harmless; keep the first.
            if subnets[..<n].contains(prefix) { continue }
            for subnet in subnets4 where subnet.prefix == prefix && subnet.link != link {
                throw .duplicateAddress(.subnet(prefix), heldBy: subnet.link)
            }
            if prefix.length == 32 {
                if prefix.network == local.ip4 { throw .localAddress(.subnet(prefix)) }
                if let i = hostIndex(prefix.network.rawValue), hosts4[i].link != link {
                    throw .duplicateAddress(.subnet(prefix), heldBy: hosts4[i].link)
                }
            }
        }
    }

    /// Adds (or replaces) `link`'s routes. Validate first (`validate`); this only inserts.
    mutating func insert(link: LinkID, ip4: IPv4Address, ip6: IPv6Address?, subnets: [IPv4Prefix]) {
        remove(link: link)
        var unique: [IPv4Prefix] = []
        for prefix in subnets where !unique.contains(prefix) { unique.append(prefix) }
        peers[link] = PeerAddresses(ip4: ip4, ip6: ip6, subnets: unique)

        let h4 = hosts4.partitioningIndex { $0.address >= ip4.rawValue }
        hosts4.insert(Host4(address: ip4.rawValue, link: link), at: h4)
        if let ip6 {
            let h6 = hosts6.partitioningIndex { $0.address >= ip6 }
            hosts6.insert(Host6(address: ip6, link: link), at: h6)
        }
        for prefix in unique {
            let entry = Subnet4(prefix: prefix, mask: prefix.mask, link: link)
            let at = subnets4.partitioningIndex { RouteTable.subnetOrder(prefix, before: $0.prefix) }
            subnets4.insert(entry, at: at)
        }
    }

    /// Longest first, then by network: the scan's first match is the longest.
    private static func subnetOrder(_ a: IPv4Prefix, before b: IPv4Prefix) -> Bool {
        a.length != b.length ? a.length > b.length : a.network < b.network
    }

    /// Removes every route of `link`; returns whether it was present.
    @discardableResult
    mutating func remove(link: LinkID) -> Bool {
        guard peers.removeValue(forKey: link) != nil else { return false }
        hosts4.removeAll { $0.link == link }
        hosts6.removeAll { $0.link == link }
        subnets4.removeAll { $0.link == link }
        return true
    }

    // MARK: - Lookups (packet path: no allocation)

    @inline(__always)
    private func hostIndex(_ address: UInt32) -> Int? {
        var low = 0
        var high = hosts4.count
        while low < high {
            let mid = (low + high) >> 1
            let value = hosts4[mid].address
            if value == address { return mid }
            if value < address { low = mid + 1 } else { high = mid }
        }
        return nil
    }

    @inline(__always)
    private func host6Index(_ address: IPv6Address) -> Int? {
        var low = 0
        var high = hosts6.count
        while low < high {
            let mid = (low + high) >> 1
            let value = hosts6[mid].address
            if value == address { return mid }
            if value < address { low = mid + 1 } else { high = mid }
        }
        return nil
    }

    @inline(__always)
    func locate(_ address: IPv4Address) -> Hit4? {
        if let i = hostIndex(address.rawValue) { return .host(i) }
        let value = address.rawValue
        for i in subnets4.indices where value & subnets4[i].mask == subnets4[i].prefix.network.rawValue {
            return .subnet(i)
        }
        return nil
    }

    @inline(__always)
    func link(of hit: Hit4) -> LinkID {
        switch hit {
        case .host(let i): return hosts4[i].link
        case .subnet(let i): return subnets4[i].link
        }
    }

    /// The link that owns `address` (exact host route, else longest subnet), or nil.
    public func owner(of address: IPv4Address) -> LinkID? {
        locate(address).map { link(of: $0) }
    }

    /// The link whose IPv6 address is `address`, or nil.
    public func owner(of address: IPv6Address) -> LinkID? {
        host6Index(address).map { hosts6[$0].link }
    }

    /// Routes an outgoing IPv4 packet: the owning link, recording the use.
    @inline(__always)
    mutating func routeOut(_ address: IPv4Address, stamp: Duration) -> LinkID? {
        switch locate(address) {
        case .host(let i)?:
            hosts4[i].usage.out(stamp)
            return hosts4[i].link
        case .subnet(let i)?:
            subnets4[i].usage.out(stamp)
            return subnets4[i].link
        case nil:
            return nil
        }
    }

    @inline(__always)
    mutating func routeOut(_ address: IPv6Address, stamp: Duration) -> LinkID? {
        guard let i = host6Index(address) else { return nil }
        hosts6[i].usage.out(stamp)
        return hosts6[i].link
    }

    /// Reverse-path check for an incoming IPv4 packet: true (and the use recorded) when the
    /// route to `source` leads back to `link`.
    @inline(__always)
    mutating func acceptIn(_ source: IPv4Address, from link: LinkID, stamp: Duration) -> Bool {
        switch locate(source) {
        case .host(let i)? where hosts4[i].link == link:
            hosts4[i].usage.into(stamp)
            return true
        case .subnet(let i)? where subnets4[i].link == link:
            subnets4[i].usage.into(stamp)
            return true
        default:
            return false
        }
    }

    @inline(__always)
    mutating func acceptIn(_ source: IPv6Address, from link: LinkID, stamp: Duration) -> Bool {
        guard let i = host6Index(source), hosts6[i].link == link else { return false }
        hosts6[i].usage.into(stamp)
        return true
    }

    // MARK: - Status

    /// Every route: per link (ascending), its IPv4 host route, IPv6 host route, then its
    /// subnets longest first. Allocates; for status.
    public func entries(now: ContinuousClock.Instant) -> [RouteEntry] {
        let stamp = MACTable.stamp(now)
        func entry(_ prefix: String, _ link: LinkID, _ usage: Usage) -> RouteEntry {
            RouteEntry(prefix: prefix, link: link, packetsOut: usage.packetsOut, packetsIn: usage.packetsIn,
                       idle: usage.lastUsed.map { max(.zero, stamp - $0) })
        }
        var result: [RouteEntry] = []
        for link in links {
            for host in hosts4 where host.link == link {
                result.append(entry("\(IPv4Address(host.address))/32", link, host.usage))
            }
            for host in hosts6 where host.link == link {
                result.append(entry("\(host.address)/128", link, host.usage))
            }
            for subnet in subnets4 where subnet.link == link {
                result.append(entry(subnet.prefix.description, link, subnet.usage))
            }
        }
        return result
    }
}

extension Array {
    /// First index whose element satisfies `predicate`, for a predicate that is false then
    /// true along the array (binary search).
    fileprivate func partitioningIndex(where predicate: (Element) -> Bool) -> Int {
        var low = 0
        var high = count
        while low < high {
            let mid = (low + high) >> 1
            if predicate(self[mid]) { high = mid } else { low = mid + 1 }
        }
        return low
    }
}
