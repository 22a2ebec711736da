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

/// NAT traversal, inbound: STUN and TURN datagrams picked out of the link socket and handled.
extension Node {
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
    func handleTurn(_ bytes: [UInt8], now: ContinuousClock.Instant) {
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
    func relayedFrom(_ peer: Endpoint, channel: UInt16) {
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
    func deliverRelayed(_ payload: [UInt8], from peer: Endpoint, now: ContinuousClock.Instant) {
        guard payload.count <= Tunables.slotSize else { return }
        if nat.relayRoutes[peer] == nil { relayedFrom(peer, channel: 0) }
        let buffer = floodScratch
        payload.withUnsafeBytes { buffer.baseAddress!.copyMemory(from: $0.baseAddress!, byteCount: payload.count) }
        switch engine.receive(datagram: buffer, length: payload.count, from: peer, now: now) {
        case .frame(let link, let offset, let length):
            fromLink(link, frame: UnsafeMutableRawBufferPointer(rebasing: buffer[offset..<(offset + length)]), now: now)
            flushCoalescer()   // outside drainSocket, whose end would flush it
        case .handled:
            engineWantsPoll = true
        case .dropped:
            break
        }
    }

    /// A connectivity-check probe or ack (from the socket, or relayed to us from `source`).
    func handleStun(_ bytes: [UInt8], from source: Endpoint, path: TransportPath, now: ContinuousClock.Instant) {
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
