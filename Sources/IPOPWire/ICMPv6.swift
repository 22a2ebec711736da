/// ICMPv6 message types this package looks at (RFC 4443, RFC 4861).
public enum ICMPv6Type {
    public static let echoRequest: UInt8 = 128
    public static let echoReply: UInt8 = 129
    public static let routerSolicitation: UInt8 = 133
    public static let routerAdvertisement: UInt8 = 134
    public static let neighborSolicitation: UInt8 = 135
    public static let neighborAdvertisement: UInt8 = 136
    public static let redirect: UInt8 = 137

    /// The five Neighbor Discovery messages (133...137): link-scoped by definition.
    @inlinable @inline(__always)
    public static func isNeighborDiscovery(_ type: UInt8) -> Bool { type >= 133 && type <= 137 }
}

extension IPv6Address {
    /// True when the first `prefixLength` bits equal those of `network`
    /// (`prefixLength` is clamped to 0...128).
    @inlinable @inline(__always)
    public func isIn(_ network: IPv6Address, prefixLength: Int) -> Bool {
        let bits = min(max(prefixLength, 0), 128)
        let highMask: UInt64 = bits == 0 ? 0 : (bits >= 64 ? ~0 : ~UInt64(0) << UInt64(64 - bits))
        let lowMask: UInt64 = bits <= 64 ? 0 : (bits == 128 ? ~0 : ~UInt64(0) << UInt64(128 - bits))
        return high & highMask == network.high & highMask && low & lowMask == network.low & lowMask
    }

    /// The solicited-node multicast address `ff02::1:ffXX:XXXX` (RFC 4291 §2.7.1):
    /// the low 24 bits of this address appended to `ff02::1:ff00:0/104`.
    @inlinable @inline(__always)
    public var solicitedNodeMulticast: IPv6Address {
        IPv6Address(high: 0xFF02_0000_0000_0000, low: 0x0000_0001_FF00_0000 | (low & 0x00FF_FFFF))
    }

    /// True for `ff02::1:ff00:0/104`.
    @inlinable @inline(__always)
    public var isSolicitedNodeMulticast: Bool {
        high == 0xFF02_0000_0000_0000 && low & 0xFFFF_FFFF_FF00_0000 == 0x0000_0001_FF00_0000
    }

    /// `ff02::1`, all nodes on the link.
    public static let allNodes = IPv6Address(high: 0xFF02_0000_0000_0000, low: 1)
}

/// Neighbor Solicitation view (RFC 4861 §4.3): the ICMPv6 message, i.e. the IPv6 payload
/// after a fixed header whose Next Header is 58.
///
/// Wire layout (24 bytes, then options):
///
///      0                   1                   2                   3
///      0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
///     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///   0 |   type = 135  |    code = 0   |          checksum             |
///     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///   4 |                           reserved                            |
///     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///   8 |                                                               |
///     +                      target address (16)                      +
///     |                                                               |
///     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///  24 |  options (source link-layer address, ...)                     |
///
/// The parser checks type, code and length (RFC 4861 §7.1.1 items that need no IPv6
/// header); it does not verify the checksum nor walk the options. The view borrows `bytes`.
public struct NeighborSolicitation {
    /// Size without options.
    public static let minimumSize = 24

    /// The ICMPv6 message.
    public let bytes: UnsafeRawBufferPointer

    @inlinable
    public init(_ raw: UnsafeRawBufferPointer) throws(NeighborDiscoveryError) {
        guard raw.count >= NeighborSolicitation.minimumSize else { throw .truncated }
        guard raw.wireU8(0) == ICMPv6Type.neighborSolicitation else { throw .wrongType(raw.wireU8(0)) }
        guard raw.wireU8(1) == 0 else { throw .badCode(raw.wireU8(1)) }
        self.bytes = raw
    }

    @inlinable @inline(__always)
    public var checksum: UInt16 { bytes.wireBE16(2) }

    /// The address being resolved.
    @inlinable @inline(__always)
    public var target: IPv6Address { IPv6Address(bytes, offset: 8) }
}

/// Neighbor Advertisement writer (RFC 4861 §4.4).
///
/// Frame written by `writeFrame` (86 bytes, untagged):
///
///     Ethernet (14):  dst, src, type 0x86dd
///     IPv6 (40):      version 6, traffic class 0, flow label 0, payload length 32,
///                     next header 58, hop limit 255, source, destination
///     ICMPv6 (24):    type 136, code 0, checksum, flags R|S|O in the top 3 bits of the
///                     next 32-bit word (rest reserved, zero), target address (16)
///     option (8):     type 2 (target link-layer address), length 1 (× 8 bytes), MAC (6)
public enum NeighborAdvertisement {
    /// Router flag (R).
    public static let routerFlag: UInt8 = 0x80
    /// Solicited flag (S).
    public static let solicitedFlag: UInt8 = 0x40
    /// Override flag (O).
    public static let overrideFlag: UInt8 = 0x20

    /// ICMPv6 message size with the one target link-layer address option.
    public static let messageSize = 32
    /// Whole Ethernet frame size.
    public static let frameSize = EthernetFrame.headerSize + IPv6Header.size + messageSize

    /// Writes a complete Ethernet + IPv6 + Neighbor Advertisement frame at the start of
    /// `buffer`, checksum included. `flags` is any combination of the three flag constants.
    /// Returns the bytes written (`frameSize`), or 0 without writing when `buffer` is smaller.
    @inlinable
    public static func writeFrame(
        into buffer: UnsafeMutableRawBufferPointer,
        destinationMAC: MACAddress, sourceMAC: MACAddress,
        source: IPv6Address, destination: IPv6Address,
        target: IPv6Address, targetLinkLayer: MACAddress, flags: UInt8
    ) -> Int {
        guard buffer.count >= frameSize else { return 0 }
        destinationMAC.write(to: buffer, offset: 0)
        sourceMAC.write(to: buffer, offset: 6)
        buffer.wireStoreBE16(EtherType.ipv6.rawValue, 12)

        let ip = EthernetFrame.headerSize
        buffer.wireStoreBE32(0x6000_0000, ip)                   // version 6, tc 0, flow 0
        buffer.wireStoreBE16(UInt16(messageSize), ip + 4)
        buffer[ip + 6] = IPProtocolNumber.ipv6ICMP
        buffer[ip + 7] = 255                                    // hop limit (RFC 4861 §7.1.2)
        source.write(to: buffer, offset: ip + 8)
        destination.write(to: buffer, offset: ip + 24)

        let icmp = ip + IPv6Header.size
        buffer[icmp] = ICMPv6Type.neighborAdvertisement
        buffer[icmp + 1] = 0
        buffer.wireStoreBE16(0, icmp + 2)
        buffer.wireStoreBE32(UInt32(flags & 0xE0) << 24, icmp + 4)
        target.write(to: buffer, offset: icmp + 8)
        buffer[icmp + 24] = 2                                   // target link-layer address
        buffer[icmp + 25] = 1                                   // length in units of 8 bytes
        targetLinkLayer.write(to: buffer, offset: icmp + 26)

        let message = UnsafeRawBufferPointer(rebasing: buffer[icmp..<(icmp + messageSize)])
        let sum = InternetChecksum.add(message, to: InternetChecksum.ipv6PseudoHeader(
            source: source, destination: destination,
            upperLayerLength: messageSize, nextHeader: IPProtocolNumber.ipv6ICMP))
        buffer.wireStoreBE16(InternetChecksum.finish(sum), icmp + 2)
        return frameSize
    }
}

/// Why a Neighbor Discovery message could not be parsed.
public enum NeighborDiscoveryError: Error, Hashable, Sendable {
    /// Shorter than the message's fixed part.
    case truncated
    /// Not the expected ICMPv6 type (the value found).
    case wrongType(UInt8)
    /// Code other than 0 (the value found).
    case badCode(UInt8)
}
