import Testing
@testable import IPOPWire

@Suite struct TCPMSSClampTests {
    /// An Ethernet frame with an IPv4 or IPv6 TCP segment, `tags` VLAN tags, the given TCP flags
    /// and options (padded to 4 bytes with end-of-options), and a correct TCP checksum.
    static func frame(ipv6: Bool = false, tags: Int = 0, flags: UInt8 = 0x02, options: [UInt8],
                      payload: [UInt8] = [], fragmentOffset: UInt16 = 0) -> [UInt8] {
        var options = options
        while options.count % 4 != 0 { options.append(0) }
        var tcp: [UInt8] = [0x9c, 0x40, 0x00, 0x50, 1, 2, 3, 4, 0, 0, 0, 0,
                            UInt8((20 + options.count) / 4) << 4, flags, 0xfa, 0xf0, 0, 0, 0, 0]
        tcp += options + payload
        var frame: [UInt8] = [2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1]
        for _ in 0..<tags { frame += [0x81, 0x00, 0x00, 0x07] }
        var sum: UInt64
        if ipv6 {
            frame += [0x86, 0xdd]
            let source = IPv6Address("fd00::1")!, destination = IPv6Address("fd00::2")!
            var header: [UInt8] = [0x60, 0, 0, 0, UInt8(tcp.count >> 8), UInt8(tcp.count & 0xff), 6, 64]
            withUnsafeBytes(of: source.high.bigEndian) { header += $0 }
            withUnsafeBytes(of: source.low.bigEndian) { header += $0 }
            withUnsafeBytes(of: destination.high.bigEndian) { header += $0 }
            withUnsafeBytes(of: destination.low.bigEndian) { header += $0 }
            frame += header
            sum = InternetChecksum.ipv6PseudoHeader(source: source, destination: destination,
                                                    upperLayerLength: tcp.count, nextHeader: 6)
        } else {
            frame += [0x08, 0x00]
            let total = 20 + tcp.count
            frame += [0x45, 0, UInt8(total >> 8), UInt8(total & 0xff), 0, 1,
                      UInt8(fragmentOffset >> 8) | 0x40, UInt8(fragmentOffset & 0xff), 64, 6, 0, 0,
                      10, 0, 0, 1, 10, 0, 0, 2]
            sum = InternetChecksum.add(IPv4Address(rawValue: 0x0A00_0001), to: 0)
            sum = InternetChecksum.add(IPv4Address(rawValue: 0x0A00_0002), to: sum) &+ 6 &+ UInt64(tcp.count)
        }
        let checksum = tcp.withUnsafeBytes { InternetChecksum.finish(InternetChecksum.add($0, to: sum)) }
        tcp[16] = UInt8(checksum >> 8)
        tcp[17] = UInt8(checksum & 0xff)
        return frame + tcp
    }

    /// True if the TCP checksum of `frame` (as built by `frame(...)`) verifies.
    static func checksumVerifies(_ frame: [UInt8], ipv6: Bool = false, tags: Int = 0) -> Bool {
        let l3 = 14 + 4 * tags
        let tcpStart = l3 + (ipv6 ? 40 : 20)
        let tcp = Array(frame[tcpStart...])
        var sum: UInt64
        if ipv6 {
            sum = InternetChecksum.ipv6PseudoHeader(source: IPv6Address("fd00::1")!, destination: IPv6Address("fd00::2")!,
                                                    upperLayerLength: tcp.count, nextHeader: 6)
        } else {
            sum = InternetChecksum.add(IPv4Address(rawValue: 0x0A00_0001), to: 0)
            sum = InternetChecksum.add(IPv4Address(rawValue: 0x0A00_0002), to: sum) &+ 6 &+ UInt64(tcp.count)
        }
        return tcp.withUnsafeBytes { InternetChecksum.finish(InternetChecksum.add($0, to: sum)) } == 0
    }

    static func mss(in frame: [UInt8], at offset: Int) -> Int { Int(frame[offset]) << 8 | Int(frame[offset + 1]) }

    static func clamp(_ frame: inout [UInt8], mtu: Int) -> Bool {
        frame.withUnsafeMutableBytes { TCPMSSClamp.clamp($0, mtu: mtu) }
    }

    // MSS 1460 (0x05b4), as Linux sends it on a 1500-byte interface, then SACK-permitted, timestamps, wscale.
    static let linuxSYNOptions: [UInt8] = [2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7]

    @Test func ipv4SYNIsClampedToMTUMinus40WithAValidChecksum() {
        var f = Self.frame(options: Self.linuxSYNOptions)
        #expect(Self.checksumVerifies(f))
        #expect(Self.clamp(&f, mtu: 1280))
        #expect(Self.mss(in: f, at: 14 + 20 + 22) == 1240)
        #expect(Self.checksumVerifies(f))
    }

    @Test func synAckIsClampedAndSmallerMSSIsLeftAlone() {
        var f = Self.frame(flags: 0x12, options: [2, 4, 0x05, 0xb4])
        #expect(Self.clamp(&f, mtu: 1400))
        #expect(Self.mss(in: f, at: 14 + 20 + 22) == 1360)
        #expect(Self.checksumVerifies(f))
        let before = f
        #expect(!Self.clamp(&f, mtu: 1400))     // already 1360
        #expect(!Self.clamp(&f, mtu: 9000))
        #expect(f == before)
    }

    @Test func anMSSAtAnOddOffsetKeepsTheChecksumRight() {
        // NOP first: the MSS value sits at an odd offset from the TCP header.
        for (options, at) in [([1, 2, 4, 0x23, 0x28] as [UInt8], 23), ([1, 1, 1, 2, 4, 0xff, 0xff], 25)] {
            var f = Self.frame(options: options, payload: [7, 7, 7])
            #expect(Self.clamp(&f, mtu: 1280))
            #expect(Self.mss(in: f, at: 14 + 20 + at) == 1240)
            #expect(Self.checksumVerifies(f), "options \(options)")
        }
    }

    @Test func ipv6SYNIsClampedToMTUMinus60() {
        var f = Self.frame(ipv6: true, options: Self.linuxSYNOptions)
        #expect(Self.checksumVerifies(f, ipv6: true))
        #expect(Self.clamp(&f, mtu: 1280))
        #expect(Self.mss(in: f, at: 14 + 40 + 22) == 1220)
        #expect(Self.checksumVerifies(f, ipv6: true))
    }

    @Test func vlanTaggedFramesAreClamped() {
        for tags in 1...2 {
            var f = Self.frame(tags: tags, options: Self.linuxSYNOptions)
            #expect(Self.clamp(&f, mtu: 1280))
            #expect(Self.mss(in: f, at: 14 + 4 * tags + 20 + 22) == 1240)
            #expect(Self.checksumVerifies(f, tags: tags))
        }
    }

    @Test func framesThatAreNotAnEligibleSYNAreUntouched() {
        let cases: [[UInt8]] = [
            Self.frame(flags: 0x10, options: Self.linuxSYNOptions),                  // plain ACK
            Self.frame(options: [4, 2, 1, 1]),                                       // SYN without MSS
            Self.frame(options: [0, 0, 2, 4, 0x05, 0xb4]),                           // MSS after end-of-options
            Self.frame(options: [8, 0, 2, 4, 0x05, 0xb4]),                           // option length 0
            Self.frame(options: [8, 40, 2, 4, 0x05, 0xb4]),                          // option runs past the header
            Self.frame(options: [2, 3, 0x05, 0xb4]),                                 // MSS with a wrong length
            Self.frame(options: Self.linuxSYNOptions, fragmentOffset: 8),            // a later fragment
        ]
        for original in cases {
            var f = original
            #expect(!Self.clamp(&f, mtu: 1280))
            #expect(f == original)
        }
        // Truncated anywhere: never a change past the end, never a trap.
        let full = Self.frame(options: Self.linuxSYNOptions)
        for length in 0..<full.count {
            var f = Array(full[..<length])
            _ = Self.clamp(&f, mtu: 1280)
            #expect(f.count == length)
        }
    }

    @Test func randomFramesNeverTrap() {
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<20_000 {
            var f = (0..<Int.random(in: 0...120, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            if f.count > 14, Bool.random(using: &rng) { f[12] = 0x08; f[13] = 0x00 }
            if f.count > 23, Bool.random(using: &rng) { f[14] = 0x45; f[23] = 6 }
            _ = Self.clamp(&f, mtu: Int.random(in: 0...9000, using: &rng))
        }
    }
}
