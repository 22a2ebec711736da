import Crypto
import Testing
@testable import IPOPLink

@Suite struct TransportCipherTests {
    let key = SymmetricKey(size: .bits256)

    @Test func sealsAndOpensInPlace() throws {
        let cipher = TransportCipher(key: key)
        let plaintext = (0..<100).map { UInt8($0) }
        var buffer = plaintext + [UInt8](repeating: 0, count: 16)
        try buffer.withUnsafeMutableBytes { try cipher.seal(counter: 42, buffer: $0) }
        #expect(Array(buffer[..<100]) != plaintext)
        let length = try buffer.withUnsafeMutableBytes { try cipher.open(counter: 42, buffer: $0) }
        #expect(length == 100)
        #expect(Array(buffer[..<100]) == plaintext)
    }

    @Test func emptyPayloadIsJustATag() throws {
        let cipher = TransportCipher(key: key)
        var buffer = [UInt8](repeating: 0, count: 16)
        try buffer.withUnsafeMutableBytes { try cipher.seal(counter: 0, buffer: $0) }
        #expect(try buffer.withUnsafeMutableBytes { try cipher.open(counter: 0, buffer: $0) } == 0)
    }

    @Test func tamperingWrongCounterOrWrongKeyFailsAndLeavesBufferUntouched() throws {
        let cipher = TransportCipher(key: key)
        var buffer = [UInt8](repeating: 9, count: 40) + [UInt8](repeating: 0, count: 16)
        try buffer.withUnsafeMutableBytes { try cipher.seal(counter: 1, buffer: $0) }
        let sealed = buffer
        #expect(throws: TransportCipher.Failure.authenticationFailed) {
            try buffer.withUnsafeMutableBytes { try cipher.open(counter: 2, buffer: $0) }
        }
        #expect(buffer == sealed)
        buffer[3] ^= 0x80
        #expect(throws: TransportCipher.Failure.authenticationFailed) {
            try buffer.withUnsafeMutableBytes { try cipher.open(counter: 1, buffer: $0) }
        }
        buffer = sealed
        #expect(throws: TransportCipher.Failure.authenticationFailed) {
            try buffer.withUnsafeMutableBytes { try TransportCipher(key: SymmetricKey(size: .bits256)).open(counter: 1, buffer: $0) }
        }
    }

    @Test func bufferShorterThanTagIsAnError() {
        let cipher = TransportCipher(key: key)
        var buffer = [UInt8](repeating: 0, count: 15)
        #expect(throws: TransportCipher.Failure.bufferTooSmall) {
            try buffer.withUnsafeMutableBytes { try cipher.seal(counter: 0, buffer: $0) }
        }
        #expect(throws: TransportCipher.Failure.bufferTooSmall) {
            try buffer.withUnsafeMutableBytes { try cipher.open(counter: 0, buffer: $0) }
        }
    }

    @Test func opensAfterNonceRoomLikeOpenAndFailsTheSameWay() throws {
        let cipher = TransportCipher(key: key)
        let plaintext = (0..<300).map { UInt8(truncatingIfNeeded: $0 * 7) }
        var sealed = plaintext + [UInt8](repeating: 0, count: 16)
        try sealed.withUnsafeMutableBytes { try cipher.seal(counter: 0x0102_0304_0506_0708, buffer: $0) }
        // 12 bytes of room (garbage) before ciphertext || tag, as the transport header gives.
        var buffer = [UInt8](repeating: 0xAB, count: 12) + sealed
        let length = try buffer.withUnsafeMutableBytes { try cipher.open(counter: 0x0102_0304_0506_0708, afterNonceRoom: $0) }
        #expect(length == 300)
        #expect(Array(buffer[12 ..< 312]) == plaintext)
        #expect(Array(buffer[0 ..< 4]) == [0, 0, 0, 0])
        #expect(Array(buffer[4 ..< 12]) == [8, 7, 6, 5, 4, 3, 2, 1])

        buffer = [UInt8](repeating: 0, count: 12) + sealed
        #expect(throws: TransportCipher.Failure.authenticationFailed) {
            try buffer.withUnsafeMutableBytes { try cipher.open(counter: 1, afterNonceRoom: $0) }
        }
        #expect(Array(buffer[12...]) == sealed)
        buffer[20] ^= 1
        #expect(throws: TransportCipher.Failure.authenticationFailed) {
            try buffer.withUnsafeMutableBytes { try cipher.open(counter: 0x0102_0304_0506_0708, afterNonceRoom: $0) }
        }
        var short = [UInt8](repeating: 0, count: 27)
        #expect(throws: TransportCipher.Failure.bufferTooSmall) {
            try short.withUnsafeMutableBytes { try cipher.open(counter: 0, afterNonceRoom: $0) }
        }
        var empty = [UInt8](repeating: 0, count: 12) + [UInt8](repeating: 0, count: 16)
        try empty.withUnsafeMutableBytes { raw in
            try cipher.seal(counter: 3, buffer: UnsafeMutableRawBufferPointer(rebasing: raw[12...]))
        }
        #expect(try empty.withUnsafeMutableBytes { try cipher.open(counter: 3, afterNonceRoom: $0) } == 0)
    }
}
