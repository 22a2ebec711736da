@testable import IPOPSwitch
import IPOPWire

let linkA = LinkID(1)
let linkB = LinkID(2)
let linkC = LinkID(3)

/// Station addresses used across the tests (locally administered unicast).
func station(_ n: UInt64) -> MACAddress { MACAddress(rawValue: 0x0200_0000_0000 | n) }

/// An Ethernet frame of exactly `length` bytes (at least header + tags), IPv4 EtherType.
func frame(to destination: MACAddress, from source: MACAddress,
           tags: [UInt16] = [], length: Int? = nil) -> [UInt8] {
    var bytes = destination.bytes + source.bytes
    for (i, vid) in tags.enumerated() {
        let tpid: UInt16 = i == 0 && tags.count > 1 ? 0x88A8 : 0x8100
        bytes += [UInt8(tpid >> 8), UInt8(tpid & 0xFF), UInt8(vid >> 8), UInt8(vid & 0xFF)]
    }
    bytes += [0x08, 0x00]
    let total = length ?? bytes.count + 46
    if total > bytes.count {
        bytes += (0..<(total - bytes.count)).map { UInt8(truncatingIfNeeded: $0) }
    }
    return bytes
}

extension Switch {
    mutating func tap(_ bytes: [UInt8], at now: ContinuousClock.Instant) -> TapDecision {
        bytes.withUnsafeBytes { fromTap($0, now: now) }
    }

    mutating func link(_ link: LinkID, _ bytes: [UInt8], at now: ContinuousClock.Instant) -> LinkDecision {
        bytes.withUnsafeBytes { fromLink(link, frame: $0, now: now) }
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
