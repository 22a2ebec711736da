import Crypto
import Foundation
import IPOPLink
import IPOPLinux
import IPOPSwitch
import IPOPTraversal
import IPOPWire

#if canImport(Glibc)
import Glibc
#endif

/// NAT traversal: the path each link uses, and sending on it (direct, or wrapped for a TURN relay).
extension Node {
    // MARK: - paths

    func linkName(_ link: PeerID) -> String {
        guard let overlay = overlayOfLink[link.raw] else { return "link\(link.raw)" }
        return "overlay \(overlay.config.id): \(overlay.name(of: LinkID(link.raw)))"
    }

    /// Points the link at `pair`: the engine's endpoint, and the relay route if it goes through our TURN.
    func applyPath(_ link: PeerID, pair: CandidatePair, now: ContinuousClock.Instant, why: String) {
        guard var state = nat.links[link.raw], let path = LinkPath(pair: pair, turnServer: nat.turnServer) else { return }
        let old = state.path
        state.path = path
        nat.links[link.raw] = state
        if let old, case .relay(_, let oldPeer) = old, old != path,
           !nat.links.values.contains(where: { $0.path == old }) {
            nat.relayRoutes[oldPeer] = nil
        }
        if !Node.isOurRelay(path) { nat.relayRoutes[path.peerEndpoint] = nil }
        if case .relay(_, let peer) = path, var turn = nat.turn {
            turn.addPeer(peer)
            nat.relayRoutes[peer] = turn.channel(for: peer) ?? 0
            nat.turn = turn
            nat.nextWake = now
        }
        engine.setEndpoint(link, path.peerEndpoint)
        engine.retryHandshakeNow(link, now: now)
        engineWantsPoll = true
        let rtt = pair.rtt.map { String(format: ", rtt %.1f ms", Node.ms($0)) } ?? ""
        log.info("traversal: \(linkName(link)): path \(path.kind) (\(pair.local) -> \(pair.remote)\(rtt); \(why))")
    }

    static func ms(_ d: Duration) -> Double {
        Double(d.components.seconds) * 1000 + Double(d.components.attoseconds) / 1e15
    }

    /// What `ipop status` shows about a link's path.
    /// Connectivity checks run for a link so far, and whether one is running now.
    func checkStatus(_ link: PeerID) -> (run: Int, running: Bool) {
        guard let state = nat.links[link.raw] else { return (0, false) }
        return (state.checksRun, state.checker?.state == .checking)
    }

    func pathStatus(_ link: PeerID, endpoint: Endpoint?) -> (path: String, local: String?, remote: String?, rtt: Double?) {
        if let state = nat.links[link.raw], let path = state.path, let pair = state.schedule.current,
           endpoint == path.peerEndpoint {
            return (path.kind, pair.local.description, pair.remote.description, pair.rtt.map(Node.ms))
        }
        // The engine roamed to where the peer's datagrams come from (the two sides may pick different
        // pairs): the pair the checks measured for that address, on the path we now send on.
        if let endpoint, let state = nat.links[link.raw], let checker = state.checker {
            let path: TransportPath = nat.relayRoutes[endpoint] != nil ? .relay : .socket
            if let pair = checker.pairs.first(where: { $0.state == .succeeded && $0.path == path && $0.remote.endpoint == endpoint }) {
                return (pair.isDirect ? "direct" : "relay", pair.local.description, pair.remote.description, pair.rtt.map(Node.ms))
            }
        }
        if let endpoint, nat.relayRoutes[endpoint] != nil {
            return ("relay", nat.turn?.relayedAddress.map { Candidate(type: .relayed, endpoint: $0).description },
                    Candidate(type: .peerReflexive, endpoint: endpoint).description, nil)
        }
        if let endpoint, let state = nat.links[link.raw],
           state.remote.contains(where: { $0.isRelayed && $0.endpoint == endpoint }) {
            return ("relay", nil, endpoint.description, nil)
        }
        return ("direct", nil, endpoint?.description, nil)
    }

    // MARK: - sending

    func sendProbe(_ probe: ConnectivityChecker.Probe, now: ContinuousClock.Instant) {
        switch probe.path {
        case .socket:
            _ = udp.send(probe.bytes, to: probe.destination)
        case .relay:
            guard var turn = nat.turn, let server = nat.turnServer,
                  let wrapped = try? turn.wrap(probe.bytes, to: probe.destination) else { return }
            nat.turn = turn
            _ = udp.send(wrapped, to: server)
            nat.nextWake = now   // a new peer needs its permission and channel requests
        }
    }

    /// Sends a link datagram (handshake, keepalive, queued frame) from the engine: straight, or
    /// through our TURN allocation if the destination is a relayed link's peer.
    func sendLinkDatagram(_ bytes: [UInt8], to endpoint: Endpoint) {
        if !nat.relayRoutes.isEmpty, nat.relayRoutes[endpoint] != nil {
            relaySlow(bytes, to: endpoint)
            return
        }
        _ = udp.send(bytes, to: endpoint)
    }

    /// Wraps with the TURN client (ChannelData once bound, a Send indication before) and sends.
    func relaySlow(_ bytes: [UInt8], to peer: Endpoint) {
        guard var turn = nat.turn, let server = nat.turnServer,
              let wrapped = try? turn.wrap(bytes, to: peer) else { return }
        nat.turn = turn
        _ = udp.send(wrapped, to: server)
    }

    /// Outbound data path, relayed link: the sealed datagram in `slot` (length `length`) gets the
    /// 4-byte ChannelData header in front (moved in place within the slot) and goes to our TURN
    /// server. Returns 1 if the slot is ready to send, 0 if it was sent another way (channel not bound
    /// yet) or dropped. No allocation when the channel is bound.
    @inline(never)
    func relaySlot(_ buffer: UnsafeMutableRawBufferPointer, slot: Int, length: Int, to peer: Endpoint,
                   channel: UInt16) -> Int {
        guard let server = nat.turnServer else { return 0 }
        guard channel != 0, length + ChannelData.headerSize <= buffer.count, length <= Int(UInt16.max) else {
            relaySlow(Array(UnsafeRawBufferPointer(rebasing: buffer[0..<length])), to: peer)
            return 0
        }
        let base = buffer.baseAddress!
        (base + ChannelData.headerSize).copyMemory(from: base, byteCount: length)
        buffer[0] = UInt8(channel >> 8)
        buffer[1] = UInt8(channel & 0xff)
        buffer[2] = UInt8(length >> 8)
        buffer[3] = UInt8(length & 0xff)
        tx.set(slot, length: length + ChannelData.headerSize, to: server)
        return 1
    }
}
