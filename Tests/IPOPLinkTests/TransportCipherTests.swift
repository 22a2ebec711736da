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
}
