import Crypto
import Foundation

// ipop-swift link wire format, version 1. One UDP datagram carries exactly one message.
// All multi-byte integers (indices, overlay tag, counter) are LITTLE-ENDIAN. "reserved" bytes are
// sent as zero and must be zero on receipt.
//
// Handshake initiation, type 1, 136 bytes:
//   off  size  field
//     0     1  type = 1
//     1     3  reserved
//     4     4  overlayTag     first 4 bytes (LE) of SHA256("ipop-swift overlay tag v1" || 0x00 || overlay id)
//     8     4  senderIndex    initiator's local index for this handshake / session
//    12    32  ephemeral      Noise message 1: e
//    44    48  static         Noise message 1: AEAD(initiator static public key) 32 + tag 16
//    92    28  timestamp      Noise message 1: AEAD(12-byte TAI64N of the initiator's wall clock) 12 + tag 16
//   120    16  mac1           HMAC-SHA256(SHA256("mac1----" || recipient static public key), bytes 0..<120)[0..<16]
//
// Handshake response, type 2, 76 bytes:
//     0     1  type = 2
//     1     3  reserved
//     4     4  senderIndex    responder's local index for the new session
//     8     4  receiverIndex  the initiator's senderIndex
//    12    32  ephemeral      Noise message 2: e
//    44    16  empty          Noise message 2: AEAD(empty payload) = tag only
//    60    16  mac1           as above, keyed by the initiator's static public key, over bytes 0..<60
//
// Transport data, type 4, 32 + n bytes (n = 0: keepalive):
//     0     1  type = 4
//     1     3  reserved
//     4     4  receiverIndex  the recipient's local index of the session
//     8     8  counter        per-session, per-direction message counter; the ChaCha20-Poly1305 nonce is
//                             4 zero bytes || counter (8 bytes LE); AD is empty
//    16     n  ciphertext     encrypted Ethernet frame
//  16+n    16  tag            Poly1305 tag
//
// The Noise prologue is "ipop-swift link v1" || 0x00 || overlay id (UTF-8), binding every session to
// the protocol version and to one overlay.

public enum LinkMessageType: UInt8, Sendable {
    case initiation = 1
    case response = 2
    case transport = 4
}

public enum LinkMessageError: Error, CustomStringConvertible, Equatable, Sendable {
    case truncated(expected: Int, actual: Int)
    case unknownType(UInt8)
    case reservedNotZero
    case wrongLength(type: LinkMessageType, expected: Int, actual: Int)
    case wrongType(expected: LinkMessageType, actual: LinkMessageType)

    public var description: String {
        switch self {
        case let .truncated(expected, actual): return "link message truncated: \(actual) bytes, need \(expected)"
        case let .unknownType(type): return "link message of unknown type \(type)"
        case .reservedNotZero: return "link message with non-zero reserved bytes"
        case let .wrongLength(type, expected, actual):
            return "link \(type) message of \(actual) bytes, expected \(expected)"
        case let .wrongType(expected, actual): return "link message is \(actual), expected \(expected)"
        }
    }
}

public enum LinkMessage {
    public static let prologuePrefix = Array("ipop-swift link v1".utf8)

    /// Reads the type and checks the reserved bytes.
    public static func type(of bytes: UnsafeRawBufferPointer) throws(LinkMessageError) -> LinkMessageType {
        guard bytes.count >= 4 else { throw .truncated(expected: 4, actual: bytes.count) }
        guard let type = LinkMessageType(rawValue: bytes[0]) else { throw .unknownType(bytes[0]) }
        guard bytes[1] == 0, bytes[2] == 0, bytes[3] == 0 else { throw .reservedNotZero }
        return type
    }

    /// The Noise prologue of an overlay.
    public static func prologue(overlay id: String) -> [UInt8] {
        prologuePrefix + [0] + Array(id.utf8)
    }

    /// The 32-bit overlay tag carried in initiations.
    public static func overlayTag(_ id: String) -> UInt32 {
        let digest = Array(SHA256.hash(data: Array("ipop-swift overlay tag v1".utf8) + [0] + Array(id.utf8)))
        return UInt32(digest[0]) | UInt32(digest[1]) << 8 | UInt32(digest[2]) << 16 | UInt32(digest[3]) << 24
    }

    static func header(_ type: LinkMessageType) -> [UInt8] { [type.rawValue, 0, 0, 0] }

    static func check(_ bytes: UnsafeRawBufferPointer, is expected: LinkMessageType,
                      length: Int) throws(LinkMessageError) {
        let type = try type(of: bytes)
        guard type == expected else { throw .wrongType(expected: expected, actual: type) }
        guard bytes.count == length else { throw .wrongLength(type: type, expected: length, actual: bytes.count) }
    }
}

/// mac1: lets a recipient reject junk with one HMAC, before any Diffie-Hellman.
public enum Mac1 {
    public static let size = 16
    static let label = Array("mac1----".utf8)

    /// SHA256("mac1----" || static public key of the message's recipient).
    public static func key(for recipient: Curve25519.KeyAgreement.PublicKey) -> SymmetricKey {
        SymmetricKey(data: Array(SHA256.hash(data: label + Array(recipient.rawRepresentation))))
    }

    /// The first 16 bytes of HMAC-SHA256(key, covered).
    public static func compute(key: SymmetricKey, over covered: UnsafeRawBufferPointer) -> [UInt8] {
        Array(Array(HMAC<SHA256>.authenticationCode(for: covered, using: key)).prefix(size))
    }

    /// Checks the trailing 16 bytes of `message` against the MAC of everything before them (constant time).
    public static func verify(key: SymmetricKey, message: UnsafeRawBufferPointer) -> Bool {
        guard message.count >= size else { return false }
        let split = message.count - size
        let expected = compute(key: key, over: UnsafeRawBufferPointer(rebasing: message[..<split]))
        var difference: UInt8 = 0
        for index in 0..<size { difference |= expected[index] ^ message[split + index] }
        return difference == 0
    }

    /// Appends mac1 to a message body.
    static func append(to body: inout [UInt8], key: SymmetricKey) {
        let mac = body.withUnsafeBytes { compute(key: key, over: $0) }
        body += mac
    }
}

public struct HandshakeInitiation: Equatable, Sendable {
    public static let size = 136
    public static let noiseSize = 108
    public static let mac1Offset = 120

    public var overlayTag: UInt32
    public var senderIndex: UInt32
    /// Noise message 1 (ephemeral, encrypted static, encrypted timestamp): 108 bytes.
    public var noise: [UInt8]
    public var mac1: [UInt8]

    public init(overlayTag: UInt32, senderIndex: UInt32, noise: [UInt8], mac1: [UInt8] = [UInt8](repeating: 0, count: 16)) {
        self.overlayTag = overlayTag
        self.senderIndex = senderIndex
        self.noise = noise
        self.mac1 = mac1
    }

    public init(decoding bytes: UnsafeRawBufferPointer) throws(LinkMessageError) {
        try LinkMessage.check(bytes, is: .initiation, length: Self.size)
        overlayTag = WireInt.loadUInt32(bytes, 4)
        senderIndex = WireInt.loadUInt32(bytes, 8)
        noise = Array(bytes[12..<Self.mac1Offset])
        mac1 = Array(bytes[Self.mac1Offset..<Self.size])
    }

    public init(decoding bytes: [UInt8]) throws(LinkMessageError) {
        let result = bytes.withUnsafeBytes { raw in
            Result { () throws(LinkMessageError) in try Self(decoding: raw) }
        }
        self = try result.get()
    }

    /// The 136 wire bytes; mac1 computed with `mac1Key` when given, else the stored `mac1`.
    /// Fields of the wrong size are zero-padded / truncated so encoding itself never fails.
    public func encoded(mac1Key: SymmetricKey? = nil) -> [UInt8] {
        var out = LinkMessage.header(.initiation)
        out += WireInt.bytes(overlayTag) + WireInt.bytes(senderIndex)
        out += WireInt.fixed(noise, Self.noiseSize)
        if let mac1Key { Mac1.append(to: &out, key: mac1Key) } else { out += WireInt.fixed(mac1, Mac1.size) }
        return out
    }
}

public struct HandshakeResponse: Equatable, Sendable {
    public static let size = 76
    public static let noiseSize = 48
    public static let mac1Offset = 60

    public var senderIndex: UInt32
    public var receiverIndex: UInt32
    /// Noise message 2 (ephemeral, encrypted empty payload): 48 bytes.
    public var noise: [UInt8]
    public var mac1: [UInt8]

    public init(senderIndex: UInt32, receiverIndex: UInt32, noise: [UInt8], mac1: [UInt8] = [UInt8](repeating: 0, count: 16)) {
        self.senderIndex = senderIndex
        self.receiverIndex = receiverIndex
        self.noise = noise
        self.mac1 = mac1
    }

    public init(decoding bytes: UnsafeRawBufferPointer) throws(LinkMessageError) {
        try LinkMessage.check(bytes, is: .response, length: Self.size)
        senderIndex = WireInt.loadUInt32(bytes, 4)
        receiverIndex = WireInt.loadUInt32(bytes, 8)
        noise = Array(bytes[12..<Self.mac1Offset])
        mac1 = Array(bytes[Self.mac1Offset..<Self.size])
    }

    public init(decoding bytes: [UInt8]) throws(LinkMessageError) {
        let result = bytes.withUnsafeBytes { raw in
            Result { () throws(LinkMessageError) in try Self(decoding: raw) }
        }
        self = try result.get()
    }

    public func encoded(mac1Key: SymmetricKey? = nil) -> [UInt8] {
        var out = LinkMessage.header(.response)
        out += WireInt.bytes(senderIndex) + WireInt.bytes(receiverIndex)
        out += WireInt.fixed(noise, Self.noiseSize)
        if let mac1Key { Mac1.append(to: &out, key: mac1Key) } else { out += WireInt.fixed(mac1, Mac1.size) }
        return out
    }
}

/// The 16-byte header of a transport packet.
public struct TransportHeader: Equatable, Sendable {
    public static let size = 16
    /// Header + tag: the smallest transport packet (a keepalive).
    public static let minimumPacketSize = size + TransportCipher.tagSize

    public var receiverIndex: UInt32
    public var counter: UInt64

    public init(receiverIndex: UInt32, counter: UInt64) {
        self.receiverIndex = receiverIndex
        self.counter = counter
    }

    /// Decodes the header of a whole transport packet (header + ciphertext + tag).
    public init(decoding packet: UnsafeRawBufferPointer) throws(LinkMessageError) {
        let type = try LinkMessage.type(of: packet)
        guard type == .transport else { throw .wrongType(expected: .transport, actual: type) }
        guard packet.count >= Self.minimumPacketSize else {
            throw .truncated(expected: Self.minimumPacketSize, actual: packet.count)
        }
        receiverIndex = WireInt.loadUInt32(packet, 4)
        counter = UInt64(littleEndian: packet.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
    }

    /// Writes the header into the first 16 bytes. Returns false if the buffer is too short.
    @discardableResult
    public func write(to buffer: UnsafeMutableRawBufferPointer) -> Bool {
        guard buffer.count >= Self.size else { return false }
        buffer.storeBytes(of: UInt32(LinkMessageType.transport.rawValue).littleEndian, toByteOffset: 0, as: UInt32.self)
        buffer.storeBytes(of: receiverIndex.littleEndian, toByteOffset: 4, as: UInt32.self)
        buffer.storeBytes(of: counter.littleEndian, toByteOffset: 8, as: UInt64.self)
        return true
    }
}

enum WireInt {
    /// Caller has checked `offset + 4 <= bytes.count`.
    static func loadUInt32(_ bytes: UnsafeRawBufferPointer, _ offset: Int) -> UInt32 {
        UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }

    static func bytes(_ value: UInt32) -> [UInt8] {
        [UInt8(truncatingIfNeeded: value), UInt8(truncatingIfNeeded: value >> 8),
         UInt8(truncatingIfNeeded: value >> 16), UInt8(truncatingIfNeeded: value >> 24)]
    }

    static func fixed(_ bytes: [UInt8], _ count: Int) -> [UInt8] {
        bytes.count == count ? bytes
            : Array(bytes.prefix(count)) + [UInt8](repeating: 0, count: max(0, count - bytes.count))
    }
}
