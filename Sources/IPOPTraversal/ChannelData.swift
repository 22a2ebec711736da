// TURN ChannelData message (RFC 8656 §12.4):
//
//    0                   1                   2                   3
//    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//   |         Channel Number        |            Length             |
//   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//   |                     Application Data (Length bytes)           |
//   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// Channel numbers are 0x4000–0x4FFF, so the first byte is 0x40–0x4F (top bits 0b01),
// which never collides with STUN (0b00) or IPOP link packets (type 1–4).
//
// Padding: over UDP the data need not be padded to a multiple of four (RFC 8656 §12.5).
// This encoder does not pad by default (`padded: true` pads with zeros); the decoder
// accepts exactly `4 + Length` bytes or `4 + Length` rounded up to a multiple of four.

/// Why a datagram is not a valid ChannelData message.
public enum ChannelDataError: Error, Hashable, Sendable {
    case truncated
    case invalidChannel(UInt16)
    case lengthMismatch(declared: Int, actual: Int)
}

public struct ChannelData: Hashable, Sendable {
    public static let channelRange: ClosedRange<UInt16> = 0x4000...0x4FFF
    public static let headerSize = 4

    public var channel: UInt16
    public var payload: [UInt8]

    public init(channel: UInt16, payload: [UInt8]) {
        self.channel = channel
        self.payload = payload
    }

    /// Header plus payload (plus zero padding to a multiple of four if `padded`).
    /// The caller keeps `payload.count` ≤ 65535 (`TurnClient.wrap` checks).
    public func encode(padded: Bool = false) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(4 + paddedTo4(payload.count))
        out.appendBE16(channel)
        out.appendBE16(UInt16(truncatingIfNeeded: payload.count))
        out += payload
        if padded { out += repeatElement(0, count: paddedTo4(payload.count) - payload.count) }
        return out
    }

    public static func decode<C: RandomAccessCollection>(_ bytes: C) throws(ChannelDataError) -> ChannelData
    where C.Element == UInt8, C.Index == Int {
        guard let channel = bytes.be16(at: 0), let length16 = bytes.be16(at: 2) else { throw .truncated }
        guard channelRange.contains(channel) else { throw .invalidChannel(channel) }
        let length = Int(length16)
        let rest = bytes.count - headerSize
        guard rest == length || rest == paddedTo4(length) else {
            throw .lengthMismatch(declared: length, actual: rest)
        }
        let start = bytes.startIndex + headerSize
        return ChannelData(channel: channel, payload: Array(bytes[start..<(start + length)]))
    }

    /// Cheap demultiplexing test: first byte 0x40–0x4F and at least a header.
    public static func looksLikeChannelData<C: Collection>(_ bytes: C) -> Bool where C.Element == UInt8 {
        guard bytes.count >= headerSize, let first = bytes.first else { return false }
        return first & 0xF0 == 0x40
    }
}
