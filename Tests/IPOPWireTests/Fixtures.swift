@testable import IPOPWire

/// Runs `parse` over `bytes` and returns the typed error it threw, or nil if it succeeded.
func parseFailure<E: Error>(
    _ bytes: [UInt8], _ parse: (UnsafeRawBufferPointer) throws(E) -> Void
) -> E? {
    bytes.withUnsafeBytes { raw in
        do throws(E) {
            try parse(raw)
            return nil
        } catch {
            return error
        }
    }
}

/// Small deterministic generator (SplitMix64) so randomized tests are reproducible.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

enum Fixture {
    static let hostA: [UInt8] = [0x02, 0x42, 0xac, 0x11, 0x00, 0x02]
    static let hostB: [UInt8] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56]
    static let broadcast: [UInt8] = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff]

    /// A real-looking IPv4/UDP header (classic example with a valid checksum):
    /// 192.168.0.1 -> 192.168.0.199, total length 115, DF, TTL 64, UDP.
    static let ipv4Header: [UInt8] = [
        0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00,
        0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8, 0x00, 0x01,
        0xc0, 0xa8, 0x00, 0xc7,
    ]

    /// The IPv4 packet: header + 95 payload bytes.
    static var ipv4Packet: [UInt8] {
        ipv4Header + (0..<95).map { UInt8(truncatingIfNeeded: $0) }
    }

    /// IPv6 ICMPv6 echo request fe80::1 -> ff02::1, hop limit 255, 8-byte payload.
    static let ipv6Packet: [UInt8] = [
        0x60, 0x00, 0x00, 0x00, 0x00, 0x08, 0x3a, 0xff,
        0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01,
        0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01,
        0x80, 0x00, 0x7b, 0x4b, 0x00, 0x01, 0x00, 0x01,
    ]

    /// ARP request "who has 10.0.0.2? tell 10.0.0.1" from hostA.
    static let arpRequest: [UInt8] = [
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01,
    ] + hostA + [10, 0, 0, 1] + [0, 0, 0, 0, 0, 0] + [10, 0, 0, 2]

    /// ARP reply "10.0.0.2 is at hostB" to hostA.
    static let arpReply: [UInt8] = [
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x02,
    ] + hostB + [10, 0, 0, 2] + hostA + [10, 0, 0, 1]

    static func ethernet(
        destination: [UInt8], source: [UInt8], tags: [(tpid: UInt16, tci: UInt16)] = [],
        etherType: UInt16, payload: [UInt8]
    ) -> [UInt8] {
        var bytes = destination + source
        for tag in tags {
            bytes += [UInt8(tag.tpid >> 8), UInt8(tag.tpid & 0xff), UInt8(tag.tci >> 8), UInt8(tag.tci & 0xff)]
        }
        bytes += [UInt8(etherType >> 8), UInt8(etherType & 0xff)]
        return bytes + payload
    }
}
