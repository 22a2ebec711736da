import Crypto
import Foundation
import IPOPLink
import IPOPSwitch
import IPOPWire

/// SIGHUP: re-read the config file and apply, without a restart, what can change while running —
/// each overlay's static `peers` (added, removed, new key, endpoint or L3 addresses), the way
/// `wg syncconf` does. Links that did not change keep their sessions. Every other change is named
/// in the log as needing a restart and is not applied; a config with an error changes nothing.
extension Node {
    func reload(now: ContinuousClock.Instant) {
        guard let load = configLoader else {
            log.info("SIGHUP: no config file to re-read")
            return
        }
        let new: Config
        do { new = try load() } catch {
            log.error("SIGHUP: \(error.description); nothing changed")
            return
        }
        var needsRestart = Node.restartOnlyChanges(from: config, to: new)
        var updated = config
        var changes: [String] = []
        for (i, overlay) in overlays.enumerated() {
            guard i < new.overlays.count, new.overlays[i].id == overlay.config.id else { continue }
            let differences = Node.restartOnlyChanges(from: overlay.config, to: new.overlays[i], path: "overlays[\(i)]")
            needsRestart += differences
            changes += syncPeers(of: overlay, from: config.overlays[i].peers, to: new.overlays[i].peers, now: now)
            updated.overlays[i].peers = new.overlays[i].peers
        }
        config = updated
        log.info("SIGHUP: config re-read; \(changes.isEmpty ? "no peer changed" : changes.joined(separator: "; "))")
        if !needsRestart.isEmpty {
            log.warning("SIGHUP: changed but only applied by a restart: \(needsRestart.joined(separator: ", "))")
        }
    }

    /// Brings the overlay's static links in line with `new`; returns what it did, for the log.
    private func syncPeers(of overlay: Overlay, from old: [PeerConfig], to new: [PeerConfig],
                           now: ContinuousClock.Instant) -> [String] {
        let id = overlay.config.id
        var done: [String] = []
        let oldByName = Dictionary(old.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        let newNames = Set(new.map(\.name))
        func link(named name: String) -> PeerID? {
            overlay.links.first { overlay.name(of: LinkID($0.raw)) == name }
        }
        for peer in old where !newNames.contains(peer.name) {
            if let l = link(named: peer.name) { forgetLink(l, of: overlay) }
            done.append("overlay \(id): removed \(peer.name)")
        }
        for peer in new {
            let before = oldByName[peer.name]
            if let before, let l = link(named: peer.name),
               before.publicKey.rawRepresentation == peer.publicKey.rawRepresentation {
                if let e = peer.endpoint, e != before.endpoint {
                    engine.setEndpoint(l, e)
                    engine.retryHandshakeNow(l, now: now)
                    engineWantsPoll = true
                    done.append("overlay \(id): \(peer.name) endpoint \(e)")
                }
                if overlay.router != nil, let ip4 = peer.ip4,
                   ip4 != before.ip4 || peer.ip6 != before.ip6 || !Node.sameSubnets(peer.subnets, before.subnets) {
                    if overlay.addRoutes(l, ip4: ip4, ip6: peer.ip6, subnets: peer.subnets, log: log) {
                        done.append("overlay \(id): \(peer.name) addresses \(Endpoint.formatIPv4(ip4))")
                    }
                }
                continue
            }
            // New, or a new key under an old name: a fresh link (a link found over XMPP with the
            // same key gives way to the configured one).
            if let l = link(named: peer.name) { forgetLink(l, of: overlay) }
            let key = peer.publicKey.rawRepresentation
            for l in overlay.links where engine.status(l, now: now).publicKey == key.base64EncodedString() {
                forgetLink(l, of: overlay)
            }
            let l = engine.addPeer(overlay: id, name: peer.name, publicKey: peer.publicKey, endpoint: peer.endpoint)
            overlay.addLink(l, name: peer.name)
            overlayOfLink[l.raw] = overlay
            if let ip4 = peer.ip4 { overlay.addRoutes(l, ip4: ip4, ip6: peer.ip6, subnets: peer.subnets, log: log) }
            engineWantsPoll = true
            done.append("overlay \(id): \(before == nil ? "added" : "new key for") \(peer.name)")
        }
        return done
    }

    /// Forgets a link everywhere: the overlay (MAC entries, routes), the engine (sessions), traversal
    /// and discovery state.
    func forgetLink(_ link: PeerID, of overlay: Overlay) {
        overlay.removeLink(link)
        overlayOfLink[link.raw] = nil
        engine.removePeer(link)
        lastLinkState[link.raw] = nil
        forgetTraversal(link)
        discovered = discovered.filter { $0.value.link != link }
    }

    static func sameSubnets(_ a: [(address: UInt32, prefixLength: Int)], _ b: [(address: UInt32, prefixLength: Int)]) -> Bool {
        a.count == b.count && zip(a, b).allSatisfy { $0.address == $1.address && $0.prefixLength == $1.prefixLength }
    }

    /// Node-wide settings that only a restart applies, by config key.
    static func restartOnlyChanges(from a: Config, to b: Config) -> [String] {
        var keys: [String] = []
        if a.privateKey.rawRepresentation != b.privateKey.rawRepresentation { keys.append("private_key") }
        if a.nodeName != b.nodeName { keys.append("node_name") }
        if a.listenPort != b.listenPort { keys.append("listen_port") }
        if a.controlSocket != b.controlSocket { keys.append("control_socket") }
        if a.logLevel != b.logLevel { keys.append("log_level") }
        if a.rekeyAfter != b.rekeyAfter { keys.append("rekey_after_s") }
        if a.keepalive != b.keepalive { keys.append("keepalive_s") }
        if a.ignoredInterfaces != b.ignoredInterfaces { keys.append("ignored_interfaces") }
        if a.traversal != b.traversal { keys.append("stun/turn") }
        if a.metricsListen != b.metricsListen { keys.append("metrics_listen") }
        if a.xmpp?.client != b.xmpp?.client || a.xmpp?.maxLinks != b.xmpp?.maxLinks
            || a.xmpp?.peerTimeout != b.xmpp?.peerTimeout {
            keys.append("xmpp")
        }
        if a.overlays.map(\.id) != b.overlays.map(\.id) { keys.append("overlays (added, removed or reordered)") }
        return keys
    }

    /// Overlay settings (everything but `peers`) that only a restart applies.
    static func restartOnlyChanges(from a: OverlayConfig, to b: OverlayConfig, path: String) -> [String] {
        var keys: [String] = []
        func check(_ changed: Bool, _ key: String) { if changed { keys.append("\(path).\(key)") } }
        check(a.switchmode != b.switchmode, "switchmode")
        check(a.tapName != b.tapName, "tap_name")
        check(a.mtu != b.mtu, "mtu")
        check(a.mac != b.mac, "mac")
        check(a.ip4 != b.ip4 || a.ip4Mask != b.ip4Mask, "ip4")
        check(a.ip6 != b.ip6 || a.ip6PrefixLength != b.ip6PrefixLength, "ip6")
        check(a.bridge != b.bridge, "bridge")
        check(a.psk.map { $0.withUnsafeBytes { Array($0) } } != b.psk.map { $0.withUnsafeBytes { Array($0) } }, "psk")
        check(a.privateKey?.rawRepresentation != b.privateKey?.rawRepresentation, "private_key")
        check(a.macAging != b.macAging, "mac_aging_s")
        check(a.macTableSize != b.macTableSize, "mac_table_size")
        check(a.clampMSS != b.clampMSS, "clamp_mss")
        return keys
    }
}
