import Crypto
import Foundation
import IPOPLink
import IPOPLinux
import IPOPSignal
import IPOPSwitch
import IPOPWire
import Logging

/// The running daemon: one UDP socket, one TAP per overlay, one secure-link engine, one loop.
///
/// Everything runs on one thread around epoll, so the switch tables and the link engine need no
/// locks: the TAP reader, the UDP reader, timers and the control socket take turns.
public final class Node {
    public enum Failure: Error, CustomStringConvertible {
        case tap(overlay: String, TapDevice.Failure)
        case interface(overlay: String, SystemError)
        case bridge(overlay: String, Bridge.Failure)
        case socket(SystemError)
        case control(SystemError)
        case metrics(MetricsServer.Failure)

        public var description: String {
            switch self {
            case .tap(let id, let e): return "overlay \(id): \(e)"
            case .interface(let id, let e): return "overlay \(id): \(e)"
            case .bridge(let id, let e): return "overlay \(id): \(e)"
            case .socket(let e):
                return e.errno == EADDRINUSE
                    ? "\(e) (another ipop or program uses this port; change listen_port)" : e.description
            case .control(let e): return e.description
            case .metrics(let e): return e.description
            }
        }
    }

    /// The running config; SIGHUP replaces the static peers in it (Node+Reload.swift).
    var config: Config
    /// Re-reads the config file, for SIGHUP; nil when the node was not started from a file.
    public var configLoader: (() throws(ConfigError) -> Config)?
    let log: Logger
    let engine: LinkEngine
    let udp: UDPSocket
    let rx: DatagramBatch
    let tx: DatagramBatch
    let floodScratch: UnsafeMutableRawBufferPointer
    /// Reads of a TAP with offloads: vnet header + up to 64 KB (one TCP segment before TSO).
    let offloadScratch: UnsafeMutableRawBufferPointer
    /// Frames from an offload TAP that could not be segmented (unsupported GSO type, bad headers).
    var offloadDrops: UInt64 = 0
    /// Joins received TCP segments into one TAP write (offload TAPs).
    let coalescer = TCPCoalescer()
    /// L3 mode: ARP replies and neighbour advertisements the router writes back into the TAP.
    let replyScratch: UnsafeMutableRawBufferPointer
    var overlays: [Overlay] = []
    var overlayOfLink: [UInt32: Overlay] = [:]
    var engineWantsPoll = true
    /// The receive batch holds datagrams (GRO) that drainSocket left for the next turn.
    var socketBacklog = false
    var nextEngineWake: ContinuousClock.Instant
    var nextHousekeeping: ContinuousClock.Instant
    var lastLinkState: [UInt32: String] = [:]
    var signalClient: SignalClient?
    var signalInbox: SignalInbox?
    var discovered: [String: DiscoveredPeer] = [:]
    /// STUN, TURN and connectivity checks (Node+Traversal.swift).
    let nat: NATTraversal
    let startedAt: ContinuousClock.Instant
    private let poller: Poller
    private let signals: SignalDescriptor
    private var control: UnixListener?
    /// Serves `GET /metrics` when `metrics_listen` is set; fed once a second by housekeeping.
    var metrics: MetricsServer?
    private var running = true

    private enum Token {
        static let signal: UInt64 = 1
        static let udp: UInt64 = 2
        static let control: UInt64 = 3
        static let signalling: UInt64 = 4
        static let tapBase: UInt64 = 100
    }

    /// Sets up every device and socket; on any failure, what was created is removed again
    /// (TAPs vanish when their descriptor closes).
    public init(config: Config, logger: Logger) throws(Failure) {
        self.config = config
        self.log = logger
        do { signals = try SignalDescriptor(); poller = try Poller() } catch { throw .socket(error) }
        do { udp = try UDPSocket(port: config.listenPort) } catch { throw .socket(error) }
        guard let rx = DatagramBatch(capacity: Tunables.batchSize, bufferSize: Tunables.slotSize),
              let tx = DatagramBatch(capacity: Tunables.batchSize, bufferSize: Tunables.slotSize) else {
            throw .socket(SystemError("allocate datagram buffers", errno: ENOMEM))
        }
        self.rx = rx
        self.tx = tx
        tx.gso = Tunables.udpGSO
        if Tunables.udpGRO { _ = rx.enableGRO(on: udp) }
        floodScratch = .allocate(byteCount: Tunables.slotSize, alignment: 16)
        offloadScratch = .allocate(byteCount: VirtioNetHeader.size + 65_550, alignment: 16)
        replyScratch = .allocate(byteCount: max(256, Router.minimumReplyCapacity), alignment: 16)
        var timers = LinkTimers.default
        timers.rekeyAfterTime = config.rekeyAfter
        timers.rejectAfterTime = config.rekeyAfter + .seconds(60)
        timers.persistentKeepalive = config.keepalive
        engine = LinkEngine(timers: timers)
        let now = ContinuousClock.now
        startedAt = now
        nextEngineWake = now
        nextHousekeeping = now
        nat = NATTraversal(now: now)

        for (i, oc) in config.overlays.enumerated() {
            let key = oc.privateKey ?? config.privateKey
            let overlay = try Node.makeOverlay(index: i, config: oc, mac: oc.mac ?? Node.stableMAC(key: key, overlay: oc.id), log: logger)
            overlays.append(overlay)
            engine.addOverlay(id: oc.id, privateKey: oc.privateKey ?? config.privateKey, psk: oc.psk)
            for peer in oc.peers {
                let id = engine.addPeer(overlay: oc.id, name: peer.name, publicKey: peer.publicKey, endpoint: peer.endpoint)
                overlay.addLink(id, name: peer.name)
                overlayOfLink[id.raw] = overlay
                if let ip4 = peer.ip4 {
                    overlay.addRoutes(id, ip4: ip4, ip6: peer.ip6, subnets: peer.subnets, log: logger)
                }
            }
        }
        do {
            try FileManager.default.createDirectory(
                atPath: (config.controlSocket as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        } catch {}
        do { control = try UnixListener(path: config.controlSocket) } catch { throw .control(error) }
        if let endpoint = config.metricsListen {
            do { metrics = try MetricsServer(endpoint: endpoint) } catch { throw .metrics(error) }
        }
        do {
            try poller.add(fd: signals.fd, token: Token.signal)
            try poller.add(fd: udp.fd, token: Token.udp)
            try poller.add(fd: control!.fd, token: Token.control)
            for o in overlays { try poller.add(fd: o.tap.fd, token: Token.tapBase + UInt64(o.index)) }
        } catch { throw .socket(error) }
        startTraversal(now: now)
        try startSignalling()
        if let inbox = signalInbox {
            do { try poller.add(fd: inbox.wakeup.fd, token: Token.signalling) } catch { throw .socket(error) }
        }
    }

    deinit {
        floodScratch.deallocate()
        offloadScratch.deallocate()
        replyScratch.deallocate()
    }

    /// A TAP MAC derived from the node key and overlay id: a restarted node keeps its MAC, so the
    /// neighbours' ARP caches stay right (a random MAC cost ~40 s of lost pings after a restart).
    static func stableMAC(key: Curve25519.KeyAgreement.PrivateKey, overlay: String) -> [UInt8] {
        var hasher = SHA256()
        hasher.update(data: Array("ipop-swift tap mac".utf8))
        hasher.update(data: key.publicKey.rawRepresentation)
        hasher.update(data: Array(overlay.utf8))
        var mac = Array(hasher.finalize().prefix(6))
        mac[0] = (mac[0] & 0xfe) | 0x02   // unicast, locally administered
        return mac
    }

    private static func makeOverlay(index: Int, config oc: OverlayConfig, mac: [UInt8], log: Logger) throws(Failure) -> Overlay {
        let tap: TapDevice
        do { tap = try TapDevice(name: oc.tapName, offload: Tunables.tapOffload) } catch { throw .tap(overlay: oc.id, error) }
        let iface = tap.interface
        do {
            try iface.setMTU(oc.mtu)
            try iface.setMAC(mac)
            try iface.setTxQueueLength(1000)
            try iface.setUp()
            if let ip4 = oc.ip4 { try iface.setIPv4(ip4, prefixLength: oc.ip4Mask) }
            if let ip6 = oc.ip6 { try iface.addIPv6(ip6.bytes, prefixLength: oc.ip6PrefixLength) }
        } catch { throw .interface(overlay: oc.id, error) }
        if let bridge = oc.bridge {
            do { try Bridge(name: bridge).addPort(tap.name) } catch { throw .bridge(overlay: oc.id, error) }
        }
        var line = "overlay \(oc.id) (\(oc.switchmode ? "switchmode" : "l3")): tap \(tap.name) up, mtu \(oc.mtu)"
        if let ip4 = oc.ip4 { line += ", \(Endpoint.formatIPv4(ip4))/\(oc.ip4Mask)" }
        if let ip6 = oc.ip6 { line += ", \(ip6)/\(oc.ip6PrefixLength)" }
        if let bridge = oc.bridge { line += ", port of bridge \(bridge)" }
        line += ", \(oc.peers.count) peer(s)"
        log.info("\(line)")
        return Overlay(index: index, config: oc, tap: tap, mac: mac)
    }

    /// Runs until SIGINT/SIGTERM.
    public func run() {
        log.info("node \(config.nodeName) listening on udp port \(udp.port), control socket \(config.controlSocket)\(metrics.map { ", metrics on http://\($0.endpoint)/metrics" } ?? "")")
        while running {
            let now = ContinuousClock.now
            if engineWantsPoll || now >= nextEngineWake { serviceEngine(now: now) }
            if now >= nextHousekeeping { housekeeping(now: now) }
            if now >= nat.nextWake { serviceTraversal(now: now) }
            if socketBacklog { drainSocket(now: now) }
            let wake = min(nextEngineWake, nextHousekeeping, nat.nextWake)
            let timeout = socketBacklog ? 0 : max(0, Node.milliseconds(until: wake, from: ContinuousClock.now))
            poller.wait(timeoutMilliseconds: timeout) { token in
                let now = ContinuousClock.now
                switch token {
                case Token.udp: drainSocket(now: now)
                case Token.signal: handleSignal()
                case Token.control: serveControl()
                case Token.signalling: drainSignalling(now: now)
                default:
                    let i = Int(token - Token.tapBase)
                    if i >= 0 && i < overlays.count { drainTap(overlays[i], now: now) }
                }
            }
        }
        shutdown()
    }

    private static func milliseconds(until wake: ContinuousClock.Instant, from now: ContinuousClock.Instant) -> Int32 {
        let d = now.duration(to: wake)
        let ms = d.components.seconds * 1000 + d.components.attoseconds / 1_000_000_000_000_000 + 1
        return Int32(clamping: ms)
    }

    /// Sends what the link engine asks for (handshakes, keepalives) and notes its next wake-up.
    func serviceEngine(now: ContinuousClock.Instant) {
        engineWantsPoll = false
        let (datagrams, wake) = engine.poll(now: now)
        for d in datagrams { sendLinkDatagram(d.bytes, to: d.to) }
        nextEngineWake = wake ?? now + .seconds(1)
    }

    private func handleSignal() {
        while let signal = signals.read() {
            if signal == SIGHUP {
                reload(now: ContinuousClock.now)
            } else {
                log.info("signal \(signal): shutting down")
                running = false
            }
        }
    }

    private func serveControl() {
        while let connection = control?.accept() {
            defer { connection.close() }
            let request = connection.readLine()?.trimmingCharacters(in: .whitespaces) ?? ""
            let reply: [UInt8]
            switch request {
            case "status", "":
                reply = statusJSON(now: ContinuousClock.now)
            default:
                reply = Array("{\"error\":\"unknown request \\\"\(request.prefix(40))\\\"\"}\n".utf8)
            }
            connection.write(reply)
        }
    }

    private func shutdown() {
        stopTraversal(now: ContinuousClock.now)
        stopSignalling()
        for o in overlays {
            if let bridge = o.config.bridge { Bridge(name: bridge).removePort(o.tap.name) }
            o.tap.close()
        }
        control?.close()
        metrics?.close()
        control = nil
        log.info("stopped; taps removed")
    }
}
