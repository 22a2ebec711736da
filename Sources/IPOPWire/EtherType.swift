/// A 16-bit EtherType (values below 0x0600 are IEEE 802.3 length fields, not types).
public struct EtherType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt16

    @inlinable @inline(__always)
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    @inlinable @inline(__always)
    public init(_ rawValue: UInt16) { self.rawValue = rawValue }

    public static let ipv4 = EtherType(0x0800)
    public static let arp = EtherType(0x0806)
    public static let ipv6 = EtherType(0x86DD)
    /// IEEE 802.1Q customer VLAN tag (C-tag).
    public static let vlan = EtherType(0x8100)
    /// IEEE 802.1ad service VLAN tag (S-tag, "QinQ").
    public static let qinq = EtherType(0x88A8)

    /// True for the two TPIDs this package treats as VLAN tags (0x8100, 0x88a8).
    @inlinable @inline(__always)
    public var isVLANTag: Bool { rawValue == 0x8100 || rawValue == 0x88A8 }

    /// True when the field is an 802.3 length (< 0x0600) rather than a type.
    @inlinable @inline(__always)
    public var isLength: Bool { rawValue < 0x0600 }

    public var description: String {
        var text = "0x"
        for shift in stride(from: 12, through: 0, by: -4) {
            text.append(wireHexDigits[Int(rawValue >> UInt16(shift)) & 0xF])
        }
        return text
    }
}
