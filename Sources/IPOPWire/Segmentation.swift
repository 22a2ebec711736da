/// The `virtio_net_hdr` a TAP opened with IFF_VNET_HDR puts before every frame (and expects
/// before every frame written to it), as of <linux/virtio_net.h>. Fields are little-endian
/// (the TAP's default on little-endian hosts).
///
///      0        1        2        3        4        5        6        7        8        9
///     +--------+--------+--------+--------+--------+--------+--------+--------+--------+--------+
///     | flags  |gso_type|     hdr_len     |    gso_size     |   csum_start    |   csum_offset   |
///     +--------+--------+--------+--------+--------+--------+--------+--------+--------+--------+
///
/// flags bit 0 NEEDS_CSUM: the L4 checksum is to be completed: sum from `csum_start` to the end
/// of the frame (the field holds the pseudo-header sum) and store at `csum_start + csum_offset`.
/// gso_type 1 TCPV4 / 4 TCPV6 (bit 0x80: ECN): the frame is a TCP segment of up to 64 KB to be
/// cut into `gso_size`-byte payloads (TSO done by the receiver of the frame: us).
public struct VirtioNetHeader: Equatable, Sendable {
    public static let size = 10
    public static let needsChecksum: UInt8 = 1
    public static let gsoNone: UInt8 = 0
    public static let gsoTCPv4: UInt8 = 1
    public static let gsoTCPv6: UInt8 = 4
    public static let gsoECN: UInt8 = 0x80

    public var flags: UInt8
    public var gsoType: UInt8
    public var headerLength: UInt16
    public var gsoSize: UInt16
    public var checksumStart: UInt16
    public var checksumOffset: UInt16

    public init(flags: UInt8 = 0, gsoType: UInt8 = 0, headerLength: UInt16 = 0, gsoSize: UInt16 = 0,
                checksumStart: UInt16 = 0, checksumOffset: UInt16 = 0) {
        self.flags = flags
        self.gsoType = gsoType
        self.headerLength = headerLength
        self.gsoSize = gsoSize
        self.checksumStart = checksumStart
        self.checksumOffset = checksumOffset
    }

    /// Reads the first 10 bytes of `raw` (the caller checks the length).
    public init(_ raw: UnsafeRawBufferPointer) {
        flags = raw[0]
        gsoType = raw[1]
        headerLength = UInt16(raw[2]) | UInt16(raw[3]) << 8
        gsoSize = UInt16(raw[4]) | UInt16(raw[5]) << 8
        checksumStart = UInt16(raw[6]) | UInt16(raw[7]) << 8
        checksumOffset = UInt16(raw[8]) | UInt16(raw[9]) << 8
    }

    public func write(to raw: UnsafeMutableRawBufferPointer) {
        raw[0] = flags
        raw[1] = gsoType
        raw[2] = UInt8(truncatingIfNeeded: headerLength); raw[3] = UInt8(truncatingIfNeeded: headerLength >> 8)
        raw[4] = UInt8(truncatingIfNeeded: gsoSize); raw[5] = UInt8(truncatingIfNeeded: gsoSize >> 8)
        raw[6] = UInt8(truncatingIfNeeded: checksumStart); raw[7] = UInt8(truncatingIfNeeded: checksumStart >> 8)
        raw[8] = UInt8(truncatingIfNeeded: checksumOffset); raw[9] = UInt8(truncatingIfNeeded: checksumOffset >> 8)
    }
}

/// Software TSO: cuts a TCP super-frame read from a vnet-header TAP into MTU-sized Ethernet
/// frames, as a NIC would (RFC 9293 sequence numbers, RFC 791/8200 lengths, RFC 1071 checksums):
/// each segment gets the headers with IPv4 total length, identification (+1 per segment) and
/// header checksum, or IPv6 payload length, rewritten; TCP sequence number advanced by the
/// payload before it; FIN and PSH only on the last segment, CWR only on the first; and a full
/// TCP checksum. Also completes the checksum of a non-GSO frame marked NEEDS_CSUM.
///
/// Pure and allocation-free: works on caller buffers.
public enum Segmentation {
    public enum Failure: Error, Equatable, Sendable {
        /// A GSO type other than TCPv4/TCPv6 (we do not announce UFO/USO).
        case unsupportedGSO(UInt8)
        /// Headers inconsistent with the vnet header or truncated.
        case malformed
    }

    /// What `segment` needs to cut one super-frame, from `plan`.
    public struct Plan: Equatable, Sendable {
        /// Segments the frame becomes (1: not a GSO frame, pass it on as it is).
        public let count: Int
        public let isGSO: Bool
        let ipOffset: Int
        let tcpOffset: Int
        let headerLength: Int
        let mss: Int
        let isIPv4: Bool
        let frameLength: Int

        /// Bytes of segment `index`.
        public func length(of index: Int) -> Int {
            guard isGSO else { return frameLength }
            let payload = frameLength - headerLength
            return headerLength + min(mss, payload - index * mss)
        }
    }

    /// Reads the frame's headers. For a non-GSO frame with NEEDS_CSUM, completes the checksum
    /// in place. Returns the plan (count 1 for any non-GSO frame).
    public static func plan(_ header: VirtioNetHeader, frame: UnsafeMutableRawBufferPointer) throws(Failure) -> Plan {
        let gso = header.gsoType & ~VirtioNetHeader.gsoECN
        if gso == VirtioNetHeader.gsoNone {
            if header.flags & VirtioNetHeader.needsChecksum != 0 {
                try completeChecksum(header, frame: frame)
            }
            return Plan(count: 1, isGSO: false, ipOffset: 0, tcpOffset: 0, headerLength: 0, mss: 0, isIPv4: false,
                        frameLength: frame.count)
        }
        guard gso == VirtioNetHeader.gsoTCPv4 || gso == VirtioNetHeader.gsoTCPv6 else { throw .unsupportedGSO(header.gsoType) }
        // Ethernet, any VLAN tags, then IP.
        var ipOffset = EthernetFrame.headerSize
        guard frame.count >= ipOffset else { throw .malformed }
        var etherType = UInt16(frame[12]) << 8 | UInt16(frame[13])
        while etherType == 0x8100 || etherType == 0x88A8 {
            guard frame.count >= ipOffset + 4 else { throw .malformed }
            etherType = UInt16(frame[ipOffset + 2]) << 8 | UInt16(frame[ipOffset + 3])
            ipOffset += 4
        }
        let isIPv4 = gso == VirtioNetHeader.gsoTCPv4
        guard etherType == (isIPv4 ? 0x0800 : 0x86DD), frame.count >= ipOffset + (isIPv4 ? 20 : 40) else { throw .malformed }
        let tcpOffset = Int(header.checksumStart)
        if isIPv4 {
            let ihl = Int(frame[ipOffset] & 0x0F) * 4
            guard frame[ipOffset] >> 4 == 4, ihl >= 20, tcpOffset == ipOffset + ihl, frame[ipOffset + 9] == 6 else { throw .malformed }
        } else {
            guard frame[ipOffset] >> 4 == 6, tcpOffset >= ipOffset + 40 else { throw .malformed }
        }
        guard frame.count >= tcpOffset + 20 else { throw .malformed }
        let tcpHeaderLength = Int(frame[tcpOffset + 12] >> 4) * 4
        let headerLength = tcpOffset + tcpHeaderLength
        let mss = Int(header.gsoSize)
        guard tcpHeaderLength >= 20, frame.count >= headerLength, mss > 0 else { throw .malformed }
        let payload = frame.count - headerLength
        let count = max(1, (payload + mss - 1) / mss)
        return Plan(count: count, isGSO: true, ipOffset: ipOffset, tcpOffset: tcpOffset, headerLength: headerLength,
                    mss: mss, isIPv4: isIPv4, frameLength: frame.count)
    }

    /// Writes segment `index` of `frame` into `out` (at least `plan.length(of: index)` bytes).
    /// Returns its length. For a non-GSO plan, copies the frame.
    public static func segment(_ plan: Plan, index: Int, frame: UnsafeRawBufferPointer,
                               into out: UnsafeMutableRawBufferPointer) -> Int {
        let length = plan.length(of: index)
        guard plan.isGSO else {
            out.baseAddress!.copyMemory(from: frame.baseAddress!, byteCount: length)
            return length
        }
        let h = plan.headerLength
        let payloadStart = h + index * plan.mss
        let segmentPayload = length - h
        let o = out.baseAddress!
        o.copyMemory(from: frame.baseAddress!, byteCount: h)
        (o + h).copyMemory(from: frame.baseAddress! + payloadStart, byteCount: segmentPayload)

        let ip = plan.ipOffset
        let tcp = plan.tcpOffset
        let ipTotal = length - ip
        var pseudo: UInt64
        if plan.isIPv4 {
            storeBE16(out, ip + 2, UInt16(ipTotal))
            let id = UInt16(out[ip + 4]) << 8 | UInt16(out[ip + 5])
            storeBE16(out, ip + 4, id &+ UInt16(truncatingIfNeeded: index))
            storeBE16(out, ip + 10, 0)
            let ihl = tcp - ip
            storeBE16(out, ip + 10, InternetChecksum.finish(sum(UnsafeRawBufferPointer(rebasing: out[ip ..< ip + ihl]))))
            pseudo = sum(UnsafeRawBufferPointer(rebasing: out[ip + 12 ..< ip + 20]))   // source, destination
        } else {
            storeBE16(out, ip + 4, UInt16(ipTotal - 40))
            pseudo = sum(UnsafeRawBufferPointer(rebasing: out[ip + 8 ..< ip + 40]))
        }
        let tcpLength = length - tcp
        pseudo &+= 6 &+ UInt64(tcpLength)
        // Sequence number, flags.
        let seq = UInt32(out[tcp + 4]) << 24 | UInt32(out[tcp + 5]) << 16 | UInt32(out[tcp + 6]) << 8 | UInt32(out[tcp + 7])
        let newSeq = seq &+ UInt32(truncatingIfNeeded: index * plan.mss)
        out[tcp + 4] = UInt8(truncatingIfNeeded: newSeq >> 24)
        out[tcp + 5] = UInt8(truncatingIfNeeded: newSeq >> 16)
        out[tcp + 6] = UInt8(truncatingIfNeeded: newSeq >> 8)
        out[tcp + 7] = UInt8(truncatingIfNeeded: newSeq)
        if index != plan.count - 1 { out[tcp + 13] &= ~0x09 }   // FIN, PSH: last segment only
        if index != 0 { out[tcp + 13] &= ~0x80 }                // CWR: first segment only
        storeBE16(out, tcp + 16, 0)
        let tcpSum = sum(UnsafeRawBufferPointer(rebasing: out[tcp ..< length]), initial: pseudo)
        storeBE16(out, tcp + 16, InternetChecksum.finish(tcpSum))
        return length
    }

    /// NEEDS_CSUM on a whole frame: the field at checksumStart + checksumOffset holds the
    /// pseudo-header sum; sum from checksumStart to the end and store the folded complement.
    static func completeChecksum(_ header: VirtioNetHeader, frame: UnsafeMutableRawBufferPointer) throws(Failure) {
        let start = Int(header.checksumStart)
        let field = start + Int(header.checksumOffset)
        guard start < frame.count, field + 2 <= frame.count else { throw .malformed }
        var value = InternetChecksum.finish(sum(UnsafeRawBufferPointer(rebasing: frame[start...])))
        if value == 0 && header.checksumOffset == 6 { value = 0xFFFF }   // UDP: 0 means "no checksum"
        storeBE16(frame, field, value)
    }

    /// RFC 1071 sum of `raw` (big-endian 16-bit words, odd byte padded), 8 bytes at a time:
    /// equal to `InternetChecksum.add` once folded, several times faster.
    @inline(__always)
    static func sum(_ raw: UnsafeRawBufferPointer, initial: UInt64 = 0) -> UInt64 {
        var acc: UInt64 = 0
        var i = 0
        let n = raw.count
        let base = raw.baseAddress!
        // Sum native-endian 32-bit halves of 64-bit loads; byte-swap the folded 16 bits at the end.
        while i + 8 <= n {
            let w = base.loadUnaligned(fromByteOffset: i, as: UInt64.self)
            acc &+= (w & 0xFFFF_FFFF) &+ (w >> 32)
            i += 8
        }
        while i + 2 <= n {
            acc &+= UInt64(base.loadUnaligned(fromByteOffset: i, as: UInt16.self))
            i += 2
        }
        if i < n { acc &+= UInt64(raw[i]) }   // odd byte: low byte in native (little-endian) order = high byte big-endian
        while acc > 0xFFFF { acc = (acc & 0xFFFF) &+ (acc >> 16) }
        let native = UInt16(truncatingIfNeeded: acc)
        return initial &+ UInt64(native.byteSwapped)   // little-endian host: swap to the big-endian word sum
    }

    @inline(__always)
    static func storeBE16(_ raw: UnsafeMutableRawBufferPointer, _ offset: Int, _ value: UInt16) {
        raw[offset] = UInt8(truncatingIfNeeded: value >> 8)
        raw[offset + 1] = UInt8(truncatingIfNeeded: value)
    }
}
