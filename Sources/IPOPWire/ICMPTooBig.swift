/// "Too big" ICMP errors for frames the overlay cannot carry, so the sending host learns the path
/// MTU (RFC 1191, RFC 8201) and sends smaller packets, instead of retrying into a black hole.
///
/// The answer to an Ethernet frame carrying an IPv4 packet with DF set, or any IPv6 packet:
///
///     Ethernet  dst = the frame's source MAC, src = its destination MAC, the same VLAN tags
///     IPv4      45 00 len | 0000 0000 | ttl 64, proto 1, sum | src = its dst | dst = its src
///     ICMP      type 3 (unreachable), code 4 (fragmentation needed), sum, 0000, next-hop MTU(2),
///               then the start of the packet (its header + data, up to a 576-byte answer, RFC 1812)
///     IPv6      6 | payload len, next 58, hop limit 64 | src = its dst | dst = its src
///     ICMPv6    type 2 (packet too big), code 0, sum, MTU(4), then as much of the packet as keeps
///               the answer within 1280 bytes (RFC 4443 §2.4)
///
/// No answer (RFC 1812 §4.3.2.7, RFC 4443 §2.4): to ICMP error messages, to later IPv4 fragments, to a
/// multicast, broadcast, unspecified or loopback source, for a multicast destination (the answer's
/// source would be a group), or for frames sent from or to a multicast MAC. The answer always fits
/// the MTU it reports.
public enum ICMPTooBig {
    /// Bytes of `out` an answer can need: Ethernet + two tags + a 1280-byte IPv6 packet.
    public static let maximumSize = 14 + 8 + 1280

    /// Writes into `out` the frame answering `frame` (too big for `mtu`, the IP MTU) and returns
    /// its length, or nil when no error may be sent for it.
    public static func answer(_ frame: UnsafeRawBufferPointer, mtu: Int, into out: UnsafeMutableRawBufferPointer) -> Int? {
        guard frame.count >= 14, out.count >= maximumSize, mtu >= 68,
              frame[0] & 1 == 0, frame[6] & 1 == 0 else { return nil }
        var l3 = 14
        var type = frame.wireBE16(12)
        for _ in 0..<2 where type == EtherType.vlan.rawValue || type == EtherType.qinq.rawValue {
            guard frame.count >= l3 + 4 else { return nil }
            type = frame.wireBE16(l3 + 2)
            l3 += 4
        }
        let length: Int
        switch type {
        case EtherType.ipv4.rawValue: guard let n = ipv4(frame, at: l3, mtu: mtu, into: out) else { return nil }; length = n
        case EtherType.ipv6.rawValue: guard let n = ipv6(frame, at: l3, mtu: mtu, into: out) else { return nil }; length = n
        default: return nil
        }
        // Ethernet header and tags: addresses swapped, tags and type as they were.
        out.baseAddress!.copyMemory(from: frame.baseAddress! + 6, byteCount: 6)
        (out.baseAddress! + 6).copyMemory(from: frame.baseAddress!, byteCount: 6)
        (out.baseAddress! + 12).copyMemory(from: frame.baseAddress! + 12, byteCount: l3 - 12)
        return l3 + length
    }

    /// The IPv4 answer at `out[l3...]`; returns its IP length.
    private static func ipv4(_ frame: UnsafeRawBufferPointer, at l3: Int, mtu: Int,
                             into out: UnsafeMutableRawBufferPointer) -> Int? {
        guard frame.count >= l3 + 20, frame[l3] >> 4 == 4 else { return nil }
        let headerLength = Int(frame[l3] & 0x0F) * 4
        let flags = frame.wireBE16(l3 + 6)
        // DF set, first fragment only.
        guard headerLength >= 20, frame.count >= l3 + headerLength, flags & 0x4000 != 0, flags & 0x1FFF == 0 else { return nil }
        let source = frame.wireBE32(l3 + 12), destination = frame.wireBE32(l3 + 16)
        let sourceFirst = source >> 24, destinationFirst = destination >> 24
        guard source != 0, source != 0xFFFF_FFFF, sourceFirst != 127, sourceFirst < 224,
              destinationFirst < 224, destination != 0xFFFF_FFFF else { return nil }
        if frame[l3 + 9] == IPProtocolNumber.icmp {
            // Never about an ICMP error (unreachable, source quench, redirect, time exceeded, parameter problem).
            guard frame.count > l3 + headerLength else { return nil }
            switch frame[l3 + headerLength] {
            case 3, 4, 5, 11, 12: return nil
            default: break
            }
        }
        let packetLength = min(Int(frame.wireBE16(l3 + 2)), frame.count - l3)
        let quoted = min(packetLength, 576 - 28, mtu - 28)
        guard quoted >= headerLength else { return nil }
        let total = 28 + quoted
        let ip = UnsafeMutableRawBufferPointer(rebasing: out[l3 ..< l3 + total])
        ip.wireStoreBE32(0x4500_0000 | UInt32(total), 0)
        ip.wireStoreBE32(0, 4)                                   // id 0, no flags
        ip.wireStoreBE32(0x4001_0000, 8)                         // TTL 64, ICMP, checksum 0 for now
        ip.wireStoreBE32(destination, 12)
        ip.wireStoreBE32(source, 16)
        ip.wireStoreBE16(InternetChecksum.finish(InternetChecksum.add(UnsafeRawBufferPointer(rebasing: ip[0 ..< 20]))), 10)
        ip.wireStoreBE32(0x0304_0000, 20)                        // type 3, code 4, checksum 0 for now
        ip.wireStoreBE32(UInt32(UInt16(clamping: mtu)), 24)      // unused, next-hop MTU
        (ip.baseAddress! + 28).copyMemory(from: frame.baseAddress! + l3, byteCount: quoted)
        ip.wireStoreBE16(InternetChecksum.finish(InternetChecksum.add(UnsafeRawBufferPointer(rebasing: ip[20 ..< total]))), 22)
        return total
    }

    /// The IPv6 answer at `out[l3...]`; returns its IP length.
    private static func ipv6(_ frame: UnsafeRawBufferPointer, at l3: Int, mtu: Int,
                             into out: UnsafeMutableRawBufferPointer) -> Int? {
        guard frame.count >= l3 + 40, frame[l3] >> 4 == 6 else { return nil }
        let source = IPv6Address(frame, offset: l3 + 8), destination = IPv6Address(frame, offset: l3 + 24)
        guard source != IPv6Address(high: 0, low: 0), source.high >> 56 != 0xFF, destination.high >> 56 != 0xFF,
              source != IPv6Address(high: 0, low: 1) else { return nil }
        if frame[l3 + 6] == IPProtocolNumber.ipv6ICMP {
            // Types below 128 are errors: never answered.
            guard frame.count > l3 + 40, frame[l3 + 40] >= 128 else { return nil }
        }
        let packetLength = min(40 + Int(frame.wireBE16(l3 + 4)), frame.count - l3)
        let quoted = min(packetLength, 1280 - 48, mtu - 48)
        guard quoted > 0 else { return nil }
        let total = 48 + quoted
        let ip = UnsafeMutableRawBufferPointer(rebasing: out[l3 ..< l3 + total])
        ip.wireStoreBE32(0x6000_0000, 0)
        ip.wireStoreBE32(UInt32(total - 40) << 16 | UInt32(IPProtocolNumber.ipv6ICMP) << 8 | 64, 4)
        ip.wireStoreBE64(destination.high, 8)
        ip.wireStoreBE64(destination.low, 16)
        ip.wireStoreBE64(source.high, 24)
        ip.wireStoreBE64(source.low, 32)
        ip.wireStoreBE32(0x0200_0000, 40)                        // type 2, code 0, checksum 0 for now
        ip.wireStoreBE32(UInt32(mtu), 44)
        (ip.baseAddress! + 48).copyMemory(from: frame.baseAddress! + l3, byteCount: quoted)
        let sum = InternetChecksum.ipv6PseudoHeader(source: destination, destination: source, upperLayerLength: total - 40,
                                                    nextHeader: IPProtocolNumber.ipv6ICMP)
        ip.wireStoreBE16(InternetChecksum.finish(InternetChecksum.add(UnsafeRawBufferPointer(rebasing: ip[40 ..< total]), to: sum)), 42)
        return total
    }
}
