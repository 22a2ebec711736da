import IPOPLink
import IPOPLinux
import IPOPSwitch
import IPOPWire

/// One running overlay: its TAP, its switch and the links (engine peers) that belong to it.
final class Overlay {
    let index: Int
    let config: OverlayConfig
    let tap: TapDevice
    var fabric: Switch
    /// Links of this overlay, in config order. Flooding walks this array.
    private(set) var links: [PeerID] = []
    private var names: [UInt32: String] = [:]

    init(index: Int, config: OverlayConfig, tap: TapDevice) {
        self.index = index
        self.config = config
        self.tap = tap
        self.fabric = Switch(config: SwitchConfig(mtu: config.mtu, agingTime: config.macAging,
                                                  maxEntries: config.macTableSize))
    }

    func addLink(_ peer: PeerID, name: String) {
        links.append(peer)
        names[peer.raw] = name
    }

    func removeLink(_ peer: PeerID) {
        links.removeAll { $0 == peer }
        names[peer.raw] = nil
        fabric.linkRemoved(LinkID(peer.raw))
    }

    func name(of link: LinkID) -> String { names[link.raw] ?? "link\(link.raw)" }
}
