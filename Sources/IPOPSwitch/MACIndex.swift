import IPOPWire

/// Open-addressing hash index MAC → slot number, for `MACTable`.
///
/// Fixed size, allocated once: a power of two ≥ 2 × capacity buckets (load factor ≤ 1/2),
/// linear probing, backward-shift deletion (no tombstones, so no rebuilds). Hashing is a
/// 64-bit mixer keyed by a per-table random seed: a few multiplies instead of SipHash, and a
/// peer that picks its source MACs cannot aim them at one bucket without knowing the seed.
struct MACIndex: Sendable {
    private struct Bucket {
        /// `emptyKey` when free; otherwise a 48-bit MAC value.
        var key: UInt64
        var slot: Int32
    }

    /// Never a MAC value (those have the top 16 bits clear).
    private static let emptyKey = UInt64.max

    private var buckets: [Bucket]
    private let mask: Int
    private let seed: UInt64
    private(set) var count = 0

    init(capacity: Int, seed: UInt64) {
        var size = 16
        while size < 2 * capacity { size <<= 1 }
        self.buckets = Array(repeating: Bucket(key: MACIndex.emptyKey, slot: -1), count: size)
        self.mask = size - 1
        self.seed = seed
    }

    /// Number of buckets (fixed).
    var bucketCount: Int { buckets.count }

    @inline(__always)
    private func home(_ key: UInt64) -> Int {
        var x = key ^ seed
        x = (x ^ (x >> 30)) &* 0xBF58_476D_1CE4_E5B9
        x = (x ^ (x >> 27)) &* 0x94D0_49BB_1331_11EB
        x ^= x >> 31
        return Int(truncatingIfNeeded: x) & mask
    }

    /// The slot stored for `mac`, or nil.
    @inline(__always)
    func find(_ mac: MACAddress) -> Int? {
        let key = mac.rawValue
        var i = home(key)
        while true {
            let bucket = buckets[i]
            if bucket.key == key { return Int(bucket.slot) }
            if bucket.key == MACIndex.emptyKey { return nil }
            i = (i &+ 1) & mask
        }
    }

    /// Adds `mac` → `slot`. `mac` must not be present and `count` must stay ≤ capacity.
    @inline(__always)
    mutating func insert(_ mac: MACAddress, slot: Int) {
        let key = mac.rawValue
        var i = home(key)
        while buckets[i].key != MACIndex.emptyKey {
            i = (i &+ 1) & mask
        }
        buckets[i] = Bucket(key: key, slot: Int32(truncatingIfNeeded: slot))
        count += 1
    }

    /// Removes `mac` if present.
    mutating func remove(_ mac: MACAddress) {
        let key = mac.rawValue
        var i = home(key)
        while buckets[i].key != key {
            if buckets[i].key == MACIndex.emptyKey { return }
            i = (i &+ 1) & mask
        }
        // Backward shift: pull later members of the probe run into the hole when their
        // home position is not cyclically within (hole, j].
        var j = i
        while true {
            j = (j &+ 1) & mask
            let candidate = buckets[j]
            if candidate.key == MACIndex.emptyKey { break }
            let k = home(candidate.key)
            let stays = i <= j ? (i < k && k <= j) : (i < k || k <= j)
            if !stays {
                buckets[i] = candidate
                i = j
            }
        }
        buckets[i] = Bucket(key: MACIndex.emptyKey, slot: -1)
        count -= 1
    }

    mutating func removeAll() {
        for i in buckets.indices { buckets[i] = Bucket(key: MACIndex.emptyKey, slot: -1) }
        count = 0
    }
}
