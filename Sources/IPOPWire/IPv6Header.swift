/// IPv6 fixed header view (RFC 8200), enough to make forwarding decisions.
/// Extension headers are not walked: `nextHeader` is the fixed header's field.
///
/// Wire layout (40 bytes):
///
///      0                   1                   2                   3
///      0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
///     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///   0 |Version| Traffic Class |           Flow Label                  |
///     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///   4 |         Payload Length        |  Next Header  |   Hop Limit   |
///     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///   8 |                                                               |
///     +                     Source Address (16)                       +
///     |                                                               |
///     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///  24 |                                                               |
///     +                  Destination Address (16)                     +
///     |                                                               |
///     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///  40 |  payload (extension headers, upper layer) ...                 |
///
/// Validation: version 6 and the buffer holds at least 40 + Payload Length bytes
/// (more is allowed: Ethernet padding). Jumbograms (Payload Length 0 with a
/// Hop-by-Hop jumbo option) are seen as an empty payload.
/// The view borrows `bytes`; no copies, no allocation.
public struct IPv6Header {
    /// Size of the fixed header.
    public static let size = 40

    /// The packet (header, payload and any trailing padding).
    public let bytes: UnsafeRawBufferPointer
    /// Payload Length field: bytes after the fixed header.
    public let payloadLength: Int

    @inlinable
    public init(_ raw: UnsafeRawBufferPointer) throws(IPv6HeaderError) {
        guard raw.count >= IPv6Header.size else { throw .truncated }
        let version = raw.wireU8(0) >> 4
        guard version == 6 else { throw .badVersion(version) }
        let payloadLength = Int(raw.wireBE16(4))
        guard raw.count >= IPv6Header.size + payloadLength else { throw .truncated }
        self.bytes = raw
        self.payloadLength = payloadLength
    }

    /// Always 6 for a parsed header.
    @inlinable @inline(__always)
    public var version: UInt8 { 6 }
    @inlinable @inline(__always)
    public var trafficClass: UInt8 { UInt8(truncatingIfNeeded: bytes.wireBE32(0) >> 20) }
    /// 20-bit flow label.
    @inlinable @inline(__always)
    public var flowLabel: UInt32 { bytes.wireBE32(0) & 0x000F_FFFF }
    /// The fixed header's Next Header (IANA protocol number or extension header type).
    @inlinable @inline(__always)
    public var nextHeader: UInt8 { bytes.wireU8(6) }
    @inlinable @inline(__always)
    public var hopLimit: UInt8 { bytes.wireU8(7) }
    @inlinable @inline(__always)
    public var source: IPv6Address { IPv6Address(bytes, offset: 8) }
    @inlinable @inline(__always)
    public var destination: IPv6Address { IPv6Address(bytes, offset: 24) }

    /// 40 + Payload Length.
    @inlinable @inline(__always)
    public var totalLength: Int { IPv6Header.size + payloadLength }

    /// Offset of the payload (always 40).
    @inlinable @inline(__always)
    public var payloadOffset: Int { IPv6Header.size }

    /// The payload as delimited by Payload Length (trailing padding excluded).
    @inlinable @inline(__always)
    public var payload: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: bytes[IPv6Header.size..<totalLength])
    }
}

/// Why an IPv6 header could not be parsed.
public enum IPv6HeaderError: Error, Hashable, Sendable {
    /// The buffer ends before 40 bytes or before 40 + Payload Length.
    case truncated
    /// The version nibble is not 6 (the value found).
    case badVersion(UInt8)
}
