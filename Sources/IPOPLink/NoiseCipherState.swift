import Crypto
import Foundation

/// Noise CipherState for ChaChaPoly: a key and a 64-bit nonce counter.
///
/// Nonce layout (Noise spec, ChaChaPoly): 4 zero bytes followed by the counter as 8 little-endian bytes.
/// Used during the handshake (small, allocating); the data path uses `TransportCipher`.
struct NoiseCipherState {
    private(set) var key: SymmetricKey?
    private(set) var nonce: UInt64 = 0

    init(key: SymmetricKey? = nil) {
        self.key = key
    }

    var hasKey: Bool { key != nil }

    mutating func initializeKey(_ key: SymmetricKey) {
        self.key = key
        nonce = 0
    }

    /// EncryptWithAd: returns ciphertext || tag (or the plaintext unchanged while there is no key).
    mutating func encrypt(ad: [UInt8], plaintext: [UInt8]) throws(NoiseError) -> [UInt8] {
        guard let key else { return plaintext }
        guard nonce < UInt64.max else { throw .nonceExhausted }
        do {
            let box = try ChaChaPoly.seal(plaintext, using: key, nonce: NoiseNonce.make(nonce), authenticating: ad)
            nonce += 1
            return [UInt8](box.ciphertext) + [UInt8](box.tag)
        } catch {
            throw .decryptionFailed
        }
    }

    /// DecryptWithAd: input is ciphertext || tag. The nonce only advances on success.
    mutating func decrypt(ad: [UInt8], ciphertext: [UInt8]) throws(NoiseError) -> [UInt8] {
        guard let key else { return ciphertext }
        guard nonce < UInt64.max else { throw .nonceExhausted }
        guard ciphertext.count >= NoiseNonce.tagSize else {
            throw .invalidLength(field: "ciphertext", expected: NoiseNonce.tagSize, actual: ciphertext.count)
        }
        let split = ciphertext.count - NoiseNonce.tagSize
        do {
            let box = try ChaChaPoly.SealedBox(nonce: NoiseNonce.make(nonce),
                                               ciphertext: ciphertext[..<split],
                                               tag: ciphertext[split...])
            let plain = try ChaChaPoly.open(box, using: key, authenticating: ad)
            nonce += 1
            return [UInt8](plain)
        } catch {
            throw .decryptionFailed
        }
    }
}

/// The ChaChaPoly nonce used by Noise and by the transport: 4 zero bytes + 8-byte little-endian counter.
enum NoiseNonce {
    static let tagSize = 16

    static func make(_ counter: UInt64) throws -> ChaChaPoly.Nonce {
        var bytes: (UInt32, UInt32, UInt32) = (0, UInt32(truncatingIfNeeded: counter).littleEndian,
                                               UInt32(truncatingIfNeeded: counter >> 32).littleEndian)
        return try withUnsafeBytes(of: &bytes) { try ChaChaPoly.Nonce(data: $0) }
    }
}
