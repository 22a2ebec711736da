import Crypto
import Foundation

/// Noise SymmetricState over SHA-256: chaining key `ck`, handshake hash `h`, and a CipherState.
struct NoiseSymmetricState {
    static let hashLength = 32

    private(set) var chainingKey: [UInt8]
    private(set) var handshakeHash: [UInt8]
    private var cipher = NoiseCipherState()

    /// InitializeSymmetric(protocol_name).
    init(protocolName: String) {
        let name = Array(protocolName.utf8)
        if name.count <= Self.hashLength {
            handshakeHash = name + [UInt8](repeating: 0, count: Self.hashLength - name.count)
        } else {
            handshakeHash = Array(SHA256.hash(data: name))
        }
        chainingKey = handshakeHash
    }

    var hasKey: Bool { cipher.hasKey }

    mutating func mixHash(_ data: [UInt8]) {
        var hasher = SHA256()
        hasher.update(data: handshakeHash)
        hasher.update(data: data)
        handshakeHash = Array(hasher.finalize())
    }

    mutating func mixKey(_ inputKeyMaterial: [UInt8]) {
        let out = Self.hkdf(chainingKey: chainingKey, inputKeyMaterial: inputKeyMaterial, outputs: 2)
        chainingKey = out[0]
        cipher.initializeKey(SymmetricKey(data: out[1]))
    }

    mutating func mixKeyAndHash(_ inputKeyMaterial: [UInt8]) {
        let out = Self.hkdf(chainingKey: chainingKey, inputKeyMaterial: inputKeyMaterial, outputs: 3)
        chainingKey = out[0]
        mixHash(out[1])
        cipher.initializeKey(SymmetricKey(data: out[2]))
    }

    mutating func encryptAndHash(_ plaintext: [UInt8]) throws(NoiseError) -> [UInt8] {
        let ciphertext = try cipher.encrypt(ad: handshakeHash, plaintext: plaintext)
        mixHash(ciphertext)
        return ciphertext
    }

    mutating func decryptAndHash(_ ciphertext: [UInt8]) throws(NoiseError) -> [UInt8] {
        let plaintext = try cipher.decrypt(ad: handshakeHash, ciphertext: ciphertext)
        mixHash(ciphertext)
        return plaintext
    }

    /// Split(): the two transport keys, initiator->responder first.
    func split() -> (SymmetricKey, SymmetricKey) {
        let out = Self.hkdf(chainingKey: chainingKey, inputKeyMaterial: [], outputs: 2)
        return (SymmetricKey(data: out[0]), SymmetricKey(data: out[1]))
    }

    /// Noise's HKDF (RFC 5869 with empty info) built from swift-crypto's HMAC-SHA256.
    static func hkdf(chainingKey: [UInt8], inputKeyMaterial: [UInt8], outputs: Int) -> [[UInt8]] {
        let tempKey = SymmetricKey(data: Array(HMAC<SHA256>.authenticationCode(
            for: inputKeyMaterial, using: SymmetricKey(data: chainingKey))))
        var result: [[UInt8]] = []
        var previous: [UInt8] = []
        for index in 1...max(1, outputs) {
            var mac = HMAC<SHA256>(key: tempKey)
            mac.update(data: previous)
            mac.update(data: [UInt8(truncatingIfNeeded: index)])
            previous = Array(mac.finalize())
            result.append(previous)
        }
        return result
    }
}
