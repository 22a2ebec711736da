/// Everything that can go wrong in the Noise layer. Wire input never traps; it throws one of these.
public enum NoiseError: Error, CustomStringConvertible, Equatable, Sendable {
    /// A key or message field had the wrong number of bytes.
    case invalidLength(field: String, expected: Int, actual: Int)
    /// AEAD authentication failed (wrong key, tampered bytes, wrong prologue, wrong psk...).
    case decryptionFailed
    /// A Diffie-Hellman operation failed (e.g. a low-order public key giving an all-zero secret).
    case keyAgreementFailed
    /// A public key could not be parsed.
    case invalidPublicKey
    /// writeMessage/readMessage/split called at the wrong point of the handshake, or by the wrong role.
    case wrongState
    /// The initiator needs the responder's static public key (IK pre-message).
    case missingRemoteStatic
    /// The 64-bit nonce of a cipher state is used up.
    case nonceExhausted

    public var description: String {
        switch self {
        case let .invalidLength(field, expected, actual):
            return "noise: \(field) has \(actual) bytes, expected \(expected)"
        case .decryptionFailed: return "noise: decryption failed"
        case .keyAgreementFailed: return "noise: key agreement failed"
        case .invalidPublicKey: return "noise: invalid public key"
        case .wrongState: return "noise: operation not valid in this handshake state"
        case .missingRemoteStatic: return "noise: initiator needs the responder's static key"
        case .nonceExhausted: return "noise: nonce exhausted"
        }
    }
}
