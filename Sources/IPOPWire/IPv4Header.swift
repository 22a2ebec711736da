/// IPv4 header view (RFC 791), enough to make forwarding decisions.
///
/// Wire layout:
///
///      0                   1                   2                   3
///      0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
///     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///   0 |Version|  IHL  |   DSCP    |ECN|         Total Length          |
///     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///   4 |         Identification        |0|D|M|     Fragment Offset     |
///     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///   8 |  Time to Live |    Protocol   |         Header Checksum       |
///     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///  12 |                       Source Address                          |
///     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///  16 |                    Destination Address                        |
///     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///  20 |                    Options (IHL > 5) ...                      |
///     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///
/// Validation: version 4, IHL >= 5, IHL*4 <= Total Length, and the buffer holds at least
/// Total Length bytes (more is allowed: Ethernet padding). The checksum is not verified
/// by `init` (see `isChecksumValid`). The view borrows `bytes`; no copies, no allocation.
public struct IPv4Header {
    /// Size of a header without options.
    public static let minimumSize = 20

    /// The packet (header, payload and any trailing padding).
    public let bytes: UnsafeRawBufferPointer
    /// IHL × 4, 20...60.
    public let headerLength: Int
    /// Total Length field: header plus payload.
    public let totalLength: Int

    @inlinable
    public init(_ raw: UnsafeRawBufferPointer) throws(IPv4HeaderError) {
        guard raw.count >= IPv4Header.minimumSize else { throw .truncated }
        let first = raw.wireU8(0)
        let version = first >> 4
        guard version == 4 else { throw .badVersion(version) }
        let headerLength = Int(first & 0x0F) * 4
        guard headerLength >= IPv4Header.minimumSize else { throw .badHeaderLength(headerLength) }
        let totalLength = Int(raw.wireBE16(2))
        guard totalLength >= headerLength else { throw .badTotalLength(totalLength) }
        guard raw.count >= totalLength else { throw .truncated }
        self.bytes = raw
        self.headerLength = headerLength
        self.totalLength = totalLength
    }

    /// Always 4 for a parsed header.
    @inlinable @inline(__always)
    public var version: UInt8 { 4 }
    /// DSCP (6 bits).
    @inlinable @inline(__always)
    public var dscp: UInt8 { bytes.wireU8(1) >> 2 }
    /// ECN (2 bits).
    @inlinable @inline(__always)
    public var ecn: UInt8 { bytes.wireU8(1) & 0x03 }
    @inlinable @inline(__always)
    public var identification: UInt16 { bytes.wireBE16(4) }
    @inlinable @inline(__always)
    public var dontFragment: Bool { bytes.wireU8(6) & 0x40 != 0 }
    @inlinable @inline(__always)
    public var moreFragments: Bool { bytes.wireU8(6) & 0x20 != 0 }
    /// Fragment offset in 8-byte units.
    @inlinable @inline(__always)
    public var fragmentOffset: UInt16 { bytes.wireBE16(6) & 0x1FFF }
    /// True for any fragment (MF set or non-zero offset).
    @inlinable @inline(__always)
    public var isFragment: Bool { bytes.wireBE16(6) & 0x3FFF != 0 }
    @inlinable @inline(__always)
    public var timeToLive: UInt8 { bytes.wireU8(8) }
    /// IANA protocol number (6 TCP, 17 UDP, 1 ICMP, ...).
    @inlinable @inline(__always)
    public var protocolNumber: UInt8 { bytes.wireU8(9) }
    @inlinable @inline(__always)
    public var headerChecksum: UInt16 { bytes.wireBE16(10) }
    @inlinable @inline(__always)
    public var source: IPv4Address { IPv4Address(bytes, offset: 12) }
    @inlinable @inline(__always)
    public var destination: IPv4Address { IPv4Address(bytes, offset: 16) }

    /// Offset of the payload (== `headerLength`).
    @inlinable @inline(__always)
    public var payloadOffset: Int { headerLength }

    /// The payload as delimited by Total Length (trailing padding excluded).
    @inlinable @inline(__always)
    public var payload: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: bytes[headerLength..<totalLength])
    }

    /// True when the one's-complement sum over the header (checksum included) is 0xFFFF.
    public var isChecksumValid: Bool {
        var sum: UInt32 = 0
        var offset = 0
        while offset < headerLength {
            sum &+= UInt32(bytes.wireBE16(offset))
            offset += 2
        }
        while sum > 0xFFFF { sum = (sum & 0xFFFF) &+ (sum >> 16) }
        return sum == 0xFFFF
    }
}

/// IANA protocol numbers used by the overlay's decisions.
public enum IPProtocolNumber {
    public static let icmp: UInt8 = 1
    public static let tcp: UInt8 = 6
    public static let udp: UInt8 = 17
    public static let ipv6ICMP: UInt8 = 58
}

/// Why an IPv4 header could not be parsed.
public enum IPv4HeaderError: Error, Hashable, Sendable {
    /// The buffer ends before 20 bytes, before IHL × 4, or before Total Length.
    case truncated
    /// The version nibble is not 4 (the value found).
    case badVersion(UInt8)
    /// IHL × 4 below 20 (the value found, in bytes).
    case badHeaderLength(Int)
    /// Total Length below the header length (the value found).
    case badTotalLength(Int)
}
