import Crypto
import Foundation

/// One direction of a session: ChaChaPoly with the Noise nonce (4 zero bytes + 8-byte LE counter), empty AD.
///
/// Works in place on caller-owned memory. swift-crypto allocates internally for its result;
/// the bytes are copied back with a single `copyMemory` each.
public struct TransportCipher: Sendable {
    public static let tagSize = 16

    public enum Failure: Error, CustomStringConvertible, Equatable, Sendable {
        case bufferTooSmall
        case authenticationFailed
        case cryptoError

        public var description: String {
            switch self {
            case .bufferTooSmall: return "transport: buffer shorter than the 16-byte tag"
            case .authenticationFailed: return "transport: authentication failed"
            case .cryptoError: return "transport: cipher error"
            }
        }
    }

    private let key: SymmetricKey

    public init(key: SymmetricKey) {
        self.key = key
    }

    /// Seals `buffer[0 ..< count-16]` in place and writes the tag into the last 16 bytes.
    public func seal(counter: UInt64, buffer: UnsafeMutableRawBufferPointer) throws(Failure) {
        guard buffer.count >= Self.tagSize, let base = buffer.baseAddress else { throw .bufferTooSmall }
        let plaintextLength = buffer.count - Self.tagSize
        let box: ChaChaPoly.SealedBox
        do {
            let plaintext = UnsafeRawBufferPointer(start: base, count: plaintextLength)
            box = try ChaChaPoly.seal(plaintext, using: key, nonce: NoiseNonce.make(counter))
        } catch {
            throw .cryptoError
        }
        box.ciphertext.withUnsafeBytes { source in
            if let from = source.baseAddress {
                base.copyMemory(from: from, byteCount: min(source.count, plaintextLength))
            }
        }
        box.tag.withUnsafeBytes { source in
            if let from = source.baseAddress {
                (base + plaintextLength).copyMemory(from: from, byteCount: min(source.count, Self.tagSize))
            }
        }
    }

    /// Opens `buffer` (ciphertext || tag) in place. On success the plaintext is at
    /// `buffer[0 ..< returned length]`; on failure the buffer is untouched.
    @discardableResult
    public func open(counter: UInt64, buffer: UnsafeMutableRawBufferPointer) throws(Failure) -> Int {
        guard buffer.count >= Self.tagSize, let base = buffer.baseAddress else { throw .bufferTooSmall }
        let ciphertextLength = buffer.count - Self.tagSize
        let plaintext: Data
        do {
            let box = try ChaChaPoly.SealedBox(
                nonce: NoiseNonce.make(counter),
                ciphertext: UnsafeRawBufferPointer(start: base, count: ciphertextLength),
                tag: UnsafeRawBufferPointer(start: base + ciphertextLength, count: Self.tagSize))
            plaintext = try ChaChaPoly.open(box, using: key)
        } catch {
            throw .authenticationFailed
        }
        plaintext.withUnsafeBytes { source in
            if let from = source.baseAddress {
                base.copyMemory(from: from, byteCount: min(source.count, ciphertextLength))
            }
        }
        return ciphertextLength
    }
}
