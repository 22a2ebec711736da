/// An IPv4 address.
///
/// Wire layout: 4 octets, network byte order (`10.0.0.1` is `0a 00 00 01`).
/// Stored in host byte order (`10.0.0.1` == `0x0A00_0001`), the same convention as
/// `Endpoint.address`, so `Comparable` is numeric order.
public struct IPv4Address: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// Host byte order.
    public let rawValue: UInt32

    /// Wire size of an IPv4 address.
    public static let size = 4

    /// `0.0.0.0`.
    public static let any = IPv4Address(0)
    /// `255.255.255.255`.
    public static let broadcast = IPv4Address(0xFFFF_FFFF)

    /// From a host-byte-order value.
    @inlinable @inline(__always)
    public init(_ rawValue: UInt32) { self.rawValue = rawValue }

    /// From a host-byte-order value.
    @inlinable @inline(__always)
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// From four octets, most significant first: `IPv4Address(10, 0, 0, 1)`.
    @inlinable @inline(__always)
    public init(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8) {
        self.rawValue = UInt32(a) << 24 | UInt32(b) << 16 | UInt32(c) << 8 | UInt32(d)
    }

    /// Reads four octets at `offset`. The caller guarantees `offset + 4 <= raw.count`.
    @inlinable @inline(__always)
    public init(_ raw: UnsafeRawBufferPointer, offset: Int) {
        self.rawValue = raw.wireBE32(offset)
    }

    /// Parses dotted-quad text ("10.0.0.1"; no leading/trailing junk, octets 0...255).
    public init?(_ string: String) {
        var value: UInt32 = 0
        var octet: UInt32 = 0
        var digits = 0
        var dots = 0
        for byte in string.utf8 {
            if byte == UInt8(ascii: ".") {
                guard digits > 0, dots < 3 else { return nil }
                value = value << 8 | octet
                dots += 1
                digits = 0
                octet = 0
            } else {
                guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9"), digits < 3 else { return nil }
                octet = octet * 10 + UInt32(byte - UInt8(ascii: "0"))
                guard octet <= 255 else { return nil }
                digits += 1
            }
        }
        guard digits > 0, dots == 3 else { return nil }
        self.rawValue = value << 8 | octet
    }

    /// Writes four octets at `offset`. The caller guarantees `offset + 4 <= raw.count`.
    @inlinable @inline(__always)
    public func write(to raw: UnsafeMutableRawBufferPointer, offset: Int) {
        raw.wireStoreBE32(rawValue, offset)
    }

    /// The four octets in wire order (allocates; not for the packet path).
    public var bytes: [UInt8] {
        [UInt8(truncatingIfNeeded: rawValue >> 24), UInt8(truncatingIfNeeded: rawValue >> 16),
         UInt8(truncatingIfNeeded: rawValue >> 8), UInt8(truncatingIfNeeded: rawValue)]
    }

    /// 224.0.0.0/4.
    @inlinable @inline(__always)
    public var isMulticast: Bool { rawValue & 0xF000_0000 == 0xE000_0000 }
    /// 255.255.255.255.
    @inlinable @inline(__always)
    public var isLimitedBroadcast: Bool { rawValue == 0xFFFF_FFFF }
    /// 0.0.0.0.
    @inlinable @inline(__always)
    public var isUnspecified: Bool { rawValue == 0 }
    /// 127.0.0.0/8.
    @inlinable @inline(__always)
    public var isLoopback: Bool { rawValue & 0xFF00_0000 == 0x7F00_0000 }
    /// 169.254.0.0/16.
    @inlinable @inline(__always)
    public var isLinkLocal: Bool { rawValue & 0xFFFF_0000 == 0xA9FE_0000 }

    /// True when the first `prefixLength` bits equal those of `network`
    /// (`prefixLength` is clamped to 0...32).
    @inlinable @inline(__always)
    public func isIn(_ network: IPv4Address, prefixLength: Int) -> Bool {
        let bits = min(max(prefixLength, 0), 32)
        let mask: UInt32 = bits == 0 ? 0 : ~UInt32(0) << UInt32(32 - bits)
        return rawValue & mask == network.rawValue & mask
    }

    /// Dotted quad, "10.0.0.1".
    public var description: String {
        "\(rawValue >> 24).\(rawValue >> 16 & 0xFF).\(rawValue >> 8 & 0xFF).\(rawValue & 0xFF)"
    }

    @inlinable @inline(__always)
    public static func == (lhs: IPv4Address, rhs: IPv4Address) -> Bool {
        lhs.rawValue == rhs.rawValue
    }

    @inlinable @inline(__always)
    public func hash(into hasher: inout Hasher) {
        hasher.combine(rawValue)
    }

    @inlinable @inline(__always)
    public static func < (lhs: IPv4Address, rhs: IPv4Address) -> Bool {
        lhs.rawValue < rhs.rawValue
    }
}
