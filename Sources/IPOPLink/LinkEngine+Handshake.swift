import Crypto
import IPOPWire

/// Handshake messages: building initiations, answering them, completing on responses,
/// and installing the resulting sessions. Control plane: allocations are fine here.
extension LinkEngine {
    /// Builds and queues an initiation to `peer`. Returns false if the peer cannot be reached yet.
    @discardableResult
    func sendInitiation(_ peer: Peer, now: ContinuousClock.Instant) -> Bool {
        guard let endpoint = peer.endpoint, let overlay = overlays[peer.overlayID] else { return false }
        let noise: [UInt8]
        let state: NoiseHandshake
        do {
            var handshake = try NoiseHandshake(role: .initiator, prologue: overlay.prologue,
                                               localStatic: overlay.privateKey, remoteStatic: peer.publicKey,
                                               psk: overlay.psk, localEphemeral: randomPrivateKey())
            // Strictly increasing per peer, even if two initiations share one instant.
            let nanos = max(wallClock.unixNanoseconds(at: now), peer.lastTimestampSent.map { $0 &+ 1 } ?? 0)
            peer.lastTimestampSent = nanos
            noise = try handshake.writeMessage(payload: WallClock.timestamp(unixNanoseconds: nanos))
            state = handshake
        } catch {
            return false
        }
        if let old = peer.handshake { handshakesByIndex[old.localIndex] = nil }
        let index = randomIndex()
        handshakesByIndex[index] = peer.id.raw
        peer.handshake = PendingHandshake(state: state, localIndex: index, sentAt: now)
        let message = HandshakeInitiation(overlayTag: overlay.tag, senderIndex: index, noise: noise)
        outbox.append((message.encoded(mac1Key: peer.mac1Key), endpoint))
        return true
    }

    /// Responder side: mac1, rate limit, then Noise message 1, peer lookup, timestamp, response.
    func receiveInitiation(_ packet: UnsafeRawBufferPointer, from: Endpoint,
                           now: ContinuousClock.Instant) -> ReceiveResult {
        guard let message = try? HandshakeInitiation(decoding: packet) else { return drop(.malformed, peer: nil) }
        guard let candidates = overlaysByTag[message.overlayTag] else { return drop(.unknownPeer, peer: nil) }
        let matching = candidates.compactMap { overlays[$0] }.filter { Mac1.verify(key: $0.mac1Key, message: packet) }
        guard !matching.isEmpty else { return drop(.badMAC, peer: nil) }
        guard rateLimiter.allow(from.address, now: now) else { return drop(.rateLimited, peer: nil) }

        // Same tag and same static key in two overlays is possible; the prologue tells them apart.
        for overlay in matching {
            guard var handshake = try? NoiseHandshake(role: .responder, prologue: overlay.prologue,
                                                      localStatic: overlay.privateKey, psk: overlay.psk,
                                                      localEphemeral: randomPrivateKey()),
                  let timestamp = try? handshake.readMessage(message.noise) else { continue }
            guard let remote = handshake.remoteStaticKey,
                  let raw = peersByKey[overlay.id]?[Array(remote.rawRepresentation)],
                  let peer = peers[raw] else { return drop(.unknownPeer, peer: nil) }
            guard timestamp.count == WallClock.timestampSize else { return drop(.malformed, peer: peer) }
            if let latest = peer.latestTimestamp, !WallClock.isLater(timestamp, than: latest) {
                return drop(.replay, peer: peer)
            }
            guard let reply = try? handshake.writeMessage(payload: []), let keys = try? handshake.split() else {
                return drop(.authFailure, peer: peer)
            }
            let index = randomIndex()
            // No keypair only when memory ran out: the handshake cannot complete (the peer retries).
            guard let keypair = Keypair(localIndex: index, remoteIndex: message.senderIndex, keys: keys, createdAt: now,
                                        isInitiator: false, peer: raw, rejectAfterMessages: timers.rejectAfterMessages) else {
                return drop(.authFailure, peer: peer)
            }
            peer.latestTimestamp = timestamp
            peer.endpoint = from
            keypair.crossedOurInitiation = peer.handshake != nil
            retire(peer.next)
            peer.next = keypair
            keypairsByIndex[index] = keypair
            let response = HandshakeResponse(senderIndex: index, receiverIndex: message.senderIndex, noise: reply)
            outbox.append((response.encoded(mac1Key: peer.mac1Key), from))
            return .handled
        }
        return drop(.authFailure, peer: nil)
    }

    /// Initiator side: the response to our pending initiation completes the handshake.
    func receiveResponse(_ packet: UnsafeRawBufferPointer, from: Endpoint,
                         now: ContinuousClock.Instant) -> ReceiveResult {
        guard let message = try? HandshakeResponse(decoding: packet) else { return drop(.malformed, peer: nil) }
        guard let raw = handshakesByIndex[message.receiverIndex], let peer = peers[raw],
              let pending = peer.handshake, pending.localIndex == message.receiverIndex,
              let overlay = overlays[peer.overlayID] else { return drop(.unknownPeer, peer: nil) }
        guard Mac1.verify(key: overlay.mac1Key, message: packet) else { return drop(.badMAC, peer: peer) }
        var state = pending.state
        guard (try? state.readMessage(message.noise)) != nil, let keys = try? state.split() else {
            return drop(.authFailure, peer: peer)
        }
        // No keypair only when memory ran out: the pending handshake stays and is retried.
        guard let keypair = Keypair(localIndex: pending.localIndex, remoteIndex: message.senderIndex, keys: keys,
                                    createdAt: now, isInitiator: true, peer: raw,
                                    rejectAfterMessages: timers.rejectAfterMessages) else {
            return drop(.authFailure, peer: peer)
        }
        handshakesByIndex[pending.localIndex] = nil
        peer.handshake = nil
        peer.handshakeDue = nil
        peer.handshakeAttempts = 0
        peer.handshakeForced = false
        peer.endpoint = from
        peer.lastReceived = now
        peer.firstUnansweredSend = nil

        keypairsByIndex[keypair.localIndex] = keypair
        // An unconfirmed `next` (simultaneous initiation) stays: the peer will send on it and confirm it.
        if let current = peer.current, !current.isInitiator, current.crossedOurInitiation,
           isFresh(current, now: now), !winsTieBreak(peer) {
            // Simultaneous handshakes, and the peer's fresh session already won: keep it for sending.
            peer.previous.insert(keypair, at: 0)
            trimPrevious(peer)
        } else {
            demoteCurrent(peer)
            peer.current = keypair
            sessionEstablished(peer, now: now)
        }
        // The responder may only send once it hears from us on the new session: confirm right away.
        if peer.queue.isEmpty { enqueueTransport([], peer: peer, now: now) }
        flushQueue(peer, now: now)
        return .handled
    }

    /// The initiator used our unconfirmed responder session: it becomes current.
    func confirmNext(_ peer: Peer, now: ContinuousClock.Instant) {
        guard let next = peer.next else { return }
        peer.next = nil
        peer.handshakeForced = false
        if next.crossedOurInitiation, let current = peer.current, current.isInitiator,
           isFresh(current, now: now), winsTieBreak(peer) {
            // Simultaneous handshakes: both sides keep the session initiated by the larger static key
            // (ours, here); the peer's stays open for receiving. Only when the two initiations crossed:
            // after a peer restart our session died with the peer's memory, and the peer's must win.
            peer.previous.insert(next, at: 0)
            trimPrevious(peer)
            return
        }
        demoteCurrent(peer)
        peer.current = next
        sessionEstablished(peer, now: now)
        flushQueue(peer, now: now)
    }

    /// Established less than one handshake timeout ago (so part of the same round of handshakes).
    func isFresh(_ keypair: Keypair, now: ContinuousClock.Instant) -> Bool {
        keypair.createdAt.duration(to: now) < timers.rekeyTimeout
    }

    /// Tie-break between simultaneous handshakes: the session initiated by the larger static public key wins.
    func winsTieBreak(_ peer: Peer) -> Bool {
        guard let overlay = overlays[peer.overlayID] else { return false }
        return peer.publicKeyBytes.lexicographicallyPrecedes(overlay.publicKeyBytes)
    }

    /// Moves `current` to the front of `previous` (still accepted for receiving until it expires).
    func demoteCurrent(_ peer: Peer) {
        guard let current = peer.current else { return }
        peer.previous.insert(current, at: 0)
        peer.current = nil
        trimPrevious(peer)
    }

    func trimPrevious(_ peer: Peer) {
        while peer.previous.count > Peer.maxPrevious {
            retire(peer.previous.removeLast())
        }
    }

    func sessionEstablished(_ peer: Peer, now: ContinuousClock.Instant) {
        peer.lastHandshake = now
        peer.sessionsEstablished &+= 1
    }

    func flushQueue(_ peer: Peer, now: ContinuousClock.Instant) {
        let queued = peer.queue
        peer.queue = []
        for frame in queued { enqueueTransport(frame, peer: peer, now: now) }
    }

    /// Forgets a session (its index stops matching).
    func retire(_ keypair: Keypair?) {
        guard let keypair else { return }
        if keypairsByIndex[keypair.localIndex] === keypair { keypairsByIndex[keypair.localIndex] = nil }
    }
}
