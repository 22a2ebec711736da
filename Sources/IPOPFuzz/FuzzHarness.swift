import Crypto
import Foundation
import IPOPLink
import IPOPNode
import IPOPSignal
import IPOPSwitch
import IPOPTraversal
import IPOPWire

/// Everything a stranger can feed the daemon, in one function for a coverage-guided fuzzer
/// (`ipop-fuzz`, built with `-sanitize=fuzzer` by `scripts/fuzz`) and for the unit tests.
///
/// The first byte of an input picks the parser, the rest is its input:
///
///     0  LinkEngine.receive: a UDP datagram to a node with one established peer (handshake
///        messages, transport data, garbage; replays of the seeds' real datagrams)
///     1  StunMessage.decode (STUN/TURN from the network)
///     2  ChannelData.decode (TURN relayed data)
///     3  XMLStreamReader + the stanza parsers (XMPP from the server), fed in two chunks
///     4  Switch.fromTap and fromLink (frames from the TAP and from links)
///     5  Router.fromTap and fromLink (L3 mode)
///     6  Segmentation (10-byte vnet header + frame from an offloading TAP), MSS clamping,
///        ICMP "too big" answers, the receive coalescer
///     7  Config.parse (the JSON config file)
///
/// A crash, a trap (bounds, overflow) or a violated invariant checked here is a bug.
public final class FuzzHarness {
    public static let targets = 8

    let engine: LinkEngine
    let peerEndpoint = Endpoint(address: 0x0AC9_0001, port: 5800)
    var fabric = Switch(config: SwitchConfig(mtu: 1280))
    var router: Router
    let coalescer = TCPCoalescer()
    let datagram: UnsafeMutableRawBufferPointer
    let scratch: UnsafeMutableRawBufferPointer
    let t0 = ContinuousClock.now
    var step = 0
    /// Real datagrams of the in-memory handshake and one transport packet, for the seed corpus.
    public private(set) var recorded: [[UInt8]] = []

    public init() {
        let wall = WallClock(anchor: t0, unixNanoseconds: 1_700_000_000_000_000_000)
        let keyA = Curve25519.KeyAgreement.PrivateKey(), keyB = Curve25519.KeyAgreement.PrivateKey()
        let peer = LinkEngine(wallClock: wall)
        engine = LinkEngine(wallClock: wall)
        peer.addOverlay(id: "fuzz", privateKey: keyA, psk: nil)
        engine.addOverlay(id: "fuzz", privateKey: keyB, psk: nil)
        let b = peer.addPeer(overlay: "fuzz", name: "b", publicKey: keyB.publicKey, endpoint: Endpoint(address: 0x0AC9_0002, port: 5800))
        _ = engine.addPeer(overlay: "fuzz", name: "a", publicKey: keyA.publicKey, endpoint: peerEndpoint)
        datagram = .allocate(byteCount: 65_536, alignment: 16)
        scratch = .allocate(byteCount: 65_536 + 16, alignment: 16)
        router = Router(config: RouterConfig(localMAC: MACAddress(rawValue: 0x0200_0000_0001), ip4: IPv4Address(rawValue: 0x0A0A_0001),
                                             ip4PrefixLength: 24, ip6: IPv6Address("fd50::1"), mtu: 1280))
        try? router.addPeer(LinkID(7), ip4: IPv4Address(rawValue: 0x0A0A_0002), ip6: IPv6Address("fd50::2"))

        // The handshake, in memory: every datagram is recorded as a seed.
        var probe = [UInt8](repeating: 0, count: 100 + LinkEngine.transportOverhead)
        _ = probe.withUnsafeMutableBytes { peer.seal(peer: b, buffer: $0, payloadLength: 100, now: t0) }
        for _ in 0..<4 {
            for (from, to, source) in [(peer, engine, peerEndpoint), (engine, peer, Endpoint(address: 0x0AC9_0002, port: 5800))] {
                for d in from.poll(now: t0).datagrams {
                    recorded.append(d.bytes)
                    var bytes = d.bytes
                    _ = bytes.withUnsafeMutableBytes { to.receive(datagram: $0, length: $0.count, from: source, now: t0) }
                }
            }
        }
        if case .send(let length, _) = probe.withUnsafeMutableBytes({ peer.seal(peer: b, buffer: $0, payloadLength: 100, now: t0) }) {
            recorded.append(Array(probe[..<length]))
        }
    }

    deinit {
        datagram.deallocate()
        scratch.deallocate()
    }

    /// One input: `input[0]` picks the target, the rest is its bytes.
    public func run(_ input: UnsafeRawBufferPointer) {
        guard let selector = input.first else { return }
        let body = UnsafeRawBufferPointer(rebasing: input[1...])
        step &+= 1
        let now = t0 + .milliseconds(step)
        switch Int(selector) % Self.targets {
        case 0: linkDatagram(body, now: now)
        case 1: _ = try? StunMessage.decode(Array(body)).attributes.count
        case 2: _ = try? ChannelData.decode(body)
        case 3: xmpp(body)
        case 4: switchFrame(body, now: now)
        case 5: routerFrame(body, now: now)
        case 6: offloadFrame(body)
        default: _ = try? Config.parse(Data(body))
        }
    }

    func linkDatagram(_ body: UnsafeRawBufferPointer, now: ContinuousClock.Instant) {
        let count = min(body.count, datagram.count)
        if count > 0 { datagram.baseAddress!.copyMemory(from: body.baseAddress!, byteCount: count) }
        if case .frame(_, let offset, let length) = engine.receive(datagram: datagram, length: count, from: peerEndpoint, now: now) {
            precondition(offset >= 0 && length >= 0 && offset + length <= count, "frame outside the datagram")
        }
        _ = engine.poll(now: now)
    }

    func xmpp(_ body: UnsafeRawBufferPointer) {
        var reader = XMLStreamReader()
        let half = body.count / 2
        for chunk in [body[..<half], body[half...]] {
            guard let events = try? reader.read(chunk) else { return }
            for case .element(let element) in events {
                _ = NodeAnnouncement.parse(presence: element)
                _ = SignalPayload.parse(message: element)
            }
        }
    }

    func switchFrame(_ body: UnsafeRawBufferPointer, now: ContinuousClock.Instant) {
        _ = fabric.fromTap(body, now: now)
        _ = fabric.fromLink(LinkID(UInt32(step % 3)), frame: body, now: now)
        if step % 64 == 0 { fabric.expire(now: now + .seconds(600)) }
    }

    func routerFrame(_ body: UnsafeRawBufferPointer, now: ContinuousClock.Instant) {
        let count = min(body.count, datagram.count)
        if count > 0 { datagram.baseAddress!.copyMemory(from: body.baseAddress!, byteCount: count) }
        _ = router.fromTap(UnsafeRawBufferPointer(rebasing: datagram[0 ..< count]), reply: scratch, now: now)
        _ = router.fromLink(LinkID(7), frame: datagram, length: count, now: now)
    }

    func offloadFrame(_ body: UnsafeRawBufferPointer) {
        guard body.count > VirtioNetHeader.size else { return }
        let vnet = VirtioNetHeader(body)
        let count = min(body.count - VirtioNetHeader.size, datagram.count)
        datagram.baseAddress!.copyMemory(from: body.baseAddress! + VirtioNetHeader.size, byteCount: count)
        let frame = UnsafeMutableRawBufferPointer(rebasing: datagram[0 ..< count])
        if let plan = try? Segmentation.plan(vnet, frame: frame) {
            for i in 0 ..< min(plan.count, 64) {
                guard plan.length(of: i) <= scratch.count else { break }
                let length = Segmentation.segment(plan, index: i, frame: UnsafeRawBufferPointer(frame), into: scratch)
                let segment = UnsafeMutableRawBufferPointer(rebasing: scratch[0 ..< length])
                _ = TCPMSSClamp.clamp(segment, mtu: 1280)
                switch coalescer.offer(UnsafeRawBufferPointer(segment)) {
                case .flushFirst: _ = coalescer.take(); _ = coalescer.offer(UnsafeRawBufferPointer(segment))
                case .taken, .notEligible: break
                }
            }
        }
        if !coalescer.isEmpty { _ = coalescer.take() }
        _ = TCPMSSClamp.clamp(frame, mtu: Int(vnet.gsoSize))
        if let length = ICMPError.tooBig(UnsafeRawBufferPointer(frame), mtu: 1280, into: scratch) {
            precondition(length <= ICMPError.maximumSize, "ICMP answer longer than announced")
        }
        if let length = ICMPError.unreachable(UnsafeRawBufferPointer(frame), mtu: 1280, into: scratch) {
            precondition(length <= ICMPError.maximumSize, "ICMP answer longer than announced")
        }
    }

    /// Seed inputs for every target (selector byte included): real handshake and transport
    /// datagrams, a STUN request, ChannelData, an XMPP presence, Ethernet frames, a TSO super-frame,
    /// a config.
    public func seeds() -> [[UInt8]] {
        var out: [[UInt8]] = recorded.map { [0] + $0 }
        var rng = SystemRandomNumberGenerator()
        let stun = StunMessage(type: .bindingRequest, transactionID: .random(using: &rng))
        out.append([1] + stun.encode(fingerprint: true))
        out.append([2] + ChannelData(channel: 0x4001, payload: Array(repeating: 0x42, count: 40)).encode(padded: true))
        out.append([3] + Array("""
            <stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' from='example.org' id='1' version='1.0'>\
            <presence from='vm2@example.org/ipop'><ipop xmlns='urn:ipop:0' node='vm2' key='abc'><overlay id='lab' ip4='10.10.0.2'/></ipop></presence>\
            <message from='vm2@example.org/ipop' type='chat'><body>hello</body></message>
            """.utf8))
        // An ARP request and a TCP SYN with MSS 1460, for the switch, the router and the clamp.
        let arp: [UInt8] = [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 2, 0, 0, 0, 0, 1, 0x08, 0x06,
                            0, 1, 8, 0, 6, 4, 0, 1, 2, 0, 0, 0, 0, 1, 10, 10, 0, 1, 0, 0, 0, 0, 0, 0, 10, 10, 0, 2]
        let syn: [UInt8] = [2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00,
                            0x45, 0, 0, 44, 0, 1, 0x40, 0, 64, 6, 0, 0, 10, 10, 0, 1, 10, 10, 0, 2,
                            0x9c, 0x40, 0, 80, 0, 0, 0, 1, 0, 0, 0, 0, 0x60, 0x02, 0xfa, 0xf0, 0, 0, 0, 0, 2, 4, 0x05, 0xb4]
        out += [[4] + arp, [4] + syn, [5] + arp, [5] + syn]
        // A TSO super-frame: vnet header (NEEDS_CSUM, TCPv4, header 54, MSS 1000) + 3000 bytes of data.
        var tso: [UInt8] = [1, 1, 54, 0, 0xe8, 0x03, 34, 0, 16, 0] + syn[0 ..< 54]
        tso[10 + 16] = UInt8((3040 >> 8) & 0xff); tso[10 + 17] = UInt8(3040 & 0xff)
        tso[10 + 47] = 0x10
        tso[10 + 46] = 0x50
        tso += (0 ..< 3000).map { UInt8(truncatingIfNeeded: $0) }
        out.append([6] + tso)
        out.append([7] + Array("""
            {"node_name": "vm1", "private_key": "KKgJuw2R2uNTr3tjdOuuSNK8zMDyFQTQt0zjqJ9Xh2s=",
             "overlays": [{"id": "lab", "switchmode": 1, "mtu": 1280, "clamp_mss": 1,
               "peers": [{"name": "vm2", "public_key": "Lg4bSKc2GwTXVJ2JNEbMCNrJ7zPFwOuyUyqwlnWyQ3k=", "endpoint": "10.200.0.2:5800"}]}]}
            """.utf8))
        return out
    }
}
