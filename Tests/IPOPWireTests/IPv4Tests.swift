import Testing
@testable import IPOPWire

struct IPv4AddressTests {
    @Test func parsesAndPrintsDottedQuad() throws {
        let address = try #require(IPv4Address("192.168.0.199"))
        #expect(address.rawValue == 0xC0A8_00C7)
        #expect(address == IPv4Address(192, 168, 0, 199))
        #expect(address.description == "192.168.0.199")
        #expect(address.bytes == [192, 168, 0, 199])
        #expect(IPv4Address("0.0.0.0") == .any)
        #expect(IPv4Address("255.255.255.255") == .broadcast)
    }

    @Test(arguments: ["", "1.2.3", "1.2.3.4.5", "256.0.0.1", "1.2.3.", ".1.2.3", "1..2.3",
                      "1.2.3.4 ", "a.b.c.d", "1.2.3.0004", "-1.2.3.4", "1.2.3.4:80"])
    func rejectsMalformedText(_ text: String) {
        #expect(IPv4Address(text) == nil)
    }

    @Test func roundTripsThroughText() {
        var rng = SplitMix64(seed: 3)
        for _ in 0..<1000 {
            let address = IPv4Address(UInt32(truncatingIfNeeded: rng.next()))
            #expect(IPv4Address(address.description) == address)
        }
    }

    @Test func classifiesAndMatchesPrefixes() throws {
        #expect(try #require(IPv4Address("224.0.0.251")).isMulticast)
        #expect(try #require(IPv4Address("239.255.255.250")).isMulticast)
        #expect(!(try #require(IPv4Address("240.0.0.1")).isMulticast))
        #expect(try #require(IPv4Address("127.0.0.1")).isLoopback)
        #expect(try #require(IPv4Address("169.254.1.2")).isLinkLocal)
        #expect(IPv4Address.broadcast.isLimitedBroadcast && IPv4Address.any.isUnspecified)
        let address = IPv4Address(10, 1, 2, 3)
        #expect(address.isIn(IPv4Address(10, 0, 0, 0), prefixLength: 8))
        #expect(!address.isIn(IPv4Address(10, 0, 0, 0), prefixLength: 16))
        #expect(address.isIn(IPv4Address(0, 0, 0, 0), prefixLength: 0))
        #expect(address.isIn(address, prefixLength: 32))
        #expect(!address.isIn(IPv4Address(10, 1, 2, 4), prefixLength: 99))
    }

    @Test func ordersNumerically() {
        #expect(IPv4Address(9, 255, 255, 255) < IPv4Address(10, 0, 0, 0))
    }

    @Test func readsAndWritesRawBuffers() {
        var buffer = [UInt8](repeating: 0, count: 7)
        buffer.withUnsafeMutableBytes { IPv4Address(10, 0, 0, 1).write(to: $0, offset: 3) }
        #expect(buffer == [0, 0, 0, 10, 0, 0, 1])
        #expect(buffer.withUnsafeBytes { IPv4Address($0, offset: 3) } == IPv4Address(10, 0, 0, 1))
    }
}

struct IPv4HeaderTests {
    @Test func parsesARealHeader() throws {
        let packet = Fixture.ipv4Packet
        try packet.withUnsafeBytes { raw in
            let header = try IPv4Header(raw)
            #expect(header.version == 4)
            #expect(header.headerLength == 20)
            #expect(header.totalLength == 115)
            #expect(header.dscp == 0 && header.ecn == 0)
            #expect(header.identification == 0)
            #expect(header.dontFragment && !header.moreFragments && header.fragmentOffset == 0)
            #expect(!header.isFragment)
            #expect(header.timeToLive == 64)
            #expect(header.protocolNumber == IPProtocolNumber.udp)
            #expect(header.headerChecksum == 0xB861)
            #expect(header.isChecksumValid)
            #expect(header.source == IPv4Address("192.168.0.1"))
            #expect(header.destination == IPv4Address("192.168.0.199"))
            #expect(header.payloadOffset == 20)
            #expect(Array(header.payload) == Array(packet[20...]))
        }
    }

    @Test func detectsABadChecksum() throws {
        var packet = Fixture.ipv4Packet
        packet[8] = 63   // TTL decremented without fixing the checksum
        try packet.withUnsafeBytes { raw in
            let header = try IPv4Header(raw)
            #expect(!header.isChecksumValid)
        }
    }

    @Test func parsesFromAnEthernetFrameWithPadding() throws {
        // 20-byte header + 8 bytes of ICMP = 28, padded to the 46-byte Ethernet minimum.
        var header = Fixture.ipv4Header
        header[3] = 28
        header[9] = IPProtocolNumber.icmp
        let payload = header + [8, 0, 0xf7, 0xff, 0, 0, 0, 0] + [UInt8](repeating: 0, count: 18)
        let bytes = Fixture.ethernet(destination: Fixture.hostB, source: Fixture.hostA,
                                     etherType: 0x0800, payload: payload)
        try bytes.withUnsafeBytes { raw in
            let frame = try EthernetFrame(raw)
            let ip = try IPv4Header(frame.payload)
            #expect(ip.totalLength == 28)
            #expect(ip.payload.count == 8, "padding excluded")
            #expect(ip.protocolNumber == IPProtocolNumber.icmp)
        }
    }

    @Test func honoursOptions() throws {
        // IHL 6: one 4-byte option (router alert), total length 28.
        var packet: [UInt8] = [0x46, 0xc0, 0x00, 0x1c, 0x00, 0x00, 0x00, 0x00,
                               0x01, 0x02, 0x00, 0x00, 10, 0, 0, 1, 224, 0, 0, 22,
                               0x94, 0x04, 0x00, 0x00]
        packet += [0x22, 0, 0, 0]
        try packet.withUnsafeBytes { raw in
            let header = try IPv4Header(raw)
            #expect(header.headerLength == 24)
            #expect(header.payloadOffset == 24)
            #expect(header.dscp == 48)
            #expect(header.payload.count == 4)
            #expect(header.protocolNumber == 2)
            #expect(header.destination.isMulticast)
        }
    }

    @Test func fragmentFields() throws {
        var packet = Fixture.ipv4Packet
        packet[6] = 0x20   // MF
        packet[7] = 0xB9   // offset 185
        try packet.withUnsafeBytes { raw in
            let header = try IPv4Header(raw)
            #expect(header.moreFragments && !header.dontFragment)
            #expect(header.fragmentOffset == 185)
            #expect(header.isFragment)
        }
    }

    @Test func everyTruncationThrows() {
        let packet = Fixture.ipv4Packet
        for length in 0..<packet.count {
            let error = parseFailure(Array(packet.prefix(length))) { (raw) throws(IPv4HeaderError) in
                _ = try IPv4Header(raw)
            }
            #expect(error == .truncated, "length \(length)")
        }
        #expect(parseFailure(packet) { (raw) throws(IPv4HeaderError) in _ = try IPv4Header(raw) } == nil)
    }

    @Test func truncatedInsideOptionsThrows() {
        var packet = Fixture.ipv4Header
        packet[0] = 0x4F    // IHL 15: 60-byte header
        packet[3] = 60
        for length in 20..<60 {
            let bytes = Array((packet + [UInt8](repeating: 1, count: 40)).prefix(length))
            #expect(parseFailure(bytes) { (raw) throws(IPv4HeaderError) in _ = try IPv4Header(raw) } == .truncated)
        }
    }

    @Test func rejectsBadVersionIHLAndTotalLength() {
        func failure(_ patch: (inout [UInt8]) -> Void) -> IPv4HeaderError? {
            var packet = Fixture.ipv4Packet
            patch(&packet)
            return parseFailure(packet) { (raw) throws(IPv4HeaderError) in _ = try IPv4Header(raw) }
        }
        #expect(failure { $0[0] = 0x65 } == .badVersion(6))
        #expect(failure { $0[0] = 0x44 } == .badHeaderLength(16))
        #expect(failure { $0[0] = 0x40 } == .badHeaderLength(0))
        #expect(failure { $0[2] = 0; $0[3] = 19 } == .badTotalLength(19))
        #expect(failure { $0[0] = 0x46; $0[2] = 0; $0[3] = 20 } == .badTotalLength(20))
        #expect(failure { $0[2] = 0; $0[3] = 20 } == nil, "header-only packet is fine")
    }

    @Test func randomBytesNeverTrap() {
        var rng = SplitMix64(seed: 5)
        for _ in 0..<5000 {
            let length = Int(rng.next() % 80)
            var bytes = (0..<length).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            if !bytes.isEmpty { bytes[0] = 0x40 | bytes[0] & 0x0F }
            if bytes.count >= 4 { bytes[2] = 0 }
            _ = parseFailure(bytes) { (raw) throws(IPv4HeaderError) in
                let header = try IPv4Header(raw)
                _ = (header.source, header.destination, header.payload.count, header.isChecksumValid)
            }
        }
    }
}
