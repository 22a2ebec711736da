/// Receive-side coalescing for a vnet-header TAP (the inverse of `Segmentation`): consecutive
/// IPv4 or IPv6 TCP segments of one flow, as a peer's TSO cut them, are joined into one super-frame
/// written to the TAP with a GSO vnet header, so the kernel takes ~45 frames in one write and
/// hands them up as one packet (like NIC GRO).
///
/// A frame joins the pending super-frame when it is IPv4 without options or fragmentation (or IPv6
/// whose next header is TCP: no extension headers), TCP with only ACK (and PSH on the last),
/// carries data, and matches the first segment's Ethernet addresses, IPv4 TOS/TTL/DF/addresses
/// (IPv6 traffic class/flow label/hop limit/addresses), ports, ack, window and TCP options exactly, with
/// the next expected sequence number and a payload no longer than the first's. A shorter payload
/// or PSH closes the super-frame. Anything else is not eligible: the caller writes out what is
/// pending, then that frame as it is (order preserved).
///
/// The super-frame's TCP checksum is left partial (NEEDS_CSUM, pseudo-header sum in the field) as
/// a NIC's GRO would hand it over; the segments' own checksums are not verified (they crossed the
/// authenticated link; the sender's stack made them). One pending super-frame; allocation-free.
public final class TCPCoalescer {
    public enum Offer: Equatable, Sendable {
        /// Taken: it started a new super-frame or was appended to the pending one.
        case taken
        /// Does not fit the pending super-frame: `take` that first, then offer again.
        case flushFirst
        /// Never coalesced (not IPv4 TCP data): `take` what is pending, then write it plainly.
        case notEligible
    }

    /// 10-byte vnet header + up to 64 KB frame.
    static let capacity = VirtioNetHeader.size + 14 + 65_535
    let buffer: UnsafeMutableRawBufferPointer
    /// Bytes of frame in the buffer (after the vnet header); 0: nothing pending.
    public private(set) var frameLength = 0
    public private(set) var segments = 0
    var headerLength = 0
    /// Offset of the TCP header: 34 (IPv4) or 54 (IPv6); the frame's IP version follows from it.
    var tcpOffset = 0
    var mss = 0
    var nextSeq: UInt32 = 0
    var closed = false
    /// Caller's tag for what the pending frame belongs to (the node: its overlay index).
    public var owner = -1

    public init() {
        buffer = .allocate(byteCount: Self.capacity, alignment: 16)
    }

    deinit { buffer.deallocate() }

    public var isEmpty: Bool { frameLength == 0 }

    /// IPv4 or IPv6 TCP header facts of an eligible frame, or nil.
    @inline(__always)
    static func eligible(_ f: UnsafeRawBufferPointer) -> (tcp: Int, header: Int, payload: Int, seq: UInt32, psh: Bool)? {
        let ip = 14
        guard f.count >= ip + 40, f[12] == 0x08 || f[12] == 0x86 else { return nil }
        let tcp: Int
        if f[12] == 0x08 {
            guard f[13] == 0x00, f[ip] == 0x45, f[ip + 9] == 6 else { return nil }
            guard f[ip + 6] & 0x3F == 0, f[ip + 7] == 0 else { return nil }          // no MF, offset 0
            let total = Int(f[ip + 2]) << 8 | Int(f[ip + 3])
            guard total == f.count - ip else { return nil }
            tcp = ip + 20
        } else {
            guard f[13] == 0xDD, f.count >= ip + 60, f[ip] >> 4 == 6, f[ip + 6] == 6 else { return nil }
            let payloadLength = Int(f[ip + 4]) << 8 | Int(f[ip + 5])
            guard payloadLength == f.count - ip - 40 else { return nil }
            tcp = ip + 40
        }
        let tcpHeader = Int(f[tcp + 12] >> 4) * 4
        let flags = f[tcp + 13]
        guard tcpHeader >= 20, flags & ~0x08 == 0x10 else { return nil }           // ACK, maybe PSH; nothing else
        let header = tcp + tcpHeader
        guard f.count > header else { return nil }
        let seq = UInt32(f[tcp + 4]) << 24 | UInt32(f[tcp + 5]) << 16 | UInt32(f[tcp + 6]) << 8 | UInt32(f[tcp + 7])
        return (tcp, header, f.count - header, seq, flags & 0x08 != 0)
    }

    /// Offers one received frame.
    public func offer(_ f: UnsafeRawBufferPointer) -> Offer {
        guard let e = Self.eligible(f) else { return .notEligible }
        let frame = buffer.baseAddress! + VirtioNetHeader.size
        if frameLength == 0 {
            frame.copyMemory(from: f.baseAddress!, byteCount: f.count)
            frameLength = f.count
            segments = 1
            headerLength = e.header
            tcpOffset = e.tcp
            mss = e.payload
            nextSeq = e.seq &+ UInt32(e.payload)
            closed = e.psh
            return .taken
        }
        guard !closed, e.tcp == tcpOffset, e.header == headerLength, e.seq == nextSeq, e.payload <= mss,
              frameLength + e.payload <= Self.capacity - VirtioNetHeader.size,
              frameLength - 14 + e.payload <= 65_535 else { return .flushFirst }
        let p = UnsafeRawBufferPointer(start: frame, count: frameLength)
        let tcp = e.tcp
        // Same Ethernet addresses; IPv4: TOS, DF, TTL, protocol, addresses (IPv6: version, traffic
        // class, flow label, hop limit, addresses); TCP: ports, ack, offset, flags but PSH, window,
        // urgent, options.
        let sameIP = tcp == 34
            ? p[15] == f[15] && p[20] == f[20] && p[22] == f[22] && memoryEqual(p, f, 26, 8)
            : memoryEqual(p, f, 14, 4) && p[21] == f[21] && memoryEqual(p, f, 22, 32)
        guard sameIP, memoryEqual(p, f, 0, 12),
              memoryEqual(p, f, tcp, 4), memoryEqual(p, f, tcp + 8, 4),
              p[tcp + 12] == f[tcp + 12], p[tcp + 13] & ~0x08 == f[tcp + 13] & ~0x08,
              memoryEqual(p, f, tcp + 14, 2), memoryEqual(p, f, tcp + 18, 2),
              memoryEqual(p, f, tcp + 20, headerLength - tcp - 20) else { return .flushFirst }
        (frame + frameLength).copyMemory(from: f.baseAddress! + e.header, byteCount: e.payload)
        frameLength += e.payload
        segments += 1
        nextSeq = e.seq &+ UInt32(e.payload)
        if e.psh { buffer[VirtioNetHeader.size + tcp + 13] |= 0x08 }
        if e.psh || e.payload < mss { closed = true }
        return .taken
    }

    /// The pending frame with its vnet header in front, ready for one TAP write (valid until the
    /// next `offer`); empties the coalescer. A single segment goes out unchanged (plain header).
    public func take() -> UnsafeRawBufferPointer {
        let f = UnsafeMutableRawBufferPointer(rebasing: buffer[VirtioNetHeader.size ..< VirtioNetHeader.size + frameLength])
        var header = VirtioNetHeader()
        if segments > 1 {
            let ip = 14
            let tcp = tcpOffset
            var pseudo: UInt64
            if tcp == 34 {
                let total = frameLength - ip
                f[ip + 2] = UInt8(truncatingIfNeeded: total >> 8)
                f[ip + 3] = UInt8(truncatingIfNeeded: total)
                f[ip + 10] = 0
                f[ip + 11] = 0
                let ipCheck = InternetChecksum.finish(Segmentation.sum(UnsafeRawBufferPointer(rebasing: f[ip ..< tcp])))
                f[ip + 10] = UInt8(truncatingIfNeeded: ipCheck >> 8)
                f[ip + 11] = UInt8(truncatingIfNeeded: ipCheck)
                pseudo = Segmentation.sum(UnsafeRawBufferPointer(rebasing: f[(ip + 12) ..< (ip + 20)]))
            } else {
                let payloadLength = frameLength - tcp
                f[ip + 4] = UInt8(truncatingIfNeeded: payloadLength >> 8)
                f[ip + 5] = UInt8(truncatingIfNeeded: payloadLength)
                pseudo = Segmentation.sum(UnsafeRawBufferPointer(rebasing: f[(ip + 8) ..< (ip + 40)]))
            }
            // Partial TCP checksum: the folded pseudo-header sum (not complemented), as CHECKSUM_PARTIAL wants.
            pseudo = pseudo &+ 6 &+ UInt64(frameLength - tcp)
            while pseudo > 0xFFFF { pseudo = (pseudo & 0xFFFF) &+ (pseudo >> 16) }
            f[tcp + 16] = UInt8(truncatingIfNeeded: pseudo >> 8)
            f[tcp + 17] = UInt8(truncatingIfNeeded: pseudo)
            header = VirtioNetHeader(flags: VirtioNetHeader.needsChecksum,
                                     gsoType: tcp == 34 ? VirtioNetHeader.gsoTCPv4 : VirtioNetHeader.gsoTCPv6,
                                     headerLength: UInt16(headerLength), gsoSize: UInt16(mss),
                                     checksumStart: UInt16(tcp), checksumOffset: 16)
        }
        header.write(to: UnsafeMutableRawBufferPointer(rebasing: buffer[0 ..< VirtioNetHeader.size]))
        let out = UnsafeRawBufferPointer(rebasing: buffer[0 ..< VirtioNetHeader.size + frameLength])
        frameLength = 0
        segments = 0
        closed = false
        return out
    }

    @inline(__always)
    private func memoryEqual(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer, _ offset: Int, _ count: Int) -> Bool {
        count <= 0 || memcmpBytes(a.baseAddress! + offset, b.baseAddress! + offset, count)
    }
}

@inline(__always)
func memcmpBytes(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer, _ count: Int) -> Bool {
    var i = 0
    while i + 8 <= count {
        if a.loadUnaligned(fromByteOffset: i, as: UInt64.self) != b.loadUnaligned(fromByteOffset: i, as: UInt64.self) { return false }
        i += 8
    }
    while i < count {
        if a.load(fromByteOffset: i, as: UInt8.self) != b.load(fromByteOffset: i, as: UInt8.self) { return false }
        i += 1
    }
    return true
}
