import Crypto
import Foundation
import IPOPLink
import IPOPLinux
import IPOPSignal
import IPOPTraversal
import IPOPWire
import Logging
import Synchronization

/// Events from the XMPP client's threads, handed to the node's loop through an eventfd.
final class SignalInbox: Sendable {
    private let queue = Mutex<[SignalEvent]>([])
    let wakeup: Wakeup

    init(wakeup: Wakeup) { self.wakeup = wakeup }

    func post(_ event: SignalEvent) {
        queue.withLock { $0.append(event) }
        wakeup.ring()
    }

    func take() -> [SignalEvent] {
        wakeup.drain()
        return queue.withLock { events in
            defer { events.removeAll(keepingCapacity: true) }
            return events
        }
    }
}

/// A peer found through signalling (or a static peer that signalling also sees), per overlay.
struct DiscoveredPeer {
    let overlay: Int
    let key: String
    let name: String
    let link: PeerID
    let isStatic: Bool
    var address: String?
    /// L3 mode: the overlay addresses it announced and we installed as its routes.
    var announced: OverlayAddresses?
    /// L3 mode: we said once that it announces no address.
    var warnedNoAddress = false
    var online = true
    var offlineSince: ContinuousClock.Instant?
    var nextOffer: ContinuousClock.Instant
    var backoff: Duration
}

/// GroupVPN topology over XMPP, as IPOP did it: every node of an overlay links to every other online
/// node (all-to-all, which switchmode's flooding needs), up to `max_links`. Presence announces a
/// node (overlays + public key); `con_req`/`con_resp` messages carry each side's candidates.
/// The node with the larger public key offers first (IPOP's "larger id wins"); failed attempts back
/// off exponentially with jitter; a peer offline for `peer_timeout_s` with no working link is dropped.
extension Node {
    static let offerBackoffStart: Duration = .seconds(5)
    static let offerBackoffCap: Duration = .seconds(60)
    static let smallerKeyOfferDelay: Duration = .seconds(3)

    func startSignalling() throws(Failure) {
        guard let settings = config.xmpp else { return }
        let wakeup: Wakeup
        do { wakeup = try Wakeup() } catch { throw .socket(error) }
        let inbox = SignalInbox(wakeup: wakeup)
        signalInbox = inbox
        // L3 overlays announce the node's overlay addresses, so peers found this way get routes.
        var addresses: [String: OverlayAddresses] = [:]
        for o in overlays where !o.config.switchmode {
            addresses[o.config.id] = OverlayAddresses(ip4: o.config.ip4.map { Endpoint.formatIPv4($0) },
                                                      ip6: o.config.ip6.map { "\($0)" })
        }
        let announcement = NodeAnnouncement(nodeName: config.nodeName, overlays: overlays.map(\.config.id),
                                            publicKey: ourKeyText, addresses: addresses)
        let client = SignalClient(config: settings.client, announcement: announcement, logger: log)
        signalClient = client
        client.start { event in inbox.post(event) }
        log.info("xmpp: signalling through \(settings.client.server.isEmpty ? settings.client.jid : settings.client.server) as \(settings.client.jid)\(settings.client.room.map { ", room \($0)" } ?? "")")
    }

    var ourKeyText: String { config.privateKey.publicKey.rawRepresentation.base64EncodedString() }

    func drainSignalling(now: ContinuousClock.Instant) {
        guard let inbox = signalInbox else { return }
        for event in inbox.take() { handle(event, now: now) }
    }

    private func handle(_ event: SignalEvent, now: ContinuousClock.Instant) {
        switch event {
        case .connected(let jid):
            log.info("xmpp: connected as \(jid)")
        case .disconnected(let reason):
            log.warning("xmpp: disconnected (\(reason)); links stay up, reconnecting")
            // Presence after the reconnect marks the live peers online again; a peer that died
            // meanwhile is never announced again and must still time out.
            for (k, var d) in discovered where d.online {
                d.online = false
                d.offlineSince = now
                discovered[k] = d
            }
        case .peerOnline(let ann):
            guard ann.publicKey != ourKeyText else { return }
            for overlay in overlays where ann.overlays.contains(overlay.config.id) {
                guard var d = discoveredPeer(overlay: overlay, key: ann.publicKey, name: ann.nodeName, now: now) else { continue }
                if !d.online || d.address != ann.address { log.info("overlay \(overlay.config.id): \(d.name) online (\(ann.address))") }
                d.address = ann.address
                d.online = true
                d.offlineSince = nil
                if overlay.router != nil, !d.isStatic { installAnnouncedRoutes(&d, ann.addresses[overlay.config.id], overlay) }
                discovered[Node.discoveryKey(overlay.index, d.key)] = d
            }
        case .peerOffline(let address):
            for (k, var d) in discovered where d.address == address && d.online {
                d.online = false
                d.offlineSince = now
                discovered[k] = d
                log.info("overlay \(overlays[d.overlay].config.id): \(d.name) offline")
            }
        case .message(let from, let overlayID, let kind, let body):
            guard kind == "con_req" || kind == "con_resp",
                  let overlay = overlays.first(where: { $0.config.id == overlayID }) else { return }
            let parts = body.split(separator: " ", maxSplits: 2).map(String.init)
            guard parts.count == 3, parts[0] != ourKeyText,
                  let candidates = try? Candidate.parseList(parts[2]) else {
                log.debug("xmpp: ignored malformed \(kind) from \(from)")
                return
            }
            guard var d = discoveredPeer(overlay: overlay, key: parts[0], name: parts[1], now: now) else { return }
            d.address = from
            discovered[Node.discoveryKey(overlay.index, d.key)] = d
            // A first guess (same LAN, else the highest priority candidate) until the checks pick a path.
            if !hasTraversalPath(d.link), engine.status(d.link, now: now).state != .up,
               let endpoint = chooseEndpoint(candidates) {
                if engine.status(d.link, now: now).endpoint != endpoint {
                    log.info("overlay \(overlay.config.id): \(d.name) at \(endpoint) (\(kind))")
                }
                engine.setEndpoint(d.link, endpoint)
                engineWantsPoll = true
            }
            if kind == "con_req" { sendOffer(d, kind: "con_resp") }
            // The offer is the rendezvous: both sides probe every pair now.
            traversalOffer(link: d.link, overlay: overlay, theirKey: d.key, candidates: candidates, now: now)
        }
    }

    static func discoveryKey(_ overlay: Int, _ key: String) -> String { "\(overlay)|\(key)" }

    /// L3 mode: the overlay addresses a discovered peer announced become its routes (IPOP exchanged
    /// each node's virtual IP the same way). A changed announcement replaces them; an address another
    /// peer holds is refused and logged by the router, and the old routes stay.
    private func installAnnouncedRoutes(_ d: inout DiscoveredPeer, _ announced: OverlayAddresses?, _ overlay: Overlay) {
        guard let text = announced?.ip4, let ip4 = IPv4Address(text) else {
            if !d.warnedNoAddress {
                log.warning("overlay \(overlay.config.id): \(d.name) announces no IPv4 overlay address (is the overlay in switchmode there?); its packets are refused")
                d.warnedNoAddress = true
            }
            return
        }
        guard announced != d.announced else { return }
        var ip6: IPv6Address?
        if let t = announced?.ip6 {
            ip6 = IPv6Address(t)
            if ip6 == nil { log.warning("overlay \(overlay.config.id): \(d.name) announced an invalid IPv6 address \"\(t.prefix(64))\"; ignored") }
        }
        // Recorded only once installed: a refused announcement is tried again when the peer
        // announces again (after the holder of the address left, say).
        if overlay.addRoutes(d.link, ip4: ip4.rawValue, ip6: ip6, subnets: [], log: log) {
            d.announced = announced
            log.info("overlay \(overlay.config.id): \(d.name) holds \(text)\(ip6.map { " and \($0)" } ?? "") (announced)")
        }
    }

    /// The record of a peer, creating the link if it is new (and the overlay has room).
    private func discoveredPeer(overlay: Overlay, key: String, name: String,
                                now: ContinuousClock.Instant) -> DiscoveredPeer? {
        let k = Node.discoveryKey(overlay.index, key)
        if let d = discovered[k] { return d }
        guard let publicKey = try? KeyCoding.publicKey(base64: key, path: "xmpp") else {
            log.warning("xmpp: \(name) announced an invalid public key; ignored")
            return nil
        }
        let theirs = Array(publicKey.rawRepresentation)
        let ours = Array(config.privateKey.publicKey.rawRepresentation)
        let firstOffer = theirs.lexicographicallyPrecedes(ours) ? now : now + Node.smallerKeyOfferDelay
        // A statically configured peer with this key: signalling only tells where it is.
        if let link = overlay.links.first(where: { engine.status($0, now: now).publicKey == key }) {
            let d = DiscoveredPeer(overlay: overlay.index, key: key, name: overlay.name(of: .init(link.raw)), link: link,
                                   isStatic: true, nextOffer: firstOffer, backoff: Node.offerBackoffStart)
            discovered[k] = d
            return d
        }
        guard overlay.links.count < (config.xmpp?.maxLinks ?? 64) else {
            log.warning("overlay \(overlay.config.id): max_links reached; not linking to \(name)")
            return nil
        }
        let unique = overlay.links.contains { overlay.name(of: .init($0.raw)) == name } ? "\(name)-\(key.prefix(6))" : name
        let link = engine.addPeer(overlay: overlay.config.id, name: unique, publicKey: publicKey, endpoint: nil)
        overlay.addLink(link, name: unique)
        overlayOfLink[link.raw] = overlay
        let d = DiscoveredPeer(overlay: overlay.index, key: key, name: unique, link: link, isStatic: false,
                               nextOffer: firstOffer, backoff: Node.offerBackoffStart)
        discovered[k] = d
        log.info("overlay \(overlay.config.id): discovered \(unique)")
        return d
    }

    /// Once a second: offer candidates to peers without a working link; forget peers long offline.
    func signallingHousekeeping(now: ContinuousClock.Instant) {
        guard signalClient != nil else { return }
        for (k, var d) in discovered {
            let up = engine.status(d.link, now: now).state == .up
            if !d.online, let since = d.offlineSince, since.duration(to: now) >= (config.xmpp?.peerTimeout ?? .seconds(60)), !up {
                discovered[k] = nil
                if !d.isStatic {
                    let overlay = overlays[d.overlay]
                    forgetLink(d.link, of: overlay)
                    log.info("overlay \(overlay.config.id): \(d.name) dropped after being offline")
                }
                continue
            }
            if up {
                d.backoff = Node.offerBackoffStart
            } else if d.online, d.address != nil, now >= d.nextOffer, gatheringSettled(now: now) {
                sendOffer(d, kind: "con_req")
                let jitter = Duration.milliseconds(Int.random(in: 0...500))
                d.nextOffer = now + d.backoff + jitter
                d.backoff = min(d.backoff * 2, Node.offerBackoffCap)
            }
            discovered[k] = d
        }
    }

    func sendOffer(_ d: DiscoveredPeer, kind: String) {
        guard let client = signalClient, let address = d.address else { return }
        let body = "\(ourKeyText) \(config.nodeName) \(Candidate.encodeList(gatheredCandidates()))"
        client.send(to: address, overlay: overlays[d.overlay].config.id, kind: kind, body: body)
    }

    /// Host candidates: our IPv4 addresses (not our TAPs, not ignored interfaces) with the link port.
    func localCandidates() -> [Candidate] {
        let excluded = Set(overlays.map(\.tap.name) + config.ignoredInterfaces + overlays.compactMap(\.config.bridge))
        return LocalAddress.all(excluding: excluded).prefix(8).map {
            Candidate(type: .host, endpoint: Endpoint(address: $0.address, port: udp.port))
        }
    }

    /// Prefers a candidate on one of our own subnets, then the highest priority one.
    func chooseEndpoint(_ candidates: [Candidate]) -> Endpoint? {
        let local = LocalAddress.all(excluding: Set(overlays.map(\.tap.name)))
        if let sameLAN = candidates.first(where: { c in local.contains { $0.contains(c.endpoint.address) } }) {
            return sameLAN.endpoint
        }
        return candidates.max { $0.priority < $1.priority }?.endpoint
    }

    func stopSignalling() {
        guard let client = signalClient else { return }
        let done = DispatchSemaphore(value: 0)
        Task { await client.stop(); done.signal() }
        _ = done.wait(timeout: .now() + 3)
    }
}
