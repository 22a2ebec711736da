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

/// NAT traversal, control side: STUN and TURN set-up, candidates, the offer as rendezvous, timers.
/// (State: NATTraversal.swift; paths and sending: Node+TraversalPaths.swift; the socket demux:
/// Node+TraversalInbound.swift.)
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

    func startTurn(now: ContinuousClock.Instant) {
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
    func reallocateTurn(now: ContinuousClock.Instant) {
        guard nat.turn != nil || nat.turnRestartAt != nil, !nat.turnServers.isEmpty else { return }
        nat.turn = nil
        nat.turnServer = nil
        nat.peerByChannel.removeAll()
        for key in nat.relayRoutes.keys { nat.relayRoutes[key] = 0 }
        log.info("turn: our mapping changed; allocating again")
        startTurn(now: now)
    }

    func drainStunEvents() {
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

    func drainTurnEvents(now: ContinuousClock.Instant) {
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
}
