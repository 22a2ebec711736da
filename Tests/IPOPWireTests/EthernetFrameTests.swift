import Testing
@testable import IPOPWire

struct EthernetFrameTests {
    @Test func parsesPlainIPv4Frame() throws {
        let bytes = Fixture.ethernet(destination: Fixture.hostB, source: Fixture.hostA,
                                     etherType: 0x0800, payload: Fixture.ipv4Packet)
        try bytes.withUnsafeBytes { raw in
            let frame = try EthernetFrame(raw)
            #expect(frame.destination == MACAddress("52:54:00:12:34:56"))
            #expect(frame.source == MACAddress("02:42:ac:11:00:02"))
            #expect(frame.vlanTagCount == 0)
            #expect(frame.firstVLANID == nil)
            #expect(frame.firstVLANTag == nil)
            #expect(frame.etherType == .ipv4)
            #expect(frame.payloadOffset == 14)
            #expect(frame.length == 14 + 115)
            #expect(Array(frame.payload) == Fixture.ipv4Packet)
        }
    }

    @Test func parsesSingle8021QTag() throws {
        // VLAN 100, PCP 5, DEI 0, carrying IPv6.
        let bytes = Fixture.ethernet(destination: Fixture.broadcast, source: Fixture.hostA,
                                     tags: [(0x8100, 0xA064)], etherType: 0x86DD,
                                     payload: Fixture.ipv6Packet)
        try bytes.withUnsafeBytes { raw in
            let frame = try EthernetFrame(raw)
            #expect(frame.destination.isBroadcast)
            #expect(frame.vlanTagCount == 1)
            #expect(frame.firstVLANID == 100)
            let tag = try #require(frame.firstVLANTag)
            #expect(tag.tpid == 0x8100)
            #expect(tag.priority == 5)
            #expect(!tag.dropEligible)
            #expect(frame.etherType == .ipv6)
            #expect(frame.payloadOffset == 18)
            #expect(Array(frame.payload) == Fixture.ipv6Packet)
        }
    }

    @Test func parsesDoubleTag8021adOver8021Q() throws {
        // S-tag 0x88a8 VID 300 (DEI set), C-tag 0x8100 VID 4094, carrying ARP.
        let bytes = Fixture.ethernet(destination: Fixture.broadcast, source: Fixture.hostA,
                                     tags: [(0x88A8, 0x112C), (0x8100, 0x0FFE)], etherType: 0x0806,
                                     payload: Fixture.arpRequest)
        try bytes.withUnsafeBytes { raw in
            let frame = try EthernetFrame(raw)
            #expect(frame.vlanTagCount == 2)
            #expect(frame.firstVLANID == 300)
            #expect(frame.firstVLANTag?.tpid == 0x88A8)
            #expect(frame.firstVLANTag?.dropEligible == true)
            #expect(frame.vlanTag(at: 1) == VLANTag(tpid: 0x8100, tci: 0x0FFE))
            #expect(frame.vlanTag(at: 1)?.vlanID == 4094)
            #expect(frame.vlanTag(at: 2) == nil)
            #expect(frame.vlanTag(at: -1) == nil)
            #expect(frame.etherType == .arp)
            #expect(frame.payloadOffset == 22)
            let arp = try ARPPacket(frame: frame)
            #expect(arp.operation == .request)
        }
    }

    @Test func headerOnlyFrameHasEmptyPayload() throws {
        let bytes = Fixture.ethernet(destination: Fixture.hostB, source: Fixture.hostA,
                                     etherType: 0x88B5, payload: [])
        try bytes.withUnsafeBytes { raw in
            let frame = try EthernetFrame(raw)
            #expect(frame.payload.isEmpty)
            #expect(frame.etherType.rawValue == 0x88B5)
            #expect(frame.etherType.description == "0x88b5")
        }
    }

    @Test func every802_3LengthFieldIsJustReported() throws {
        let bytes = Fixture.ethernet(destination: Fixture.hostB, source: Fixture.hostA,
                                     etherType: 0x0026, payload: [0x42, 0x42, 0x03])
        try bytes.withUnsafeBytes { raw in
            let frame = try EthernetFrame(raw)
            #expect(frame.etherType.isLength)
        }
    }

    @Test(arguments: [0, 1, 2, 3])
    func everyTruncationInsideTheHeaderThrows(tagCount: Int) {
        let tags = (0..<tagCount).map { (tpid: UInt16($0 == 0 ? 0x88A8 : 0x8100), tci: UInt16(10 + $0)) }
        let full = Fixture.ethernet(destination: Fixture.hostB, source: Fixture.hostA, tags: tags,
                                    etherType: 0x0800, payload: Fixture.ipv4Packet)
        let payloadOffset = 14 + 4 * tagCount
        for length in 0..<payloadOffset {
            let error = parseFailure(Array(full.prefix(length))) { (raw) throws(FrameError) in
                _ = try EthernetFrame(raw)
            }
            #expect(error == .truncated, "length \(length)")
        }
        for length in payloadOffset...full.count {
            let error = parseFailure(Array(full.prefix(length))) { (raw) throws(FrameError) in
                let frame = try EthernetFrame(raw)
                #expect(frame.payloadOffset == payloadOffset)
                #expect(frame.payload.count == length - payloadOffset)
            }
            #expect(error == nil, "length \(length)")
        }
    }

    @Test func tooManyStackedTagsIsAnError() {
        let maxTags = EthernetFrame.maxVLANTags
        let okTags = Array(repeating: (tpid: UInt16(0x8100), tci: UInt16(1)), count: maxTags)
        let ok = Fixture.ethernet(destination: Fixture.hostB, source: Fixture.hostA, tags: okTags,
                                  etherType: 0x0800, payload: [])
        #expect(parseFailure(ok) { (raw) throws(FrameError) in _ = try EthernetFrame(raw) } == nil)
        let tooMany = Fixture.ethernet(destination: Fixture.hostB, source: Fixture.hostA,
                                       tags: okTags + [(0x8100, 1)], etherType: 0x0800, payload: [])
        #expect(parseFailure(tooMany) { (raw) throws(FrameError) in _ = try EthernetFrame(raw) } == .tooManyVLANTags)
    }

    @Test func randomBytesNeverTrap() {
        var rng = SplitMix64(seed: 7)
        for _ in 0..<5000 {
            let length = Int(rng.next() % 64)
            var bytes = (0..<length).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            // Bias toward tag TPIDs so the tag loop is exercised.
            var offset = 12
            while offset + 1 < bytes.count, rng.next() % 3 != 0 {
                bytes[offset] = 0x81
                bytes[offset + 1] = 0x00
                offset += 4
            }
            _ = parseFailure(bytes) { (raw) throws(FrameError) in
                let frame = try EthernetFrame(raw)
                _ = (frame.destination, frame.source, frame.payload.count, frame.firstVLANID)
                #expect(frame.payloadOffset <= frame.length)
            }
        }
    }
}
