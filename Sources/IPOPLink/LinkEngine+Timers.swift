import IPOPWire

/// Timer-driven work: session expiry, (re)handshakes with backoff, keepalives.
extension LinkEngine {
    /// Everything the engine wants sent now (handshake initiations/responses, keepalives, queued frames),
    /// and the next time it wants to be polled (nil: only when something happens).
    public func poll(now: ContinuousClock.Instant) -> (datagrams: [(bytes: [UInt8], to: Endpoint)],
                                                       nextWake: ContinuousClock.Instant?) {
        var wake: ContinuousClock.Instant?
        func wakeAt(_ instant: ContinuousClock.Instant) {
            if instant > now, wake.map({ instant < $0 }) ?? true { wake = instant }
        }
        for raw in peers.keys.sorted() {
            guard let peer = peers[raw] else { continue }
            service(peer, now: now, wakeAt: wakeAt)
        }
        if nextPrune.map({ now >= $0 }) ?? true {
            rateLimiter.prune(now: now)
            nextPrune = now + .seconds(10)
        }
        let datagrams = outbox
        outbox = []
        return (datagrams, wake)
    }

    private func service(_ peer: Peer, now: ContinuousClock.Instant, wakeAt: (ContinuousClock.Instant) -> Void) {
        expireSessions(peer, now: now, wakeAt: wakeAt)

        // Dead peer: we sent data and heard nothing back for keepalive + rekey timeout.
        if let first = peer.firstUnansweredSend {
            let deadline = first + timers.keepaliveTimeout + timers.rekeyTimeout
            if now >= deadline {
                peer.firstUnansweredSend = nil
                peer.handshakeForced = true
            } else {
                wakeAt(deadline)
            }
        }

        // Silent peer: with persistent keepalives both sides speak at least every interval, so
        // nothing heard for two intervals plus a handshake timeout means the peer (or the path) died,
        // even on an idle link where no data went unanswered. A fresh handshake decides.
        if let interval = timers.persistentKeepalive, let current = peer.current, !peer.handshakeForced {
            let deadline = max(peer.lastReceived ?? current.createdAt, current.createdAt)
                + interval * 2 + timers.rekeyTimeout
            if now >= deadline { peer.handshakeForced = true } else { wakeAt(deadline) }
        }

        let reachable = peer.endpoint != nil && overlays[peer.overlayID] != nil
        switch handshakeWanted(peer, now: now, wakeAt: wakeAt) {
        case true?:
            if peer.handshake == nil, peer.handshakeDue == nil { peer.handshakeDue = now }
        case false?:
            // A usable session (perhaps from the peer's own handshake): stop any retrying.
            cancelHandshake(peer)
        case nil:
            // Waiting for the peer to confirm its session: no new initiation meanwhile.
            if peer.handshake == nil { peer.handshakeDue = nil }
        }
        if reachable, let due = peer.handshakeDue {
            if now >= due {
                if sendInitiation(peer, now: now) {
                    peer.handshakeAttempts += 1
                    let next = now + retryInterval(attempt: peer.handshakeAttempts)
                    peer.handshakeDue = next
                    wakeAt(next)
                }
            } else {
                wakeAt(due)
            }
        }

        // Passive keepalive: we received data and sent nothing since, for keepaliveTimeout.
        if let first = peer.firstUnacknowledgedReceive, let current = peer.current, canSend(current, now: now) {
            let due = first + timers.keepaliveTimeout
            if now >= due { enqueueTransport([], peer: peer, now: now) } else { wakeAt(due) }
        }
        // Optional persistent keepalive, to hold NAT mappings open on idle links.
        if let interval = timers.persistentKeepalive, let current = peer.current, canSend(current, now: now) {
            let due = (peer.lastSent ?? current.createdAt) + interval
            if now >= due {
                enqueueTransport([], peer: peer, now: now)
                wakeAt(now + interval)
            } else {
                wakeAt(due)
            }
        }
    }

    /// Drops sessions older than rejectAfterTime; notes when the remaining ones expire.
    private func expireSessions(_ peer: Peer, now: ContinuousClock.Instant, wakeAt: (ContinuousClock.Instant) -> Void) {
        func expired(_ keypair: Keypair?) -> Bool {
            guard let keypair else { return false }
            let end = keypair.createdAt + timers.rejectAfterTime
            if now >= end { retire(keypair); return true }
            wakeAt(end)
            return false
        }
        if expired(peer.current) { peer.current = nil }
        peer.previous.removeAll { expired($0) }
        if expired(peer.next) { peer.next = nil }
    }

    /// Whether the peer needs a new handshake now. nil: not decidable yet (waiting for a responder
    /// session to be confirmed); leave things as they are.
    private func handshakeWanted(_ peer: Peer, now: ContinuousClock.Instant,
                                 wakeAt: (ContinuousClock.Instant) -> Void) -> Bool? {
        if peer.handshakeForced { return true }
        guard let current = peer.current, canSend(current, now: now) else {
            // A fresh unconfirmed responder session will normally be confirmed within one round trip.
            if let next = peer.next, next.createdAt.duration(to: now) < timers.rekeyTimeout {
                wakeAt(next.createdAt + timers.rekeyTimeout)
                return nil
            }
            return true
        }
        if current.sendCounter >= timers.rekeyAfterMessages, current.isInitiator { return true }
        // The initiator rekeys at rekeyAfterTime; the responder only as a fallback shortly before expiry.
        let age = current.isInitiator
            ? timers.rekeyAfterTime
            : timers.rejectAfterTime - timers.keepaliveTimeout - timers.rekeyTimeout
        let rekeyAt = current.createdAt + age
        if now >= rekeyAt { return true }
        wakeAt(rekeyAt)
        return false
    }

    private func cancelHandshake(_ peer: Peer) {
        if let pending = peer.handshake { handshakesByIndex[pending.localIndex] = nil }
        peer.handshake = nil
        peer.handshakeDue = nil
        peer.handshakeAttempts = 0
    }

    /// rekeyTimeout * 2^(attempt-1), capped at rekeyBackoffCap, plus random jitter.
    func retryInterval(attempt: Int) -> Duration {
        var interval = timers.rekeyTimeout
        var step = 1
        while step < attempt, interval < timers.rekeyBackoffCap {
            interval = interval * 2
            step += 1
        }
        if interval > timers.rekeyBackoffCap { interval = timers.rekeyBackoffCap }
        let (seconds, attoseconds) = timers.rekeyJitter.components
        let jitterNanos = max(0, seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
        if jitterNanos > 0 { interval += .nanoseconds(Int64(random.next() % UInt64(jitterNanos + 1))) }
        return interval
    }
}
