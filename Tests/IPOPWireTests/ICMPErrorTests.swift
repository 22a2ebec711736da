import Testing
@testable import IPOPWire

@Suite struct ICMPErrorTests {
    static let hostA: [UInt8] = [2, 0, 0, 0, 0, 0xa]   // the sender of the big frame
    static let hostB: [UInt8] = [2, 0, 0, 0, 0, 0xb]

    /// A frame from hostA to hostB: IPv4 10.0.6.1 -> 10.0.6.2, UDP, `ipLength` bytes of IP.
    static func ipv4Frame(ipLength: Int = 1400, df: Bool = true, fragmentOffset: UInt16 = 0, protocolNumber: UInt8 = 17,
                          firstPayloadByte: UInt8 = 0, source: [UInt8] = [10, 0, 6, 1], destination: [UInt8] = [10, 0, 6, 2],
                          tags: Int = 0, dstMAC: [UInt8] = hostB) -> [UInt8] {
        var f = dstMAC + hostA
        for _ in 0..<tags { f += [0x81, 0, 0, 5] }
        f += [0x08, 0x00]
        let flags = (df ? 0x4000 : 0) | fragmentOffset
        f += [0x45, 0, UInt8(ipLength >> 8), UInt8(ipLength & 0xff), 0x12, 0x34, UInt8(flags >> 8), UInt8(flags & 0xff),
              64, protocolNumber, 0, 0] + source + destination
        f += [firstPayloadByte] + (1..<(ipLength - 20)).map { UInt8(truncatingIfNeeded: $0) }
        return f
    }

    static func ipv6Frame(payloadLength: Int = 1400, nextHeader: UInt8 = 17, firstPayloadByte: UInt8 = 0,
                          source: IPv6Address = IPv6Address("fd00::1")!, destination: IPv6Address = IPv6Address("fd00::2")!) -> [UInt8] {
        var f = hostB + hostA + [0x86, 0xdd]
        f += [0x60, 0, 0, 0, UInt8(payloadLength >> 8), UInt8(payloadLength & 0xff), nextHeader, 64]
        withUnsafeBytes(of: source.high.bigEndian) { f += $0 }
        withUnsafeBytes(of: source.low.bigEndian) { f += $0 }
        withUnsafeBytes(of: destination.high.bigEndian) { f += $0 }
        withUnsafeBytes(of: destination.low.bigEndian) { f += $0 }
        f += [firstPayloadByte] + (1..<payloadLength).map { UInt8(truncatingIfNeeded: $0) }
        return f
    }

    static func answer(_ frame: [UInt8], mtu: Int = 1280) -> [UInt8]? {
        var out = [UInt8](repeating: 0, count: ICMPError.maximumSize)
        let length = frame.withUnsafeBytes { f in out.withUnsafeMutableBytes { ICMPError.tooBig(f, mtu: mtu, into: $0) } }
        return length.map { Array(out[..<$0]) }
    }

    static func sum(_ bytes: ArraySlice<UInt8>, plus extra: UInt64 = 0) -> UInt16 {
        Array(bytes).withUnsafeBytes { InternetChecksum.finish(InternetChecksum.add($0, to: extra)) }
    }

    @Test func ipv4WithDFGetsFragmentationNeededWithTheMTU() throws {
        let frame = Self.ipv4Frame()
        let a = try #require(Self.answer(frame))
        #expect(Array(a[0..<6]) == Self.hostA)                   // back to the sender
        #expect(Array(a[6..<12]) == Self.hostB)
        #expect(Array(a[12..<14]) == [0x08, 0x00])
        let ip = a[14...]
        #expect(a.count == 14 + 576)                              // RFC 1812: at most 576 bytes
        #expect(Array(ip.prefix(4)) == [0x45, 0, 0x02, 0x40])
        #expect(ip[ip.startIndex + 9] == 1)
        #expect(Array(ip[(14 + 12)..<(14 + 16)]) == [10, 0, 6, 2])   // from the unreachable destination
        #expect(Array(ip[(14 + 16)..<(14 + 20)]) == [10, 0, 6, 1])   // to the sender
        #expect(Self.sum(a[14..<34]) == 0)                         // IP header checksum
        #expect(Array(a[34..<42]) == [3, 4, a[36], a[37], 0, 0, 0x05, 0x00])   // next-hop MTU 1280
        #expect(Self.sum(a[34...]) == 0)                           // ICMP checksum
        #expect(Array(a[42...]) == Array(frame[14..<(14 + 548)]))  // the start of the packet
    }

    @Test func vlanTagsAreKeptAndSmallPacketsAreQuotedWhole() throws {
        let frame = Self.ipv4Frame(ipLength: 100, tags: 2)
        let a = try #require(Self.answer(frame, mtu: 90))
        #expect(Array(a[12..<22]) == Array(frame[12..<22]))
        #expect(a.count == 22 + 28 + 62)                           // quote capped so the answer fits mtu 90
        #expect(Array(a[(22 + 24)..<(22 + 28)]) == [0, 0, 0, 90])
    }

    @Test func ipv6GetsPacketTooBigWithinTwelveEightyBytes() throws {
        let frame = Self.ipv6Frame()
        let a = try #require(Self.answer(frame, mtu: 1300))
        #expect(Array(a[0..<6]) == Self.hostA)
        #expect(a.count == 14 + 1280)
        let source = IPv6Address("fd00::2")!, destination = IPv6Address("fd00::1")!
        a.withUnsafeBytes { raw in
            #expect(IPv6Address(raw, offset: 14 + 8) == source)
            #expect(IPv6Address(raw, offset: 14 + 24) == destination)
        }
        #expect(Array(a[(14 + 4)..<(14 + 8)]) == [0x04, 0xd8, 58, 64])   // payload 1240, ICMPv6, hop limit 64
        #expect(a[54] == 2 && a[55] == 0)
        #expect(Array(a[58..<62]) == [0, 0, 0x05, 0x14])                // MTU 1300
        let pseudo = InternetChecksum.ipv6PseudoHeader(source: source, destination: destination, upperLayerLength: 1240, nextHeader: 58)
        #expect(Self.sum(a[54...], plus: pseudo) == 0)
        #expect(Array(a[62...]) == Array(frame[14..<(14 + 1232)]))
    }

    @Test func noAnswerWhereRFC1812AndRFC4443ForbidOne() {
        let cases: [(String, [UInt8])] = [
            ("DF clear", Self.ipv4Frame(df: false)),
            ("later fragment", Self.ipv4Frame(fragmentOffset: 100)),
            ("about an ICMP unreachable", Self.ipv4Frame(protocolNumber: 1, firstPayloadByte: 3)),
            ("about an ICMP time exceeded", Self.ipv4Frame(protocolNumber: 1, firstPayloadByte: 11)),
            ("multicast destination", Self.ipv4Frame(destination: [239, 1, 1, 1])),
            ("broadcast destination", Self.ipv4Frame(destination: [255, 255, 255, 255])),
            ("unspecified source", Self.ipv4Frame(source: [0, 0, 0, 0])),
            ("loopback source", Self.ipv4Frame(source: [127, 0, 0, 1])),
            ("to a multicast MAC", Self.ipv4Frame(dstMAC: [1, 0, 0x5e, 0, 0, 1])),
            ("ICMPv6 error", Self.ipv6Frame(nextHeader: 58, firstPayloadByte: 1)),
            ("IPv6 multicast destination", Self.ipv6Frame(destination: IPv6Address("ff02::1")!)),
            ("IPv6 unspecified source", Self.ipv6Frame(source: IPv6Address("::")!)),
        ]
        for (what, frame) in cases {
            #expect(Self.answer(frame) == nil, "\(what)")
        }
        #expect(Self.answer(Self.ipv4Frame(protocolNumber: 1, firstPayloadByte: 8)) != nil, "an echo request is answered")
        #expect(Self.answer(Self.ipv6Frame(nextHeader: 58, firstPayloadByte: 128)) != nil, "an ICMPv6 echo request is answered")
    }

    @Test func truncatedAndRandomFramesNeverTrap() {
        let full = Self.ipv4Frame()
        for length in 0..<60 { _ = Self.answer(Array(full[..<length])) }
        let full6 = Self.ipv6Frame()
        for length in 0..<80 { _ = Self.answer(Array(full6[..<length])) }
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<20_000 {
            var f = (0..<Int.random(in: 0...200, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            if f.count > 14 { f[0] &= 0xFE; f[6] &= 0xFE }
            if f.count > 15, Bool.random(using: &rng) { f[12] = 0x08; f[13] = 0; f[14] = 0x45 }
            if f.count > 15, Bool.random(using: &rng) { f[12] = 0x86; f[13] = 0xdd; f[14] = 0x60 }
            if let a = Self.answer(f, mtu: Int.random(in: 0...9000, using: &rng)) {
                #expect(a.count <= ICMPError.maximumSize)
            }
        }
    }

    static func unreachable(_ frame: [UInt8]) -> [UInt8]? {
        var out = [UInt8](repeating: 0, count: ICMPError.maximumSize)
        let length = frame.withUnsafeBytes { f in out.withUnsafeMutableBytes { ICMPError.unreachable(f, mtu: 1280, into: $0) } }
        return length.map { Array(out[..<$0]) }
    }

    @Test func ipv4UnreachableNeedsNoDFAndComesFromTheDestination() throws {
        let frame = Self.ipv4Frame(ipLength: 84, df: false, protocolNumber: 1, firstPayloadByte: 8)
        let a = try #require(Self.unreachable(frame))
        #expect(Array(a[0..<6]) == Self.hostA)
        #expect(Array(a[(14 + 12)..<(14 + 16)]) == [10, 0, 6, 2])          // from the unreachable address
        #expect(Array(a[(14 + 16)..<(14 + 20)]) == [10, 0, 6, 1])          // to the sender
        #expect(Self.sum(a[14..<34]) == 0)
        #expect(Array(a[34..<42]) == [3, 1, a[36], a[37], 0, 0, 0, 0])     // host unreachable
        #expect(Self.sum(a[34...]) == 0)
        #expect(Array(a[42...]) == Array(frame[14...]))                   // the whole small packet
        #expect(Self.unreachable(Self.ipv4Frame(protocolNumber: 1, firstPayloadByte: 3)) == nil, "never about an ICMP error")
    }

    @Test func ipv6UnreachableIsAddressUnreachable() throws {
        let frame = Self.ipv6Frame(payloadLength: 64, nextHeader: 58, firstPayloadByte: 128)
        let a = try #require(Self.unreachable(frame))
        let destination = IPv6Address("fd00::2")!, sender = IPv6Address("fd00::1")!
        a.withUnsafeBytes { raw in
            #expect(IPv6Address(raw, offset: 14 + 8) == destination)
            #expect(IPv6Address(raw, offset: 14 + 24) == sender)
        }
        #expect(Array(a[54..<56]) == [1, 3])
        #expect(Array(a[58..<62]) == [0, 0, 0, 0])
        let pseudo = InternetChecksum.ipv6PseudoHeader(source: destination, destination: sender, upperLayerLength: a.count - 54, nextHeader: 58)
        #expect(Self.sum(a[54...], plus: pseudo) == 0)
        #expect(Self.unreachable(Self.ipv6Frame(nextHeader: 58, firstPayloadByte: 1)) == nil, "never about an ICMPv6 error")
    }
}
