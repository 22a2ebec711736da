/// L3 router event counts since creation, for status. All plain wrapping `UInt64`s.
///
/// Every frame lands in exactly one of:
/// - from the TAP: `arpReplies`, `ndAdvertisements` (answered locally), `routed` (sent to
///   one link), `flooded` (sent to every link), or one drop;
/// - from a link: `deliveredToTap`, or one drop.
///
/// Drops: `dropNoRoute` (no link owns the destination), `dropSpoofed` (a link sent from an
/// address it does not own), `dropMalformed`, `dropTooBig` (longer than MTU + 14),
/// `dropNotIP` (ARP from a link, other EtherTypes, VLAN-tagged frames), `dropUnanswered`
/// (ARP / Neighbor Solicitations the router handles but does not answer, ARP replies),
/// `dropLinkScoped` (link-scoped traffic that never crosses the overlay: IPv6 from a
/// link-local or unspecified source, IPv4 from 0.0.0.0, Neighbor Discovery other than
/// answered solicitations).
///
/// Control events: `duplicateAddressRefused` counts `addPeer` calls refused because
/// another link holds the address or prefix.
public struct RouterCounters: Hashable, Sendable {
    public var arpReplies: UInt64 = 0
    public var ndAdvertisements: UInt64 = 0
    public var routed: UInt64 = 0
    public var flooded: UInt64 = 0
    public var deliveredToTap: UInt64 = 0
    public var dropNoRoute: UInt64 = 0
    public var dropSpoofed: UInt64 = 0
    public var dropMalformed: UInt64 = 0
    public var dropTooBig: UInt64 = 0
    public var dropNotIP: UInt64 = 0
    public var dropUnanswered: UInt64 = 0
    public var dropLinkScoped: UInt64 = 0
    public var duplicateAddressRefused: UInt64 = 0

    public init() {}

    /// Every counter by field name (allocates; for status output).
    public var dictionary: [String: UInt64] {
        [
            "arpReplies": arpReplies, "ndAdvertisements": ndAdvertisements, "routed": routed,
            "flooded": flooded, "deliveredToTap": deliveredToTap, "dropNoRoute": dropNoRoute,
            "dropSpoofed": dropSpoofed, "dropMalformed": dropMalformed, "dropTooBig": dropTooBig,
            "dropNotIP": dropNotIP, "dropUnanswered": dropUnanswered, "dropLinkScoped": dropLinkScoped,
            "duplicateAddressRefused": duplicateAddressRefused,
        ]
    }

    /// All frame drops.
    public var dropped: UInt64 {
        dropNoRoute &+ dropSpoofed &+ dropMalformed &+ dropTooBig &+ dropNotIP
            &+ dropUnanswered &+ dropLinkScoped
    }

    @inline(__always)
    mutating func count(_ reason: RouterDropReason) {
        switch reason {
        case .noRoute: dropNoRoute &+= 1
        case .spoofed: dropSpoofed &+= 1
        case .malformed: dropMalformed &+= 1
        case .tooBig: dropTooBig &+= 1
        case .notIP: dropNotIP &+= 1
        case .unanswered, .replyBufferTooSmall: dropUnanswered &+= 1
        case .linkScoped: dropLinkScoped &+= 1
        }
    }
}
