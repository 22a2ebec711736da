import Crypto
import IPOPWire
import Testing
@testable import IPOPLink

@Suite struct LinkEngineHandshakeTests {
    @Test func firstSealStartsAHandshakeAndTheQueuedFrameArrivesAfterIt() {
        let pair = Pair(bKnowsA: false)
        let wire = pair.wire
        #expect(wire.send(pair.a, to: pair.ab, frame(1)) == .noSession)
        #expect(pair.a.engine.status(pair.ab, now: wire.now).state == .connecting)

        wire.pollAll()
        #expect(wire.inFlight.map(\.type) == [1])
        #expect(wire.inFlight.first?.bytes.count == HandshakeInitiation.size)
        wire.deliverAll()
        #expect(pair.b.results == [.handled])

        wire.pollAll()
        #expect(wire.inFlight.map(\.type) == [2])
        #expect(wire.inFlight.first?.bytes.count == HandshakeResponse.size)
        wire.deliverAll()
        #expect(pair.a.results == [.handled])

        wire.pollAll()  // the queued frame, sealed on the new session
        #expect(wire.inFlight.map(\.type) == [4])
        wire.deliverAll()
        #expect(pair.b.frames.map(\.bytes) == [frame(1)])
        #expect(pair.b.frames.first?.peer == pair.ba)
        #expect(pair.bothUp)

        // Data both ways.
        #expect(wire.send(pair.b, to: pair.ba, frame(2)) == .send(length: 60 + 32, to: pair.a.endpoint))
        #expect(wire.send(pair.a, to: pair.ab, frame(3)) == .send(length: 60 + 32, to: pair.b.endpoint))
        wire.deliverAll()
        #expect(pair.a.frames.map(\.bytes) == [frame(2)])
        #expect(pair.b.frames.map(\.bytes) == [frame(1), frame(3)])

        let status = pair.b.engine.status(pair.ba, now: wire.now)
        #expect(status.name == "a" && status.overlay == "lab")
        #expect(status.endpoint == pair.a.endpoint)      // learnt from the initiation
        #expect(status.rxFrames == 2 && status.rxBytes == 120 && status.txFrames == 1 && status.txBytes == 60)
        #expect(status.lastHandshake == wire.now)
        #expect(status.rekeys == 0)
        #expect(status.drops.values.allSatisfy { $0 == 0 })
        #expect(status.drops.keys.sorted() == DropReason.allCases.map(\.rawValue).sorted())
    }

    @Test func sealWithoutEndpointSaysSo() {
        let pair = Pair(aKnowsB: false, bKnowsA: false)
        #expect(pair.wire.send(pair.a, to: pair.ab, frame(1)) == .noEndpoint)
        pair.wire.run()
        #expect(pair.wire.sent.isEmpty)
    }

    @Test func unknownPeerIDOrShortBufferIsNoSessionAndNeverTraps() {
        let pair = Pair()
        var buffer = [UInt8](repeating: 0, count: 40)
        buffer.withUnsafeMutableBytes { raw in
            #expect(pair.a.engine.seal(peer: PeerID(raw: 999), buffer: raw, payloadLength: 8, now: pair.wire.now) == .noSession)
            #expect(pair.a.engine.seal(peer: pair.ab, buffer: raw, payloadLength: 9, now: pair.wire.now) == .noSession)
            #expect(pair.a.engine.seal(peer: pair.ab, buffer: raw, payloadLength: -1, now: pair.wire.now) == .noSession)
        }
        #expect(pair.a.engine.status(PeerID(raw: 999), now: pair.wire.now).state == .connecting)
    }

    @Test(arguments: [true, false])
    func simultaneousInitiationConvergesAndTrafficNeverStops(aHasLargerKey: Bool) {
        let pair = Pair(aHasLargerKey: aHasLargerKey)
        let wire = pair.wire
        #expect(wire.send(pair.a, to: pair.ab, frame(1)) == .noSession)
        #expect(wire.send(pair.b, to: pair.ba, frame(2)) == .noSession)
        wire.pollAll()
        #expect(wire.inFlight.map(\.type) == [1, 1])
        wire.run()
        #expect(pair.bothUp)
        #expect(pair.a.frames.map(\.bytes) == [frame(2)])
        #expect(pair.b.frames.map(\.bytes) == [frame(1)])
        #expect(pair.sameSession)   // the larger key's session won on both sides
        let winner = aHasLargerKey ? pair.a : pair.b
        #expect(winner.engine.peers.values.first?.current?.isInitiator == true)

        // Ten minutes of traffic both ways across several rekeys: every frame arrives.
        var sentAB = 0, sentBA = 0
        wire.advance(.seconds(600)) {
            if wire.send(pair.a, to: pair.ab, frame(3)) != .noSession { sentAB += 1 }
            if wire.send(pair.b, to: pair.ba, frame(4)) != .noSession { sentBA += 1 }
        }
        #expect(sentAB >= 600 && sentBA >= 600)
        #expect(pair.b.frames.count == sentAB + 1)
        #expect(pair.a.frames.count == sentBA + 1)
        #expect(pair.a.drops.isEmpty && pair.b.drops.isEmpty)
        #expect(pair.bothUp)
        #expect(pair.sameSession)
        // One rekey per 120 s by the session's initiator, not one per side.
        #expect((4...6).contains(pair.a.engine.status(pair.ab, now: wire.now).rekeys))
        #expect((5...7).contains(wire.sent.filter { $0.type == 1 }.count - 2))
    }

    @Test func lostHandshakeMessagesAreRetried() {
        let pair = Pair(bKnowsA: false)
        let wire = pair.wire
        var lost = 0
        wire.lose = { datagram in
            guard datagram.type != 4, lost < 3 else { return false }
            lost += 1
            return true
        }
        wire.send(pair.a, to: pair.ab, frame(1))
        wire.advance(.seconds(60))
        #expect(lost == 3)
        #expect(pair.bothUp)
        #expect(pair.b.frames.map(\.bytes) == [frame(1)])
    }

    @Test func bothSidesIdleStillComeUpAndStayUp() {
        let pair = Pair()
        pair.wire.run()
        #expect(pair.bothUp)
        pair.wire.advance(.seconds(900))
        #expect(pair.bothUp)
        #expect(pair.a.drops.isEmpty && pair.b.drops.isEmpty)
    }

    @Test func threeNodesFormAMesh() {
        let wire = TestWire()
        let nodes = ["a", "b", "c"].enumerated().map { wire.addNode($1, host: UInt32($0 + 1)) }
        for node in nodes { node.engine.addOverlay(id: "mesh", privateKey: node.key, psk: nil) }
        var ids: [[PeerID?]] = Array(repeating: Array(repeating: nil, count: 3), count: 3)
        for i in 0..<3 {
            for j in 0..<3 where i != j {
                ids[i][j] = nodes[i].engine.addPeer(overlay: "mesh", name: nodes[j].name,
                                                   publicKey: nodes[j].key.publicKey, endpoint: nodes[j].endpoint)
            }
        }
        wire.run()
        for i in 0..<3 {
            for j in 0..<3 where i != j {
                guard let id = ids[i][j] else { continue }
                #expect(nodes[i].engine.status(id, now: wire.now).state == .up)
                wire.send(nodes[i], to: id, frame(UInt8(i * 3 + j)))
            }
        }
        wire.deliverAll()
        for j in 0..<3 {
            #expect(Set(nodes[j].frames.map(\.bytes)) == Set((0..<3).filter { $0 != j }.map { frame(UInt8($0 * 3 + j)) }))
        }
    }

    @Test func removedPeerNoLongerMatches() {
        let pair = Pair()
        pair.establish()
        #expect(pair.bothUp)
        pair.b.engine.removePeer(pair.ba)
        pair.wire.send(pair.a, to: pair.ab, frame(5))
        pair.wire.deliverAll()
        #expect(pair.b.results.last == .dropped(.unknownPeer))
        #expect(pair.b.engine.peerIDs.isEmpty)
    }
}
