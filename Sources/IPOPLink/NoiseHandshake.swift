import Crypto
import Foundation

/// The two transport keys produced by `NoiseHandshake.split()`, already oriented for one side.
public struct NoiseTransportKeys: Sendable {
    public let sending: SymmetricKey
    public let receiving: SymmetricKey
}

/// Noise IK handshake on 25519 / ChaChaPoly / SHA256, optionally with a psk in the second
/// message (`Noise_IKpsk2_25519_ChaChaPoly_SHA256`).
///
///     IK:                          IKpsk2:
///       <- s                         <- s
///       ...                          ...
///       -> e, es, s, ss              -> e, es, s, ss
///       <- e, ee, se                 <- e, ee, se, psk
///
/// A value type: copy it before `readMessage` if a failed read must not consume the state
/// (a failed read leaves the handshake unusable).
public struct NoiseHandshake {
    public enum Role: Sendable { case initiator, responder }

    public static let keyLength = 32
    public static let tagLength = 16

    public let role: Role
    public let usesPSK: Bool
    private var symmetric: NoiseSymmetricState
    private let localStatic: Curve25519.KeyAgreement.PrivateKey
    private var localEphemeral: Curve25519.KeyAgreement.PrivateKey?
    private var remoteStatic: Curve25519.KeyAgreement.PublicKey?
    private var remoteEphemeral: Curve25519.KeyAgreement.PublicKey?
    private let psk: SymmetricKey?
    /// Number of handshake messages processed (0, 1, 2). 2 = complete.
    public private(set) var messageIndex = 0

    public static func protocolName(psk: Bool) -> String {
        psk ? "Noise_IKpsk2_25519_ChaChaPoly_SHA256" : "Noise_IK_25519_ChaChaPoly_SHA256"
    }

    /// - Parameters:
    ///   - remoteStatic: required for the initiator (IK pre-message); learnt from message 1 by the responder.
    ///   - psk: 32-byte pre-shared key; its presence selects IKpsk2.
    ///   - localEphemeral: inject for test vectors; otherwise generated from the system CSPRNG.
    public init(role: Role,
                prologue: [UInt8],
                localStatic: Curve25519.KeyAgreement.PrivateKey,
                remoteStatic: Curve25519.KeyAgreement.PublicKey? = nil,
                psk: SymmetricKey? = nil,
                localEphemeral: Curve25519.KeyAgreement.PrivateKey? = nil) throws(NoiseError) {
        if let psk, psk.bitCount != Self.keyLength * 8 {
            throw .invalidLength(field: "psk", expected: Self.keyLength, actual: psk.bitCount / 8)
        }
        self.role = role
        self.usesPSK = psk != nil
        self.psk = psk
        self.localStatic = localStatic
        self.localEphemeral = localEphemeral
        symmetric = NoiseSymmetricState(protocolName: Self.protocolName(psk: psk != nil))
        symmetric.mixHash(prologue)
        switch role {
        case .initiator:
            guard let remoteStatic else { throw .missingRemoteStatic }
            self.remoteStatic = remoteStatic
            symmetric.mixHash(Array(remoteStatic.rawRepresentation))
        case .responder:
            symmetric.mixHash(Array(localStatic.publicKey.rawRepresentation))
        }
    }

    /// Size of the message carrying `payloadLength` plaintext bytes.
    public static func messageLength(index: Int, payloadLength: Int) -> Int {
        index == 0 ? keyLength + (keyLength + tagLength) + payloadLength + tagLength
                   : keyLength + payloadLength + tagLength
    }

    public var isComplete: Bool { messageIndex == 2 }

    /// The remote party's static public key (known to the initiator from the start, to the responder after message 1).
    public var remoteStaticKey: Curve25519.KeyAgreement.PublicKey? { remoteStatic }

    /// The handshake hash `h` (channel binding); final once the handshake is complete.
    public var handshakeHash: [UInt8] { symmetric.handshakeHash }

    public mutating func writeMessage(payload: [UInt8]) throws(NoiseError) -> [UInt8] {
        switch (role, messageIndex) {
        case (.initiator, 0):
            var out = writeEphemeral()
            try mixDH(localEphemeral, remoteStatic)                                  // es
            out += try symmetric.encryptAndHash(Array(localStatic.publicKey.rawRepresentation)) // s
            try mixDH(localStatic, remoteStatic)                                     // ss
            out += try symmetric.encryptAndHash(payload)
            messageIndex = 1
            return out
        case (.responder, 1):
            var out = writeEphemeral()
            try mixDH(localEphemeral, remoteEphemeral)                               // ee
            try mixDH(localEphemeral, remoteStatic)                                  // se
            if let psk { symmetric.mixKeyAndHash(psk.withUnsafeBytes { Array($0) }) } // psk
            out += try symmetric.encryptAndHash(payload)
            messageIndex = 2
            return out
        default:
            throw .wrongState
        }
    }

    public mutating func readMessage(_ message: [UInt8]) throws(NoiseError) -> [UInt8] {
        switch (role, messageIndex) {
        case (.responder, 0):
            let minimum = Self.messageLength(index: 0, payloadLength: 0)
            guard message.count >= minimum else {
                throw .invalidLength(field: "message 1", expected: minimum, actual: message.count)
            }
            try readEphemeral(message)
            try mixDH(localStatic, remoteEphemeral)                                  // es
            let staticEnd = 2 * Self.keyLength + Self.tagLength
            let staticBytes = try symmetric.decryptAndHash(Array(message[Self.keyLength..<staticEnd])) // s
            remoteStatic = try Self.publicKey(staticBytes)
            try mixDH(localStatic, remoteStatic)                                     // ss
            let payload = try symmetric.decryptAndHash(Array(message[staticEnd...]))
            messageIndex = 1
            return payload
        case (.initiator, 1):
            let minimum = Self.messageLength(index: 1, payloadLength: 0)
            guard message.count >= minimum else {
                throw .invalidLength(field: "message 2", expected: minimum, actual: message.count)
            }
            try readEphemeral(message)
            try mixDH(localEphemeral, remoteEphemeral)                               // ee
            try mixDH(localStatic, remoteEphemeral)                                  // se
            if let psk { symmetric.mixKeyAndHash(psk.withUnsafeBytes { Array($0) }) } // psk
            let payload = try symmetric.decryptAndHash(Array(message[Self.keyLength...]))
            messageIndex = 2
            return payload
        default:
            throw .wrongState
        }
    }

    /// Split(): transport keys oriented for this side. Only valid once the handshake is complete.
    public func split() throws(NoiseError) -> NoiseTransportKeys {
        guard isComplete else { throw .wrongState }
        let (initiatorToResponder, responderToInitiator) = symmetric.split()
        switch role {
        case .initiator: return NoiseTransportKeys(sending: initiatorToResponder, receiving: responderToInitiator)
        case .responder: return NoiseTransportKeys(sending: responderToInitiator, receiving: initiatorToResponder)
        }
    }

    // MARK: - tokens

    private mutating func writeEphemeral() -> [UInt8] {
        let ephemeral = localEphemeral ?? Curve25519.KeyAgreement.PrivateKey()
        localEphemeral = ephemeral
        let bytes = Array(ephemeral.publicKey.rawRepresentation)
        symmetric.mixHash(bytes)
        if usesPSK { symmetric.mixKey(bytes) }
        return bytes
    }

    private mutating func readEphemeral(_ message: [UInt8]) throws(NoiseError) {
        let bytes = Array(message[0..<Self.keyLength])
        remoteEphemeral = try Self.publicKey(bytes)
        symmetric.mixHash(bytes)
        if usesPSK { symmetric.mixKey(bytes) }
    }

    private mutating func mixDH(_ local: Curve25519.KeyAgreement.PrivateKey?,
                                _ remote: Curve25519.KeyAgreement.PublicKey?) throws(NoiseError) {
        guard let local, let remote else { throw .wrongState }
        let secret: SharedSecret
        do {
            secret = try local.sharedSecretFromKeyAgreement(with: remote)
        } catch {
            throw .keyAgreementFailed
        }
        symmetric.mixKey(secret.withUnsafeBytes { Array($0) })
    }

    static func publicKey(_ bytes: [UInt8]) throws(NoiseError) -> Curve25519.KeyAgreement.PublicKey {
        guard bytes.count == keyLength else {
            throw .invalidLength(field: "public key", expected: keyLength, actual: bytes.count)
        }
        do {
            return try Curve25519.KeyAgreement.PublicKey(rawRepresentation: bytes)
        } catch {
            throw .invalidPublicKey
        }
    }
}
