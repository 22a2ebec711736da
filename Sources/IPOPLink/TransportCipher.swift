import Crypto
import Foundation

/// One direction of a session: ChaChaPoly with the Noise nonce (4 zero bytes + 8-byte LE counter), empty AD.
///
/// Works in place on caller-owned memory. swift-crypto allocates internally for its result;
/// the bytes are copied back with a single `copyMemory` each.
///
/// swift-crypto 4.5's public API (`Crypto`, `_CryptoExtras`) has no in-place or caller-buffer AEAD:
/// `ChaChaPoly.seal` returns a `SealedBox` (its `Data` built from three malloc'ed parts) and
/// `ChaChaPoly.open` returns a fresh `Data`. Measured with ipop-hotpath-bench (debug build): seal
/// makes 13 heap allocations per call whatever the input type, `open` 4, and building the
/// `SealedBox` for it 6 from separate nonce/ciphertext/tag but 2 from one contiguous
/// nonce || ciphertext || tag (`SealedBox(combined:)`) — hence `open(counter:afterNonceRoom:)`.
public struct TransportCipher: Sendable {
    public static let tagSize = 16
    /// ChaChaPoly nonce bytes (`open(counter:afterNonceRoom:)` writes them before the ciphertext).
    public static let nonceSize = 12

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

    /// `open` with fewer allocations (6 instead of 10 per call): `buffer` is 12 bytes this call
    /// overwrites with the nonce, then ciphertext || tag. With the nonce in front, the bytes are
    /// swift-crypto's combined form, which it takes with one copy instead of concatenating three
    /// parts. On success the plaintext is at `buffer[12 ..< 12 + returned length]`; on failure the
    /// ciphertext and tag are untouched (the first 12 bytes hold the nonce).
    @discardableResult
    public func open(counter: UInt64, afterNonceRoom buffer: UnsafeMutableRawBufferPointer) throws(Failure) -> Int {
        guard buffer.count >= Self.nonceSize + Self.tagSize, let base = buffer.baseAddress else { throw .bufferTooSmall }
        let ciphertextLength = buffer.count - Self.nonceSize - Self.tagSize
        // The Noise nonce: 4 zero bytes, then the counter little-endian.
        base.storeBytes(of: 0, as: UInt32.self)
        (base + 4).storeBytes(of: counter.littleEndian, as: UInt64.self)
        let plaintext: Data
        do {
            let box = try ChaChaPoly.SealedBox(combined: UnsafeRawBufferPointer(buffer))
            plaintext = try ChaChaPoly.open(box, using: key)
        } catch {
            throw .authenticationFailed
        }
        plaintext.withUnsafeBytes { source in
            if let from = source.baseAddress {
                (base + Self.nonceSize).copyMemory(from: from, byteCount: min(source.count, ciphertextLength))
            }
        }
        return ciphertextLength
    }
}
