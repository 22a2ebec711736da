import IPOPLink
import IPOPLinux
import IPOPSwitch
import IPOPWire
import Logging

/// One running overlay: its TAP, its forwarding logic (the L2 switch, or the L3 router) and the
/// links (engine peers) that belong to it.
final class Overlay {
    let index: Int
    let config: OverlayConfig
    let tap: TapDevice
    /// Switchmode forwarding. (Kept, empty, in L3 mode: cheaper than an enum the data path re-wraps.)
    var fabric: Switch
    /// L3 mode forwarding; nil in switchmode.
    var router: Router?
    /// Links of this overlay, in config order. Flooding walks this array.
    private(set) var links: [PeerID] = []
    private var names: [UInt32: String] = [:]
    /// The MTU TCP SYNs are clamped to (`clamp_mss`), or nil when clamping is off.
    let clampMSSToMTU: Int?
    /// TCP SYNs whose MSS option was lowered (both directions).
    var mssClamped: UInt64 = 0
    /// ICMP "too big" and "unreachable" answers sent (Node+ICMPErrors.swift), and the rate limit's
    /// current second.
    var tooBigAnswered: UInt64 = 0
    var unreachableAnswered: UInt64 = 0
    private var icmpSecondStart: ContinuousClock.Instant?
    private var icmpErrorsThisSecond = 0
    /// Frames dropped as larger than the MTU, as of the last warning about them.
    private var tooBigWarned: UInt64 = 0
    private var tooBigWarnedAt: ContinuousClock.Instant?

    init(index: Int, config: OverlayConfig, tap: TapDevice, mac: [UInt8]) {
        self.index = index
        self.config = config
        self.tap = tap
        clampMSSToMTU = config.clampMSS ? config.mtu : nil
        self.fabric = Switch(config: SwitchConfig(mtu: config.mtu, agingTime: config.macAging,
                                                  maxEntries: config.macTableSize))
        if !config.switchmode, let ip4 = config.ip4 {
            router = Router(config: RouterConfig(
                localMAC: MACAddress(bytes: mac), ip4: IPv4Address(rawValue: ip4), ip4PrefixLength: config.ip4Mask,
                ip6: config.ip6, ip6PrefixLength: config.ip6PrefixLength, mtu: config.mtu))
        }
    }

    var modeName: String { config.switchmode ? "switchmode" : "l3" }

    func addLink(_ peer: PeerID, name: String) {
        links.append(peer)
        names[peer.raw] = name
    }

    /// L3 mode: installs the peer's overlay addresses; refuses (and logs) an address another peer holds.
    /// Returns whether the routes were installed.
    @discardableResult
    func addRoutes(_ peer: PeerID, ip4: UInt32, ip6: IPv6Address?, subnets: [(address: UInt32, prefixLength: Int)],
                   log: Logger) -> Bool {
        guard router != nil else { return false }
        let prefixes = subnets.map { IPv4Prefix(IPv4Address(rawValue: $0.address), $0.prefixLength) }
        do {
            try router!.addPeer(LinkID(peer.raw), ip4: IPv4Address(rawValue: ip4), ip6: ip6, subnets: prefixes)
            return true
        } catch {
            let text: String
            if case .duplicateAddress(let address, let holder) = error {
                text = "\(address) is already held by \(name(of: holder))"
            } else {
                text = "\(error)"
            }
            log.error("overlay \(config.id): routes of \(names[peer.raw] ?? "?") refused: \(text)")
            return false
        }
    }

    func removeLink(_ peer: PeerID) {
        links.removeAll { $0 == peer }
        names[peer.raw] = nil
        fabric.linkRemoved(LinkID(peer.raw))
        router?.removePeer(LinkID(peer.raw))
    }

    func name(of link: LinkID) -> String { names[link.raw] ?? "link\(link.raw)" }

    /// At most `Tunables.icmpErrorsPerSecond` ICMP error answers per second.
    func mayAnswerICMPError(now: ContinuousClock.Instant) -> Bool {
        if let start = icmpSecondStart, start.duration(to: now) < .seconds(1) {
            guard icmpErrorsThisSecond < Tunables.icmpErrorsPerSecond else { return false }
            icmpErrorsThisSecond += 1
            return true
        }
        icmpSecondStart = now
        icmpErrorsThisSecond = 1
        return true
    }

    /// TCP MSS clamping on a frame crossing the overlay, either way (see `OverlayConfig.clampMSS`).
    @inline(__always)
    func clampMSS(_ frame: UnsafeMutableRawBufferPointer) {
        if let mtu = clampMSSToMTU, TCPMSSClamp.clamp(frame, mtu: mtu) { mssClamped &+= 1 }
    }

    /// Frames dropped so far for being larger than the overlay MTU allows.
    var droppedTooBig: UInt64 { router?.counters.dropTooBig ?? fabric.counters.dropTooBig }

    /// Housekeeping: one warning (at most every `Tunables.mtuWarningInterval`) when frames were
    /// dropped as too big since the last one: MTU black holes are the most common overlay complaint.
    func warnAboutTooBigFrames(now: ContinuousClock.Instant, log: Logger) {
        let dropped = droppedTooBig
        guard dropped > tooBigWarned else { return }
        if let last = tooBigWarnedAt, last.duration(to: now) < Tunables.mtuWarningInterval { return }
        log.warning("overlay \(config.id): \(dropped - tooBigWarned) frame(s) larger than mtu \(config.mtu) dropped; every node of the overlay needs the same mtu, and hosts on a bridge with the TAP an MTU of at most \(config.mtu)")
        tooBigWarned = dropped
        tooBigWarnedAt = now
    }
}
