/// The Internet checksum (RFC 1071): the 16-bit one's-complement of the one's-complement
/// sum of the data taken as big-endian 16-bit words (an odd trailing byte is padded with a
/// zero byte).
///
/// Use: accumulate with `add` (any number of pieces, each starting on an even offset of the
/// checksummed whole), then `finish`. The accumulator is a plain `UInt64` of unfolded word
/// sums, so it cannot overflow for any packet size. Storing the result of `finish` in the
/// checksum field (zero while summing) makes the whole verify: `finish` over it is 0.
public enum InternetChecksum {
    /// Adds the big-endian 16-bit words of `raw` to `sum`.
    @inlinable
    public static func add(_ raw: UnsafeRawBufferPointer, to sum: UInt64 = 0) -> UInt64 {
        var sum = sum
        var offset = 0
        let even = raw.count & ~1
        while offset < even {
            sum &+= UInt64(raw.wireBE16(offset))
            offset += 2
        }
        if even < raw.count {
            sum &+= UInt64(raw.wireU8(even)) << 8
        }
        return sum
    }

    /// Adds the eight 16-bit words of an IPv6 address.
    @inlinable @inline(__always)
    public static func add(_ address: IPv6Address, to sum: UInt64) -> UInt64 {
        sum &+ wordSum(address.high) &+ wordSum(address.low)
    }

    /// Adds the two 16-bit words of an IPv4 address.
    @inlinable @inline(__always)
    public static func add(_ address: IPv4Address, to sum: UInt64) -> UInt64 {
        sum &+ UInt64(address.rawValue >> 16) &+ UInt64(address.rawValue & 0xFFFF)
    }

    /// The sum of the IPv6 pseudo-header (RFC 8200 §8.1): source, destination, the 32-bit
    /// upper-layer packet length and the next-header value.
    @inlinable @inline(__always)
    public static func ipv6PseudoHeader(
        source: IPv6Address, destination: IPv6Address, upperLayerLength: Int, nextHeader: UInt8
    ) -> UInt64 {
        let length = UInt64(UInt32(truncatingIfNeeded: upperLayerLength))
        return add(destination, to: add(source, to: 0))
            &+ (length >> 16) &+ (length & 0xFFFF) &+ UInt64(nextHeader)
    }

    /// Folds the accumulator to 16 bits and complements it: the value to store in a
    /// checksum field (0 when verifying a correct whole).
    @inlinable @inline(__always)
    public static func finish(_ sum: UInt64) -> UInt16 {
        var folded = sum
        while folded > 0xFFFF { folded = (folded & 0xFFFF) &+ (folded >> 16) }
        return ~UInt16(truncatingIfNeeded: folded)
    }

    @inlinable @inline(__always)
    static func wordSum(_ value: UInt64) -> UInt64 {
        (value >> 48) &+ (value >> 32 & 0xFFFF) &+ (value >> 16 & 0xFFFF) &+ (value & 0xFFFF)
    }
}
