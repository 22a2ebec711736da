import IPOPWire

/// The switch's forwarding database: which port (a link, or the local TAP) each
/// station MAC was last seen on.
///
/// Rules:
/// - **Learning.** `learn` records "source MAC → port" and refreshes its timestamp.
///   A MAC seen on a different port *moves* there. Broadcast, multicast and the zero
///   address are never learned (`.invalidSource`).
/// - **Aging.** An entry whose age (`now - lastSeen`) is `>= agingTime` is expired —
///   the same boundary as the Linux bridge (`updated + ageing_time <= now`). Expired
///   entries are invisible to `lookup`/`entries` at once and are removed by `expire(now:)`,
///   or reused when their MAC is learned again (counted as aged, then learned).
/// - **Bound and eviction.** At most `capacity` entries. Learning a new MAC when full
///   removes the *least recently seen* entry (the one whose source was heard longest
///   ago; lookups do not refresh). If that entry had already expired it counts as
///   `aged`, otherwise as `evicted`.
/// - **Local entries.** `.local` records a MAC seen as a source on the TAP. Same rules
///   (aging, moves, shared bound); the switch uses it only to filter TAP→TAP frames
///   and for status.
///
/// Implementation: a fixed open-addressing hash index MAC → slot (`MACIndex`, seeded,
/// load ≤ 1/2) plus a doubly linked recency list over a slot array, both sized for
/// `capacity` at init (about 48 bytes per entry: ~400 KB for 8192). Learning a known MAC is
/// a hash probe and an O(1) relink; learning a new one fills a free slot (or the evicted
/// one): no allocation ever happens after init.
/// `expire` is O(number of expired entries) because the recency list is ordered by
/// `lastSeen` — as long as callers pass non-decreasing `now` values (a monotonic clock).
public struct MACTable: Sendable {
    /// Where a MAC lives.
    public enum Location: Hashable, Sendable {
        /// Behind the local TAP.
        case local
        /// Behind an overlay link.
        case link(LinkID)
    }

    /// Outcome of `learn`.
    public enum LearnResult: Hashable, Sendable {
        /// Source was broadcast, multicast or zero: not learned.
        case invalidSource
        /// Known on the same port: timestamp refreshed.
        case refreshed
        /// Known on another port: moved from there.
        case moved(from: Location)
        /// New entry (possibly after evicting or aging out the least recently seen one).
        case learned
    }

    /// Event counts since creation.
    public struct Counters: Hashable, Sendable {
        public var learned: UInt64 = 0
        public var moved: UInt64 = 0
        public var aged: UInt64 = 0
        public var evicted: UInt64 = 0
        public var flushed: UInt64 = 0
        public var invalidSource: UInt64 = 0
        public init() {}
    }

    /// Time as an offset from `ContinuousClock`'s epoch. `ContinuousClock.Instant` is a
    /// resilient type (opaque layout, copied through value witnesses), so slots hold this
    /// frozen plain value instead; converting costs one call per operation.
    typealias Stamp = Duration

    @inline(__always)
    static func stamp(_ instant: ContinuousClock.Instant) -> Stamp {
        instant - ContinuousClock().systemEpoch
    }

    private struct Slot {
        var mac: MACAddress
        var location: Location
        var lastSeen: Stamp
        /// Toward more recent (head); -1 at the head. Unused while free.
        var newer: Int
        /// Toward less recent (tail); -1 at the tail. Next free slot while free.
        var older: Int
    }

    /// Maximum number of entries.
    public let capacity: Int
    /// Entries at least this old are expired.
    public let agingTime: Duration
    public private(set) var counters = Counters()

    private var index: MACIndex
    private var slots: [Slot]
    private var newest = -1
    private var oldest = -1
    private var freeList = -1

    /// - Parameters:
    ///   - capacity: maximum entries, clamped to 1...1_048_576.
    ///   - agingTime: entry lifetime since the MAC was last seen (default 300 s).
    public init(capacity: Int = 8192, agingTime: Duration = .seconds(300)) {
        self.capacity = min(max(1, capacity), 1 << 20)
        self.agingTime = agingTime
        var random = SystemRandomNumberGenerator()
        self.index = MACIndex(capacity: self.capacity, seed: random.next())
        self.slots = []
        self.slots.reserveCapacity(self.capacity)
    }

    /// Number of entries held, including expired ones not yet purged.
    public var count: Int { index.count }

    /// Entries last seen at or before this stamp are expired at `now`.
    @inline(__always)
    private func expiryLine(_ now: Stamp) -> Stamp {
        now - agingTime
    }

    /// Records that `mac` was seen as a source at `location`.
    @discardableResult
    public mutating func learn(_ mac: MACAddress, at location: Location, now: ContinuousClock.Instant) -> LearnResult {
        learn(mac, at: location, stamp: MACTable.stamp(now))
    }

    /// `learn` with the time already converted (the switch converts once per frame).
    @inline(__always)
    mutating func learn(_ mac: MACAddress, at location: Location, stamp now: Stamp) -> LearnResult {
        guard mac.isValidUnicast else {
            counters.invalidSource &+= 1
            return .invalidSource
        }
        let line = expiryLine(now)
        if let slot = index.find(mac) {
            let previous = slots[slot].location
            let expired = slots[slot].lastSeen <= line
            slots[slot].location = location
            slots[slot].lastSeen = now
            moveToNewest(slot)
            if expired {
                counters.aged &+= 1
                counters.learned &+= 1
                return .learned
            }
            if previous == location { return .refreshed }
            counters.moved &+= 1
            return .moved(from: previous)
        }
        let slot: Int
        if freeList >= 0 {
            slot = freeList
            freeList = slots[slot].older
            slots[slot] = Slot(mac: mac, location: location, lastSeen: now, newer: -1, older: -1)
        } else if slots.count < capacity {
            slot = slots.count
            slots.append(Slot(mac: mac, location: location, lastSeen: now, newer: -1, older: -1))
        } else {
            // Full: reuse the least recently seen entry's slot.
            slot = oldest
            let victim = slots[slot]
            if victim.lastSeen <= line {
                counters.aged &+= 1
            } else {
                counters.evicted &+= 1
            }
            unlink(slot)
            index.remove(victim.mac)
            slots[slot] = Slot(mac: mac, location: location, lastSeen: now, newer: -1, older: -1)
        }
        index.insert(mac, slot: slot)
        linkAsNewest(slot)
        counters.learned &+= 1
        return .learned
    }

    /// Where `mac` lives, or nil when unknown or expired. Does not refresh the entry.
    public func lookup(_ mac: MACAddress, now: ContinuousClock.Instant) -> Location? {
        lookup(mac, stamp: MACTable.stamp(now))
    }

    @inline(__always)
    func lookup(_ mac: MACAddress, stamp now: Stamp) -> Location? {
        guard let slot = index.find(mac) else { return nil }
        return slots[slot].lastSeen <= expiryLine(now) ? nil : slots[slot].location
    }

    /// Removes every expired entry; returns how many (also counted as `aged`).
    @discardableResult
    public mutating func expire(now: ContinuousClock.Instant) -> Int {
        let line = expiryLine(MACTable.stamp(now))
        var removed = 0
        while oldest >= 0, slots[oldest].lastSeen <= line {
            remove(oldest)
            removed += 1
        }
        counters.aged &+= UInt64(removed)
        return removed
    }

    /// Removes every entry on `link` (the link went away); returns how many
    /// (counted as `flushed`).
    @discardableResult
    public mutating func flush(link: LinkID) -> Int {
        flush(location: .link(link))
    }

    /// Removes every entry at `location`; returns how many (counted as `flushed`).
    @discardableResult
    public mutating func flush(location: Location) -> Int {
        var removed = 0
        var slot = newest
        while slot >= 0 {
            let next = slots[slot].older
            if slots[slot].location == location {
                remove(slot)
                removed += 1
            }
            slot = next
        }
        counters.flushed &+= UInt64(removed)
        return removed
    }

    /// Removes all entries (not counted).
    public mutating func removeAll() {
        index.removeAll()
        slots.removeAll(keepingCapacity: true)
        newest = -1
        oldest = -1
        freeList = -1
    }

    /// Live (unexpired) entries, most recently seen first. Allocates: for status only.
    public func entries(now: ContinuousClock.Instant) -> [MACTableEntry] {
        let now = MACTable.stamp(now)
        let line = expiryLine(now)
        var result: [MACTableEntry] = []
        result.reserveCapacity(index.count)
        var slot = newest
        while slot >= 0 {
            let entry = slots[slot]
            if entry.lastSeen > line {
                result.append(MACTableEntry(mac: entry.mac, location: entry.location, age: now - entry.lastSeen))
            }
            slot = entry.older
        }
        return result
    }

    // MARK: - Recency list

    private mutating func remove(_ slot: Int) {
        unlink(slot)
        index.remove(slots[slot].mac)
        slots[slot].older = freeList
        slots[slot].newer = -1
        freeList = slot
    }

    private mutating func unlink(_ slot: Int) {
        let newer = slots[slot].newer
        let older = slots[slot].older
        if newer >= 0 { slots[newer].older = older } else { newest = older }
        if older >= 0 { slots[older].newer = newer } else { oldest = newer }
        slots[slot].newer = -1
        slots[slot].older = -1
    }

    private mutating func linkAsNewest(_ slot: Int) {
        slots[slot].newer = -1
        slots[slot].older = newest
        if newest >= 0 { slots[newest].newer = slot } else { oldest = slot }
        newest = slot
    }

    private mutating func moveToNewest(_ slot: Int) {
        guard slot != newest else { return }
        unlink(slot)
        linkAsNewest(slot)
    }

    // MARK: - Test support

    /// Reserved storage sizes (dictionary, slot array) — lets tests check that learning
    /// never grows them.
    internal var storageCapacities: (index: Int, slots: Int) { (index.bucketCount, slots.capacity) }
}

/// One forwarding-database entry as shown by status.
public struct MACTableEntry: Hashable, Sendable {
    public let mac: MACAddress
    public let location: MACTable.Location
    /// Time since the MAC was last seen as a source.
    public let age: Duration

    public init(mac: MACAddress, location: MACTable.Location, age: Duration) {
        self.mac = mac
        self.location = location
        self.age = age
    }

    /// The link, or nil for a MAC behind the local TAP.
    public var link: LinkID? {
        if case .link(let link) = location { return link }
        return nil
    }

    public var isLocal: Bool { location == .local }
}
