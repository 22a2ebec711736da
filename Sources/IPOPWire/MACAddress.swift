/// A 48-bit IEEE 802 MAC address.
///
/// Wire layout (6 octets, transmission order):
///
///     +------+------+------+------+------+------+
///     |  o0  |  o1  |  o2  |  o3  |  o4  |  o5  |
///     +------+------+------+------+------+------+
///     o0 bit 0 (0x01): I/G — 1 = group (multicast/broadcast)
///     o0 bit 1 (0x02): U/L — 1 = locally administered
///
/// Stored as the 48-bit big-endian value in the low bits of a `UInt64`
/// (`aa:bb:cc:dd:ee:ff` == `0x0000_aabb_ccdd_eeff`), so hashing and comparing are one word.
/// `Comparable` orders by that value, i.e. lexicographically by octet.
public struct MACAddress: Hashable, Sendable, CustomStringConvertible, Comparable {
    /// The address as a 48-bit value in the low bits; the top 16 bits are always zero.
    public let rawValue: UInt64

    /// Wire size of a MAC address.
    public static let size = 6

    @usableFromInline static let mask: UInt64 = 0x0000_FFFF_FFFF_FFFF
    @usableFromInline static let groupBit: UInt64 = 0x0000_0100_0000_0000       // o0 & 0x01
    @usableFromInline static let localBit: UInt64 = 0x0000_0200_0000_0000       // o0 & 0x02

    /// `ff:ff:ff:ff:ff:ff`.
    public static let broadcast = MACAddress(rawValue: 0xFFFF_FFFF_FFFF)
    /// `00:00:00:00:00:00`.
    public static let zero = MACAddress(rawValue: 0)

    /// From a 48-bit value; bits above 48 are discarded.
    @inlinable @inline(__always)
    public init(rawValue: UInt64) {
        self.rawValue = rawValue & MACAddress.mask
    }

    /// Reads six octets at `offset`. The caller guarantees `offset + 6 <= raw.count`.
    @inlinable @inline(__always)
    public init(_ raw: UnsafeRawBufferPointer, offset: Int) {
        let high = UInt64(raw.wireBE32(offset))
        let low = UInt64(raw.wireBE16(offset + 4))
        self.rawValue = high << 16 | low
    }

    /// From octets in wire order. Exactly six octets are expected: extra octets are ignored
    /// and missing trailing octets are taken as zero (this initializer never traps).
    public init(bytes: [UInt8]) {
        var value: UInt64 = 0
        for i in 0..<MACAddress.size {
            value = value << 8 | UInt64(i < bytes.count ? bytes[i] : 0)
        }
        self.rawValue = value
    }

    /// Parses `aa:bb:cc:dd:ee:ff` (hex digits in either case, one or two per octet,
    /// as `ether_aton` accepts). Returns nil on anything else.
    public init?(_ string: String) {
        var value: UInt64 = 0
        var octets = 0
        var digits = 0
        var current: UInt64 = 0
        for byte in string.utf8 {
            if byte == UInt8(ascii: ":") {
                guard digits > 0, octets < 5 else { return nil }
                value = value << 8 | current
                octets += 1
                digits = 0
                current = 0
            } else {
                guard let nibble = wireHexValue(byte), digits < 2 else { return nil }
                current = current << 4 | UInt64(nibble)
                digits += 1
            }
        }
        guard digits > 0, octets == 5 else { return nil }
        self.rawValue = value << 8 | current
    }

    /// Writes six octets at `offset`. The caller guarantees `offset + 6 <= raw.count`.
    @inlinable @inline(__always)
    public func write(to raw: UnsafeMutableRawBufferPointer, offset: Int) {
        raw.wireStoreBE32(UInt32(truncatingIfNeeded: rawValue >> 16), offset)
        raw.wireStoreBE16(UInt16(truncatingIfNeeded: rawValue), offset + 4)
    }

    /// The six octets in wire order (allocates; not for the packet path).
    public var bytes: [UInt8] {
        (0..<MACAddress.size).map { UInt8(truncatingIfNeeded: rawValue >> UInt64(40 - 8 * $0)) }
    }

    /// `ff:ff:ff:ff:ff:ff`.
    @inlinable @inline(__always)
    public var isBroadcast: Bool { rawValue == MACAddress.mask }

    /// I/G bit set: multicast, including broadcast.
    @inlinable @inline(__always)
    public var isMulticast: Bool { rawValue & MACAddress.groupBit != 0 }

    /// U/L bit set.
    @inlinable @inline(__always)
    public var isLocallyAdministered: Bool { rawValue & MACAddress.localBit != 0 }

    /// `00:00:00:00:00:00`.
    @inlinable @inline(__always)
    public var isZero: Bool { rawValue == 0 }

    /// A usable station address: not multicast (hence not broadcast) and not zero.
    /// A switch must never learn any other address as a source.
    @inlinable @inline(__always)
    public var isValidUnicast: Bool { !isMulticast && !isZero }

    /// A random locally administered unicast address.
    public static func random<G: RandomNumberGenerator>(using generator: inout G) -> MACAddress {
        let value = generator.next() & mask
        return MACAddress(rawValue: (value | localBit) & ~groupBit)
    }

    /// A random locally administered unicast address from the system generator.
    public static func random() -> MACAddress {
        var generator = SystemRandomNumberGenerator()
        return random(using: &generator)
    }

    /// Lowercase colon form, `aa:bb:cc:dd:ee:ff`.
    public var description: String {
        var text = ""
        text.reserveCapacity(17)
        for i in 0..<MACAddress.size {
            let octet = Int(truncatingIfNeeded: rawValue >> UInt64(40 - 8 * i)) & 0xFF
            if i > 0 { text.append(":") }
            text.append(wireHexDigits[octet >> 4])
            text.append(wireHexDigits[octet & 0xF])
        }
        return text
    }

    @inlinable @inline(__always)
    public static func == (lhs: MACAddress, rhs: MACAddress) -> Bool {
        lhs.rawValue == rhs.rawValue
    }

    @inlinable @inline(__always)
    public func hash(into hasher: inout Hasher) {
        hasher.combine(rawValue)
    }

    @inlinable @inline(__always)
    public static func < (lhs: MACAddress, rhs: MACAddress) -> Bool {
        lhs.rawValue < rhs.rawValue
    }
}
