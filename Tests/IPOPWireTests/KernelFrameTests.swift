import Foundation
import Testing
@testable import IPOPWire

/// Segmentation and coalescing on TCP segments the kernel produced (Resources/tso-ipv4.pcap).
@Suite struct KernelFrameTests {
    static let mss = 1228

    /// Frames of a classic little-endian pcap (Ethernet link type).
    static func frames() throws -> [[UInt8]] {
        let url = try #require(Bundle.module.url(forResource: "tso-ipv4", withExtension: "pcap", subdirectory: "Resources"))
        let bytes = [UInt8](try Data(contentsOf: url))
        func le32(_ o: Int) -> Int { Int(bytes[o]) | Int(bytes[o + 1]) << 8 | Int(bytes[o + 2]) << 16 | Int(bytes[o + 3]) << 24 }
        #expect(le32(0) == 0xA1B2_C3D4)
        #expect(le32(20) == 1)
        var frames: [[UInt8]] = []
        var o = 24
        while o + 16 <= bytes.count {
            let length = le32(o + 8)
            frames.append(Array(bytes[(o + 16)..<(o + 16 + length)]))
            o += 16 + length
        }
        return frames
    }

    static let header = VirtioNetHeader(flags: VirtioNetHeader.needsChecksum, gsoType: VirtioNetHeader.gsoTCPv4,
                                        headerLength: 66, gsoSize: UInt16(mss), checksumStart: 34, checksumOffset: 16)

    @Test func kernelSuperFramesCutIntoValidSegmentsAndCoalesceBackToTheKernelsForm() throws {
        let frames = try Self.frames()
        #expect(frames.map(\.count) == [6206, 6206, 9890])
        for frame in frames {
            let cut = try SegmentationTests.cut(frame, Self.header)
            let payload = frame.count - 66
            #expect(cut.frames.count == (payload + Self.mss - 1) / Self.mss)
            var joined: [UInt8] = []
            for (i, piece) in cut.frames.enumerated() {
                #expect(piece.count <= 1280 + 14)
                #expect(SegmentationTests.checksumsVerify(piece, ip: 14, ipv6: false), "piece \(i)")
                joined += piece[66...]
            }
            #expect(joined == Array(frame[66...]))

            // Coalesced again: the kernel's headers come back, including its partial checksum.
            let c = TCPCoalescer()
            for piece in cut.frames { #expect(TCPCoalescerTests.offer(c, piece) == .taken) }
            let out = Array(c.take())
            #expect(out.withUnsafeBytes { VirtioNetHeader($0) } == Self.header)
            #expect(Array(out[10...]) == frame)
        }
    }
}
