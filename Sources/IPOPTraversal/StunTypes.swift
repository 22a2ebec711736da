import IPOPWire

/// A STUN method (12 bits). RFC 8489 defines Binding; RFC 8656 (TURN) adds the rest.
public struct StunMethod: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt16

    /// Values above 0x0FFF are truncated to 12 bits.
    public init(rawValue: UInt16) { self.rawValue = rawValue & 0x0FFF }

    public static let binding = StunMethod(rawValue: 0x001)
    public static let allocate = StunMethod(rawValue: 0x003)
    public static let refresh = StunMethod(rawValue: 0x004)
    public static let send = StunMethod(rawValue: 0x006)
    public static let data = StunMethod(rawValue: 0x007)
    public static let createPermission = StunMethod(rawValue: 0x008)
    public static let channelBind = StunMethod(rawValue: 0x009)

    public var description: String {
        switch self {
        case .binding: return "Binding"
        case .allocate: return "Allocate"
        case .refresh: return "Refresh"
        case .send: return "Send"
        case .data: return "Data"
        case .createPermission: return "CreatePermission"
        case .channelBind: return "ChannelBind"
        default: return "Method(0x\(String(rawValue, radix: 16)))"
        }
    }
}

/// The two class bits of a STUN message type.
public enum StunClass: UInt8, Hashable, Sendable {
    case request = 0b00
    case indication = 0b01
    case successResponse = 0b10
    case errorResponse = 0b11
}

/// Method and class, interleaved on the wire as
/// `M11 M10 M9 M8 M7 C1 M6 M5 M4 C0 M3 M2 M1 M0` below two leading zero bits.
public struct StunMessageType: Hashable, Sendable, CustomStringConvertible {
    public var method: StunMethod
    public var messageClass: StunClass

    public init(method: StunMethod, messageClass: StunClass) {
        self.method = method
        self.messageClass = messageClass
    }

    /// From the 16-bit wire value. Nil if either of the two most significant bits is set.
    public init?(rawValue: UInt16) {
        guard rawValue & 0xC000 == 0 else { return nil }
        let c = (rawValue >> 4) & 0b01 | (rawValue >> 7) & 0b10
        let m = rawValue & 0x000F | (rawValue >> 1) & 0x0070 | (rawValue >> 2) & 0x0F80
        self.method = StunMethod(rawValue: m)
        self.messageClass = StunClass(rawValue: UInt8(c)) ?? .request
    }

    public var rawValue: UInt16 {
        let m = method.rawValue
        let c = UInt16(messageClass.rawValue)
        return m & 0x000F | (m & 0x0070) << 1 | (m & 0x0F80) << 2 | (c & 0b01) << 4 | (c & 0b10) << 7
    }

    public var description: String { "\(method) \(messageClass)" }

    public static let bindingRequest = StunMessageType(method: .binding, messageClass: .request)
    public static let bindingSuccess = StunMessageType(method: .binding, messageClass: .successResponse)
    public static let bindingError = StunMessageType(method: .binding, messageClass: .errorResponse)
}

/// The 96-bit transaction id. Chosen by the sender from injected randomness.
public struct TransactionID: Hashable, Sendable, CustomStringConvertible {
    /// Octets 0–3 of the id.
    public let high: UInt32
    /// Octets 4–11 of the id.
    public let low: UInt64

    public init(high: UInt32, low: UInt64) {
        self.high = high
        self.low = low
    }

    /// From exactly twelve octets; nil otherwise.
    public init?<C: Collection>(bytes: C) where C.Element == UInt8 {
        guard bytes.count == 12 else { return nil }
        let array = Array(bytes)
        guard let high = array.be32(at: 0), let low = array.be64(at: 4) else { return nil }
        self.init(high: high, low: low)
    }

    /// A fresh id drawn from `generator` (the caller decides where randomness comes from).
    public static func random<R: RandomNumberGenerator>(using generator: inout R) -> TransactionID {
        TransactionID(high: UInt32(truncatingIfNeeded: generator.next()), low: generator.next())
    }

    public var bytes: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(12)
        out.appendBE32(high)
        out.appendBE64(low)
        return out
    }

    public var description: String {
        bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
    }
}

/// A transport address carried in (XOR-)MAPPED-ADDRESS, XOR-PEER-ADDRESS and
/// XOR-RELAYED-ADDRESS. The overlay's underlay is IPv4 (`Endpoint`); IPv6 is decoded so
/// that it can be reported, not used.
public enum StunAddress: Hashable, Sendable, CustomStringConvertible {
    case ipv4(Endpoint)
    case ipv6(IPv6Address, port: UInt16)

    /// The IPv4 endpoint, or nil for IPv6.
    public var endpoint: Endpoint? {
        if case .ipv4(let endpoint) = self { return endpoint }
        return nil
    }

    public var port: UInt16 {
        switch self {
        case .ipv4(let endpoint): return endpoint.port
        case .ipv6(_, let port): return port
        }
    }

    public var description: String {
        switch self {
        case .ipv4(let endpoint): return endpoint.description
        case .ipv6(let address, let port): return "[\(address)]:\(port)"
        }
    }
}

/// A datagram the caller must send from the shared UDP socket.
public struct OutgoingDatagram: Hashable, Sendable {
    public var bytes: [UInt8]
    public var destination: Endpoint

    public init(bytes: [UInt8], destination: Endpoint) {
        self.bytes = bytes
        self.destination = destination
    }
}
