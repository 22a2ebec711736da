import Testing
@testable import IPOPWire

struct ARPPacketTests {
    @Test func parsesRequest() throws {
        try Fixture.arpRequest.withUnsafeBytes { raw in
            let arp = try ARPPacket(raw)
            #expect(arp.operation == .request)
            #expect(arp.senderHardware == MACAddress("02:42:ac:11:00:02"))
            #expect(arp.senderProtocol == IPv4Address("10.0.0.1"))
            #expect(arp.targetHardware == .zero)
            #expect(arp.targetProtocol == IPv4Address("10.0.0.2"))
            #expect(!arp.isGratuitous)
        }
    }

    @Test func parsesReplyInsideAFrameWithPadding() throws {
        // Minimum-size Ethernet frame: 42 bytes of header + ARP, padded to 60.
        let bytes = Fixture.ethernet(destination: Fixture.hostA, source: Fixture.hostB,
                                     etherType: 0x0806, payload: Fixture.arpReply + [UInt8](repeating: 0, count: 18))
        #expect(bytes.count == 60)
        try bytes.withUnsafeBytes { raw in
            let arp = try ARPPacket(frame: try EthernetFrame(raw))
            #expect(arp.operation == .reply)
            #expect(arp.senderHardware == MACAddress("52:54:00:12:34:56"))
            #expect(arp.senderProtocol == IPv4Address(10, 0, 0, 2))
            #expect(arp.targetHardware == MACAddress("02:42:ac:11:00:02"))
            #expect(arp.targetProtocol == IPv4Address(10, 0, 0, 1))
        }
    }

    @Test func frameThatIsNotARPIsRejected() throws {
        let bytes = Fixture.ethernet(destination: Fixture.hostA, source: Fixture.hostB,
                                     etherType: 0x0800, payload: Fixture.arpReply)
        try bytes.withUnsafeBytes { raw in
            let frame = try EthernetFrame(raw)
            #expect(throws: ARPError.notARP) { try ARPPacket(frame: frame) }
        }
    }

    @Test func everyTruncationThrows() {
        for length in 0..<ARPPacket.size {
            let error = parseFailure(Array(Fixture.arpRequest.prefix(length))) { (raw) throws(ARPError) in
                _ = try ARPPacket(raw)
            }
            #expect(error == .truncated, "length \(length)")
        }
    }

    @Test func rejectsOtherHardwareProtocolLengthsAndOperations() {
        func failure(patching offset: Int, with value: UInt8) -> ARPError? {
            var bytes = Fixture.arpRequest
            bytes[offset] = value
            return parseFailure(bytes) { (raw) throws(ARPError) in _ = try ARPPacket(raw) }
        }
        #expect(failure(patching: 1, with: 6) == .unsupportedHardwareType(6))       // IEEE 802
        #expect(failure(patching: 2, with: 0x86) == .unsupportedProtocolType(0x8600))
        #expect(failure(patching: 4, with: 8) == .badAddressLength)
        #expect(failure(patching: 5, with: 16) == .badAddressLength)
        #expect(failure(patching: 7, with: 3) == .unsupportedOperation(3))          // RARP
        #expect(failure(patching: 7, with: 0) == .unsupportedOperation(0))
    }

    @Test func writesReplyByteByByte() throws {
        var buffer = [UInt8](repeating: 0xEE, count: 64)
        let written = try buffer.withUnsafeMutableBytes { out in
            ARPPacket.writeReply(
                into: out,
                senderHardware: try #require(MACAddress("52:54:00:12:34:56")),
                senderProtocol: try #require(IPv4Address("10.0.0.2")),
                targetHardware: try #require(MACAddress("02:42:ac:11:00:02")),
                targetProtocol: try #require(IPv4Address("10.0.0.1")))
        }
        #expect(written == 42)
        let expected: [UInt8] = [
            0x02, 0x42, 0xac, 0x11, 0x00, 0x02,     // Ethernet destination: the requester
            0x52, 0x54, 0x00, 0x12, 0x34, 0x56,     // Ethernet source: the replier
            0x08, 0x06,                             // EtherType ARP
            0x00, 0x01,                             // hardware type Ethernet
            0x08, 0x00,                             // protocol type IPv4
            0x06, 0x04,                             // lengths
            0x00, 0x02,                             // operation reply
            0x52, 0x54, 0x00, 0x12, 0x34, 0x56,     // sender hardware
            0x0a, 0x00, 0x00, 0x02,                 // sender protocol
            0x02, 0x42, 0xac, 0x11, 0x00, 0x02,     // target hardware
            0x0a, 0x00, 0x00, 0x01,                 // target protocol
        ]
        for i in 0..<expected.count {
            #expect(buffer[i] == expected[i], "byte \(i)")
        }
        #expect(buffer[42...].allSatisfy { $0 == 0xEE }, "nothing written past the frame")
        #expect(Array(buffer[14..<42]) == Fixture.arpReply)
    }

    @Test func answersARequestWithTheSameBytes() throws {
        var buffer = [UInt8](repeating: 0, count: ARPPacket.frameSize)
        let hostB = MACAddress(bytes: Fixture.hostB)
        let written = try Fixture.arpRequest.withUnsafeBytes { raw in
            let request = try ARPPacket(raw)
            return buffer.withUnsafeMutableBytes { request.writeReply(into: $0, answeringWith: hostB) }
        }
        #expect(written == 42)
        let expectedFrame = Fixture.ethernet(destination: Fixture.hostA, source: Fixture.hostB,
                                             etherType: 0x0806, payload: Fixture.arpReply)
        #expect(buffer == expectedFrame)
        try buffer.withUnsafeBytes { raw in
            let reply = try ARPPacket(frame: try EthernetFrame(raw))
            #expect(reply.operation == .reply)
            #expect(reply.senderHardware == hostB)
            #expect(reply.senderProtocol == IPv4Address("10.0.0.2"))
        }
    }

    @Test func writeReplyIntoTooSmallBufferWritesNothing() {
        for size in [0, 1, 14, 41] {
            var buffer = [UInt8](repeating: 0xEE, count: size)
            let written = buffer.withUnsafeMutableBytes { out in
                ARPPacket.writeReply(into: out, senderHardware: .broadcast, senderProtocol: .broadcast,
                                     targetHardware: .broadcast, targetProtocol: .broadcast)
            }
            #expect(written == 0)
            #expect(buffer.allSatisfy { $0 == 0xEE })
        }
    }

    @Test func randomBytesNeverTrap() {
        var rng = SplitMix64(seed: 11)
        for _ in 0..<5000 {
            let length = Int(rng.next() % 40)
            var bytes = (0..<length).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            if bytes.count >= 8, rng.next() % 2 == 0 {
                bytes.replaceSubrange(0..<6, with: [0, 1, 8, 0, 6, 4])
            }
            _ = parseFailure(bytes) { (raw) throws(ARPError) in
                let arp = try ARPPacket(raw)
                _ = (arp.senderHardware, arp.senderProtocol, arp.targetHardware, arp.targetProtocol)
            }
        }
    }
}
