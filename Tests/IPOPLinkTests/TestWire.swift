import Crypto
import IPOPWire
@testable import IPOPLink

/// One engine on the fake wire.
final class TestNode {
    let name: String
    let endpoint: Endpoint
    let key: Curve25519.KeyAgreement.PrivateKey
    var engine: LinkEngine
    var frames: [(peer: PeerID, bytes: [UInt8])] = []
    var results: [LinkEngine.ReceiveResult] = []
    var wake: ContinuousClock.Instant?

    init(name: String, endpoint: Endpoint, key: Curve25519.KeyAgreement.PrivateKey, engine: LinkEngine) {
        self.name = name
        self.endpoint = endpoint
        self.key = key
        self.engine = engine
    }

    var drops: [LinkEngine.ReceiveResult] { results.filter { if case .dropped = $0 { return true } else { return false } } }
}

/// Engines exchanging datagrams in memory under a manual clock.
final class TestWire {
    struct Datagram {
        var bytes: [UInt8]
        var from: Endpoint
        var to: Endpoint
        var at: ContinuousClock.Instant
        var type: UInt8 { bytes.first ?? 0 }
    }

    static let wallAnchorNanos: UInt64 = 1_700_000_000_000_000_000

    let t0: ContinuousClock.Instant
    var now: ContinuousClock.Instant
    var nodes: [TestNode] = []
    var inFlight: [Datagram] = []
    /// Every datagram ever put on the wire.
    var sent: [Datagram] = []
    /// Endpoints that are offline: datagrams to or from them vanish.
    var down: Set<Endpoint> = []
    /// Source rewriting (NAT / roaming): datagrams from the key appear to come from the value.
    var rewrite: [Endpoint: Endpoint] = [:]
    /// Extra addresses that reach a node (the public side of a rewrite).
    var aliases: [Endpoint: TestNode] = [:]
    var seed: UInt64 = 1
    /// Return true to lose a datagram.
    var lose: ((Datagram) -> Bool)?

    init() {
        t0 = ContinuousClock.now
        now = t0
    }

    func makeEngine(timers: LinkTimers = .default) -> LinkEngine {
        seed += 1
        return LinkEngine(timers: timers, random: SplitMix64(seed: seed),
                          wallClock: WallClock(anchor: t0, unixNanoseconds: Self.wallAnchorNanos))
    }

    @discardableResult
    func addNode(_ name: String, host: UInt32, key: Curve25519.KeyAgreement.PrivateKey = .init(),
                 timers: LinkTimers = .default) -> TestNode {
        let node = TestNode(name: name, endpoint: Endpoint(address: 0x0A00_0000 | host, port: 5800),
                            key: key, engine: makeEngine(timers: timers))
        nodes.append(node)
        return node
    }

    /// Seals `frame` for `peer` and puts the packet on the wire.
    @discardableResult
    func send(_ node: TestNode, to peer: PeerID, _ frame: [UInt8]) -> LinkEngine.SealResult {
        var buffer = [UInt8](repeating: 0, count: LinkEngine.transportHeaderSize) + frame
            + [UInt8](repeating: 0, count: TransportCipher.tagSize)
        let result = buffer.withUnsafeMutableBytes {
            node.engine.seal(peer: peer, buffer: $0, payloadLength: frame.count, now: now)
        }
        if case let .send(length, to) = result {
            put(Datagram(bytes: Array(buffer[..<length]), from: node.endpoint, to: to, at: now))
        }
        return result
    }

    func put(_ datagram: Datagram) {
        sent.append(datagram)
        inFlight.append(datagram)
    }

    func node(at endpoint: Endpoint) -> TestNode? {
        nodes.first { $0.endpoint == endpoint } ?? aliases[endpoint]
    }

    /// Hands one datagram to its destination; returns the engine's verdict (nil: lost).
    @discardableResult
    func deliver(_ datagram: Datagram) -> LinkEngine.ReceiveResult? {
        guard !down.contains(datagram.from), !down.contains(datagram.to),
              let target = node(at: datagram.to), !down.contains(target.endpoint),
              lose?(datagram) != true else { return nil }
        let source = rewrite[datagram.from] ?? datagram.from
        var buffer = datagram.bytes + [UInt8](repeating: 0xEE, count: 8)
        let result = buffer.withUnsafeMutableBytes { raw -> LinkEngine.ReceiveResult in
            let result = target.engine.receive(datagram: raw, length: datagram.bytes.count, from: source, now: now)
            if case let .frame(peer, offset, length) = result {
                target.frames.append((peer, Array(raw[offset ..< offset + length])))
            }
            return result
        }
        target.results.append(result)
        return result
    }

    func pollAll() {
        for node in nodes where !down.contains(node.endpoint) {
            let (datagrams, wake) = node.engine.poll(now: now)
            node.wake = wake
            for datagram in datagrams {
                put(Datagram(bytes: datagram.bytes, from: node.endpoint, to: datagram.to, at: now))
            }
        }
    }

    func deliverAll() {
        while !inFlight.isEmpty {
            let datagram = inFlight.removeFirst()
            deliver(datagram)
        }
    }

    /// Poll and deliver until the wire is quiet.
    func run(rounds: Int = 20) {
        for _ in 0..<rounds {
            pollAll()
            if inFlight.isEmpty { return }
            deliverAll()
        }
    }

    /// Moves the clock forward, waking at every time an engine asked for (and at least every `step`).
    func advance(_ duration: Duration, step: Duration = .seconds(1), each: (() -> Void)? = nil) {
        let end = now + duration
        run()
        while now < end {
            var next = min(end, now + step)
            for node in nodes { if let wake = node.wake, wake > now, wake < next { next = wake } }
            now = next
            each?()
            run()
        }
    }

    func sent(from node: TestNode, type: UInt8) -> [Datagram] {
        sent.filter { $0.from == node.endpoint && $0.type == type }
    }
}

/// Two nodes in overlay "lab" that know each other.
struct Pair {
    let wire: TestWire
    let a: TestNode
    let b: TestNode
    /// A's handle of B, and B's handle of A.
    let ab: PeerID
    let ba: PeerID

    init(timers: LinkTimers = .default, pskA: SymmetricKey? = nil, pskB: SymmetricKey? = nil,
         aKnowsB: Bool = true, bKnowsA: Bool = true, aHasLargerKey: Bool? = nil) {
        wire = TestWire()
        var keys = [Curve25519.KeyAgreement.PrivateKey(), Curve25519.KeyAgreement.PrivateKey()]
        if let aHasLargerKey {
            keys.sort { $0.publicKey.rawRepresentation.lexicographicallyPrecedes($1.publicKey.rawRepresentation) }
            if aHasLargerKey { keys.reverse() }
        }
        a = wire.addNode("a", host: 1, key: keys[0], timers: timers)
        b = wire.addNode("b", host: 2, key: keys[1], timers: timers)
        a.engine.addOverlay(id: "lab", privateKey: a.key, psk: pskA)
        b.engine.addOverlay(id: "lab", privateKey: b.key, psk: pskB)
        ab = a.engine.addPeer(overlay: "lab", name: "b", publicKey: b.key.publicKey, endpoint: aKnowsB ? b.endpoint : nil)
        ba = b.engine.addPeer(overlay: "lab", name: "a", publicKey: a.key.publicKey, endpoint: bKnowsA ? a.endpoint : nil)
    }

    var bothUp: Bool {
        a.engine.status(ab, now: wire.now).state == .up && b.engine.status(ba, now: wire.now).state == .up
    }

    /// Both sides send on the same session.
    var sameSession: Bool {
        guard let x = a.engine.peers[ab.raw]?.current, let y = b.engine.peers[ba.raw]?.current else { return false }
        return x.localIndex == y.remoteIndex && x.remoteIndex == y.localIndex
    }

    /// Brings the link up from A's side and checks it.
    func establish() {
        wire.send(a, to: ab, [0xA0])
        wire.run()
    }
}

func frame(_ tag: UInt8, _ length: Int = 60) -> [UInt8] {
    (0..<length).map { UInt8(truncatingIfNeeded: $0) ^ tag }
}
