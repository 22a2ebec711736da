import Crypto
import IPOPWire
import Testing
@testable import IPOPLink

@Suite struct LinkEngineRoamingTests {
    @Test func authenticatedTransportFromANewAddressMovesTheEndpoint() {
        let pair = Pair()
        pair.establish()
        let wire = pair.wire
        let moved = Endpoint(address: 0xC0A8_0001, port: 40000)
        wire.rewrite[pair.a.endpoint] = moved
        wire.aliases[moved] = pair.a
        wire.send(pair.a, to: pair.ab, frame(1))
        wire.deliverAll()
        #expect(pair.b.engine.status(pair.ba, now: wire.now).endpoint == moved)
        #expect(wire.send(pair.b, to: pair.ba, frame(2)) == .send(length: 92, to: moved))
        wire.deliverAll()
        #expect(pair.a.frames.last?.bytes == frame(2))
    }

    @Test func forgedPacketFromANewAddressDoesNotMoveTheEndpoint() {
        let pair = Pair()
        pair.establish()
        let wire = pair.wire
        wire.send(pair.a, to: pair.ab, frame(1))
        var forged = wire.inFlight.removeFirst()
        forged.bytes[30] ^= 1
        forged.from = Endpoint(address: 0x0101_0101, port: 1)
        #expect(wire.deliver(forged) == .dropped(.authFailure))
        #expect(pair.b.engine.status(pair.ba, now: wire.now).endpoint == pair.a.endpoint)
    }

    @Test func handshakeFromANewAddressMovesTheEndpoint() {
        let pair = Pair(bKnowsA: false)
        pair.establish()
        let wire = pair.wire
        let moved = Endpoint(address: 0xC0A8_0002, port: 40001)
        wire.rewrite[pair.a.endpoint] = moved
        wire.aliases[moved] = pair.a
        wire.advance(.seconds(125))     // A rekeys from its new address
        #expect(pair.b.engine.status(pair.ba, now: wire.now).endpoint == moved)
        #expect(pair.bothUp)
    }

    @Test func setEndpointRedirectsSealing() {
        let pair = Pair()
        pair.establish()
        let other = Endpoint(address: 0x0A00_0009, port: 9)
        pair.a.engine.setEndpoint(pair.ab, other)
        #expect(pair.wire.send(pair.a, to: pair.ab, frame(1)) == .send(length: 92, to: other))
        #expect(pair.a.engine.status(pair.ab, now: pair.wire.now).endpoint == other)
    }

    @Test func addingTheSamePeerTwiceReturnsTheSameID() {
        let engine = LinkEngine()
        let key = Curve25519.KeyAgreement.PrivateKey().publicKey
        engine.addOverlay(id: "lab", privateKey: .init(), psk: nil)
        let first = engine.addPeer(overlay: "lab", name: "b", publicKey: key, endpoint: nil)
        let second = engine.addPeer(overlay: "lab", name: "b2", publicKey: key, endpoint: Endpoint(address: 1, port: 2))
        #expect(first == second)
        let status = engine.status(first, now: .now)
        #expect(status.name == "b2" && status.endpoint == Endpoint(address: 1, port: 2))
        #expect(engine.addPeer(overlay: "other", name: "b", publicKey: key, endpoint: nil) != first)
    }
}
