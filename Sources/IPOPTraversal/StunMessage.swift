// STUN message codec (RFC 8489), including the TURN (RFC 8656) and ICE (RFC 8445)
// attributes the overlay needs.
//
// Wire format (all integers big-endian):
//
//    0                   1                   2                   3
//    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//   |0 0|     STUN Message Type     |         Message Length        |
//   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//   |                 Magic Cookie = 0x2112A442                     |
//   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//   |                Transaction ID (96 bits)                       |
//   |                                                               |
//   |                                                               |
//   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//   |  Attribute Type               |  Attribute Length (unpadded)  |  ┐ repeated;
//   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+  │ each value is
//   |  Value … padded with 0–3 bytes to a multiple of 4             |  ┘ padded to 4
//   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// * Message Type: 14 bits, method M0–M11 interleaved with class C0–C1 (`StunMessageType`).
// * Message Length: bytes after the 20-byte header, always a multiple of 4. A datagram
//   must be exactly 20 + length bytes.
// * (XOR-)address values: 1 reserved byte, family (0x01 IPv4, 0x02 IPv6), port,
//   address. XOR-* attributes XOR the port with the cookie's top 16 bits, an IPv4
//   address with the cookie, an IPv6 address with cookie ‖ transaction id.
// * ERROR-CODE: 21 zero bits, class (3 bits, 3–6), number (8 bits, 0–99), reason (UTF-8).
// * MESSAGE-INTEGRITY (0x0008, 20 bytes): HMAC-SHA1 over the message up to, not
//   including, this attribute, with the header's length field set as if the message
//   ended right after MESSAGE-INTEGRITY. Attributes after it other than FINGERPRINT are
//   ignored on decode.
// * FINGERPRINT (0x8028, 4 bytes): CRC-32 of the message up to this attribute (length
//   field covering FINGERPRINT) XOR 0x5354554e. Always last.
//
// Decoding never traps: every length is checked and failures are `StunDecodeError`s.

import Crypto
import IPOPWire

/// Why a datagram is not a valid STUN message.
public enum StunDecodeError: Error, Hashable, Sendable {
    /// Shorter than the 20-byte header.
    case truncatedHeader
    /// Top two bits set or wrong magic cookie.
    case notStun
    /// Message length not a multiple of four.
    case misalignedLength(Int)
    /// The datagram is not exactly 20 + Message Length bytes.
    case lengthMismatch(declared: Int, actual: Int)
    /// An attribute header or value runs past the end of the message.
    case truncatedAttribute(type: UInt16?)
    /// A known attribute with an impossible value (bad length, bad family, bad UTF-8…).
    case invalidAttribute(type: UInt16)
    /// An attribute follows FINGERPRINT.
    case attributeAfterFingerprint
}

/// Result of checking MESSAGE-INTEGRITY or FINGERPRINT on a received datagram.
public enum StunCheck: Hashable, Sendable {
    case valid
    case invalid
    case absent
}

/// A key for MESSAGE-INTEGRITY (HMAC-SHA1).
///
/// SASLprep / OpaqueString (RFC 8265) is simplified to the identity: passwords and realms
/// are used as their UTF-8 bytes unchanged. That is exact for printable ASCII (what the
/// overlay's configuration uses) but would differ for input that the profile maps or
/// normalises (e.g. RFC 5769 §2.4's password is published pre-processed as "TheMatrIX").
public struct StunKey: Hashable, Sendable {
    public let bytes: [UInt8]

    public init(bytes: [UInt8]) { self.bytes = bytes }

    /// Short-term credentials (RFC 8489 §9.1.1): key = OpaqueString(password).
    public static func shortTerm(password: String) -> StunKey {
        StunKey(bytes: Array(password.utf8))
    }

    /// Long-term credentials (RFC 8489 §9.2.2, MD5 algorithm):
    /// key = MD5(username ":" OpaqueString(realm) ":" OpaqueString(password)).
    public static func longTerm(username: String, realm: String, password: String) -> StunKey {
        let input = Array("\(username):\(realm):\(password)".utf8)
        return StunKey(bytes: Array(Insecure.MD5.hash(data: input)))
    }
}

/// A STUN message: type, transaction id and attributes in wire order.
public struct StunMessage: Hashable, Sendable {
    public static let magicCookie: UInt32 = 0x2112_A442
    public static let headerSize = 20
    static let fingerprintXOR: UInt32 = 0x5354_554E

    public var type: StunMessageType
    public var transactionID: TransactionID
    public var attributes: [StunAttribute]

    public init(type: StunMessageType, transactionID: TransactionID, attributes: [StunAttribute] = []) {
        self.type = type
        self.transactionID = transactionID
        self.attributes = attributes
    }

    // MARK: Accessors

    /// The first attribute of `type`, if any.
    public func attribute(_ type: UInt16) -> StunAttribute? {
        attributes.first { $0.type == type }
    }

    public var username: String? {
        for case .username(let value) in attributes { return value }
        return nil
    }

    public var realm: String? {
        for case .realm(let value) in attributes { return value }
        return nil
    }

    public var nonce: String? {
        for case .nonce(let value) in attributes { return value }
        return nil
    }

    public var software: String? {
        for case .software(let value) in attributes { return value }
        return nil
    }

    public var errorCode: (code: Int, reason: String)? {
        for case .errorCode(let code, let reason) in attributes { return (code, reason) }
        return nil
    }

    /// XOR-MAPPED-ADDRESS, else MAPPED-ADDRESS (RFC 3489 servers).
    public var mappedAddress: StunAddress? {
        for case .xorMappedAddress(let value) in attributes { return value }
        for case .mappedAddress(let value) in attributes { return value }
        return nil
    }

    public var xorPeerAddress: StunAddress? {
        for case .xorPeerAddress(let value) in attributes { return value }
        return nil
    }

    public var xorRelayedAddress: StunAddress? {
        for case .xorRelayedAddress(let value) in attributes { return value }
        return nil
    }

    public var lifetime: UInt32? {
        for case .lifetime(let value) in attributes { return value }
        return nil
    }

    public var data: [UInt8]? {
        for case .data(let value) in attributes { return value }
        return nil
    }

    /// Comprehension-required (type < 0x8000) attributes this codec does not understand.
    /// A receiver must reject a request carrying any (420 Unknown Attribute) and must
    /// treat a success response carrying any as a failed transaction.
    public var unknownComprehensionRequired: [UInt16] {
        attributes.compactMap { attribute in
            if case .other(let type, _) = attribute, StunAttributeType.isComprehensionRequired(type) {
                return type
            }
            return nil
        }
    }

    // MARK: Encoding

    /// Encodes the message. `.messageIntegrity` and `.fingerprint` entries in `attributes`
    /// are skipped: when `integrity` is given MESSAGE-INTEGRITY is computed and appended
    /// after the other attributes, and when `fingerprint` is true FINGERPRINT is appended
    /// last. `padding` is the byte used to pad attribute values (RFC 8489 says any value;
    /// zero by default; RFC 5769 §2.1 uses 0x20).
    public func encode(integrity: StunKey? = nil, fingerprint: Bool = false, padding: UInt8 = 0) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(128)
        out.appendBE16(type.rawValue)
        out.appendBE16(0)
        out.appendBE32(StunMessage.magicCookie)
        out += transactionID.bytes
        for attribute in attributes {
            switch attribute {
            case .messageIntegrity, .fingerprint: continue
            default: break
            }
            let value = attribute.encodedValue(transactionID: transactionID)
            out.appendBE16(attribute.type)
            out.appendBE16(UInt16(truncatingIfNeeded: value.count))
            out += value
            out += repeatElement(padding, count: paddedTo4(value.count) - value.count)
        }
        if let key = integrity {
            out.storeBE16(UInt16(truncatingIfNeeded: out.count + 24 - StunMessage.headerSize), at: 2)
            let mac = HMAC<Insecure.SHA1>.authenticationCode(for: out, using: SymmetricKey(data: key.bytes))
            out.appendBE16(StunAttributeType.messageIntegrity)
            out.appendBE16(20)
            out += Array(mac)
        }
        if fingerprint {
            out.storeBE16(UInt16(truncatingIfNeeded: out.count + 8 - StunMessage.headerSize), at: 2)
            let crc = CRC32.checksum(out) ^ StunMessage.fingerprintXOR
            out.appendBE16(StunAttributeType.fingerprint)
            out.appendBE16(4)
            out.appendBE32(crc)
        }
        out.storeBE16(UInt16(truncatingIfNeeded: out.count - StunMessage.headerSize), at: 2)
        return out
    }

    // MARK: Decoding

    /// Decodes a whole datagram. Attributes after MESSAGE-INTEGRITY other than
    /// FINGERPRINT are dropped (RFC 8489 §14.5); anything after FINGERPRINT is an error.
    /// Integrity and fingerprint are *not* verified here: see `checkIntegrity` and
    /// `checkFingerprint`, which work on the same bytes.
    public static func decode(_ bytes: [UInt8]) throws(StunDecodeError) -> StunMessage {
        let header = try Header(bytes)
        var attributes: [StunAttribute] = []
        var seenIntegrity = false
        var seenFingerprint = false
        for raw in try walk(bytes) {
            if seenFingerprint { throw .attributeAfterFingerprint }
            if raw.type == StunAttributeType.fingerprint {
                seenFingerprint = true
            } else if seenIntegrity {
                continue
            }
            let value = bytes[raw.valueStart..<(raw.valueStart + raw.length)]
            let attribute = try StunAttribute.decode(type: raw.type, value: value,
                                                     transactionID: header.transactionID)
            if raw.type == StunAttributeType.messageIntegrity { seenIntegrity = true }
            attributes.append(attribute)
        }
        return StunMessage(type: header.type, transactionID: header.transactionID, attributes: attributes)
    }

    /// Verifies MESSAGE-INTEGRITY of a received datagram with `key` (constant-time MAC
    /// comparison). `.absent` if there is none; `.invalid` if the datagram is malformed.
    public static func checkIntegrity(_ bytes: [UInt8], key: StunKey) -> StunCheck {
        guard (try? Header(bytes)) != nil, let attributes = try? walk(bytes) else { return .invalid }
        guard let mi = attributes.first(where: { $0.type == StunAttributeType.messageIntegrity }) else {
            return .absent
        }
        guard mi.length == 20 else { return .invalid }
        var covered = Array(bytes[0..<mi.start])
        covered.storeBE16(UInt16(truncatingIfNeeded: mi.start + 24 - headerSize), at: 2)
        let mac = bytes[mi.valueStart..<(mi.valueStart + 20)]
        let ok = HMAC<Insecure.SHA1>.isValidAuthenticationCode(
            Array(mac), authenticating: covered, using: SymmetricKey(data: key.bytes))
        return ok ? .valid : .invalid
    }

    /// Verifies FINGERPRINT of a received datagram. `.absent` if there is none; `.invalid`
    /// if the datagram is malformed, the CRC is wrong or FINGERPRINT is not last.
    public static func checkFingerprint(_ bytes: [UInt8]) -> StunCheck {
        guard (try? Header(bytes)) != nil, let attributes = try? walk(bytes) else { return .invalid }
        guard let index = attributes.firstIndex(where: { $0.type == StunAttributeType.fingerprint }) else {
            return .absent
        }
        let fp = attributes[index]
        guard index == attributes.count - 1, fp.length == 4,
              let stored = bytes.be32(at: fp.valueStart) else { return .invalid }
        let crc = CRC32.checksum(bytes[0..<fp.start]) ^ fingerprintXOR
        return crc == stored ? .valid : .invalid
    }

    /// Cheap demultiplexing test for a datagram on the shared socket: at least a header,
    /// the two most significant bits zero, the magic cookie at bytes 4–7, and a length
    /// field that is a multiple of four. IPOP link packets start with a type byte 1–4
    /// (also 0b00 in the top bits) but never carry the cookie; TURN ChannelData starts
    /// with 0b01 (see `ChannelData.looksLikeChannelData`).
    public static func isStunPacket<C: RandomAccessCollection>(_ bytes: C) -> Bool
    where C.Element == UInt8, C.Index == Int {
        guard bytes.count >= headerSize, let first = bytes.first, first & 0xC0 == 0,
              let length = bytes.be16(at: 2), length & 3 == 0 else { return false }
        return bytes.be32(at: 4) == magicCookie
    }

    // MARK: Internals

    struct Header {
        let type: StunMessageType
        let transactionID: TransactionID

        init(_ bytes: [UInt8]) throws(StunDecodeError) {
            guard bytes.count >= StunMessage.headerSize,
                  let rawType = bytes.be16(at: 0), let length = bytes.be16(at: 2),
                  let cookie = bytes.be32(at: 4) else { throw .truncatedHeader }
            guard cookie == StunMessage.magicCookie, let type = StunMessageType(rawValue: rawType) else {
                throw .notStun
            }
            guard length & 3 == 0 else { throw .misalignedLength(Int(length)) }
            guard bytes.count == StunMessage.headerSize + Int(length) else {
                throw .lengthMismatch(declared: Int(length), actual: bytes.count - StunMessage.headerSize)
            }
            guard let id = TransactionID(bytes: bytes[8..<20]) else { throw .truncatedHeader }
            self.type = type
            self.transactionID = id
        }
    }

    /// One attribute's position: `start` is its header, `valueStart` its value.
    struct RawAttribute {
        let type: UInt16
        let start: Int
        let length: Int
        var valueStart: Int { start + 4 }
    }

    /// Walks the attribute headers of a datagram whose header has been validated.
    static func walk(_ bytes: [UInt8]) throws(StunDecodeError) -> [RawAttribute] {
        var result: [RawAttribute] = []
        var offset = headerSize
        while offset < bytes.count {
            guard let type = bytes.be16(at: offset), let length16 = bytes.be16(at: offset + 2) else {
                throw .truncatedAttribute(type: nil)
            }
            let length = Int(length16)
            guard offset + 4 + length <= bytes.count else { throw .truncatedAttribute(type: type) }
            result.append(RawAttribute(type: type, start: offset, length: length))
            // The last attribute's padding may be missing only if the message length says
            // so, and the message length is a multiple of 4, so this stays in bounds or ends.
            offset += 4 + paddedTo4(length)
        }
        guard offset == bytes.count else { throw .truncatedAttribute(type: result.last?.type) }
        return result
    }
}
