import Crypto
import Testing
@testable import IPOPLink

@Suite struct LinkMessageTests {
    @Test func initiationRoundTripsAndHasTheDocumentedLayout() throws {
        let key = Curve25519.KeyAgreement.PrivateKey().publicKey
        let noise = (0..<108).map { UInt8($0) }
        let message = HandshakeInitiation(overlayTag: 0x0403_0201, senderIndex: 0x0807_0605, noise: noise)
        let bytes = message.encoded(mac1Key: Mac1.key(for: key))
        #expect(bytes.count == 136)
        #expect(Array(bytes[0..<12]) == [1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8])
        #expect(Array(bytes[12..<120]) == noise)
        let decoded = try HandshakeInitiation(decoding: bytes)
        #expect(decoded.overlayTag == 0x0403_0201 && decoded.senderIndex == 0x0807_0605 && decoded.noise == noise)
        #expect(decoded.encoded() == bytes)
        #expect(bytes.withUnsafeBytes { Mac1.verify(key: Mac1.key(for: key), message: $0) })
    }

    @Test func responseRoundTrips() throws {
        let noise = [UInt8](repeating: 0xAB, count: 48)
        let bytes = HandshakeResponse(senderIndex: 7, receiverIndex: 0xDEAD_BEEF, noise: noise).encoded()
        #expect(bytes.count == 76)
        #expect(Array(bytes[0..<12]) == [2, 0, 0, 0, 7, 0, 0, 0, 0xEF, 0xBE, 0xAD, 0xDE])
        let decoded = try HandshakeResponse(decoding: bytes)
        #expect(decoded.senderIndex == 7 && decoded.receiverIndex == 0xDEAD_BEEF && decoded.noise == noise)
    }

    @Test func transportHeaderIsLittleEndian() throws {
        var packet = [UInt8](repeating: 0xFF, count: 32)
        packet.withUnsafeMutableBytes { _ = TransportHeader(receiverIndex: 0x1122_3344, counter: 0x0102_0304_0506_0708).write(to: $0) }
        #expect(Array(packet[0..<16]) == [4, 0, 0, 0, 0x44, 0x33, 0x22, 0x11, 8, 7, 6, 5, 4, 3, 2, 1])
        let header = try packet.withUnsafeBytes { try TransportHeader(decoding: $0) }
        #expect(header == TransportHeader(receiverIndex: 0x1122_3344, counter: 0x0102_0304_0506_0708))
    }

    @Test func decodersRejectBadInputWithTypedErrors() {
        let initiation = HandshakeInitiation(overlayTag: 1, senderIndex: 2, noise: []).encoded()
        #expect(throws: LinkMessageError.wrongLength(type: .initiation, expected: 136, actual: 135)) {
            try HandshakeInitiation(decoding: Array(initiation.dropLast()))
        }
        #expect(throws: LinkMessageError.truncated(expected: 4, actual: 2)) { try HandshakeInitiation(decoding: [1, 0]) }
        #expect(throws: LinkMessageError.unknownType(9)) { try HandshakeResponse(decoding: [9, 0, 0, 0]) }
        #expect(throws: LinkMessageError.wrongType(expected: .response, actual: .initiation)) {
            try HandshakeResponse(decoding: initiation)
        }
        var reserved = initiation
        reserved[2] = 1
        #expect(throws: LinkMessageError.reservedNotZero) { try HandshakeInitiation(decoding: reserved) }
        #expect(throws: LinkMessageError.truncated(expected: 32, actual: 31)) {
            try [UInt8]([4] + [UInt8](repeating: 0, count: 30)).withUnsafeBytes { try TransportHeader(decoding: $0) }
        }
        #expect(throws: (any Error).self) { try [UInt8]().withUnsafeBytes { try TransportHeader(decoding: $0) } }
    }

    @Test func decodersNeverTrapOnArbitraryBytes() {
        var rng = SplitMix64(seed: 99)
        for _ in 0..<2000 {
            let length = Int(rng.next() % 200)
            var bytes = (0..<length).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            if length > 0, rng.next() % 2 == 0 { bytes[0] = [1, 2, 4][Int(rng.next() % 3)] }
            _ = try? HandshakeInitiation(decoding: bytes)
            _ = try? HandshakeResponse(decoding: bytes)
            _ = try? bytes.withUnsafeBytes { try TransportHeader(decoding: $0) }
            _ = bytes.withUnsafeBytes { Mac1.verify(key: SymmetricKey(size: .bits256), message: $0) }
        }
    }

    @Test func mac1CoversEveryByteBeforeIt() {
        let key = Mac1.key(for: Curve25519.KeyAgreement.PrivateKey().publicKey)
        let bytes = HandshakeInitiation(overlayTag: 5, senderIndex: 6, noise: [UInt8](repeating: 1, count: 108)).encoded(mac1Key: key)
        for index in [0, 4, 11, 50, 119, 120, 135] {
            var tampered = bytes
            tampered[index] ^= 1
            #expect(!tampered.withUnsafeBytes { Mac1.verify(key: key, message: $0) }, "byte \(index)")
        }
        let otherKey = Mac1.key(for: Curve25519.KeyAgreement.PrivateKey().publicKey)
        #expect(!bytes.withUnsafeBytes { Mac1.verify(key: otherKey, message: $0) })
    }

    @Test func overlayTagAndPrologueAreDerivedFromTheOverlayID() {
        #expect(LinkMessage.overlayTag("lab") == LinkMessage.overlayTag("lab"))
        #expect(LinkMessage.overlayTag("lab") != LinkMessage.overlayTag("lab2"))
        #expect(LinkMessage.prologue(overlay: "ab") == Array("ipop-swift link v1".utf8) + [0, 0x61, 0x62])
    }

    @Test func timestampsOrderByteWise() {
        let early = WallClock.timestamp(unixNanoseconds: 1_700_000_000_999_999_999)
        let late = WallClock.timestamp(unixNanoseconds: 1_700_000_001_000_000_000)
        #expect(early.count == 12)
        #expect(WallClock.isLater(late, than: early))
        #expect(!WallClock.isLater(early, than: late))
        #expect(!WallClock.isLater(late, than: late))
        let t0 = ContinuousClock.now
        let clock = WallClock(anchor: t0, unixNanoseconds: 5_000_000_000)
        #expect(clock.unixNanoseconds(at: t0 + .seconds(2)) == 7_000_000_000)
        #expect(clock.unixNanoseconds(at: t0 - .seconds(9)) == 0)
    }
}
