import Crypto
import IPOPLink
import IPOPSwitch
import IPOPWire

/// The data path without the kernel: two nodes' switches and link engines joined in memory.
///
/// One frame is the work both nodes do for it, in the order the node's data path does it
/// (`OutboundPath.drainTap` on node A, `InboundPath.drainSocket` on node B):
///
///     A: frame into a send slot behind the link header   (the TAP read; one copy)
///     A: Switch.fromTap            -> .unicast(link to B)
///     A: LinkEngine.seal           (in the slot)
///        datagram copied into B's receive slot             (the wire; one copy)
///     B: LinkEngine.receive        -> .frame (opened in place)
///     B: Switch.fromLink           -> .deliverToTap
///
/// Time is a fake clock: a fixed start plus 1 µs per frame, so runs are repeatable and no
/// clock is read inside the loop. The session is set up once by a real handshake in memory.
/// Not thread-safe; one owner.
public final class HotPath {
    /// Overlay MTU 1280 (the README's reference) + the Ethernet header.
    public static let defaultFrameSize = 1280 + EthernetFrame.headerSize
    /// Same as the node's `Tunables.slotSize`.
    static let slotSize = 9216

    public let frameSize: Int
    let engineA: LinkEngine
    let engineB: LinkEngine
    var switchA: Switch
    var switchB: Switch
    let peerBAtA: PeerID
    let endpointA = Endpoint(address: 0x0AC9_0001, port: 5800)
    let endpointB = Endpoint(address: 0x0AC9_0002, port: 5800)
    let template: UnsafeMutableRawBufferPointer
    let txSlot: UnsafeMutableRawBufferPointer
    let rxSlot: UnsafeMutableRawBufferPointer
    let t0: ContinuousClock.Instant
    /// Frames pushed so far (also the fake clock, in µs since `t0`).
    public private(set) var framesDone: Int = 0

    public enum SetupError: Error, CustomStringConvertible {
        case frameSize(Int)
        case handshake(String)

        public var description: String {
            switch self {
            case .frameSize(let n): return "frame size \(n) outside 60...\(HotPath.slotSize - LinkEngine.transportOverhead)"
            case .handshake(let what): return "in-memory handshake failed: \(what)"
            }
        }
    }

    /// Per-stage outcome of one frame (kept for `check`; the timed loop only counts failures).
    public enum Stage: String, Sendable {
        case fromTap, seal, receive, fromLink
    }

    public init(frameSize: Int = HotPath.defaultFrameSize) throws {
        guard frameSize >= 60, frameSize <= Self.slotSize - LinkEngine.transportOverhead else {
            throw SetupError.frameSize(frameSize)
        }
        self.frameSize = frameSize
        t0 = ContinuousClock.now
        let wall = WallClock(anchor: t0, unixNanoseconds: 1_700_000_000_000_000_000)
        engineA = LinkEngine(wallClock: wall)
        engineB = LinkEngine(wallClock: wall)
        let keyA = Curve25519.KeyAgreement.PrivateKey()
        let keyB = Curve25519.KeyAgreement.PrivateKey()
        engineA.addOverlay(id: "bench", privateKey: keyA, psk: nil)
        engineB.addOverlay(id: "bench", privateKey: keyB, psk: nil)
        peerBAtA = engineA.addPeer(overlay: "bench", name: "b", publicKey: keyB.publicKey, endpoint: endpointB)
        _ = engineB.addPeer(overlay: "bench", name: "a", publicKey: keyA.publicKey, endpoint: endpointA)
        let config = SwitchConfig(mtu: frameSize - EthernetFrame.headerSize)
        switchA = Switch(config: config)
        switchB = Switch(config: config)

        template = .allocate(byteCount: frameSize, alignment: 16)
        txSlot = .allocate(byteCount: Self.slotSize, alignment: 16)
        rxSlot = .allocate(byteCount: Self.slotSize, alignment: 16)
        txSlot.initializeMemory(as: UInt8.self, repeating: 0)
        rxSlot.initializeMemory(as: UInt8.self, repeating: 0)
        Self.fillFrame(template, destination: Self.macB, source: Self.macA)

        try handshake()
        // B's MAC is known on the link to B at A (as after the first reply frame).
        let link = LinkID(peerBAtA.raw)
        let reply = UnsafeMutableRawBufferPointer.allocate(byteCount: frameSize, alignment: 16)
        defer { reply.deallocate() }
        Self.fillFrame(reply, destination: Self.macA, source: Self.macB)
        guard case .deliverToTap = switchA.fromLink(link, frame: UnsafeRawBufferPointer(reply), now: t0) else {
            throw SetupError.handshake("switch A did not learn B's MAC")
        }
    }

    deinit {
        template.deallocate()
        txSlot.deallocate()
        rxSlot.deallocate()
    }

    static let macA = MACAddress(rawValue: 0x02AA_0000_0001)
    static let macB = MACAddress(rawValue: 0x02BB_0000_0002)

    /// An Ethernet/IPv4/UDP-looking frame (contents do not matter to the switch or the cipher).
    static func fillFrame(_ frame: UnsafeMutableRawBufferPointer, destination: MACAddress, source: MACAddress) {
        for i in 0..<frame.count { frame[i] = UInt8(truncatingIfNeeded: i &* 7 &+ 3) }
        for i in 0..<6 {
            frame[i] = UInt8(truncatingIfNeeded: destination.rawValue >> UInt64(8 * (5 - i)))
            frame[6 + i] = UInt8(truncatingIfNeeded: source.rawValue >> UInt64(8 * (5 - i)))
        }
        frame[12] = 0x08
        frame[13] = 0x00
    }

    /// Initiation and response through both engines' `poll`/`receive`, as the node does.
    private func handshake() throws {
        var scratch = [UInt8](repeating: 0, count: 64 + LinkEngine.transportOverhead)
        let first = scratch.withUnsafeMutableBytes {
            engineA.seal(peer: peerBAtA, buffer: $0, payloadLength: 64, now: t0)
        }
        guard first == .noSession else { throw SetupError.handshake("seal before handshake gave \(first)") }
        for _ in 0..<4 {
            var moved = false
            for (from, to, fromEndpoint) in [(engineA, engineB, endpointA), (engineB, engineA, endpointB)] {
                for datagram in from.poll(now: t0).datagrams {
                    moved = true
                    var bytes = datagram.bytes
                    _ = bytes.withUnsafeMutableBytes { to.receive(datagram: $0, length: $0.count, from: fromEndpoint, now: t0) }
                }
            }
            if !moved { break }
        }
        let probe = scratch.withUnsafeMutableBytes {
            engineA.seal(peer: peerBAtA, buffer: $0, payloadLength: 64, now: t0)
        }
        guard case .send = probe else { throw SetupError.handshake("no session after the exchange (\(probe))") }
    }

    /// Pushes one frame from A's TAP to B's TAP. Returns the stage that failed, or nil.
    @inline(__always)
    public func step() -> Stage? {
        let now = t0 + .microseconds(framesDone &+ 1)
        framesDone &+= 1
        let header = LinkEngine.transportHeaderSize
        // A: the TAP read lands behind the link header.
        (txSlot.baseAddress! + header).copyMemory(from: template.baseAddress!, byteCount: frameSize)
        let frame = UnsafeRawBufferPointer(start: txSlot.baseAddress! + header, count: frameSize)
        guard case .unicast(let link) = switchA.fromTap(frame, now: now) else { return .fromTap }
        guard case .send(let length, _) = engineA.seal(peer: PeerID(raw: link.raw), buffer: txSlot,
                                                        payloadLength: frameSize, now: now) else { return .seal }
        // The wire.
        rxSlot.baseAddress!.copyMemory(from: txSlot.baseAddress!, byteCount: length)
        // B.
        guard case .frame(let peer, let offset, let plainLength) = engineB.receive(
            datagram: rxSlot, length: length, from: endpointA, now: now) else { return .receive }
        let delivered = UnsafeRawBufferPointer(start: rxSlot.baseAddress! + offset, count: plainLength)
        guard case .deliverToTap = switchB.fromLink(LinkID(peer.raw), frame: delivered, now: now) else { return .fromLink }
        return nil
    }

    /// Runs `count` frames; returns how many failed (0 expected).
    @discardableResult
    public func run(_ count: Int) -> Int {
        var failures = 0
        for _ in 0..<count where step() != nil { failures += 1 }
        return failures
    }

    /// True if the last delivered frame equals the one that was sent (decryption is real).
    public var lastFrameIntact: Bool {
        let offset = LinkEngine.transportHeaderSize
        for i in 0..<frameSize where rxSlot[offset + i] != template[i] { return false }
        return true
    }

    // MARK: - stages alone (for the per-stage allocation breakdown)

    /// Each stage run separately on the same frame, `count` times, with `measure` wrapped around
    /// each stage's calls: returns measure's value per stage (e.g. allocations).
    public func perStage(_ count: Int, measure: () -> UInt64) -> [(stage: Stage, total: UInt64)] {
        var totals: [Stage: UInt64] = [.fromTap: 0, .seal: 0, .receive: 0, .fromLink: 0]
        let header = LinkEngine.transportHeaderSize
        for _ in 0..<count {
            let now = t0 + .microseconds(framesDone &+ 1)
            framesDone &+= 1
            (txSlot.baseAddress! + header).copyMemory(from: template.baseAddress!, byteCount: frameSize)
            let frame = UnsafeRawBufferPointer(start: txSlot.baseAddress! + header, count: frameSize)
            var m = measure()
            let decision = switchA.fromTap(frame, now: now)
            totals[.fromTap]! += measure() - m
            guard case .unicast(let link) = decision else { continue }
            m = measure()
            let sealed = engineA.seal(peer: PeerID(raw: link.raw), buffer: txSlot, payloadLength: frameSize, now: now)
            totals[.seal]! += measure() - m
            guard case .send(let length, _) = sealed else { continue }
            rxSlot.baseAddress!.copyMemory(from: txSlot.baseAddress!, byteCount: length)
            m = measure()
            let received = engineB.receive(datagram: rxSlot, length: length, from: endpointA, now: now)
            totals[.receive]! += measure() - m
            guard case .frame(let peer, let offset, let plainLength) = received else { continue }
            let delivered = UnsafeRawBufferPointer(start: rxSlot.baseAddress! + offset, count: plainLength)
            m = measure()
            _ = switchB.fromLink(LinkID(peer.raw), frame: delivered, now: now)
            totals[.fromLink]! += measure() - m
        }
        return [Stage.fromTap, .seal, .receive, .fromLink].map { ($0, totals[$0]!) }
    }
}
