/// ICMP errors the node sends on behalf of the overlay, so senders get an answer instead of a
/// timeout: "too big" for a frame the overlay's MTU cannot carry (the sender learns the path MTU,
/// RFC 1191 / RFC 8201, and sends smaller packets), and "unreachable" for an L3 destination no peer
/// holds (ping says "Destination Host Unreachable" at once).
///
/// The answer to an Ethernet frame carrying an IPv4 or IPv6 packet:
///
///     Ethernet  dst = the frame's source MAC, src = its destination MAC, the same VLAN tags
///     IPv4      45 00 len | 0000 0000 | ttl 64, proto 1, sum | src | dst = its src
///     ICMP      too big: type 3, code 4 (fragmentation needed), sum, 0000, next-hop MTU(2)
///               unreachable: type 3, code 1 (host unreachable), sum, 00000000
///               then the start of the packet (its header + data, up to a 576-byte answer, RFC 1812)
///     IPv6      6 | payload len, next 58, hop limit 64 | src | dst = its src
///     ICMPv6    too big: type 2 (packet too big), code 0, sum, MTU(4)
///               unreachable: type 1, code 3 (address unreachable), sum, 00000000
///               then as much of the packet as keeps the answer within 1280 bytes (RFC 4443 §2.4)
///
/// The answer's source address is the packet's destination: the node speaks for the path to it.
/// (A router would answer from its own address, but the node has none of its own on the overlay:
/// in L3 mode its address is the host's, and the host drops an ICMP error "from itself" arriving on
/// the TAP as a martian.) ping then says "From 10.10.0.77 ... Destination Host Unreachable".
///
/// No answer (RFC 1812 §4.3.2.7, RFC 4443 §2.4): to ICMP error messages, to later IPv4 fragments, to a
/// multicast, broadcast, unspecified or loopback source, for a multicast destination, or for frames
/// sent from or to a multicast MAC; "too big" for IPv4 only with DF set. The answer always fits the
/// MTU given.
public enum ICMPError {
    /// Bytes of `out` an answer can need: Ethernet + two tags + a 1280-byte IPv6 packet.
    public static let maximumSize = 14 + 8 + 1280

    public enum Kind: Equatable, Sendable {
        /// Fragmentation needed / packet too big, carrying `mtu`.
        case tooBig
        /// Host (IPv4) or address (IPv6) unreachable.
        case unreachable
    }

    /// Writes into `out` the "too big" frame answering `frame` (too big for `mtu`, the IP MTU) and
    /// returns its length, or nil when no error may be sent for it.
    public static func tooBig(_ frame: UnsafeRawBufferPointer, mtu: Int, into out: UnsafeMutableRawBufferPointer) -> Int? {
        answer(frame, kind: .tooBig, mtu: mtu, into: out)
    }

    /// Writes into `out` the "host/address unreachable" frame answering `frame`, no longer than
    /// `mtu` allows, and returns its length, or nil when no error may be sent for it.
    public static func unreachable(_ frame: UnsafeRawBufferPointer, mtu: Int, into out: UnsafeMutableRawBufferPointer) -> Int? {
        answer(frame, kind: .unreachable, mtu: mtu, into: out)
    }

    static func answer(_ frame: UnsafeRawBufferPointer, kind: Kind, mtu: Int, into out: UnsafeMutableRawBufferPointer) -> Int? {
        guard out.count >= maximumSize, mtu >= 68, let ethernet = try? EthernetFrame(frame),
              ethernet.vlanTagCount <= 2, frame[0] & 1 == 0, frame[6] & 1 == 0 else { return nil }
        let l3 = ethernet.payloadOffset
        let length: Int
        switch ethernet.etherType.rawValue {
        case EtherType.ipv4.rawValue: guard let n = ipv4(frame, at: l3, kind: kind, mtu: mtu, into: out) else { return nil }; length = n
        case EtherType.ipv6.rawValue: guard let n = ipv6(frame, at: l3, kind: kind, mtu: mtu, into: out) else { return nil }; length = n
        default: return nil
        }
        // Ethernet header and tags: addresses swapped, tags and type as they were.
        out.baseAddress!.copyMemory(from: frame.baseAddress! + 6, byteCount: 6)
        (out.baseAddress! + 6).copyMemory(from: frame.baseAddress!, byteCount: 6)
        (out.baseAddress! + 12).copyMemory(from: frame.baseAddress! + 12, byteCount: l3 - 12)
        return l3 + length
    }

    /// The IPv4 answer at `out[l3...]`; returns its IP length.
    private static func ipv4(_ frame: UnsafeRawBufferPointer, at l3: Int, kind: Kind, mtu: Int,
                             into out: UnsafeMutableRawBufferPointer) -> Int? {
        guard frame.count >= l3 + 20, frame[l3] >> 4 == 4 else { return nil }
        let headerLength = Int(frame[l3] & 0x0F) * 4
        let flags = frame.wireBE16(l3 + 6)
        // First fragment only; "too big" only with DF set.
        guard headerLength >= 20, frame.count >= l3 + headerLength, flags & 0x1FFF == 0,
              kind != .tooBig || flags & 0x4000 != 0 else { return nil }
        let source = frame.wireBE32(l3 + 12), destination = frame.wireBE32(l3 + 16)
        let typeCode: UInt32 = kind == .tooBig ? 0x0304 : 0x0301
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
        ip.wireStoreBE32(typeCode << 16, 20)                     // type 3, code 4 or 1, checksum 0 for now
        ip.wireStoreBE32(kind == .tooBig ? UInt32(UInt16(clamping: mtu)) : 0, 24)   // unused, next-hop MTU
        (ip.baseAddress! + 28).copyMemory(from: frame.baseAddress! + l3, byteCount: quoted)
        ip.wireStoreBE16(InternetChecksum.finish(InternetChecksum.add(UnsafeRawBufferPointer(rebasing: ip[20 ..< total]))), 22)
        return total
    }

    /// The IPv6 answer at `out[l3...]`; returns its IP length.
    private static func ipv6(_ frame: UnsafeRawBufferPointer, at l3: Int, kind: Kind, mtu: Int,
                             into out: UnsafeMutableRawBufferPointer) -> Int? {
        guard frame.count >= l3 + 40, frame[l3] >> 4 == 6 else { return nil }
        let source = IPv6Address(frame, offset: l3 + 8), destination = IPv6Address(frame, offset: l3 + 24)
        guard source != IPv6Address(high: 0, low: 0), source.high >> 56 != 0xFF, destination.high >> 56 != 0xFF,
              source != IPv6Address(high: 0, low: 1) else { return nil }
        let typeCode: UInt32 = kind == .tooBig ? 0x0200 : 0x0103
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
        ip.wireStoreBE32(typeCode << 16, 40)                     // type 2 code 0, or type 1 code 3; checksum 0 for now
        ip.wireStoreBE32(kind == .tooBig ? UInt32(mtu) : 0, 44)
        (ip.baseAddress! + 48).copyMemory(from: frame.baseAddress! + l3, byteCount: quoted)
        let sum = InternetChecksum.ipv6PseudoHeader(source: destination, destination: source, upperLayerLength: total - 40,
                                                    nextHeader: IPProtocolNumber.ipv6ICMP)
        ip.wireStoreBE16(InternetChecksum.finish(InternetChecksum.add(UnsafeRawBufferPointer(rebasing: ip[40 ..< total]), to: sum)), 42)
        return total
    }
}
