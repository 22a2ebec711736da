// Internal big-endian helpers shared by the STUN/TURN codecs.
//
// Readers always bounds-check before reading; nothing here can trap on short input.

extension Array where Element == UInt8 {
    @inline(__always)
    mutating func appendBE16(_ value: UInt16) {
        append(UInt8(truncatingIfNeeded: value >> 8))
        append(UInt8(truncatingIfNeeded: value))
    }

    @inline(__always)
    mutating func appendBE32(_ value: UInt32) {
        append(UInt8(truncatingIfNeeded: value >> 24))
        append(UInt8(truncatingIfNeeded: value >> 16))
        append(UInt8(truncatingIfNeeded: value >> 8))
        append(UInt8(truncatingIfNeeded: value))
    }

    @inline(__always)
    mutating func appendBE64(_ value: UInt64) {
        appendBE32(UInt32(truncatingIfNeeded: value >> 32))
        appendBE32(UInt32(truncatingIfNeeded: value))
    }

    /// Overwrites two bytes at `offset`; the caller guarantees `offset + 2 <= count`.
    @inline(__always)
    mutating func storeBE16(_ value: UInt16, at offset: Int) {
        self[offset] = UInt8(truncatingIfNeeded: value >> 8)
        self[offset + 1] = UInt8(truncatingIfNeeded: value)
    }
}

/// Big-endian loads from any random-access byte collection. Each returns nil when the
/// requested bytes are not all present.
extension RandomAccessCollection where Element == UInt8, Index == Int {
    @inline(__always)
    func be16(at offset: Int) -> UInt16? {
        guard offset >= 0, offset + 2 <= count else { return nil }
        let base = startIndex + offset
        return UInt16(self[base]) << 8 | UInt16(self[base + 1])
    }

    @inline(__always)
    func be32(at offset: Int) -> UInt32? {
        guard offset >= 0, offset + 4 <= count else { return nil }
        let base = startIndex + offset
        return UInt32(self[base]) << 24 | UInt32(self[base + 1]) << 16
            | UInt32(self[base + 2]) << 8 | UInt32(self[base + 3])
    }

    @inline(__always)
    func be64(at offset: Int) -> UInt64? {
        guard let high = be32(at: offset), let low = be32(at: offset + 4) else { return nil }
        return UInt64(high) << 32 | UInt64(low)
    }
}

/// Decodes UTF-8, returning nil (instead of repairing) when the bytes are not valid UTF-8.
func strictUTF8<C: Collection>(_ bytes: C) -> String? where C.Element == UInt8 {
    let text = String(decoding: bytes, as: UTF8.self)
    return text.utf8.elementsEqual(bytes) ? text : nil
}

/// Rounds up to a multiple of four (STUN attribute and ChannelData padding).
@inline(__always)
func paddedTo4(_ length: Int) -> Int { (length + 3) & ~3 }
