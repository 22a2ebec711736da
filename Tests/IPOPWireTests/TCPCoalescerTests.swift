import Testing
@testable import IPOPWire

/// Coalescing is Segmentation's inverse: cut a super-frame, offer the pieces, and the taken
/// super-frame cuts into the same pieces again.
@Suite struct TCPCoalescerTests {
    static func segments(payload: Int, flags: UInt8 = 0x18) throws -> (frame: [UInt8], pieces: [[UInt8]]) {
        let frame = SegmentationTests.superFrame(ipv6: false, payload: payload, flags: flags)
        let header = VirtioNetHeader(flags: 1, gsoType: VirtioNetHeader.gsoTCPv4, headerLength: 66, gsoSize: 1448,
                                     checksumStart: 34, checksumOffset: 16)
        return (frame, try SegmentationTests.cut(frame, header).frames)
    }

    static func offer(_ c: TCPCoalescer, _ f: [UInt8]) -> TCPCoalescer.Offer {
        f.withUnsafeBytes { c.offer($0) }
    }

    @Test func segmentsOfOneBurstBecomeOneGSOWriteThatCutsBackIntoThem() throws {
        let (_, pieces) = try Self.segments(payload: 10_000)
        #expect(pieces.count == 7)
        let c = TCPCoalescer()
        for p in pieces { #expect(Self.offer(c, p) == .taken) }
        #expect(c.segments == 7)
        let out = Array(c.take())
        #expect(c.isEmpty)
        let header = out.withUnsafeBytes { VirtioNetHeader($0) }
        #expect(header == VirtioNetHeader(flags: 1, gsoType: 1, headerLength: 66, gsoSize: 1448, checksumStart: 34, checksumOffset: 16))
        let joined = Array(out[10...])
        #expect(SegmentationTests.be16(joined, 16) == joined.count - 14)
        #expect(joined.withUnsafeBytes { InternetChecksum.finish(InternetChecksum.add(UnsafeRawBufferPointer(rebasing: $0[14..<34]))) } == 0)
        // The kernel's view: cut it again as TSO would.
        let again = try SegmentationTests.cut(joined, header).frames
        #expect(again == pieces)
    }

    @Test func ipv6SegmentsBecomeOneTCPv6GSOWriteThatCutsBackIntoThem() throws {
        let frame = SegmentationTests.superFrame(ipv6: true, payload: 10_000)
        let tso = VirtioNetHeader(flags: 1, gsoType: VirtioNetHeader.gsoTCPv6, headerLength: 86, gsoSize: 1428,
                                  checksumStart: 54, checksumOffset: 16)
        let pieces = try SegmentationTests.cut(frame, tso).frames
        #expect(pieces.count == 8)
        let c = TCPCoalescer()
        for p in pieces { #expect(Self.offer(c, p) == .taken) }
        let v4 = try Self.segments(payload: 3000).pieces[0]
        #expect(Self.offer(c, v4) == .flushFirst)                   // an IPv4 segment never joins an IPv6 one
        let out = Array(c.take())
        let header = out.withUnsafeBytes { VirtioNetHeader($0) }
        #expect(header == tso)
        let joined = Array(out[10...])
        #expect(SegmentationTests.be16(joined, 18) == joined.count - 54)   // IPv6 payload length
        #expect(try SegmentationTests.cut(joined, header).frames == pieces)
        // A different flow label, hop limit or address ends the super-frame.
        for byte in [16, 21, 53] {
            #expect(Self.offer(c, pieces[0]) == .taken)
            var other = pieces[1]
            other[byte] ^= 1
            #expect(Self.offer(c, other) == .flushFirst, "byte \(byte)")
            _ = c.take()
        }
    }

    @Test func singleSegmentGoesOutUnchangedWithAPlainHeader() throws {
        let (_, pieces) = try Self.segments(payload: 500)
        let c = TCPCoalescer()
        #expect(Self.offer(c, pieces[0]) == .taken)
        let out = Array(c.take())
        #expect(Array(out[..<10]) == [UInt8](repeating: 0, count: 10))
        #expect(Array(out[10...]) == pieces[0])
    }

    @Test func gapsShortSegmentsPSHAndOtherFlowsEndTheSuperFrame() throws {
        let (_, pieces) = try Self.segments(payload: 6000)   // 1448 x 4 + 208; PSH on the last
        let c = TCPCoalescer()
        #expect(Self.offer(c, pieces[0]) == .taken)
        #expect(Self.offer(c, pieces[2]) == .flushFirst)             // sequence gap
        #expect(Self.offer(c, pieces[1]) == .taken)
        var other = pieces[2]
        other[37] ^= 1                                               // another destination port
        #expect(Self.offer(c, other) == .flushFirst)
        #expect(Self.offer(c, pieces[2]) == .taken)
        #expect(Self.offer(c, pieces[3]) == .taken)
        #expect(Self.offer(c, pieces[4]) == .taken)                  // short + PSH: closes
        #expect(c.segments == 5)
        #expect(Self.offer(c, pieces[0]) == .flushFirst)
        _ = c.take()
        // Not TCP data: a pure ACK, a SYN, IPv6 with an extension header, a fragment.
        var ack = Array(pieces[0][..<66])
        ack[16] = 0; ack[17] = 52
        #expect(Self.offer(c, ack) == .notEligible)
        var syn = pieces[0]
        syn[47] = 0x02
        #expect(Self.offer(c, syn) == .notEligible)
        var v6 = SegmentationTests.superFrame(ipv6: true, payload: 100)
        v6[20] = 0                                                   // next header: hop-by-hop options
        #expect(Self.offer(c, v6) == .notEligible)
        var fragment = pieces[0]
        fragment[20] = 0x20                                          // MF
        #expect(Self.offer(c, fragment) == .notEligible)
        #expect(c.isEmpty)
    }
}
