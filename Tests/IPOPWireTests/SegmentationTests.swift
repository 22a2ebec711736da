import Testing
@testable import IPOPWire

/// Software TSO: super-frames as a vnet-header TAP hands them over (headers of the first
/// segment, payload of all, gso_size = MSS) cut into frames a receiver's stack accepts.
/// Checks use `InternetChecksum` (the byte-pair reference), not `Segmentation.sum`.
@Suite struct SegmentationTests {
    /// Ethernet (+ VLAN tags) + IPv4 or IPv6 + TCP (32 bytes: timestamps) + payload.
    static func superFrame(ipv6: Bool, vlanTags: Int = 0, payload: Int, flags: UInt8 = 0x18) -> [UInt8] {
        var f: [UInt8] = [0x02, 0xBB, 0, 0, 0, 2, 0x02, 0xAA, 0, 0, 0, 1]
        for _ in 0..<vlanTags { f += [0x81, 0x00, 0x00, 0x2A] }
        f += ipv6 ? [0x86, 0xDD] : [0x08, 0x00]
        let tcpLength = 32 + payload
        if ipv6 {
            f += [0x60, 0, 0, 0, UInt8(tcpLength >> 8), UInt8(tcpLength & 0xFF), 6, 64]
            f += [0xFD, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]
            f += [0xFD, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]
        } else {
            let total = 20 + tcpLength
            f += [0x45, 0, UInt8((total >> 8) & 0xFF), UInt8(total & 0xFF), 0x12, 0x34, 0x40, 0, 64, 6, 0xDE, 0xAD,
                  10, 77, 0, 1, 10, 77, 0, 2]
        }
        // ports 40000 -> 5201, seq 0xFFFF_F000 (wraps), ack, data offset 8 (32 bytes), flags, window,
        // checksum (kernel leaves the pseudo-header sum: garbage here), urgent, NOP NOP timestamps.
        f += [0x9C, 0x40, 0x14, 0x51, 0xFF, 0xFF, 0xF0, 0x00, 0, 0, 0x10, 0x00, 0x80, flags, 0x01, 0xF6,
              0xBE, 0xEF, 0, 0, 1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2]
        for i in 0..<payload { f.append(UInt8(truncatingIfNeeded: i &* 13 &+ i >> 8)) }
        return f
    }

    struct Cut {
        var frames: [[UInt8]]
        var plan: Segmentation.Plan
    }

    static func cut(_ frame: [UInt8], _ header: VirtioNetHeader) throws -> Cut {
        var frame = frame
        let plan = try frame.withUnsafeMutableBytes { try Segmentation.plan(header, frame: $0) }
        var frames: [[UInt8]] = []
        for i in 0..<plan.count {
            var out = [UInt8](repeating: 0, count: 9216)
            let n = frame.withUnsafeBytes { src in
                out.withUnsafeMutableBytes { Segmentation.segment(plan, index: i, frame: src, into: $0) }
            }
            frames.append(Array(out[..<n]))
        }
        return Cut(frames: frames, plan: plan)
    }

    static func be16(_ f: [UInt8], _ o: Int) -> Int { Int(f[o]) << 8 | Int(f[o + 1]) }
    static func be32(_ f: [UInt8], _ o: Int) -> UInt32 {
        UInt32(f[o]) << 24 | UInt32(f[o + 1]) << 16 | UInt32(f[o + 2]) << 8 | UInt32(f[o + 3])
    }

    /// Verifies one segment's IP and TCP checksums with the reference implementation.
    static func checksumsVerify(_ f: [UInt8], ip: Int, ipv6: Bool) -> Bool {
        f.withUnsafeBytes { raw in
            let tcp = ip + (ipv6 ? 40 : 20)
            var pseudo: UInt64
            if ipv6 {
                pseudo = InternetChecksum.add(UnsafeRawBufferPointer(rebasing: raw[(ip + 8)..<(ip + 40)]))
            } else {
                guard InternetChecksum.finish(InternetChecksum.add(UnsafeRawBufferPointer(rebasing: raw[ip..<tcp]))) == 0 else { return false }
                pseudo = InternetChecksum.add(UnsafeRawBufferPointer(rebasing: raw[(ip + 12)..<(ip + 20)]))
            }
            pseudo &+= 6 &+ UInt64(f.count - tcp)
            return InternetChecksum.finish(InternetChecksum.add(UnsafeRawBufferPointer(rebasing: raw[tcp...]), to: pseudo)) == 0
        }
    }

    @Test(arguments: [(false, 0), (true, 0), (false, 1), (true, 2)])
    func tcpSuperFrameBecomesValidSegments(ipv6: Bool, vlanTags: Int) throws {
        let ip = 14 + 4 * vlanTags
        let tcp = ip + (ipv6 ? 40 : 20)
        let payload = 4000
        let mss = 1448
        // FIN + PSH + ACK + CWR on the super-frame.
        let frame = Self.superFrame(ipv6: ipv6, vlanTags: vlanTags, payload: payload, flags: 0x80 | 0x19)
        let header = VirtioNetHeader(flags: VirtioNetHeader.needsChecksum,
                                     gsoType: ipv6 ? VirtioNetHeader.gsoTCPv6 : VirtioNetHeader.gsoTCPv4,
                                     headerLength: UInt16(tcp + 32), gsoSize: UInt16(mss),
                                     checksumStart: UInt16(tcp), checksumOffset: 16)
        let cut = try Self.cut(frame, header)
        #expect(cut.frames.map(\.count) == [1448, 1448, 1104].map { tcp + 32 + $0 })
        var joined: [UInt8] = []
        for (i, f) in cut.frames.enumerated() {
            #expect(Array(f[..<ip]) == Array(frame[..<ip]))                       // Ethernet + tags unchanged
            #expect(Self.checksumsVerify(f, ip: ip, ipv6: ipv6), "segment \(i) checksums")
            if ipv6 {
                #expect(Self.be16(f, ip + 4) == f.count - ip - 40)
            } else {
                #expect(Self.be16(f, ip + 2) == f.count - ip)
                #expect(Self.be16(f, ip + 4) == 0x1234 + i)
                #expect(f[ip + 6] == 0x40)                                           // DF kept
            }
            #expect(Self.be32(f, tcp + 4) == 0xFFFF_F000 &+ UInt32(i * mss))         // sequence, wrapping
            let flags = f[tcp + 13]
            #expect(flags & 0x10 != 0)                                               // ACK everywhere
            #expect((flags & 0x01 != 0) == (i == 2))                                 // FIN last only
            #expect((flags & 0x08 != 0) == (i == 2))                                 // PSH last only
            #expect((flags & 0x80 != 0) == (i == 0))                                 // CWR first only
            #expect(Array(f[(tcp + 20)..<(tcp + 32)]) == Array(frame[(tcp + 20)..<(tcp + 32)]))   // options
            joined += f[(tcp + 32)...]
        }
        #expect(joined == Array(frame[(tcp + 32)...]))
    }

    @Test func payloadOfExactlyOneMSSIsOneSegmentAndOddLengthsVerify() throws {
        for payload in [1448, 1, 1447, 2897] {
            let frame = Self.superFrame(ipv6: false, payload: payload)
            let header = VirtioNetHeader(flags: 1, gsoType: VirtioNetHeader.gsoTCPv4 | VirtioNetHeader.gsoECN,
                                         headerLength: 66, gsoSize: 1448, checksumStart: 34, checksumOffset: 16)
            let cut = try Self.cut(frame, header)
            #expect(cut.frames.count == (payload + 1447) / 1448)
            for f in cut.frames { #expect(Self.checksumsVerify(f, ip: 14, ipv6: false)) }
        }
    }

    @Test func plainFrameWithNeedsChecksumGetsItsChecksumCompleted() throws {
        // A non-GSO TCP frame: the kernel leaves the pseudo-header sum (not complemented) in the field.
        var frame = Self.superFrame(ipv6: false, payload: 301)
        let tcp = 34
        // The kernel completes the IPv4 header checksum of a plain frame itself.
        frame[24] = 0
        frame[25] = 0
        let ipSum = frame.withUnsafeBytes { InternetChecksum.finish(InternetChecksum.add(UnsafeRawBufferPointer(rebasing: $0[14..<34]))) }
        frame[24] = UInt8(ipSum >> 8)
        frame[25] = UInt8(ipSum & 0xFF)
        let pseudo = frame.withUnsafeBytes { raw in
            InternetChecksum.add(UnsafeRawBufferPointer(rebasing: raw[26..<34])) &+ 6 &+ UInt64(frame.count - tcp)
        }
        var folded = pseudo
        while folded > 0xFFFF { folded = (folded & 0xFFFF) + (folded >> 16) }
        frame[tcp + 16] = UInt8(folded >> 8)
        frame[tcp + 17] = UInt8(folded & 0xFF)
        let header = VirtioNetHeader(flags: VirtioNetHeader.needsChecksum, checksumStart: UInt16(tcp), checksumOffset: 16)
        let cut = try Self.cut(frame, header)
        #expect(cut.frames.count == 1)
        #expect(cut.frames[0].count == frame.count)
        #expect(Self.checksumsVerify(cut.frames[0], ip: 14, ipv6: false))
        #expect(Array(cut.frames[0][..<(tcp + 16)]) == Array(frame[..<(tcp + 16)]))
    }

    @Test func frameWithoutOffloadPassesUnchanged() throws {
        let frame = Self.superFrame(ipv6: true, payload: 100)
        let cut = try Self.cut(frame, VirtioNetHeader())
        #expect(cut.frames == [frame])
    }

    @Test func unsupportedOrInconsistentHeadersAreRefused() {
        let frame = Self.superFrame(ipv6: false, payload: 3000)
        #expect(throws: Segmentation.Failure.unsupportedGSO(3)) {
            _ = try Self.cut(frame, VirtioNetHeader(flags: 1, gsoType: 3, gsoSize: 1448, checksumStart: 34, checksumOffset: 6))
        }
        // IPv6 GSO type on an IPv4 frame, TCP offset off, zero MSS, truncated.
        #expect(throws: Segmentation.Failure.malformed) {
            _ = try Self.cut(frame, VirtioNetHeader(flags: 1, gsoType: 4, gsoSize: 1448, checksumStart: 34, checksumOffset: 16))
        }
        #expect(throws: Segmentation.Failure.malformed) {
            _ = try Self.cut(frame, VirtioNetHeader(flags: 1, gsoType: 1, gsoSize: 1448, checksumStart: 30, checksumOffset: 16))
        }
        #expect(throws: Segmentation.Failure.malformed) {
            _ = try Self.cut(frame, VirtioNetHeader(flags: 1, gsoType: 1, gsoSize: 0, checksumStart: 34, checksumOffset: 16))
        }
        #expect(throws: Segmentation.Failure.malformed) {
            _ = try Self.cut(Array(frame[..<40]), VirtioNetHeader(flags: 1, gsoType: 1, gsoSize: 1448, checksumStart: 34, checksumOffset: 16))
        }
        #expect(throws: Segmentation.Failure.malformed) {
            _ = try Self.cut(Array(frame[..<60]), VirtioNetHeader(flags: 1, checksumStart: 34, checksumOffset: 60))
        }
    }

    @Test func fastSumEqualsTheReferenceChecksum() {
        var rng = SystemRandomNumberGenerator()
        for length in [0, 1, 2, 3, 7, 8, 9, 15, 16, 17, 1294, 1295, 9000] {
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &rng) }
            bytes.withUnsafeBytes { raw in
                #expect(InternetChecksum.finish(Segmentation.sum(raw, initial: 77)) ==
                        InternetChecksum.finish(InternetChecksum.add(raw, to: 77)), "length \(length)")
            }
        }
    }

    @Test func vnetHeaderRoundTrips() {
        let h = VirtioNetHeader(flags: 1, gsoType: 4, headerLength: 86, gsoSize: 1428, checksumStart: 54, checksumOffset: 16)
        var raw = [UInt8](repeating: 0xFF, count: 10)
        raw.withUnsafeMutableBytes { h.write(to: $0) }
        #expect(raw == [1, 4, 86, 0, 0x94, 0x05, 54, 0, 16, 0])
        #expect(raw.withUnsafeBytes { VirtioNetHeader($0) } == h)
    }
}
