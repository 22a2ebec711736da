import Crypto
import Testing
@testable import IPOPLink

@Suite struct TransportCipherTests {
    let key = SymmetricKey(size: .bits256)

    @Test func sealsAndOpensInPlace() throws {
        let cipher = try #require(TransportCipher(key: key))
        let plaintext = (0..<100).map { UInt8($0) }
        var buffer = plaintext + [UInt8](repeating: 0, count: 16)
        try buffer.withUnsafeMutableBytes { try cipher.seal(counter: 42, buffer: $0) }
        #expect(Array(buffer[..<100]) != plaintext)
        let length = try buffer.withUnsafeMutableBytes { try cipher.open(counter: 42, buffer: $0) }
        #expect(length == 100)
        #expect(Array(buffer[..<100]) == plaintext)
    }

    @Test func emptyPayloadIsJustATag() throws {
        let cipher = try #require(TransportCipher(key: key))
        var buffer = [UInt8](repeating: 0, count: 16)
        try buffer.withUnsafeMutableBytes { try cipher.seal(counter: 0, buffer: $0) }
        #expect(try buffer.withUnsafeMutableBytes { try cipher.open(counter: 0, buffer: $0) } == 0)
    }

    @Test func tamperingWrongCounterOrWrongKeyFails() throws {
        let cipher = try #require(TransportCipher(key: key))
        var sealed = [UInt8](repeating: 9, count: 40) + [UInt8](repeating: 0, count: 16)
        try sealed.withUnsafeMutableBytes { try cipher.seal(counter: 1, buffer: $0) }
        var buffer = sealed
        #expect(throws: TransportCipher.Failure.authenticationFailed) {
            try buffer.withUnsafeMutableBytes { try cipher.open(counter: 2, buffer: $0) }
        }
        // The failed open wiped the would-be plaintext: nothing unauthenticated is left behind.
        #expect(Array(buffer[..<40]) == [UInt8](repeating: 0, count: 40))
        for flipped in [0, 39, 40, 55] {
            buffer = sealed
            buffer[flipped] ^= 0x80
            #expect(throws: TransportCipher.Failure.authenticationFailed) {
                try buffer.withUnsafeMutableBytes { try cipher.open(counter: 1, buffer: $0) }
            }
        }
        buffer = sealed
        #expect(throws: TransportCipher.Failure.authenticationFailed) {
            try buffer.withUnsafeMutableBytes { try TransportCipher(key: SymmetricKey(size: .bits256))!.open(counter: 1, buffer: $0) }
        }
        buffer = sealed
        #expect(try buffer.withUnsafeMutableBytes { try cipher.open(counter: 1, buffer: $0) } == 40)
    }

    /// The in-place cipher is swift-crypto's `ChaChaPoly` (same BoringSSL code): same bytes out,
    /// and each opens what the other sealed, at sizes around the 64-byte block and the MTUs.
    @Test func matchesChaChaPolyByteForByte() throws {
        let cipher = try #require(TransportCipher(key: key))
        for (length, counter) in [(0, UInt64(0)), (1, 1), (63, 2), (64, 3), (65, 0xFFFF_FFFF), (1294, 1 << 40), (9018, .max - 1)] {
            let plaintext = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ length) }
            var nonceBytes = [UInt8](repeating: 0, count: 4)
            withUnsafeBytes(of: counter.littleEndian) { nonceBytes += $0 }
            let nonce = try ChaChaPoly.Nonce(data: nonceBytes)
            let reference = try ChaChaPoly.seal(plaintext, using: key, nonce: nonce)

            var buffer = plaintext + [UInt8](repeating: 0, count: 16)
            try buffer.withUnsafeMutableBytes { try cipher.seal(counter: counter, buffer: $0) }
            #expect(Array(buffer[..<length]) == Array(reference.ciphertext), "ciphertext, \(length) bytes")
            #expect(Array(buffer[length...]) == Array(reference.tag), "tag, \(length) bytes")

            let box = try ChaChaPoly.SealedBox(nonce: nonce, ciphertext: buffer[..<length], tag: buffer[length...])
            #expect(Array(try ChaChaPoly.open(box, using: key)) == plaintext)
            var theirs = Array(reference.ciphertext) + Array(reference.tag)
            #expect(try theirs.withUnsafeMutableBytes { try cipher.open(counter: counter, buffer: $0) } == length)
            #expect(Array(theirs[..<length]) == plaintext)
        }
    }

    @Test func aKeyBoringSSLCannotTakeGivesNoCipherInsteadOfACrash() {
        #expect(TransportCipher(key: SymmetricKey(size: .bits128)) == nil)
        #expect(TransportCipher(key: SymmetricKey(size: .bits256)) != nil)
    }

    @Test func bufferShorterThanTagIsAnError() throws {
        let cipher = try #require(TransportCipher(key: key))
        var buffer = [UInt8](repeating: 0, count: 15)
        #expect(throws: TransportCipher.Failure.bufferTooSmall) {
            try buffer.withUnsafeMutableBytes { try cipher.seal(counter: 0, buffer: $0) }
        }
        #expect(throws: TransportCipher.Failure.bufferTooSmall) {
            try buffer.withUnsafeMutableBytes { try cipher.open(counter: 0, buffer: $0) }
        }
    }
}
