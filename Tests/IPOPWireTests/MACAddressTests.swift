import Testing
@testable import IPOPWire

struct MACAddressTests {
    @Test func parsesAndPrintsLowercaseColonForm() throws {
        let mac = try #require(MACAddress("AA:bb:0C:dd:Ee:0f"))
        #expect(mac.rawValue == 0xaabb_0cdd_ee0f)
        #expect(mac.description == "aa:bb:0c:dd:ee:0f")
        #expect(MACAddress(mac.description) == mac)
    }

    @Test func stringRoundTripsForRandomAddresses() {
        var rng = SplitMix64(seed: 1)
        for _ in 0..<1000 {
            let mac = MACAddress(rawValue: rng.next())
            #expect(MACAddress(mac.description) == mac)
            #expect(MACAddress(mac.description.uppercased()) == mac)
            #expect(mac.description.count == 17)
        }
    }

    @Test func acceptsSingleDigitOctetsLikeEtherAton() {
        #expect(MACAddress("2:0:0:0:0:1") == MACAddress(rawValue: 0x0200_0000_0001))
    }

    @Test(arguments: [
        "", ":", "aa:bb:cc:dd:ee", "aa:bb:cc:dd:ee:ff:00", "aa:bb:cc:dd:ee:fff",
        "aa:bb:cc:dd:ee:", ":aa:bb:cc:dd:ee", "aa::bb:cc:dd:ee", "aa-bb-cc-dd-ee-ff",
        "gg:bb:cc:dd:ee:ff", " aa:bb:cc:dd:ee:ff", "aa:bb:cc:dd:ee:ff ", "aabbccddeeff",
        "aa:bb:cc:dd:ee:ｆｆ",
    ])
    func rejectsMalformedText(_ text: String) {
        #expect(MACAddress(text) == nil)
    }

    @Test func flags() throws {
        #expect(MACAddress.broadcast.isBroadcast)
        #expect(MACAddress.broadcast.isMulticast)
        #expect(MACAddress.broadcast.description == "ff:ff:ff:ff:ff:ff")
        #expect(MACAddress.zero.description == "00:00:00:00:00:00")
        #expect(MACAddress.zero.isZero && !MACAddress.zero.isValidUnicast)

        let ipv4Multicast = try #require(MACAddress("01:00:5e:00:00:01"))
        #expect(ipv4Multicast.isMulticast && !ipv4Multicast.isBroadcast && !ipv4Multicast.isValidUnicast)
        let ipv6Multicast = try #require(MACAddress("33:33:00:00:00:01"))
        #expect(ipv6Multicast.isMulticast)

        let local = try #require(MACAddress("02:42:ac:11:00:02"))
        #expect(local.isLocallyAdministered && !local.isMulticast && local.isValidUnicast)
        let global = try #require(MACAddress("00:1b:21:3c:4d:5e"))
        #expect(!global.isLocallyAdministered && !global.isMulticast)
    }

    @Test func bytesRoundTrip() {
        let octets: [UInt8] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56]
        let mac = MACAddress(bytes: octets)
        #expect(mac.bytes == octets)
        #expect(mac.description == "52:54:00:12:34:56")
    }

    @Test func bytesInitializerNeverTraps() {
        #expect(MACAddress(bytes: []) == .zero)
        #expect(MACAddress(bytes: [0x02]) == MACAddress(rawValue: 0x0200_0000_0000))
        #expect(MACAddress(bytes: [1, 2, 3, 4, 5, 6, 7, 8]) == MACAddress(rawValue: 0x0102_0304_0506))
    }

    @Test func rawValueIsMaskedTo48Bits() {
        #expect(MACAddress(rawValue: .max) == .broadcast)
    }

    @Test func readsAndWritesRawBuffersAtAnyOffset() {
        let mac = MACAddress(rawValue: 0x0102_0304_0506)
        for offset in 0...3 {
            var buffer = [UInt8](repeating: 0xEE, count: 10)
            buffer.withUnsafeMutableBytes { mac.write(to: $0, offset: offset) }
            #expect(Array(buffer[offset..<offset + 6]) == [1, 2, 3, 4, 5, 6])
            #expect(buffer[..<offset].allSatisfy { $0 == 0xEE })
            #expect(buffer[(offset + 6)...].allSatisfy { $0 == 0xEE })
            let read = buffer.withUnsafeBytes { MACAddress($0, offset: offset) }
            #expect(read == mac)
        }
    }

    @Test func randomIsLocallyAdministeredUnicast() {
        var rng = SplitMix64(seed: 42)
        var seen = Set<MACAddress>()
        for _ in 0..<1000 {
            let mac = MACAddress.random(using: &rng)
            #expect(mac.isLocallyAdministered)
            #expect(!mac.isMulticast)
            #expect(mac.rawValue >> 48 == 0)
            seen.insert(mac)
        }
        #expect(seen.count == 1000)
        #expect(MACAddress.random().isLocallyAdministered)
    }

    @Test func ordersByOctets() throws {
        let a = try #require(MACAddress("00:00:00:00:00:ff"))
        let b = try #require(MACAddress("00:00:00:00:01:00"))
        let c = try #require(MACAddress("ff:00:00:00:00:00"))
        #expect(a < b && b < c)
        #expect([c, a, b].sorted() == [a, b, c])
    }
}
