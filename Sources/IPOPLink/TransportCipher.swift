import CTransportAEAD
import Crypto

/// One direction of a session: ChaCha20-Poly1305 with the Noise nonce (4 zero bytes + 8-byte LE
/// counter) and empty associated data, sealed and opened in place on caller-owned memory.
///
/// The cipher is BoringSSL's, the one swift-crypto's `ChaChaPoly` calls, reached through
/// `CTransportAEAD` because swift-crypto's Swift API has no in-place form: `ChaChaPoly.seal` and
/// `open` return fresh `Data` (18 heap allocations and two extra copies per forwarded frame,
/// measured with ipop-hotpath-bench). Here a session's key schedule is set up once, and a frame
/// costs no allocation and no copy. TransportCipherTests compare it with `ChaChaPoly` byte for byte.
public struct TransportCipher: Sendable {
    public static let tagSize = 16
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

    private let context: Context

    /// Nil when BoringSSL cannot set up the key schedule: only when memory runs out (a 32-byte
    /// key is all it checks). The handshake that needed it is dropped, and the peer retries.
    public init?(key: SymmetricKey) {
        guard let context = Context(key: key) else { return nil }
        self.context = context
    }

    /// Seals `buffer[0 ..< count-16]` in place and writes the tag into the last 16 bytes.
    @inline(__always)
    public func seal(counter: UInt64, buffer: UnsafeMutableRawBufferPointer) throws(Failure) {
        guard buffer.count >= Self.tagSize, let base = buffer.baseAddress else { throw .bufferTooSmall }
        let sealed = Self.withNonce(counter) { nonce in
            ipop_transport_aead_seal(context.pointer, nonce, base.assumingMemoryBound(to: UInt8.self),
                                     buffer.count - Self.tagSize)
        }
        guard sealed == 1 else { throw .cryptoError }
    }

    /// Opens `buffer` (ciphertext || tag) in place. On success the plaintext is at
    /// `buffer[0 ..< returned length]`; on failure the ciphertext is gone (BoringSSL zeroes the
    /// plaintext range), so a failed datagram can only be dropped.
    @discardableResult
    @inline(__always)
    public func open(counter: UInt64, buffer: UnsafeMutableRawBufferPointer) throws(Failure) -> Int {
        guard buffer.count >= Self.tagSize, let base = buffer.baseAddress else { throw .bufferTooSmall }
        let opened = Self.withNonce(counter) { nonce in
            ipop_transport_aead_open(context.pointer, nonce, base.assumingMemoryBound(to: UInt8.self), buffer.count)
        }
        guard opened == 1 else { throw .authenticationFailed }
        return buffer.count - Self.tagSize
    }

    /// The 12-byte Noise nonce on the stack: 4 zero bytes, then the counter little-endian.
    @inline(__always)
    private static func withNonce(_ counter: UInt64, _ body: (UnsafePointer<UInt8>) -> Int32) -> Int32 {
        var words: (UInt64, UInt64) = (0, 0)
        return withUnsafeMutableBytes(of: &words) { raw in
            raw.storeBytes(of: counter.littleEndian, toByteOffset: 4, as: UInt64.self)
            return body(raw.baseAddress!.assumingMemoryBound(to: UInt8.self))
        }
    }

    /// Owns BoringSSL's context for one key (its key schedule); freed with the session.
    /// Read-only after init: BoringSSL's seal and open take it `const`, so sharing it is safe.
    private final class Context: @unchecked Sendable {
        let pointer: OpaquePointer

        init?(key: SymmetricKey) {
            guard key.bitCount == 256, let made = key.withUnsafeBytes({ raw in
                ipop_transport_aead_new(raw.baseAddress!.assumingMemoryBound(to: UInt8.self))
            }) else { return nil }
            pointer = made
        }

        deinit { ipop_transport_aead_free(pointer) }
    }
}
