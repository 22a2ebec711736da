// Internal fixed-width big-endian loads and stores used by the codecs.
//
// Every caller checks bounds before calling these; they never allocate and never copy.
// `loadUnaligned` and `storeBytes` are alignment-free, so any offset is fine.

extension UnsafeRawBufferPointer {
    @usableFromInline @inline(__always)
    func wireU8(_ offset: Int) -> UInt8 {
        self[offset]
    }

    @usableFromInline @inline(__always)
    func wireBE16(_ offset: Int) -> UInt16 {
        UInt16(bigEndian: loadUnaligned(fromByteOffset: offset, as: UInt16.self))
    }

    @usableFromInline @inline(__always)
    func wireBE32(_ offset: Int) -> UInt32 {
        UInt32(bigEndian: loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }

    @usableFromInline @inline(__always)
    func wireBE64(_ offset: Int) -> UInt64 {
        UInt64(bigEndian: loadUnaligned(fromByteOffset: offset, as: UInt64.self))
    }
}

extension UnsafeMutableRawBufferPointer {
    @usableFromInline @inline(__always)
    func wireStoreBE16(_ value: UInt16, _ offset: Int) {
        storeBytes(of: value.bigEndian, toByteOffset: offset, as: UInt16.self)
    }

    @usableFromInline @inline(__always)
    func wireStoreBE32(_ value: UInt32, _ offset: Int) {
        storeBytes(of: value.bigEndian, toByteOffset: offset, as: UInt32.self)
    }

    @usableFromInline @inline(__always)
    func wireStoreBE64(_ value: UInt64, _ offset: Int) {
        storeBytes(of: value.bigEndian, toByteOffset: offset, as: UInt64.self)
    }
}

/// Lowercase hexadecimal digits, for `description`s built without Foundation.
let wireHexDigits: [Character] = Array("0123456789abcdef")

/// Value of one ASCII hex digit, or nil.
@inline(__always)
func wireHexValue(_ byte: UInt8) -> UInt8? {
    switch byte {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte &- UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte &- UInt8(ascii: "a") &+ 10
    case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte &- UInt8(ascii: "A") &+ 10
    default: return nil
    }
}
