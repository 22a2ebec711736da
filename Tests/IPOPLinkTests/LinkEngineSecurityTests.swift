import Crypto
import IPOPWire
import Testing
@testable import IPOPLink

@Suite struct LinkEngineSecurityTests {
    @Test func initiationFromAKeyThatIsNotAPeerIsDropped() {
        let wire = TestWire()
        let b = wire.addNode("b", host: 2)
        let c = wire.addNode("c", host: 3)
        b.engine.addOverlay(id: "lab", privateKey: b.key, psk: nil)
        c.engine.addOverlay(id: "lab", privateKey: c.key, psk: nil)
        let cb = c.engine.addPeer(overlay: "lab", name: "b", publicKey: b.key.publicKey, endpoint: b.endpoint)
        wire.send(c, to: cb, frame(1))
        wire.advance(.seconds(30))
        #expect(b.results.allSatisfy { $0 == .dropped(.unknownPeer) } && !b.results.isEmpty)
        #expect(b.engine.drops.unknownPeer == UInt64(b.results.count))
        #expect(wire.sent(from: b, type: 2).isEmpty)
        #expect(c.engine.status(cb, now: wire.now).state == .connecting)
    }

    @Test func differentPSKsNeverFormASession() {
        let pair = Pair(pskA: SymmetricKey(size: .bits256), pskB: SymmetricKey(size: .bits256))
        pair.establish()
        pair.wire.advance(.seconds(60))
        #expect(pair.a.engine.status(pair.ab, now: pair.wire.now).state == .connecting)
        #expect(pair.b.engine.status(pair.ba, now: pair.wire.now).state == .connecting)
        #expect(pair.a.engine.drops(of: pair.ab).authFailure > 0)
        #expect(pair.b.engine.drops(of: pair.ba).authFailure > 0)
        #expect(pair.a.frames.isEmpty && pair.b.frames.isEmpty)
    }

    @Test func samePSKWorks() {
        let psk = SymmetricKey(size: .bits256)
        let pair = Pair(pskA: psk, pskB: psk)
        pair.establish()
        #expect(pair.bothUp)
        #expect(pair.b.frames.map(\.bytes) == [[0xA0]])
    }

    @Test func overlaysAreIsolatedEvenWithTheSameNodeKeys() {
        let wire = TestWire()
        let a = wire.addNode("a", host: 1)
        let b = wire.addNode("b", host: 2)
        for node in [a, b] {
            node.engine.addOverlay(id: "x", privateKey: node.key, psk: nil)
            node.engine.addOverlay(id: "y", privateKey: node.key, psk: nil)
        }
        let abX = a.engine.addPeer(overlay: "x", name: "b", publicKey: b.key.publicKey, endpoint: b.endpoint)
        let abY = a.engine.addPeer(overlay: "y", name: "b", publicKey: b.key.publicKey, endpoint: b.endpoint)
        let baX = b.engine.addPeer(overlay: "x", name: "a", publicKey: a.key.publicKey, endpoint: a.endpoint)
        #expect(abX != abY)
        wire.send(a, to: abY, frame(1))
        wire.advance(.seconds(20))
        #expect(a.engine.status(abX, now: wire.now).state == .up)
        #expect(b.engine.status(baX, now: wire.now).state == .up)
        #expect(a.engine.status(abY, now: wire.now).state == .connecting)
        #expect(b.engine.drops.unknownPeer > 0)
        #expect(b.frames.isEmpty)
        // Frames on x are attributed to x's peer only.
        wire.send(a, to: abX, frame(2))
        wire.deliverAll()
        #expect(b.frames.map(\.peer) == [baX])
    }

    @Test func initiationForAnotherOverlayWithTheSameKeyFailsAuthentication() {
        // B has overlay "y" only; A thinks B is in "x": unknown tag.
        let wire = TestWire()
        let a = wire.addNode("a", host: 1)
        let b = wire.addNode("b", host: 2)
        a.engine.addOverlay(id: "x", privateKey: a.key, psk: nil)
        b.engine.addOverlay(id: "y", privateKey: b.key, psk: nil)
        _ = b.engine.addPeer(overlay: "y", name: "a", publicKey: a.key.publicKey, endpoint: nil)
        let ab = a.engine.addPeer(overlay: "x", name: "b", publicKey: b.key.publicKey, endpoint: b.endpoint)
        wire.send(a, to: ab, frame(1))
        wire.run()
        #expect(b.results == [.dropped(.unknownPeer)])
        // Same bytes re-tagged for "y" (mac1 recomputed): the prologue differs, so Noise fails.
        let initiation = wire.sent(from: a, type: 1)[0].bytes
        guard var message = try? HandshakeInitiation(decoding: initiation) else { Issue.record("decode"); return }
        message.overlayTag = LinkMessage.overlayTag("y")
        wire.put(.init(bytes: message.encoded(mac1Key: Mac1.key(for: b.key.publicKey)), from: a.endpoint,
                       to: b.endpoint, at: wire.now))
        wire.deliverAll()
        #expect(b.results.last == .dropped(.authFailure))
    }

    @Test func replayedInitiationIsRejected() {
        let pair = Pair(bKnowsA: false)
        let wire = pair.wire
        wire.down = [pair.b.endpoint]
        wire.send(pair.a, to: pair.ab, frame(1))
        wire.advance(.seconds(6))                    // first initiation and one retry, both lost
        let initiations = wire.sent(from: pair.a, type: 1)
        #expect(initiations.count == 2)
        wire.down = []
        wire.inFlight = []
        var later = initiations[1]
        later.at = wire.now
        #expect(wire.deliver(later) == .handled)
        #expect(wire.deliver(later) == .dropped(.replay))           // same timestamp
        #expect(wire.deliver(initiations[0]) == .dropped(.replay))  // older timestamp
        #expect(pair.b.engine.drops(of: pair.ba).replay == 2)
        wire.pollAll()
        #expect(wire.sent(from: pair.b, type: 2).count == 1)
    }

    @Test func wrongMAC1IsDroppedBeforeAnyKeyAgreement() {
        let pair = Pair(bKnowsA: false)
        let wire = pair.wire
        wire.send(pair.a, to: pair.ab, frame(1))
        wire.pollAll()
        let good = wire.inFlight.removeFirst()
        var flipped = good
        flipped.bytes[130] ^= 1
        #expect(wire.deliver(flipped) == .dropped(.badMAC))
        var junk = good
        for index in 12..<junk.bytes.count { junk.bytes[index] = UInt8(truncatingIfNeeded: index * 7) }
        #expect(wire.deliver(junk) == .dropped(.badMAC))
        #expect(pair.b.engine.drops.badMAC == 2)
        #expect(wire.deliver(good) == .handled)
        // Junk never used the rate limiter's tokens or produced responses.
        wire.pollAll()
        #expect(wire.inFlight.map(\.type) == [2])
    }

    @Test func initiationsAreRateLimitedPerSourceAddress() {
        let pair = Pair(bKnowsA: false)
        let wire = pair.wire
        wire.send(pair.a, to: pair.ab, frame(1))
        wire.pollAll()
        let initiation = wire.inFlight.removeFirst()
        var results = (0..<8).map { _ in wire.deliver(initiation) }
        #expect(results[0] == .handled)
        #expect(results[1..<5].allSatisfy { $0 == .dropped(.replay) })      // burst of 5 passes the limiter
        #expect(results[5...].allSatisfy { $0 == .dropped(.rateLimited) })
        #expect(pair.b.engine.drops.rateLimited == 3)

        var otherSource = initiation
        otherSource.from = Endpoint(address: 0x0A00_0063, port: 1)
        #expect(wire.deliver(otherSource) == .dropped(.replay))

        wire.now = wire.now + .milliseconds(100)   // 20/s: two tokens back
        results = (0..<3).map { _ in wire.deliver(initiation) }
        #expect(results == [.dropped(.replay), .dropped(.replay), .dropped(.rateLimited)])
    }

    @Test func rateLimitIsConfigurable() {
        var timers = LinkTimers()
        timers.handshakeBurst = 1
        timers.handshakeRatePerSecond = 1
        let pair = Pair(timers: timers, bKnowsA: false)
        pair.wire.send(pair.a, to: pair.ab, frame(1))
        pair.wire.pollAll()
        let initiation = pair.wire.inFlight.removeFirst()
        #expect(pair.wire.deliver(initiation) == .handled)
        #expect(pair.wire.deliver(initiation) == .dropped(.rateLimited))
    }

    @Test func transportReplaysAndForgeriesAreCountedPerPeerAndGlobally() {
        let pair = Pair()
        pair.establish()
        let wire = pair.wire
        wire.send(pair.a, to: pair.ab, frame(7))
        let packet = wire.inFlight.removeFirst()
        #expect(wire.deliver(packet) == .frame(peer: pair.ba, offset: 16, length: 60))
        #expect(wire.deliver(packet) == .dropped(.replay))

        wire.send(pair.a, to: pair.ab, frame(8))
        var forged = wire.inFlight.removeFirst()
        forged.bytes[20] ^= 0x01
        #expect(wire.deliver(forged) == .dropped(.authFailure))
        var badTag = forged
        badTag.bytes[20] ^= 0x01
        badTag.bytes[badTag.bytes.count - 1] ^= 0x01
        #expect(wire.deliver(badTag) == .dropped(.authFailure))
        badTag.bytes[badTag.bytes.count - 1] ^= 0x01
        #expect(wire.deliver(badTag) == .frame(peer: pair.ba, offset: 16, length: 60))  // the genuine one still opens

        var unknown = packet
        unknown.bytes[4] ^= 0xFF
        #expect(wire.deliver(unknown) == .dropped(.unknownPeer))

        let peerDrops = pair.b.engine.drops(of: pair.ba)
        #expect(peerDrops.replay == 1 && peerDrops.authFailure == 2 && peerDrops.unknownPeer == 0)
        #expect(pair.b.engine.drops.replay == 1 && pair.b.engine.drops.authFailure == 2)
        #expect(pair.b.engine.drops.unknownPeer == 1)
        let status = pair.b.engine.status(pair.ba, now: wire.now)
        #expect(status.drops["replay"] == 1 && status.drops["auth_failure"] == 2)
    }

    @Test func arbitraryDatagramsAreDroppedNeverTrap() {
        let pair = Pair()
        pair.establish()
        var rng = SplitMix64(seed: 7)
        var buffer = [UInt8](repeating: 0, count: 300)
        for round in 0..<3000 {
            let length = Int(rng.next() % 200)
            for index in 0..<length { buffer[index] = UInt8(truncatingIfNeeded: rng.next()) }
            if length > 0 { buffer[0] = [1, 2, 4, 3, 0][round % 5] }
            if length > 3, round % 3 == 0 { buffer[1] = 0; buffer[2] = 0; buffer[3] = 0 }
            let result = buffer.withUnsafeMutableBytes {
                pair.b.engine.receive(datagram: $0, length: length, from: pair.a.endpoint, now: pair.wire.now)
            }
            guard case .dropped = result else { Issue.record("accepted junk: \(result)"); return }
        }
        buffer.withUnsafeMutableBytes { raw in
            let tooLong = pair.b.engine.receive(datagram: UnsafeMutableRawBufferPointer(rebasing: raw[0..<10]),
                                                length: 11, from: pair.a.endpoint, now: pair.wire.now)
            #expect(tooLong == .dropped(.malformed))
            #expect(pair.b.engine.receive(datagram: raw, length: -1, from: pair.a.endpoint, now: pair.wire.now)
                    == .dropped(.malformed))
        }
        #expect(pair.bothUp)
    }
}
