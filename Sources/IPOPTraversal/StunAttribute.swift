import IPOPWire

/// Attribute type codes (RFC 8489 §18.3, RFC 8656 §18, RFC 8445 §16.1).
///
/// Types 0x0000–0x7FFF are comprehension-required, 0x8000–0xFFFF comprehension-optional.
public enum StunAttributeType {
    public static let mappedAddress: UInt16 = 0x0001
    public static let username: UInt16 = 0x0006
    public static let messageIntegrity: UInt16 = 0x0008
    public static let errorCode: UInt16 = 0x0009
    public static let unknownAttributes: UInt16 = 0x000A
    public static let channelNumber: UInt16 = 0x000C
    public static let lifetime: UInt16 = 0x000D
    public static let xorPeerAddress: UInt16 = 0x0012
    public static let data: UInt16 = 0x0013
    public static let realm: UInt16 = 0x0014
    public static let nonce: UInt16 = 0x0015
    public static let xorRelayedAddress: UInt16 = 0x0016
    public static let requestedTransport: UInt16 = 0x0019
    public static let dontFragment: UInt16 = 0x001A
    public static let xorMappedAddress: UInt16 = 0x0020
    public static let priority: UInt16 = 0x0024
    public static let useCandidate: UInt16 = 0x0025
    public static let software: UInt16 = 0x8022
    public static let fingerprint: UInt16 = 0x8028
    public static let iceControlled: UInt16 = 0x8029
    public static let iceControlling: UInt16 = 0x802A

    /// True for 0x0000–0x7FFF: an agent that does not understand such an attribute must
    /// not process the message (RFC 8489 §14).
    public static func isComprehensionRequired(_ type: UInt16) -> Bool { type < 0x8000 }
}

/// One decoded STUN attribute. Attributes this codec does not know are kept verbatim in
/// `.other` (and, when comprehension-required, reported by
/// `StunMessage.unknownComprehensionRequired`).
public enum StunAttribute: Hashable, Sendable {
    case mappedAddress(StunAddress)
    case xorMappedAddress(StunAddress)
    /// UTF-8, fewer than 513 bytes.
    case username(String)
    /// UTF-8, fewer than 763 bytes.
    case realm(String)
    /// UTF-8, fewer than 763 bytes.
    case nonce(String)
    /// UTF-8, fewer than 763 bytes.
    case software(String)
    /// `code` is 300–699; the reason phrase is UTF-8, fewer than 763 bytes.
    case errorCode(code: Int, reason: String)
    case unknownAttributes([UInt16])
    /// The 20-byte HMAC-SHA1 as found on the wire. The encoder never copies this case
    /// from `attributes`; it computes the value (see `StunMessage.encode`).
    case messageIntegrity([UInt8])
    /// The CRC-32 value as found on the wire (already XORed with 0x5354554e). Computed by
    /// the encoder, like `messageIntegrity`.
    case fingerprint(UInt32)
    // TURN (RFC 8656)
    case channelNumber(UInt16)
    /// Seconds.
    case lifetime(UInt32)
    case xorPeerAddress(StunAddress)
    case data([UInt8])
    case xorRelayedAddress(StunAddress)
    /// IANA protocol number; 17 = UDP.
    case requestedTransport(UInt8)
    case dontFragment
    // ICE (RFC 8445)
    case priority(UInt32)
    case useCandidate
    case iceControlled(tieBreaker: UInt64)
    case iceControlling(tieBreaker: UInt64)
    /// Anything else, value without padding.
    case other(type: UInt16, value: [UInt8])

    /// The attribute's type code.
    public var type: UInt16 {
        typealias T = StunAttributeType
        switch self {
        case .mappedAddress: return T.mappedAddress
        case .xorMappedAddress: return T.xorMappedAddress
        case .username: return T.username
        case .realm: return T.realm
        case .nonce: return T.nonce
        case .software: return T.software
        case .errorCode: return T.errorCode
        case .unknownAttributes: return T.unknownAttributes
        case .messageIntegrity: return T.messageIntegrity
        case .fingerprint: return T.fingerprint
        case .channelNumber: return T.channelNumber
        case .lifetime: return T.lifetime
        case .xorPeerAddress: return T.xorPeerAddress
        case .data: return T.data
        case .xorRelayedAddress: return T.xorRelayedAddress
        case .requestedTransport: return T.requestedTransport
        case .dontFragment: return T.dontFragment
        case .priority: return T.priority
        case .useCandidate: return T.useCandidate
        case .iceControlled: return T.iceControlled
        case .iceControlling: return T.iceControlling
        case .other(let type, _): return type
        }
    }

    // MARK: Value encoding

    /// The value bytes (without the 4-byte attribute header and without padding).
    /// XOR-ed addresses need the transaction id.
    func encodedValue(transactionID: TransactionID) -> [UInt8] {
        var out: [UInt8] = []
        switch self {
        case .mappedAddress(let address):
            StunAttribute.appendAddress(address, xor: nil, to: &out)
        case .xorMappedAddress(let address), .xorPeerAddress(let address), .xorRelayedAddress(let address):
            StunAttribute.appendAddress(address, xor: transactionID, to: &out)
        case .username(let text), .realm(let text), .nonce(let text), .software(let text):
            out.append(contentsOf: text.utf8)
        case .errorCode(let code, let reason):
            let clamped = min(max(code, 0), 699)
            out += [0, 0, UInt8(clamped / 100), UInt8(clamped % 100)]
            out.append(contentsOf: reason.utf8)
        case .unknownAttributes(let types):
            for type in types { out.appendBE16(type) }
        case .messageIntegrity(let mac):
            out = mac
        case .fingerprint(let value):
            out.appendBE32(value)
        case .channelNumber(let number):
            out.appendBE16(number)
            out.appendBE16(0)
        case .lifetime(let seconds), .priority(let seconds):
            out.appendBE32(seconds)
        case .data(let bytes):
            out = bytes
        case .requestedTransport(let proto):
            out = [proto, 0, 0, 0]
        case .dontFragment, .useCandidate:
            break
        case .iceControlled(let tieBreaker), .iceControlling(let tieBreaker):
            out.appendBE64(tieBreaker)
        case .other(_, let value):
            out = value
        }
        return out
    }

    static func appendAddress(_ address: StunAddress, xor transactionID: TransactionID?, to out: inout [UInt8]) {
        let portMask: UInt16 = transactionID == nil ? 0 : UInt16(StunMessage.magicCookie >> 16)
        switch address {
        case .ipv4(let endpoint):
            out += [0, 0x01]
            out.appendBE16(endpoint.port ^ portMask)
            out.appendBE32(endpoint.address ^ (transactionID == nil ? 0 : StunMessage.magicCookie))
        case .ipv6(let ip, let port):
            out += [0, 0x02]
            out.appendBE16(port ^ portMask)
            var high = ip.high
            var low = ip.low
            if let id = transactionID {
                high ^= UInt64(StunMessage.magicCookie) << 32 | UInt64(id.high)
                low ^= id.low
            }
            out.appendBE64(high)
            out.appendBE64(low)
        }
    }

    // MARK: Value decoding

    /// Decodes one attribute value. Unknown types become `.other`.
    static func decode(type: UInt16, value: ArraySlice<UInt8>,
                       transactionID: TransactionID) throws(StunDecodeError) -> StunAttribute {
        typealias T = StunAttributeType
        let bad = StunDecodeError.invalidAttribute(type: type)
        switch type {
        case T.mappedAddress:
            return .mappedAddress(try decodeAddress(value, xor: nil, type: type))
        case T.xorMappedAddress:
            return .xorMappedAddress(try decodeAddress(value, xor: transactionID, type: type))
        case T.xorPeerAddress:
            return .xorPeerAddress(try decodeAddress(value, xor: transactionID, type: type))
        case T.xorRelayedAddress:
            return .xorRelayedAddress(try decodeAddress(value, xor: transactionID, type: type))
        case T.username:
            return .username(try decodeText(value, limit: 513, type: type))
        case T.realm:
            return .realm(try decodeText(value, limit: 763, type: type))
        case T.nonce:
            return .nonce(try decodeText(value, limit: 763, type: type))
        case T.software:
            return .software(try decodeText(value, limit: 763, type: type))
        case T.errorCode:
            guard value.count >= 4, let head = value.be32(at: 0) else { throw bad }
            let errorClass = Int(head >> 8 & 0x7)
            let number = Int(head & 0xFF)
            guard (3...6).contains(errorClass), number < 100 else { throw bad }
            let reason = try decodeText(value.dropFirst(4), limit: 763, type: type)
            return .errorCode(code: errorClass * 100 + number, reason: reason)
        case T.unknownAttributes:
            guard value.count % 2 == 0 else { throw bad }
            var types: [UInt16] = []
            var offset = 0
            while let item = value.be16(at: offset) {
                types.append(item)
                offset += 2
            }
            return .unknownAttributes(types)
        case T.messageIntegrity:
            guard value.count == 20 else { throw bad }
            return .messageIntegrity(Array(value))
        case T.fingerprint:
            guard value.count == 4, let crc = value.be32(at: 0) else { throw bad }
            return .fingerprint(crc)
        case T.channelNumber:
            guard value.count == 4, let number = value.be16(at: 0) else { throw bad }
            return .channelNumber(number)
        case T.lifetime:
            guard value.count == 4, let seconds = value.be32(at: 0) else { throw bad }
            return .lifetime(seconds)
        case T.data:
            return .data(Array(value))
        case T.requestedTransport:
            guard value.count == 4, let first = value.first else { throw bad }
            return .requestedTransport(first)
        case T.dontFragment:
            guard value.isEmpty else { throw bad }
            return .dontFragment
        case T.priority:
            guard value.count == 4, let priority = value.be32(at: 0) else { throw bad }
            return .priority(priority)
        case T.useCandidate:
            guard value.isEmpty else { throw bad }
            return .useCandidate
        case T.iceControlled:
            guard value.count == 8, let tieBreaker = value.be64(at: 0) else { throw bad }
            return .iceControlled(tieBreaker: tieBreaker)
        case T.iceControlling:
            guard value.count == 8, let tieBreaker = value.be64(at: 0) else { throw bad }
            return .iceControlling(tieBreaker: tieBreaker)
        default:
            return .other(type: type, value: Array(value))
        }
    }

    private static func decodeText(_ value: ArraySlice<UInt8>, limit: Int,
                                   type: UInt16) throws(StunDecodeError) -> String {
        guard value.count < limit, let text = strictUTF8(value) else {
            throw .invalidAttribute(type: type)
        }
        return text
    }

    private static func decodeAddress(_ value: ArraySlice<UInt8>, xor transactionID: TransactionID?,
                                      type: UInt16) throws(StunDecodeError) -> StunAddress {
        let bad = StunDecodeError.invalidAttribute(type: type)
        guard value.count >= 4, let familyWord = value.be16(at: 0), let rawPort = value.be16(at: 2) else {
            throw bad
        }
        let portMask: UInt16 = transactionID == nil ? 0 : UInt16(StunMessage.magicCookie >> 16)
        let port = rawPort ^ portMask
        switch familyWord & 0xFF {
        case 0x01:
            guard value.count == 8, let raw = value.be32(at: 4) else { throw bad }
            let address = raw ^ (transactionID == nil ? 0 : StunMessage.magicCookie)
            return .ipv4(Endpoint(address: address, port: port))
        case 0x02:
            guard value.count == 20, var high = value.be64(at: 4), var low = value.be64(at: 12) else { throw bad }
            if let id = transactionID {
                high ^= UInt64(StunMessage.magicCookie) << 32 | UInt64(id.high)
                low ^= id.low
            }
            return .ipv6(IPv6Address(high: high, low: low), port: port)
        default:
            throw bad
        }
    }
}
