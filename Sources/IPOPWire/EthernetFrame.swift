/// Ethernet II frame view, with any number (up to `maxVLANTags`) of stacked
/// IEEE 802.1Q (TPID 0x8100) / 802.1ad (TPID 0x88a8) tags. The FCS is not present
/// (TAP devices and the overlay never carry it).
///
/// Wire layout:
///
///      0                   1                   2                   3
///      0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
///     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///   0 |                    destination MAC (6)                        |
///     +                               +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///   4 |                               |                               |
///     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+                               +
///   8 |                      source MAC (6)                           |
///     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///  12 |   TPID 0x8100 / 0x88a8 (opt)  | PCP |D|   VLAN id (12)        |  } 0..n tags,
///     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+  } 4 bytes each
///     |        EtherType              |  payload ...                  |
///     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///
/// Untagged: EtherType at 12, payload at 14. With n tags: EtherType at 12 + 4n,
/// payload at 14 + 4n.
///
/// The view borrows `bytes`: it is valid only while that memory is (e.g. inside
/// `withUnsafeBytes`). It never copies and never allocates.
public struct EthernetFrame {
    /// Destination + source + EtherType of an untagged frame.
    public static let headerSize = 14
    /// Size of one 802.1Q / 802.1ad tag.
    public static let vlanTagSize = 4
    /// Frames with more stacked tags than this are rejected (`tooManyVLANTags`).
    public static let maxVLANTags = 8

    /// The whole frame.
    public let bytes: UnsafeRawBufferPointer
    /// Number of stacked VLAN tags before the EtherType (0 for an untagged frame).
    public let vlanTagCount: Int
    /// The EtherType after the tags.
    public let etherType: EtherType

    /// Parses the header. Throws `.truncated` when the buffer ends inside the
    /// MAC addresses, a tag or the EtherType, `.tooManyVLANTags` beyond `maxVLANTags`.
    @inlinable @inline(__always)
    public init(_ raw: UnsafeRawBufferPointer) throws(FrameError) {
        guard raw.count >= EthernetFrame.headerSize else { throw .truncated }
        var tags = 0
        var type = raw.wireBE16(12)
        while type == 0x8100 || type == 0x88A8 {
            guard tags < EthernetFrame.maxVLANTags else { throw .tooManyVLANTags }
            tags += 1
            let typeOffset = 12 + EthernetFrame.vlanTagSize * tags
            guard raw.count >= typeOffset + 2 else { throw .truncated }
            type = raw.wireBE16(typeOffset)
        }
        self.bytes = raw
        self.vlanTagCount = tags
        self.etherType = EtherType(type)
    }

    @inlinable @inline(__always)
    public var destination: MACAddress { MACAddress(bytes, offset: 0) }

    @inlinable @inline(__always)
    public var source: MACAddress { MACAddress(bytes, offset: 6) }

    /// Offset of the first payload byte: 14 + 4 × `vlanTagCount`.
    @inlinable @inline(__always)
    public var payloadOffset: Int { EthernetFrame.headerSize + EthernetFrame.vlanTagSize * vlanTagCount }

    /// Total frame length in bytes (header, tags and payload).
    @inlinable @inline(__always)
    public var length: Int { bytes.count }

    /// The bytes after the EtherType (may be empty; may include Ethernet padding).
    @inlinable @inline(__always)
    public var payload: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: bytes[payloadOffset...])
    }

    /// The `index`-th tag, outermost first; nil when `index` is out of range.
    @inlinable @inline(__always)
    public func vlanTag(at index: Int) -> VLANTag? {
        guard index >= 0, index < vlanTagCount else { return nil }
        let offset = 12 + EthernetFrame.vlanTagSize * index
        return VLANTag(tpid: bytes.wireBE16(offset), tci: bytes.wireBE16(offset + 2))
    }

    /// The outermost tag, if any.
    @inlinable @inline(__always)
    public var firstVLANTag: VLANTag? { vlanTag(at: 0) }

    /// The 12-bit VLAN id of the outermost tag, if any.
    @inlinable @inline(__always)
    public var firstVLANID: UInt16? { firstVLANTag?.vlanID }
}

/// One 802.1Q / 802.1ad tag: TPID and Tag Control Information.
public struct VLANTag: Hashable, Sendable {
    /// 0x8100 (802.1Q) or 0x88a8 (802.1ad).
    public let tpid: UInt16
    /// PCP (3) | DEI (1) | VID (12).
    public let tci: UInt16

    public init(tpid: UInt16, tci: UInt16) {
        self.tpid = tpid
        self.tci = tci
    }

    /// The 12-bit VLAN identifier.
    @inlinable @inline(__always)
    public var vlanID: UInt16 { tci & 0x0FFF }
    /// Priority code point (0...7).
    @inlinable @inline(__always)
    public var priority: UInt8 { UInt8(truncatingIfNeeded: tci >> 13) }
    /// Drop eligible indicator.
    @inlinable @inline(__always)
    public var dropEligible: Bool { tci & 0x1000 != 0 }
}

/// Why an Ethernet frame could not be parsed.
public enum FrameError: Error, Hashable, Sendable {
    /// The buffer ends before the end of the header (addresses, a tag or the EtherType).
    case truncated
    /// More than `EthernetFrame.maxVLANTags` stacked tags.
    case tooManyVLANTags
}
