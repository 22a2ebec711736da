import Testing
@testable import IPOPWire

struct IPv6AddressTests {
    @Test(arguments: [
        ("2001:db8::1", "2001:db8::1"),
        ("2001:0DB8:0000:0000:0000:0000:0000:0001", "2001:db8::1"),
        ("::", "::"),
        ("::1", "::1"),
        ("1::", "1::"),
        ("fe80::", "fe80::"),
        ("ff02::1:ff00:1", "ff02::1:ff00:1"),
        ("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"),          // first of equal runs
        ("2001:0:0:1:0:0:0:1", "2001:0:0:1::1"),                // longest run
        ("2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"),       // a single 0 is not compressed
        ("1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8"),
        ("::ffff:10.0.0.1", "::ffff:a00:1"),
        ("64:ff9b::192.0.2.33", "64:ff9b::c000:221"),
        ("1:2:3:4:5:6:1.2.3.4", "1:2:3:4:5:6:102:304"),
    ])
    func parsesAndPrintsRFC5952(_ input: String, _ canonical: String) throws {
        let address = try #require(IPv6Address(input))
        #expect(address.description == canonical)
        #expect(IPv6Address(canonical) == address)
    }

    @Test(arguments: [
        "", ":", ":::", "1:2:3:4:5:6:7", "1:2:3:4:5:6:7:8:9", "1::2::3", "12345::1", "g::1",
        ":1:2:3:4:5:6:7", "1:2:3:4:5:6:7:", "1::2:3:4:5:6:7:8", "::1.2.3", "1.2.3.4",
        "::1.2.3.4:5", "fe80::1%eth0", "[::1]", "1:2:3:4:5:6:7:1.2.3.4",
    ])
    func rejectsMalformedText(_ text: String) {
        #expect(IPv6Address(text) == nil)
    }

    @Test func roundTripsThroughText() {
        var rng = SplitMix64(seed: 9)
        for _ in 0..<2000 {
            // Sprinkle zero groups so compression is exercised.
            let groups = (0..<8).map { _ -> UInt16 in rng.next() % 3 == 0 ? 0 : UInt16(truncatingIfNeeded: rng.next()) }
            let address = IPv6Address(groups: groups)
            #expect(address.groups == groups)
            #expect(IPv6Address(address.description) == address, "\(address)")
        }
    }

    @Test func bytesAndRawBuffers() throws {
        let address = try #require(IPv6Address("2001:db8::8a2e:370:7334"))
        let bytes: [UInt8] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0x8a, 0x2e, 0x03, 0x70, 0x73, 0x34]
        #expect(address.bytes == bytes)
        #expect(IPv6Address(bytes: bytes) == address)
        var buffer = [UInt8](repeating: 0, count: 17)
        buffer.withUnsafeMutableBytes { address.write(to: $0, offset: 1) }
        #expect(Array(buffer[1...]) == bytes)
        #expect(buffer.withUnsafeBytes { IPv6Address($0, offset: 1) } == address)
    }

    @Test func classifiesAndOrders() throws {
        #expect(try #require(IPv6Address("ff02::1")).isMulticast)
        #expect(try #require(IPv6Address("fe80::1")).isLinkLocal)
        #expect(try #require(IPv6Address("febf::1")).isLinkLocal)
        #expect(!(try #require(IPv6Address("fec0::1")).isLinkLocal))
        #expect(IPv6Address.loopback.isLoopback && IPv6Address.unspecified.isUnspecified)
        #expect(try #require(IPv6Address("::ffff")) < (try #require(IPv6Address("0:0:0:1::"))))
    }
}

struct IPv6HeaderTests {
    @Test func parsesARealHeader() throws {
        try Fixture.ipv6Packet.withUnsafeBytes { raw in
            let header = try IPv6Header(raw)
            #expect(header.version == 6)
            #expect(header.trafficClass == 0)
            #expect(header.flowLabel == 0)
            #expect(header.payloadLength == 8)
            #expect(header.totalLength == 48)
            #expect(header.nextHeader == IPProtocolNumber.ipv6ICMP)
            #expect(header.hopLimit == 255)
            #expect(header.source == IPv6Address("fe80::1"))
            #expect(header.destination == IPv6Address("ff02::1"))
            #expect(header.payloadOffset == 40)
            #expect(Array(header.payload) == Array(Fixture.ipv6Packet[40...]))
        }
    }

    @Test func trafficClassAndFlowLabel() throws {
        var packet = Fixture.ipv6Packet
        packet.replaceSubrange(0..<4, with: [0x6B, 0x8A, 0xBC, 0xDE])
        try packet.withUnsafeBytes { raw in
            let header = try IPv6Header(raw)
            #expect(header.trafficClass == 0xB8)
            #expect(header.flowLabel == 0xABCDE)
        }
    }

    @Test func paddingIsExcludedFromThePayload() throws {
        let packet = Fixture.ipv6Packet + [0, 0, 0, 0]
        try packet.withUnsafeBytes { raw in
            let header = try IPv6Header(raw)
            #expect(header.payload.count == 8)
        }
    }

    @Test func everyTruncationThrows() {
        let packet = Fixture.ipv6Packet
        for length in 0..<packet.count {
            let error = parseFailure(Array(packet.prefix(length))) { (raw) throws(IPv6HeaderError) in
                _ = try IPv6Header(raw)
            }
            #expect(error == .truncated, "length \(length)")
        }
    }

    @Test func rejectsBadVersion() {
        var packet = Fixture.ipv6Packet
        packet[0] = 0x45
        #expect(parseFailure(packet) { (raw) throws(IPv6HeaderError) in _ = try IPv6Header(raw) } == .badVersion(4))
    }

    @Test func parsesFromATaggedFrame() throws {
        let bytes = Fixture.ethernet(destination: [0x33, 0x33, 0, 0, 0, 1], source: Fixture.hostA,
                                     tags: [(0x8100, 7)], etherType: 0x86DD, payload: Fixture.ipv6Packet)
        try bytes.withUnsafeBytes { raw in
            let frame = try EthernetFrame(raw)
            #expect(frame.destination.isMulticast)
            #expect(frame.etherType == .ipv6)
            let header = try IPv6Header(frame.payload)
            #expect(header.destination.isMulticast)
        }
    }

    @Test func randomBytesNeverTrap() {
        var rng = SplitMix64(seed: 13)
        for _ in 0..<3000 {
            let length = Int(rng.next() % 64)
            var bytes = (0..<length).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            if !bytes.isEmpty { bytes[0] = 0x60 }
            if bytes.count > 5 { bytes[4] = 0 }
            _ = parseFailure(bytes) { (raw) throws(IPv6HeaderError) in
                let header = try IPv6Header(raw)
                _ = (header.source, header.destination, header.payload.count)
            }
        }
    }
}
