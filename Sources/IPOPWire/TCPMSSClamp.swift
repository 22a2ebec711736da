/// TCP MSS clamping (tinc's `ClampMSS`, on by default there too): the MSS option of a TCP SYN or
/// SYN-ACK that crosses the overlay is lowered to what the overlay MTU carries, so neither end of
/// the connection ever sends a segment the overlay would drop. This closes the commonest MTU black
/// hole of L2 overlays, for TCP at least: containers on a bridge with MTU 1500 behind a TAP of 1280,
/// or two nodes configured with different MTUs (a SYN is clamped on the way out and on the way in).
///
/// Where the option sits (offsets from the start of each header):
///
///     Ethernet  dst(6) src(6) type(2)          type 0x8100 / 0x88A8: a 4-byte tag, then type again (`EthernetFrame`)
///     IPv4      ver/ihl(1) ... frag(2)@6 proto(1)@9 ...     header length ihl*4, TCP if proto 6
///     IPv6      ver(4 bits) ... next(1)@6 ... (40 bytes)   TCP only if next header is 6 (no extensions)
///     TCP       ports(4) seq(4) ack(4) off(4 bits)@12 flags(1)@13 win(2) sum(2)@16 urg(2) options@20
///     option    0 end | 1 nop | kind(1) len(1) data(len-2);  MSS: kind 2, len 4, value(2)
///
/// The largest MSS is the MTU less 40 bytes (IPv4 + TCP headers) or 60 (IPv6 + TCP), as a host
/// computes it for its own interface. The checksum is updated incrementally (RFC 1624, eqn. 3), so
/// the frame's other bytes are not read again; frames whose checksum the kernel left for later
/// (TAP offloads) are completed before this runs (`Segmentation`).
///
/// Anything unexpected (truncated headers, a later fragment, malformed options, not a SYN) leaves
/// the frame untouched: this is an optimisation of TCP, never a filter.
public enum TCPMSSClamp {
    /// Lowers the MSS option of a TCP SYN in `frame` (an Ethernet frame) to fit `mtu`.
    /// Returns true if the frame was changed.
    @inlinable
    public static func clamp(_ frame: UnsafeMutableRawBufferPointer, mtu: Int) -> Bool {
        let bytes = UnsafeRawBufferPointer(frame)
        guard let ethernet = try? EthernetFrame(bytes) else { return false }   // VLAN tags skipped
        let l3 = ethernet.payloadOffset
        let tcp: Int
        let end: Int
        let maxMSS: Int
        switch ethernet.etherType.rawValue {
        case EtherType.ipv4.rawValue:
            guard bytes.count >= l3 + 20, bytes[l3] >> 4 == 4, bytes[l3 + 9] == 6 else { return false }
            let headerLength = Int(bytes[l3] & 0x0F) * 4
            // Only the first fragment carries the TCP header.
            guard headerLength >= 20, bytes.wireBE16(l3 + 6) & 0x1FFF == 0 else { return false }
            tcp = l3 + headerLength
            end = min(bytes.count, l3 + Int(bytes.wireBE16(l3 + 2)))
            maxMSS = mtu - 40
        case EtherType.ipv6.rawValue:
            guard bytes.count >= l3 + 40, bytes[l3] >> 4 == 6, bytes[l3 + 6] == 6 else { return false }
            tcp = l3 + 40
            end = min(bytes.count, tcp + Int(bytes.wireBE16(l3 + 4)))
            maxMSS = mtu - 60
        default:
            return false
        }
        guard maxMSS > 0, end >= tcp + 20, bytes[tcp + 13] & 0x02 != 0 else { return false }   // SYN
        let optionsEnd = tcp + Int(bytes[tcp + 12] >> 4) * 4
        guard optionsEnd > tcp + 20, optionsEnd <= end else { return false }
        var i = tcp + 20
        while i < optionsEnd {
            let kind = bytes[i]
            if kind == 0 { return false }          // end of options
            if kind == 1 { i += 1; continue }      // no-op (padding)
            guard i + 1 < optionsEnd else { return false }
            let length = Int(bytes[i + 1])
            guard length >= 2, i + length <= optionsEnd else { return false }
            if kind == 2 && length == 4 {
                let mss = bytes.wireBE16(i + 2)
                guard Int(mss) > maxMSS else { return false }
                let clamped = UInt16(maxMSS)
                frame.wireStoreBE16(clamped, i + 2)
                // A value at an odd offset from the TCP header adds its bytes swapped to the sum.
                let odd = (i + 2 - tcp) & 1 == 1
                let checksum = bytes.wireBE16(tcp + 16)
                frame.wireStoreBE16(updatedChecksum(checksum, old: odd ? mss.byteSwapped : mss,
                                                    new: odd ? clamped.byteSwapped : clamped), tcp + 16)
                return true
            }
            i += length
        }
        return false
    }

    /// RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m'), in one's-complement arithmetic.
    @inlinable
    static func updatedChecksum(_ checksum: UInt16, old: UInt16, new: UInt16) -> UInt16 {
        var sum = UInt32(~checksum) + UInt32(~old) + UInt32(new)
        sum = (sum & 0xFFFF) + (sum >> 16)
        sum = (sum & 0xFFFF) + (sum >> 16)
        return ~UInt16(sum)
    }
}
