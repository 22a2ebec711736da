import IPOPWire

/// Switch parameters.
public struct SwitchConfig: Hashable, Sendable {
    /// The TAP MTU. A frame is too big when its length exceeds
    /// `mtu + 14 + 4 × (number of VLAN tags)`.
    public var mtu: Int
    /// Forwarding entries expire this long after their MAC was last seen (Linux bridge: 300 s).
    public var agingTime: Duration
    /// Forwarding-table bound (least recently seen entry evicted when full).
    public var maxEntries: Int

    public init(mtu: Int, agingTime: Duration = .seconds(300), maxEntries: Int = 8192) {
        self.mtu = mtu
        self.agingTime = agingTime
        self.maxEntries = maxEntries
    }
}

/// Why the switch dropped a frame.
public enum DropReason: Hashable, Sendable {
    /// Shorter than an Ethernet header, truncated inside its VLAN tags, or more than
    /// `EthernetFrame.maxVLANTags` tags.
    case malformed
    /// Longer than `mtu + 14 + 4 × tags`.
    case tooBig
    /// Source MAC is broadcast, multicast or zero (never valid on the wire).
    case invalidSource
    /// TAP frame whose destination is itself known to be behind the TAP.
    case localDestination
}

/// Where a frame read from the TAP goes.
public enum TapDecision: Hashable, Sendable {
    /// To this one link.
    case unicast(LinkID)
    /// To every link (broadcast, multicast, unknown or expired unicast).
    case flood
    case drop(DropReason)
}

/// What happens to a frame received on a link.
public enum LinkDecision: Hashable, Sendable {
    /// Write it to the TAP (and nowhere else: split horizon).
    case deliverToTap
    case drop(DropReason)
}

/// A learning Ethernet switch between the local TAP and the overlay links. Pure logic:
/// no I/O, no clock reads (time is passed in), no locks, no allocation per frame.
///
/// Rules:
/// - Every frame is parsed as Ethernet (`EthernetFrame`); a parse failure is
///   `.malformed`, a length above `mtu + 14 + 4 × tags` is `.tooBig`, a broadcast,
///   multicast or zero source is `.invalidSource` (checked in that order).
/// - **From a link**: the outer source MAC is learned on that link (moving it if it was
///   elsewhere), then the frame goes to the TAP only — never back out to links (split
///   horizon; the overlay is a full mesh of links, each peer delivers locally). It is
///   delivered even if its destination is known on the link it came from.
/// - **From the TAP**: the source MAC is recorded as `.local` (status, and filtering);
///   broadcast/multicast destinations flood; a destination known on a link goes to that
///   link; a destination known to be local is dropped (`.localDestination`, the frame
///   never needs to leave this node); an unknown or expired destination floods.
/// - VLAN-tagged frames (802.1Q / 802.1ad, stacked) pass unchanged; learning and
///   forwarding use the outer Ethernet addresses, one table for all VLANs
///   (shared VLAN learning).
/// - `linkRemoved` flushes that link's entries; `expire(now:)` purges expired entries
///   (call it about once a second; lookups already ignore expired entries).
public struct Switch: Sendable {
    public let config: SwitchConfig
    /// The forwarding table (read-only; for status and diagnostics).
    public private(set) var table: MACTable
    private var frameCounters = SwitchCounters()

    public init(config: SwitchConfig) {
        self.config = config
        self.table = MACTable(capacity: config.maxEntries, agingTime: config.agingTime)
    }

    /// Frame outcomes merged with the table's events.
    public var counters: SwitchCounters {
        var merged = frameCounters
        let events = table.counters
        merged.learned = events.learned
        merged.moved = events.moved
        merged.aged = events.aged
        merged.evicted = events.evicted
        merged.flushed = events.flushed
        merged.invalidSource = events.invalidSource
        return merged
    }

    private enum Admission {
        case frame(EthernetFrame)
        case drop(DropReason)
    }

    /// Parses and checks size and source; returns the frame, or the drop reason
    /// (already counted). Learns nothing.
    @inline(__always)
    private mutating func admit(_ bytes: UnsafeRawBufferPointer) -> Admission {
        let frame: EthernetFrame
        do {
            frame = try EthernetFrame(bytes)
        } catch {
            frameCounters.dropMalformed &+= 1
            return .drop(.malformed)
        }
        let limit = config.mtu + EthernetFrame.headerSize + EthernetFrame.vlanTagSize * frame.vlanTagCount
        if frame.length > limit {
            frameCounters.dropTooBig &+= 1
            return .drop(.tooBig)
        }
        return .frame(frame)
    }

    /// Decides where a frame read from the TAP goes, recording its source as local.
    public mutating func fromTap(_ frame: UnsafeRawBufferPointer, now: ContinuousClock.Instant) -> TapDecision {
        let ethernet: EthernetFrame
        switch admit(frame) {
        case .frame(let parsed): ethernet = parsed
        case .drop(let reason): return .drop(reason)
        }
        let stamp = MACTable.stamp(now)
        if table.learn(ethernet.source, at: .local, stamp: stamp) == .invalidSource {
            frameCounters.dropInvalidSource &+= 1
            return .drop(.invalidSource)
        }
        let destination = ethernet.destination
        if destination.isMulticast {
            frameCounters.flooded &+= 1
            return .flood
        }
        switch table.lookup(destination, stamp: stamp) {
        case .link(let link):
            frameCounters.unicast &+= 1
            return .unicast(link)
        case .local:
            frameCounters.dropLocalDestination &+= 1
            return .drop(.localDestination)
        case nil:
            frameCounters.unknownUnicast &+= 1
            frameCounters.flooded &+= 1
            return .flood
        }
    }

    /// Decides what to do with a frame received on `link`, learning its source there.
    public mutating func fromLink(_ link: LinkID, frame: UnsafeRawBufferPointer, now: ContinuousClock.Instant) -> LinkDecision {
        let ethernet: EthernetFrame
        switch admit(frame) {
        case .frame(let parsed): ethernet = parsed
        case .drop(let reason): return .drop(reason)
        }
        if table.learn(ethernet.source, at: .link(link), stamp: MACTable.stamp(now)) == .invalidSource {
            frameCounters.dropInvalidSource &+= 1
            return .drop(.invalidSource)
        }
        frameCounters.deliveredToTap &+= 1
        return .deliverToTap
    }

    /// Forgets every MAC learned on `link`.
    public mutating func linkRemoved(_ link: LinkID) {
        table.flush(link: link)
    }

    /// Purges expired entries (the node calls this about once a second).
    public mutating func expire(now: ContinuousClock.Instant) {
        table.expire(now: now)
    }

    /// Where `mac` currently lives (nil: unknown or expired).
    public func lookup(_ mac: MACAddress, now: ContinuousClock.Instant) -> MACTable.Location? {
        table.lookup(mac, now: now)
    }

    /// Live forwarding entries, most recently seen first (allocates; for status).
    public func entries(now: ContinuousClock.Instant) -> [MACTableEntry] {
        table.entries(now: now)
    }
}
