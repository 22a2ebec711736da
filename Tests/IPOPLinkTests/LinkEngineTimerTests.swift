import Crypto
import IPOPWire
import Testing
@testable import IPOPLink

@Suite struct LinkEngineTimerTests {
    @Test func keepaliveAfterTenSecondsOfReceivingWithoutSending() {
        let pair = Pair()
        pair.establish()
        let wire = pair.wire
        let start = wire.now
        wire.sent = []
        wire.send(pair.a, to: pair.ab, frame(1))
        wire.deliverAll()
        wire.advance(.milliseconds(9_900), step: .milliseconds(100))
        #expect(wire.sent(from: pair.b, type: 4).isEmpty)
        wire.advance(.milliseconds(200), step: .milliseconds(100))
        let keepalives = wire.sent(from: pair.b, type: 4)
        #expect(keepalives.count == 1)
        #expect(keepalives.first?.bytes.count == LinkEngine.transportOverhead)
        #expect(keepalives.first.map { start.duration(to: $0.at) } == .seconds(10))
        #expect(pair.a.results.last == .handled)
        // A keepalive is not answered with a keepalive.
        wire.advance(.seconds(30))
        #expect(wire.sent(from: pair.a, type: 4).count == 1)
        #expect(wire.sent(from: pair.b, type: 4).count == 1)
    }

    @Test func noKeepaliveWhenTrafficFlowsBothWays() {
        let pair = Pair()
        pair.establish()
        let wire = pair.wire
        wire.sent = []
        wire.advance(.seconds(30)) {
            wire.send(pair.a, to: pair.ab, frame(1))
            wire.send(pair.b, to: pair.ba, frame(2))
        }
        #expect(wire.sent.filter { $0.bytes.count == LinkEngine.transportOverhead }.isEmpty)
    }

    @Test func steadyReceivingStillGetsAKeepaliveEveryTenSeconds() {
        let pair = Pair()
        pair.establish()
        let wire = pair.wire
        wire.sent = []
        wire.advance(.seconds(35)) { wire.send(pair.a, to: pair.ab, frame(1)) }
        #expect((3...4).contains(wire.sent(from: pair.b, type: 4).count))
    }

    @Test func initiatorRekeysAfter120sWithoutAGapAndOldKeyPacketsStillOpen() {
        let pair = Pair(bKnowsA: false)
        pair.establish()
        let wire = pair.wire
        let established = wire.now
        wire.advance(.seconds(119)) { wire.send(pair.a, to: pair.ab, frame(1)) }
        #expect(wire.sent(from: pair.a, type: 1).count == 1)

        wire.now = established + .seconds(121)
        wire.sent = []
        // Sealed under the old key; held back until after the new handshake.
        #expect(wire.send(pair.a, to: pair.ab, frame(2)) == .send(length: 92, to: pair.b.endpoint))
        #expect(wire.send(pair.b, to: pair.ba, frame(3)) == .send(length: 92, to: pair.a.endpoint))
        let held = wire.inFlight
        wire.inFlight = []
        wire.run()
        #expect(wire.sent(from: pair.a, type: 1).count == 1)
        #expect(pair.a.engine.status(pair.ab, now: wire.now).rekeys == 1)
        #expect(pair.b.engine.status(pair.ba, now: wire.now).rekeys == 1)
        #expect(pair.bothUp)
        let framesBefore = (pair.a.frames.count, pair.b.frames.count)
        for datagram in held { wire.deliver(datagram) }
        #expect(pair.b.frames.count == framesBefore.1 + 1 && pair.b.frames.last?.bytes == frame(2))
        #expect(pair.a.frames.count == framesBefore.0 + 1 && pair.a.frames.last?.bytes == frame(3))
        // New traffic uses the new session.
        wire.send(pair.a, to: pair.ab, frame(4))
        wire.deliverAll()
        #expect(pair.b.frames.last?.bytes == frame(4))
        #expect(pair.a.drops.isEmpty && pair.b.drops.isEmpty)
    }

    @Test func rekeyAfterMessages() {
        var timers = LinkTimers()
        timers.rekeyAfterMessages = 10
        let pair = Pair(timers: timers, bKnowsA: false)
        pair.establish()
        pair.wire.sent = []
        for _ in 0..<12 { pair.wire.send(pair.a, to: pair.ab, frame(1)) }
        pair.wire.run()
        #expect(pair.wire.sent(from: pair.a, type: 1).count == 1)
        #expect(pair.a.engine.status(pair.ab, now: pair.wire.now).rekeys == 1)
        #expect(pair.b.frames.count == 13)
    }

    @Test func sessionsOlderThan180sAreUnusableAndThePeerIsConnecting() {
        let pair = Pair()
        pair.establish()
        let wire = pair.wire
        #expect(pair.bothUp)
        wire.down = [pair.a.endpoint, pair.b.endpoint]
        wire.advance(.seconds(179))
        #expect(pair.bothUp)                      // rekey failed, old session still valid
        #expect(wire.send(pair.a, to: pair.ab, frame(1)) != .noSession)
        wire.advance(.seconds(2))
        #expect(pair.a.engine.status(pair.ab, now: wire.now).state == .connecting)
        #expect(pair.b.engine.status(pair.ba, now: wire.now).state == .connecting)
        #expect(wire.send(pair.a, to: pair.ab, frame(1)) == .noSession)
        // Comes back by itself when the network does.
        wire.down = []
        wire.advance(.seconds(61))
        #expect(pair.bothUp)
    }

    @Test func handshakeRetriesBackOffWithJitterAndNeverGiveUp() {
        let pair = Pair(bKnowsA: false)
        let wire = pair.wire
        wire.down = [pair.b.endpoint]
        wire.send(pair.a, to: pair.ab, frame(1))
        wire.advance(.seconds(1200))
        let times = wire.sent(from: pair.a, type: 1).map { wire.t0.duration(to: $0.at) }
        let gaps = zip(times.dropFirst(), times).map { $0 - $1 }
        let base: [Duration] = [.seconds(5), .seconds(10), .seconds(20), .seconds(40)]
        #expect(gaps.count > 20)
        for (index, gap) in gaps.enumerated() {
            let expected = index < base.count ? base[index] : .seconds(60)
            #expect(gap >= expected && gap <= expected + .milliseconds(334), "gap \(index): \(gap)")
        }
        #expect(Set(gaps.dropFirst(4)).count > 1)                       // jitter varies
        #expect(pair.a.engine.status(pair.ab, now: wire.now).handshakeAttempts == times.count)
        #expect(pair.a.wake.map { $0 > wire.now } == true)

        // B comes up: reached within one capped interval; the queued frame is delivered.
        wire.down = []
        wire.advance(.seconds(61))
        #expect(pair.bothUp)
        #expect(pair.b.frames.map(\.bytes) == [frame(1)])
        #expect(pair.a.engine.status(pair.ab, now: wire.now).handshakeAttempts == 0)
    }

    @Test func restartedPeerIsReHandshakenAndItsInitiationReplacesOurSession() {
        let pair = Pair()
        pair.establish()
        let wire = pair.wire
        wire.advance(.seconds(30))
        #expect(pair.bothUp)
        let rekeysBefore = pair.a.engine.status(pair.ab, now: wire.now).rekeys
        // B restarts: new engine, same key, all state lost.
        pair.b.engine = wire.makeEngine()
        pair.b.engine.addOverlay(id: "lab", privateKey: pair.b.key, psk: nil)
        let ba2 = pair.b.engine.addPeer(overlay: "lab", name: "a", publicKey: pair.a.key.publicKey, endpoint: pair.a.endpoint)
        wire.run()
        #expect(pair.a.engine.status(pair.ab, now: wire.now).state == .up)
        #expect(pair.b.engine.status(ba2, now: wire.now).state == .up)
        #expect(pair.a.engine.status(pair.ab, now: wire.now).rekeys == rekeysBefore + 1)
        wire.send(pair.a, to: pair.ab, frame(1))
        wire.send(pair.b, to: ba2, frame(2))
        wire.deliverAll()
        #expect(pair.b.frames.last?.bytes == frame(1))
        #expect(pair.a.frames.last?.bytes == frame(2))
    }

    /// Regression (found end to end): A initiated a session seconds before B restarted; B's new
    /// initiation must win even where A's key would win a tie-break, or A keeps sending on a
    /// session that died with B's memory.
    @Test(arguments: [true, false])
    func peerRestartingSecondsAfterOurHandshakeStillReplacesOurSession(aHasLargerKey: Bool) {
        let pair = Pair(aHasLargerKey: aHasLargerKey)
        pair.establish()
        let wire = pair.wire
        wire.advance(.seconds(2))
        pair.b.engine = wire.makeEngine()
        pair.b.engine.addOverlay(id: "lab", privateKey: pair.b.key, psk: nil)
        let ba2 = pair.b.engine.addPeer(overlay: "lab", name: "a", publicKey: pair.a.key.publicKey, endpoint: pair.a.endpoint)
        wire.send(pair.b, to: ba2, frame(7))
        wire.run()
        wire.send(pair.a, to: pair.ab, frame(8))
        wire.deliverAll()
        #expect(pair.b.frames.last?.bytes == frame(8))
        #expect(pair.b.engine.drops.unknownPeer == 0)
    }

    @Test func deadPeerDetectionReHandshakesAPeerThatLostItsState() {
        // B restarts without knowing A's endpoint: only A can repair the link.
        let pair = Pair()
        pair.establish()
        let wire = pair.wire
        pair.b.engine = wire.makeEngine()
        pair.b.engine.addOverlay(id: "lab", privateKey: pair.b.key, psk: nil)
        let ba2 = pair.b.engine.addPeer(overlay: "lab", name: "a", publicKey: pair.a.key.publicKey, endpoint: nil)
        let start = wire.now
        var delivered = 0
        wire.advance(.seconds(30)) {
            if case .send = wire.send(pair.a, to: pair.ab, frame(9)) { delivered += 1 }
        }
        #expect(pair.b.engine.drops.unknownPeer > 0)
        #expect(pair.b.engine.status(ba2, now: wire.now).state == .up)
        let repaired = wire.sent(from: pair.a, type: 1).last.map { start.duration(to: $0.at) }
        #expect(repaired.map { $0 <= .seconds(16) } == true)
        #expect(pair.b.frames.count >= 13)
    }

    @Test func nextWakeIsNilWithNothingToDo() {
        let wire = TestWire()
        let a = wire.addNode("a", host: 1)
        a.engine.addOverlay(id: "lab", privateKey: a.key, psk: nil)
        _ = a.engine.addPeer(overlay: "lab", name: "b", publicKey: Curve25519.KeyAgreement.PrivateKey().publicKey, endpoint: nil)
        let (datagrams, wake) = a.engine.poll(now: wire.now)
        #expect(datagrams.isEmpty && wake == nil)
    }
    @Test func aNewPathGetsAnInitiationAtOnceInsteadOfTheBackoff() {
        // A only knows a wrong endpoint for B (as before NAT traversal found the path).
        let pair = Pair(bKnowsA: false)
        let wire = pair.wire
        let wrong = Endpoint(address: 0x0A00_00FE, port: 5800)
        pair.a.engine.setEndpoint(pair.ab, wrong)
        wire.send(pair.a, to: pair.ab, frame(1))
        wire.advance(.seconds(20))   // initiations into the void; the retry interval grows
        let attempts = wire.sent(from: pair.a, type: 1).count
        #expect(attempts >= 2)
        #expect(!pair.bothUp)
        wire.sent = []
        pair.a.engine.setEndpoint(pair.ab, pair.b.endpoint)
        pair.a.engine.retryHandshakeNow(pair.ab, now: wire.now)
        wire.run()
        #expect(wire.sent(from: pair.a, type: 1).count == 1)
        #expect(wire.sent(from: pair.a, type: 1).first?.to == pair.b.endpoint)
        #expect(pair.bothUp)
        // With a usable session it does nothing.
        wire.sent = []
        pair.a.engine.retryHandshakeNow(pair.ab, now: wire.now)
        wire.run()
        #expect(wire.sent(from: pair.a, type: 1).isEmpty)
    }
}

/// Liveness with persistent keepalives: a peer that goes silent stops showing "up".
@Suite struct LinkEngineLivenessTests {
    static var keepaliveTimers: LinkTimers {
        var timers = LinkTimers.default
        timers.persistentKeepalive = .seconds(10)
        return timers
    }

    @Test func idleLiveLinkStaysUpWithoutExtraHandshakes() {
        let pair = Pair(timers: Self.keepaliveTimers)
        pair.establish()
        let wire = pair.wire
        wire.sent = []
        var notUp = 0
        wire.advance(.seconds(100)) { if !pair.bothUp { notUp += 1 } }
        #expect(notUp == 0)
        // No handshake after the first: keepalives alone keep both sides convinced.
        #expect(wire.sent(from: pair.a, type: 1).count + wire.sent(from: pair.b, type: 1).count == 0)
        #expect(wire.sent(from: pair.a, type: 4).count >= 9)
    }

    @Test func silentPeerTurnsConnectingWithinTwoIntervalsAndIsRehandshaked() {
        let pair = Pair(timers: Self.keepaliveTimers)
        pair.establish()
        let wire = pair.wire
        wire.advance(.seconds(12))
        #expect(pair.bothUp)
        let initiationsBefore = wire.sent(from: pair.a, type: 1).count
        wire.down.insert(pair.b.endpoint)
        let died = wire.now
        var seenConnectingAt: ContinuousClock.Instant?
        wire.advance(.seconds(40)) {
            if seenConnectingAt == nil, pair.a.engine.status(pair.ab, now: wire.now).state == .connecting {
                seenConnectingAt = wire.now
            }
        }
        // Last heard at most 10 s before the death; 2 x 10 s + 5 s after that.
        let after = seenConnectingAt.map { died.duration(to: $0) }
        #expect(after != nil && after! <= .seconds(25))
        #expect(wire.sent(from: pair.a, type: 1).count > initiationsBefore)

        // The peer comes back: the retried handshake brings the link up again.
        wire.down.remove(pair.b.endpoint)
        wire.advance(.seconds(70))
        #expect(pair.bothUp)
    }
}
