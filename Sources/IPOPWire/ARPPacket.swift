/// ARP packet view (RFC 826), Ethernet hardware / IPv4 protocol only.
///
/// Wire layout (28 bytes, the Ethernet payload after EtherType 0x0806):
///
///      0                   1                   2                   3
///      0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
///     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///   0 |     hardware type = 1         |     protocol type = 0x0800    |
///     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///   4 |  hw len = 6   | proto len = 4 |  operation (1 req, 2 reply)   |
///     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///   8 |                 sender hardware address (6)                   |
///     +                               +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///  12 |                               | sender protocol address (4)   |
///     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+                               +
///  16 |                               |                               |
///     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+                               +
///  20 |                 target hardware address (6)                   |
///     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///  24 |                 target protocol address (4)                   |
///     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///
/// Bytes after offset 28 (Ethernet padding) are ignored. The view borrows `bytes`
/// and never copies or allocates.
public struct ARPPacket {
    /// Size of an Ethernet/IPv4 ARP packet.
    public static let size = 28
    /// Size of a full untagged Ethernet + ARP frame (without padding to 60).
    public static let frameSize = EthernetFrame.headerSize + size

    /// The ARP packet (the Ethernet payload).
    public let bytes: UnsafeRawBufferPointer
    public let operation: ARPOperation

    /// Parses an ARP packet (the Ethernet payload, not the frame).
    @inlinable
    public init(_ raw: UnsafeRawBufferPointer) throws(ARPError) {
        guard raw.count >= ARPPacket.size else { throw .truncated }
        let hardwareType = raw.wireBE16(0)
        guard hardwareType == 1 else { throw .unsupportedHardwareType(hardwareType) }
        let protocolType = raw.wireBE16(2)
        guard protocolType == 0x0800 else { throw .unsupportedProtocolType(protocolType) }
        guard raw.wireU8(4) == 6, raw.wireU8(5) == 4 else { throw .badAddressLength }
        let code = raw.wireBE16(6)
        guard let operation = ARPOperation(rawValue: code) else { throw .unsupportedOperation(code) }
        self.bytes = raw
        self.operation = operation
    }

    /// Parses the ARP payload of an Ethernet frame (tagged or not); throws
    /// `.notARP` when the frame's EtherType is not 0x0806.
    @inlinable
    public init(frame: EthernetFrame) throws(ARPError) {
        guard frame.etherType == .arp else { throw .notARP }
        try self.init(frame.payload)
    }

    @inlinable @inline(__always)
    public var senderHardware: MACAddress { MACAddress(bytes, offset: 8) }
    @inlinable @inline(__always)
    public var senderProtocol: IPv4Address { IPv4Address(bytes, offset: 14) }
    @inlinable @inline(__always)
    public var targetHardware: MACAddress { MACAddress(bytes, offset: 18) }
    @inlinable @inline(__always)
    public var targetProtocol: IPv4Address { IPv4Address(bytes, offset: 24) }

    /// Gratuitous ARP: sender and target protocol addresses are equal.
    @inlinable @inline(__always)
    public var isGratuitous: Bool { senderProtocol == targetProtocol }

    /// Writes a complete untagged Ethernet II + ARP reply frame at the start of `buffer`:
    ///
    ///     Ethernet: dst = targetHardware, src = senderHardware, type 0x0806
    ///     ARP:      htype 1, ptype 0x0800, 6, 4, op 2,
    ///               sha = senderHardware, spa = senderProtocol,
    ///               tha = targetHardware, tpa = targetProtocol
    ///
    /// "sender" is the replier ("senderProtocol is at senderHardware") and "target" is the
    /// original requester. Returns the number of bytes written (`frameSize`, 42: the frame
    /// is not padded to 60, which a TAP does not need), or 0 without writing anything if
    /// `buffer` is smaller than that.
    public static func writeReply(
        into buffer: UnsafeMutableRawBufferPointer,
        senderHardware: MACAddress, senderProtocol: IPv4Address,
        targetHardware: MACAddress, targetProtocol: IPv4Address
    ) -> Int {
        guard buffer.count >= frameSize else { return 0 }
        targetHardware.write(to: buffer, offset: 0)
        senderHardware.write(to: buffer, offset: 6)
        buffer.wireStoreBE16(EtherType.arp.rawValue, 12)
        let arp = EthernetFrame.headerSize
        buffer.wireStoreBE16(1, arp)                 // hardware type: Ethernet
        buffer.wireStoreBE16(0x0800, arp + 2)        // protocol type: IPv4
        buffer[arp + 4] = 6
        buffer[arp + 5] = 4
        buffer.wireStoreBE16(ARPOperation.reply.rawValue, arp + 6)
        senderHardware.write(to: buffer, offset: arp + 8)
        senderProtocol.write(to: buffer, offset: arp + 14)
        targetHardware.write(to: buffer, offset: arp + 18)
        targetProtocol.write(to: buffer, offset: arp + 24)
        return frameSize
    }

    /// Writes the reply to this request saying "`targetProtocol` is at `hardware`":
    /// sender = (`hardware`, this request's target IP), target = this request's sender.
    /// Returns the bytes written (42) or 0 if `buffer` is too small.
    /// (The caller decides whether the request deserves an answer.)
    public func writeReply(into buffer: UnsafeMutableRawBufferPointer, answeringWith hardware: MACAddress) -> Int {
        ARPPacket.writeReply(
            into: buffer,
            senderHardware: hardware, senderProtocol: targetProtocol,
            targetHardware: senderHardware, targetProtocol: senderProtocol)
    }
}

/// ARP operation codes this package understands.
public enum ARPOperation: UInt16, Hashable, Sendable {
    case request = 1
    case reply = 2
}

/// Why an ARP packet could not be parsed.
public enum ARPError: Error, Hashable, Sendable {
    /// Fewer than 28 bytes.
    case truncated
    /// The Ethernet frame's EtherType is not ARP.
    case notARP
    /// Hardware type other than 1 (Ethernet).
    case unsupportedHardwareType(UInt16)
    /// Protocol type other than 0x0800 (IPv4).
    case unsupportedProtocolType(UInt16)
    /// Hardware length not 6 or protocol length not 4.
    case badAddressLength
    /// Operation other than request (1) or reply (2), e.g. RARP.
    case unsupportedOperation(UInt16)
}
