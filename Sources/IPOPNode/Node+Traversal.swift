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

/// NAT traversal state of the node: the STUN client (reflexive address), the TURN client (relayed
/// address), and per link the connectivity check, the path schedule and the path in use.
///
/// Everything here runs on the node's one loop. The data path only looks at `relayRoutes` (outbound,
/// a dictionary lookup skipped while it is empty) and `peerByChannel` (inbound ChannelData).
final class NATTraversal {
    struct LinkState {
        let overlay: Int
        let localID: String
        let remoteID: String
        let key: StunKey
        let controlling: Bool
        var remote: [Candidate] = []
        var checker: ConnectivityChecker?
        var schedule = PathSchedule(configuration: .init(
            directRetry: Tunables.directRetryOnRelay, failureBackoff: Tunables.checkFailureBackoff,
            failureBackoffCap: Tunables.checkFailureBackoffCap))
        var path: LinkPath?
        var checksRun = 0
        /// The checker's result was acted on; it stays to answer the peer's probes until the next check.
        var checkHandled = false
    }

    var stun: StunBindingClient?
    var stunServers: Set<Endpoint> = []
    /// Resolved `turn` entries, in config order; `turnIndex` is the one in use.
    var turnServers: [(endpoint: Endpoint, settings: TurnServerSettings)] = []
    var turnIndex = 0
    var turn: TurnClient?
    var turnRestartAt: ContinuousClock.Instant?
    var turnBackoff = Tunables.turnRetryStart
    var mismatchRetries = 0
    /// Our TURN server while an allocation exists (or is being made).
    var turnServer: Endpoint?
    /// Peer endpoint -> ChannelData channel (0 until the server confirmed it) of every link whose
    /// path goes through our TURN allocation. Outbound datagrams to these endpoints are wrapped.
    var relayRoutes: [Endpoint: UInt16] = [:]
    /// Channel -> peer endpoint, for every channel the server confirmed (inbound ChannelData).
    var peerByChannel: [UInt16: Endpoint] = [:]
    var links: [UInt32: LinkState] = [:]
    /// "receiverID:senderID" of probes -> link.
    var linkByIdentity: [String: UInt32] = [:]
    var nextWake: ContinuousClock.Instant
    var lastSymmetricLog: Set<Endpoint> = []
    /// Datagrams shaped like STUN or ChannelData that belong to no check, server or channel of
    /// ours (stray, stale or forged): dropped and counted as `stray_traversal`.
    var strayDrops: UInt64 = 0
    let startedAt: ContinuousClock.Instant

    init(now: ContinuousClock.Instant) {
        nextWake = now
        startedAt = now
    }
}

extension Node {
    // MARK: - setup

    /// Resolves the STUN and TURN servers and starts gathering. Unresolvable names are logged and skipped.
    func startTraversal(now: ContinuousClock.Instant) {
        let settings = config.traversal
        var stunEndpoints: [Endpoint] = []
        for server in settings.stun {
            if let e = Node.resolve(server) { stunEndpoints.append(e) } else {
                log.warning("stun: cannot resolve \(server); skipped")
            }
        }
        if !stunEndpoints.isEmpty {
            var client = StunBindingClient(
                configuration: .init(servers: stunEndpoints, refreshInterval: Tunables.stunRefresh,
                                     retryAfterFailure: Tunables.stunRetry, software: "ipop-swift"),
                random: SystemRandomNumberGenerator())
            nat.stunServers = Set(stunEndpoints)
            for d in client.start(now: now) { _ = udp.send(d.bytes, to: d.destination) }
            nat.stun = client
            log.info("stun: asking \(stunEndpoints.map(\.description).joined(separator: ", ")) for our reflexive address")
        }
        for entry in settings.turn {
            if let e = Node.resolve(entry.server) { nat.turnServers.append((e, entry)) } else {
                log.warning("turn: cannot resolve \(entry.server); skipped")
            }
        }
        if !nat.turnServers.isEmpty { startTurn(now: now) }
        nat.nextWake = now
    }

    /// Releases the TURN allocation (Refresh with lifetime 0): the server forgets it now, so a node
    /// restarted on the same address and port can allocate again at once instead of getting
    /// 437 Allocation Mismatch until the old allocation expires.
    func stopTraversal(now: ContinuousClock.Instant) {
        guard var turn = nat.turn, let server = nat.turnServer, turn.isAllocated else { return }
        for bytes in turn.close(now: now) { _ = udp.send(bytes, to: server) }
        nat.turn = turn
        log.info("turn: released the allocation on \(server)")
    }

    private func startTurn(now: ContinuousClock.Instant) {
        let (endpoint, settings) = nat.turnServers[nat.turnIndex % nat.turnServers.count]
        var client = TurnClient(
            configuration: .init(server: endpoint, username: settings.username, password: settings.password,
                                 requestedLifetime: Tunables.turnLifetime, refreshMargin: Tunables.turnRefreshMargin,
                                 software: "ipop-swift"),
            random: SystemRandomNumberGenerator())
        for bytes in client.start(now: now) { _ = udp.send(bytes, to: endpoint) }
        nat.turn = client
        nat.turnServer = endpoint
        nat.turnRestartAt = nil
        log.info("turn: allocating a relay on \(settings.server) (\(endpoint)) as \(settings.username)")
    }

    /// IPv4 address of `host` (dotted quad or name, via getaddrinfo).
    static func resolve(_ server: ServerAddress) -> Endpoint? {
        if let address = Endpoint.parseIPv4(server.host) { return Endpoint(address: address, port: server.port) }
        var hints = addrinfo()
        hints.ai_family = AF_INET
        hints.ai_socktype = Int32(SOCK_DGRAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(server.host, nil, &hints, &result) == 0, let first = result else { return nil }
        defer { freeaddrinfo(result) }
        guard let sa = first.pointee.ai_addr else { return nil }
        let address = sa.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { UInt32(bigEndian: $0.pointee.sin_addr.s_addr) }
        return Endpoint(address: address, port: server.port)
    }

    // MARK: - candidates

    /// Everything we offer: host addresses, the reflexive addresses STUN (and TURN) saw, the relayed one.
    func gatheredCandidates() -> [Candidate] {
        var out = localCandidates()
        var seen = Set(out.map(\.endpoint))
        var reflexive: [Endpoint] = []
        if let stun = nat.stun { reflexive += stun.mappings.values.sorted { ($0.address, $0.port) < ($1.address, $1.port) } }
        if let mapped = nat.turn?.mappedAddress { reflexive.append(mapped) }
        for e in reflexive where !seen.contains(e) {
            seen.insert(e)
            out.append(Candidate(type: .serverReflexive, endpoint: e))
        }
        if let relayed = nat.turn?.relayedAddress, !seen.contains(relayed) {
            out.append(Candidate(type: .relayed, endpoint: relayed))
        }
        return out
    }

    /// True once every configured server answered or failed, or after `Tunables.gatherWait`: the
    /// first offer waits for this so that it carries the reflexive and relayed candidates.
    func gatheringSettled(now: ContinuousClock.Instant) -> Bool {
        if nat.startedAt.duration(to: now) >= Tunables.gatherWait { return true }
        if let stun = nat.stun, stun.isQuerying, stun.mappings.isEmpty { return false }
        if let turn = nat.turn, case .allocating = turn.state { return false }
        return true
    }

    // MARK: - signalling: the offer is the rendezvous

    /// The peer's candidates arrived in a con_req or con_resp: check every pair now (the peer does
    /// the same when it sends or receives the message), or add them to the running check.
    func traversalOffer(link: PeerID, overlay: Overlay, theirKey: String, candidates: [Candidate],
                        now: ContinuousClock.Instant) {
        let ours = ourKeyText
        var state = nat.links[link.raw] ?? {
            let localID = Node.checkID(overlay: overlay.config.id, key: ours)
            let remoteID = Node.checkID(overlay: overlay.config.id, key: theirKey)
            let secret = SHA256.hash(data: Array("ipop-swift checks v1\u{0}\(overlay.config.id)".utf8))
            return NATTraversal.LinkState(overlay: overlay.index, localID: localID, remoteID: remoteID,
                                          key: StunKey(bytes: Array(secret)), controlling: ours > theirKey)
        }()
        nat.linkByIdentity["\(state.localID):\(state.remoteID)"] = link.raw
        state.remote = candidates
        var probes: [ConnectivityChecker.Probe] = []
        if var checker = state.checker, checker.state == .checking {
            probes = checker.addRemoteCandidates(candidates, now: now)
            state.checker = checker
        } else {
            var checker = ConnectivityChecker(
                configuration: .init(localID: state.localID, remoteID: state.remoteID, key: state.key,
                                     controlling: state.controlling, pacing: Tunables.checkPacing,
                                     timeout: Tunables.checkTimeout, settle: Tunables.checkSettle),
                local: gatheredCandidates(), remote: candidates, random: SystemRandomNumberGenerator())
            probes = checker.start(now: now)
            state.checker = checker
            state.checkHandled = false
            state.checksRun += 1
            state.schedule.checkStarted()
            log.debug("traversal: checking \(checker.pairs.count) pair(s) with \(overlay.name(of: LinkID(link.raw)))")
        }
        nat.links[link.raw] = state
        for probe in probes { sendProbe(probe, now: now) }
        nat.nextWake = now
    }

    /// The link is gone: its checks, path and relay route go too.
    func forgetTraversal(_ link: PeerID) {
        guard let state = nat.links.removeValue(forKey: link.raw) else { return }
        nat.linkByIdentity["\(state.localID):\(state.remoteID)"] = nil
        if let path = state.path, Node.isOurRelay(path) { nat.relayRoutes[path.peerEndpoint] = nil }
    }

    /// Probe identity of a node on an overlay (no ':' allowed in STUN usernames here).
    static func checkID(overlay: String, key: String) -> String {
        let digest = SHA256.hash(data: Array("\(overlay)\u{0}\(key)".utf8))
        return digest.prefix(12).map { String(format: "%02x", $0) }.joined()
    }

    /// True if a path chosen by the checks is in use for this link (discovery then leaves the
    /// endpoint alone).
    func hasTraversalPath(_ link: PeerID) -> Bool { nat.links[link.raw]?.path != nil }

    // MARK: - timers

    func serviceTraversal(now: ContinuousClock.Instant) {
        var wake = now + Tunables.housekeepingInterval
        if var stun = nat.stun {
            for d in stun.tick(now: now) { _ = udp.send(d.bytes, to: d.destination) }
            nat.stun = stun
            drainStunEvents()
            if let d = nat.stun?.nextDeadline { wake = min(wake, d) }
        }
        if var turn = nat.turn, let server = nat.turnServer {
            for bytes in turn.tick(now: now) { _ = udp.send(bytes, to: server) }
            nat.turn = turn
            drainTurnEvents(now: now)
            if let d = nat.turn?.nextDeadline { wake = min(wake, max(d, now + .milliseconds(1))) }
        } else if let at = nat.turnRestartAt {
            if now >= at { startTurn(now: now) } else { wake = min(wake, at) }
        }
        for raw in Array(nat.links.keys) {
            guard var state = nat.links[raw] else { continue }
            let link = PeerID(raw: raw)
            if var checker = state.checker, !state.checkHandled {
                let probes = checker.tick(now: now)
                state.checker = checker
                nat.links[raw] = state
                for probe in probes { sendProbe(probe, now: now) }
                state = nat.links[raw] ?? state
                // A link without a path takes the first pair that works (direct preferred), and moves
                // to a better one when the check completes.
                if let best = checker.best, state.path == nil,
                   case .switchTo(let pair) = state.schedule.early(best) {
                    nat.links[raw] = state
                    applyPath(link, pair: pair, now: now, why: "first working pair")
                    state = nat.links[raw] ?? state
                }
                switch checker.state {
                case .completed(let pair):
                    state.checkHandled = true
                    let up = engine.status(link, now: now).state == .up
                    let decision = state.schedule.checkFinished(selected: pair, pathWorks: up && state.path != nil, now: now)
                    nat.links[raw] = state
                    if case .switchTo(let chosen) = decision {
                        applyPath(link, pair: chosen, now: now, why: "check selected it")
                    } else if let current = state.path {
                        log.debug("traversal: \(linkName(link)): keeping \(current) (check found \(LinkPath(pair: pair, turnServer: nat.turnServer)?.description ?? "?"))")
                    }
                case .failed:
                    state.checkHandled = true
                    let up = engine.status(link, now: now).state == .up
                    _ = state.schedule.checkFinished(selected: nil, pathWorks: up, now: now)
                    nat.links[raw] = state
                    log.info("traversal: \(linkName(link)): no candidate pair answered")
                default:
                    nat.links[raw] = state
                    if let d = checker.nextDeadline { wake = min(wake, d) }
                }
            } else if state.path != nil, pathLooksDead(link, now: now) {
                // Nothing from the peer for several keepalive intervals: the NAT may have dropped
                // our mapping (or the relay our allocation). Re-learn our addresses and check again.
                state.schedule.pathLost(now: now)
                state.path = nil
                nat.links[raw] = state
                log.info("traversal: \(linkName(link)): nothing heard for \(Tunables.deadPathKeepalives) keepalive intervals; re-gathering and checking again")
                regather(now: now)
                if let d = discovered.values.first(where: { $0.link == link }) {
                    state.schedule.offerSent(now: now, timeout: Tunables.offerTimeout)
                    nat.links[raw] = state
                    sendOffer(d, kind: "con_req")
                }
            } else if state.schedule.checkDue(now: now) {
                // On a relay: try the direct pairs again. The offerer asks (the offer is the
                // rendezvous: both sides check when it arrives); the other side waits for it.
                if state.controlling || state.schedule.current == nil,
                   let d = discovered.values.first(where: { $0.link == link }) {
                    state.schedule.offerSent(now: now, timeout: Tunables.offerTimeout)
                    nat.links[raw] = state
                    log.debug("traversal: \(linkName(link)): re-trying direct paths")
                    sendOffer(d, kind: "con_req")
                }
            } else if let due = state.schedule.nextCheck {
                wake = min(wake, due)
            }
        }
        nat.nextWake = max(wake, now + .milliseconds(1))
    }

    /// True when a link with a chosen path has heard nothing from its peer for
    /// `Tunables.deadPathKeepalives` keepalive intervals (both sides send keepalives on idle links).
    func pathLooksDead(_ link: PeerID, now: ContinuousClock.Instant) -> Bool {
        let status = engine.status(link, now: now)
        guard let last = status.lastReceived else { return false }
        let silence = config.keepalive * Tunables.deadPathKeepalives + .seconds(2)
        return last.duration(to: now) > silence
    }

    /// Asks the STUN servers again now; if our mapping changed, the TURN allocation (bound to the
    /// old address and port) is gone too and is made again.
    func regather(now: ContinuousClock.Instant) {
        if var stun = nat.stun {
            for d in stun.start(now: now) { _ = udp.send(d.bytes, to: d.destination) }
            nat.stun = stun
        }
        nat.nextWake = now
    }

    /// Our reflexive address changed: an allocation made from the old one is unreachable now.
    private func reallocateTurn(now: ContinuousClock.Instant) {
        guard nat.turn != nil || nat.turnRestartAt != nil, !nat.turnServers.isEmpty else { return }
        nat.turn = nil
        nat.turnServer = nil
        nat.peerByChannel.removeAll()
        for key in nat.relayRoutes.keys { nat.relayRoutes[key] = 0 }
        log.info("turn: our mapping changed; allocating again")
        startTurn(now: now)
    }

    private func drainStunEvents() {
        guard var stun = nat.stun else { return }
        let events = stun.drainEvents()
        nat.stun = stun
        for event in events {
            switch event {
            case .mapped(let server, let reflexive):
                log.info("stun: \(server) sees us as \(reflexive)")
            case .mappingChanged(let server, let old, let new):
                log.info("stun: \(server) now sees us as \(new) (was \(old))")
                if nat.turnServers.contains(where: { $0.endpoint == server }) || nat.turn?.mappedAddress == old {
                    reallocateTurn(now: ContinuousClock.now)
                }
            case .failed(let server, let failure):
                log.debug("stun: \(server): \(failure)")
            }
        }
        if stun.isMappingDestinationDependent {
            // Logged once per change of the set: a symmetric NAT makes srflx candidates of little use.
            let set = Set(stun.mappings.values)
            if set.count > 1, nat.lastSymmetricLog != set {
                nat.lastSymmetricLog = set
                log.info("stun: our NAT maps per destination (symmetric): \(set.map(\.description).sorted().joined(separator: ", "))")
            }
        }
    }

    private func drainTurnEvents(now: ContinuousClock.Instant) {
        guard var turn = nat.turn else { return }
        let events = turn.drainEvents()
        nat.turn = turn
        for event in events {
            switch event {
            case .allocated(let relayed, let mapped):
                nat.turnBackoff = Tunables.turnRetryStart
                nat.mismatchRetries = 0
                log.info("turn: relayed address \(relayed)\(mapped.map { ", server sees us as \($0)" } ?? "")")
                // Links that lost their path get a fresh offer with the new relayed candidate.
                for (raw, state) in nat.links where state.path == nil && state.checksRun > 0 && state.checker?.state != .checking {
                    if let d = discovered.values.first(where: { $0.link.raw == raw }) { sendOffer(d, kind: "con_req") }
                }
            case .refreshed:
                log.debug("turn: allocation refreshed")
            case .permissionCreated(let address):
                log.debug("turn: permission for \(Endpoint.formatIPv4(address))")
            case .permissionFailed(let address, let error):
                log.debug("turn: permission for \(Endpoint.formatIPv4(address)) failed: \(error)")
            case .channelBound(let peer, let channel):
                nat.peerByChannel[channel] = peer
                if nat.relayRoutes[peer] != nil { nat.relayRoutes[peer] = channel }
                log.debug("turn: channel \(String(channel, radix: 16)) bound to \(peer)")
            case .channelBindFailed(let peer, let error):
                log.debug("turn: channel bind for \(peer) failed: \(error)")
            case .failed(let error):
                nat.turn = nil
                nat.turnServer = nil
                nat.peerByChannel.removeAll()
                for key in nat.relayRoutes.keys { nat.relayRoutes[key] = 0 }
                if case .errorResponse(.allocate, 437, _) = error, nat.mismatchRetries < Tunables.turnMismatchRetries {
                    // Our address still holds an allocation (a previous run of this node, released
                    // a moment ago or not at all): same server again soon.
                    nat.mismatchRetries += 1
                    nat.turnRestartAt = now + Tunables.turnMismatchRetry
                    log.info("turn: \(error); our previous allocation is still there, retrying in \(Tunables.turnMismatchRetry)")
                    return
                }
                log.warning("turn: \(nat.turnServers[nat.turnIndex % nat.turnServers.count].endpoint): \(error); retrying in \(nat.turnBackoff)")
                nat.turnIndex += 1
                nat.turnRestartAt = now + nat.turnBackoff
                nat.turnBackoff = min(nat.turnBackoff * 2, Tunables.turnRetryCap)
                return
            }
        }
    }

    // MARK: - paths

    private func linkName(_ link: PeerID) -> String {
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

    private func sendProbe(_ probe: ConnectivityChecker.Probe, now: ContinuousClock.Instant) {
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

    // MARK: - receiving

    enum TraversalDemux {
        /// A link message for the engine (possibly unwrapped from ChannelData: `source` is then the peer).
        case link(UnsafeMutableRawBufferPointer, length: Int, source: Endpoint)
        case consumed
    }

    /// STUN (first two bits 0, magic cookie, length field matching the datagram: link messages have
    /// zero bytes 1...3, so they never match) and TURN ChannelData (first byte 0x40...0x7F) on the
    /// link socket. Link messages pass through untouched.
    func demuxTraversal(_ datagram: UnsafeMutableRawBufferPointer, length: Int, from source: Endpoint,
                        now: ContinuousClock.Instant) -> TraversalDemux {
        guard length >= 4 else { return .link(datagram, length: length, source: source) }
        let first = datagram[0]
        if first & 0xC0 == 0x40 {
            // Not from our TURN server: no ChannelData, just a bad datagram; the engine counts it.
            guard source == nat.turnServer else { return .link(datagram, length: length, source: source) }
            let channel = UInt16(first) << 8 | UInt16(datagram[1])
            let inner = Int(datagram[2]) << 8 | Int(datagram[3])
            guard inner + 4 <= length, let peer = nat.peerByChannel[channel] else {
                // Unknown channel: let the TURN client judge (it may have bound it just now).
                handleTurn(Array(UnsafeRawBufferPointer(rebasing: datagram[0..<length])), now: now)
                return .consumed
            }
            let payload = UnsafeMutableRawBufferPointer(rebasing: datagram[4..<(4 + inner)])
            if !Node.isStun(UnsafeRawBufferPointer(payload), length: inner) {
                if nat.relayRoutes[peer] == nil { relayedFrom(peer, channel: channel) }
                return .link(payload, length: inner, source: peer)
            }
            handleStun(Array(UnsafeRawBufferPointer(payload)), from: peer, path: .relay, now: now)
            return .consumed
        }
        if first < 2, Node.isStun(UnsafeRawBufferPointer(datagram), length: length) {
            let bytes = Array(UnsafeRawBufferPointer(rebasing: datagram[0..<length]))
            if let stun = nat.stun, nat.stunServers.contains(source) {
                var client = stun
                let mine = client.receive(bytes, from: source, now: now)
                nat.stun = client
                if mine {
                    drainStunEvents()
                    nat.nextWake = now
                    return .consumed
                }
            }
            if source == nat.turnServer, !Node.isBindingRequest(bytes) {
                handleTurn(bytes, now: now)
                return .consumed
            }
            handleStun(bytes, from: source, path: .socket, now: now)
            return .consumed
        }
        return .link(datagram, length: length, source: source)
    }

    static func isStun(_ bytes: UnsafeRawBufferPointer, length: Int) -> Bool {
        guard length >= 20, bytes[0] & 0xC0 == 0 else { return false }
        let declared = Int(bytes[2]) << 8 | Int(bytes[3])
        return declared + 20 == length && declared & 3 == 0
            && bytes[4] == 0x21 && bytes[5] == 0x12 && bytes[6] == 0xA4 && bytes[7] == 0x42
    }

    static func isBindingRequest(_ bytes: [UInt8]) -> Bool { bytes.count >= 2 && bytes[0] == 0 && bytes[1] == 1 }

    /// A datagram from our TURN server that is not ChannelData on a known channel.
    private func handleTurn(_ bytes: [UInt8], now: ContinuousClock.Instant) {
        guard var turn = nat.turn else { nat.strayDrops &+= 1; return }
        let result = try? turn.unwrap(bytes, from: nat.turnServer ?? Endpoint(address: 0, port: 0), now: now)
        nat.turn = turn
        switch result {
        case .data(let payload, let peer):
            if payload.count >= 4, payload[0] & 0xC0 == 0,
               payload.withUnsafeBytes({ Node.isStun($0, length: payload.count) }) {
                handleStun(payload, from: peer, path: .relay, now: now)
            } else {
                deliverRelayed(payload, from: peer, now: now)
            }
        case .control:
            drainTurnEvents(now: now)
            nat.nextWake = now
        case nil:
            break
        }
    }

    /// Link data from `peer` came through our TURN allocation, so answers to `peer` must go back the
    /// same way (the engine will roam its endpoint to `peer`; the peer's NAT only lets our relayed
    /// address in). Not when a path of ours goes to `peer` from the socket: then the peer merely
    /// chose a different pair for its direction.
    private func relayedFrom(_ peer: Endpoint, channel: UInt16) {
        let socketPath = nat.links.values.contains { state in
            guard let path = state.path else { return false }
            return !Node.isOurRelay(path) && path.peerEndpoint == peer
        }
        guard !socketPath else { return }
        nat.relayRoutes[peer] = channel
        log.debug("traversal: \(peer) reached us through our relay; answering it the same way")
    }

    static func isOurRelay(_ path: LinkPath) -> Bool { if case .relay = path { return true } else { return false } }

    /// A link message that came in a Send/Data indication (before the channel was bound): copied
    /// into the scratch buffer and handed to the engine like any other.
    private func deliverRelayed(_ payload: [UInt8], from peer: Endpoint, now: ContinuousClock.Instant) {
        guard payload.count <= Tunables.slotSize else { return }
        if nat.relayRoutes[peer] == nil { relayedFrom(peer, channel: 0) }
        let buffer = floodScratch
        payload.withUnsafeBytes { buffer.baseAddress!.copyMemory(from: $0.baseAddress!, byteCount: payload.count) }
        switch engine.receive(datagram: buffer, length: payload.count, from: peer, now: now) {
        case .frame(let link, let offset, let length):
            guard let overlay = overlayOfLink[link.raw] else { return }
            let frame = UnsafeMutableRawBufferPointer(rebasing: buffer[offset..<(offset + length)])
            if overlay.router != nil {
                if case .deliverToTap = overlay.router!.fromLink(LinkID(link.raw), frame: frame, length: length, now: now) {
                    overlay.tap.write(UnsafeRawBufferPointer(frame))
                }
            } else if case .deliverToTap = overlay.fabric.fromLink(LinkID(link.raw), frame: UnsafeRawBufferPointer(frame), now: now) {
                overlay.tap.write(UnsafeRawBufferPointer(frame))
            }
        case .handled:
            engineWantsPoll = true
        case .dropped:
            break
        }
    }

    /// A connectivity-check probe or ack (from the socket, or relayed to us from `source`).
    private func handleStun(_ bytes: [UInt8], from source: Endpoint, path: TransportPath, now: ContinuousClock.Instant) {
        var target: UInt32?
        if let ids = ConnectivityChecker.probeIdentities(bytes) {
            target = nat.linkByIdentity["\(ids.receiver):\(ids.sender)"]
        } else {
            target = nat.links.first(where: { $0.value.checker?.isAwaiting(bytes) == true })?.key
        }
        guard let raw = target, var state = nat.links[raw], var checker = state.checker else {
            nat.strayDrops &+= 1
            return
        }
        let replies = checker.receive(bytes, from: source, path: path, now: now)
        state.checker = checker
        nat.links[raw] = state
        for probe in replies { sendProbe(probe, now: now) }
        nat.nextWake = now
    }
}
