/// A 128-bit IPv6 address.
///
/// Wire layout: 16 octets, network byte order. Stored as two host-order `UInt64`
/// halves (`high` = octets 0–7, `low` = octets 8–15) for cheap hashing and comparison;
/// `Comparable` is numeric (= lexicographic by octet) order.
public struct IPv6Address: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// Octets 0–7 as a big-endian-decoded value.
    public let high: UInt64
    /// Octets 8–15 as a big-endian-decoded value.
    public let low: UInt64

    /// Wire size of an IPv6 address.
    public static let size = 16
    /// `::`.
    public static let unspecified = IPv6Address(high: 0, low: 0)
    /// `::1`.
    public static let loopback = IPv6Address(high: 0, low: 1)

    @inlinable @inline(__always)
    public init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    /// Reads sixteen octets at `offset`. The caller guarantees `offset + 16 <= raw.count`.
    @inlinable @inline(__always)
    public init(_ raw: UnsafeRawBufferPointer, offset: Int) {
        self.high = raw.wireBE64(offset)
        self.low = raw.wireBE64(offset + 8)
    }

    /// From octets in wire order; exactly 16 expected (extra ignored, missing taken as zero).
    public init(bytes: [UInt8]) {
        var high: UInt64 = 0
        var low: UInt64 = 0
        for i in 0..<8 { high = high << 8 | UInt64(i < bytes.count ? bytes[i] : 0) }
        for i in 8..<16 { low = low << 8 | UInt64(i < bytes.count ? bytes[i] : 0) }
        self.init(high: high, low: low)
    }

    /// From eight 16-bit groups, most significant first.
    public init(groups: [UInt16]) {
        var high: UInt64 = 0
        var low: UInt64 = 0
        for i in 0..<4 { high = high << 16 | UInt64(i < groups.count ? groups[i] : 0) }
        for i in 4..<8 { low = low << 16 | UInt64(i < groups.count ? groups[i] : 0) }
        self.init(high: high, low: low)
    }

    /// Parses RFC 4291 text: eight hex groups, at most one `::`, optionally a trailing
    /// dotted-quad IPv4 (`::ffff:10.0.0.1`). No zone (`%eth0`), no brackets, no prefix.
    public init?(_ string: String) {
        var head: [UInt16] = []
        var tail: [UInt16] = []
        var seenDoubleColon = false
        let text = Array(string.utf8)
        guard !text.isEmpty else { return nil }
        var i = 0
        if text.starts(with: [UInt8(ascii: ":"), UInt8(ascii: ":")]) {
            seenDoubleColon = true
            i = 2
        } else if text[0] == UInt8(ascii: ":") {
            return nil
        }
        while i < text.count {
            // One group (or a trailing IPv4 address).
            var j = i
            while j < text.count, text[j] != UInt8(ascii: ":") { j += 1 }
            let token = text[i..<j]
            guard !token.isEmpty else { return nil }
            if token.contains(UInt8(ascii: ".")) {
                guard j == text.count,
                      let v4 = IPv4Address(String(decoding: token, as: UTF8.self)) else { return nil }
                let value = v4.rawValue
                let groups = [UInt16(truncatingIfNeeded: value >> 16), UInt16(truncatingIfNeeded: value)]
                if seenDoubleColon { tail += groups } else { head += groups }
                i = j
                break
            }
            guard token.count <= 4 else { return nil }
            var group: UInt16 = 0
            for byte in token {
                guard let nibble = wireHexValue(byte) else { return nil }
                group = group << 4 | UInt16(nibble)
            }
            if seenDoubleColon { tail.append(group) } else { head.append(group) }
            guard head.count + tail.count <= 8 else { return nil }
            i = j
            if i == text.count { break }
            // At a ':'.
            if i + 1 < text.count, text[i + 1] == UInt8(ascii: ":") {
                guard !seenDoubleColon else { return nil }
                seenDoubleColon = true
                i += 2
            } else {
                i += 1
                guard i < text.count else { return nil }   // trailing single ':'
            }
        }
        let count = head.count + tail.count
        if seenDoubleColon {
            guard count <= 7 else { return nil }
        } else {
            guard count == 8 else { return nil }
        }
        self.init(groups: head + Array(repeating: 0, count: 8 - count) + tail)
    }

    /// Writes sixteen octets at `offset`. The caller guarantees `offset + 16 <= raw.count`.
    @inlinable @inline(__always)
    public func write(to raw: UnsafeMutableRawBufferPointer, offset: Int) {
        raw.wireStoreBE64(high, offset)
        raw.wireStoreBE64(low, offset + 8)
    }

    /// The 16 octets in wire order (allocates; not for the packet path).
    public var bytes: [UInt8] {
        (0..<16).map { i in
            let half = i < 8 ? high : low
            return UInt8(truncatingIfNeeded: half >> UInt64(56 - 8 * (i % 8)))
        }
    }

    /// The eight 16-bit groups, most significant first.
    public var groups: [UInt16] {
        (0..<8).map { i in
            let half = i < 4 ? high : low
            return UInt16(truncatingIfNeeded: half >> UInt64(48 - 16 * (i % 4)))
        }
    }

    /// ff00::/8.
    @inlinable @inline(__always)
    public var isMulticast: Bool { high >> 56 == 0xFF }
    /// fe80::/10.
    @inlinable @inline(__always)
    public var isLinkLocal: Bool { high >> 54 == 0x3FA }
    /// `::`.
    @inlinable @inline(__always)
    public var isUnspecified: Bool { high == 0 && low == 0 }
    /// `::1`.
    @inlinable @inline(__always)
    public var isLoopback: Bool { high == 0 && low == 1 }

    /// RFC 5952 text: lowercase, no leading zeros, the longest run (first on a tie) of two
    /// or more zero groups written `::`. (IPv4-mapped addresses are not given mixed notation.)
    public var description: String {
        let groups = self.groups
        var bestStart = -1
        var bestLength = 1
        var runStart = -1
        for i in 0...8 {
            if i < 8, groups[i] == 0 {
                if runStart < 0 { runStart = i }
            } else if runStart >= 0 {
                if i - runStart > bestLength {
                    bestStart = runStart
                    bestLength = i - runStart
                }
                runStart = -1
            }
        }
        var text = ""
        var i = 0
        while i < 8 {
            if i == bestStart {
                text += "::"
                i += bestLength
                continue
            }
            if !text.isEmpty, !text.hasSuffix(":") { text += ":" }
            text += String(groups[i], radix: 16)
            i += 1
        }
        return text
    }

    @inlinable @inline(__always)
    public static func == (lhs: IPv6Address, rhs: IPv6Address) -> Bool {
        lhs.high == rhs.high && lhs.low == rhs.low
    }

    @inlinable @inline(__always)
    public func hash(into hasher: inout Hasher) {
        hasher.combine(high)
        hasher.combine(low)
    }

    @inlinable @inline(__always)
    public static func < (lhs: IPv6Address, rhs: IPv6Address) -> Bool {
        (lhs.high, lhs.low) < (rhs.high, rhs.low)
    }
}
