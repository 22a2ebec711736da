import Crypto
import Foundation
import IPOPWire

/// The secure-link engine of one node: every peer of every overlay, sans I/O.
///
/// The node feeds it datagrams (`receive`), frames to send (`seal`) and the time (`poll`), and sends
/// whatever it returns. Not thread-safe: one owner (the node's event loop) calls it.
///
/// Frames sealed while a peer has no session are kept in a small per-peer queue (at most
/// `maxQueuedFrames`, oldest dropped) and come out of `poll` once the handshake completes.
public final class LinkEngine {
    /// Bytes before the payload in a transport packet.
    public static let transportHeaderSize = TransportHeader.size
    /// Header + tag.
    public static let transportOverhead = TransportHeader.size + TransportCipher.tagSize
    /// Frames kept per peer while its handshake is in progress.
    public static let maxQueuedFrames = 8

    public enum SealResult: Sendable, Equatable {
        case send(length: Int, to: Endpoint)
        /// No usable session: the frame was queued and a handshake scheduled; the node should `poll`.
        /// Also returned (nothing queued) for an unknown `PeerID` or a buffer too small for header + tag.
        case noSession
        /// We do not know where the peer is (it has to contact us first).
        case noEndpoint
    }

    public enum ReceiveResult: Sendable, Equatable {
        /// A plaintext Ethernet frame inside the datagram buffer.
        case frame(peer: PeerID, offset: Int, length: Int)
        /// Handshake or keepalive consumed; `poll` may have replies.
        case handled
        case dropped(DropReason)
    }

    public let timers: LinkTimers
    let wallClock: WallClock
    var random: any RandomNumberGenerator

    var overlays: [String: OverlayState] = [:]
    var overlaysByTag: [UInt32: [String]] = [:]
    /// overlay id -> static public key bytes -> peer.
    var peersByKey: [String: [[UInt8]: UInt32]] = [:]
    var peers: [UInt32: Peer] = [:]
    var nextPeerRaw: UInt32 = 1
    /// Local index -> session. The only lookup on the receive path.
    var keypairsByIndex: [UInt32: Keypair] = [:]
    /// Local index of a pending initiation -> peer.
    var handshakesByIndex: [UInt32: UInt32] = [:]
    var outbox: [(bytes: [UInt8], to: Endpoint)] = []
    var rateLimiter: HandshakeRateLimiter
    var nextPrune: ContinuousClock.Instant?

    /// Drops of the whole engine, including packets that matched no peer.
    public private(set) var drops = DropCounters()

    /// - Parameters:
    ///   - random: source of ephemeral keys, indices and jitter. Must be cryptographically secure
    ///     outside tests.
    ///   - wallClock: anchors initiation timestamps to wall time (read once by default).
    public init(timers: LinkTimers = .default,
                random: any RandomNumberGenerator = SystemRandomNumberGenerator(),
                wallClock: WallClock = .system()) {
        self.timers = timers
        self.random = random
        self.wallClock = wallClock
        rateLimiter = HandshakeRateLimiter(ratePerSecond: timers.handshakeRatePerSecond, burst: timers.handshakeBurst)
    }

    // MARK: - configuration

    /// Registers an overlay: its id (any string; a 32-bit tag is derived from it), our static key for it,
    /// and its psk (256 bits; any other size is first hashed with SHA-256). Re-adding replaces the keys.
    public func addOverlay(id: String, privateKey: Curve25519.KeyAgreement.PrivateKey, psk: SymmetricKey?) {
        let normalized = psk.map { key in
            key.bitCount == 256 ? key : SymmetricKey(data: Array(SHA256.hash(data: key.withUnsafeBytes { Array($0) })))
        }
        let overlay = OverlayState(id: id, privateKey: privateKey, psk: normalized)
        if overlays[id] == nil { overlaysByTag[overlay.tag, default: []].append(id) }
        overlays[id] = overlay
    }

    /// Adds a peer to an overlay. Adding the same public key to the same overlay again returns the
    /// existing id (with name and, if given, endpoint updated).
    public func addPeer(overlay: String, name: String, publicKey: Curve25519.KeyAgreement.PublicKey,
                        endpoint: Endpoint?) -> PeerID {
        let keyBytes = Array(publicKey.rawRepresentation)
        if let raw = peersByKey[overlay]?[keyBytes], let existing = peers[raw] {
            existing.name = name
            if let endpoint { existing.endpoint = endpoint }
            return existing.id
        }
        let id = PeerID(raw: nextPeerRaw)
        nextPeerRaw &+= 1
        peers[id.raw] = Peer(id: id, name: name, overlayID: overlay, publicKey: publicKey, endpoint: endpoint)
        peersByKey[overlay, default: [:]][keyBytes] = id.raw
        return id
    }

    public func removePeer(_ id: PeerID) {
        guard let peer = peers.removeValue(forKey: id.raw) else { return }
        for keypair in peer.keypairs { keypairsByIndex[keypair.localIndex] = nil }
        if let pending = peer.handshake { handshakesByIndex[pending.localIndex] = nil }
        peersByKey[peer.overlayID]?[peer.publicKeyBytes] = nil
    }

    public func setEndpoint(_ id: PeerID, _ endpoint: Endpoint) {
        peers[id.raw]?.endpoint = endpoint
    }

    /// A new path to the peer was found (NAT traversal): if the peer has no usable session, the next
    /// poll sends an initiation there at once instead of waiting out the backoff that failed attempts
    /// on the old endpoint built up.
    public func retryHandshakeNow(_ id: PeerID, now: ContinuousClock.Instant) {
        guard let peer = peers[id.raw], peer.endpoint != nil else { return }
        if let current = peer.current, canSend(current, now: now), !peer.handshakeForced { return }
        if let pending = peer.handshake { handshakesByIndex[pending.localIndex] = nil }
        peer.handshake = nil
        peer.handshakeAttempts = 0
        peer.handshakeDue = now
    }

    public var peerIDs: [PeerID] { peers.keys.sorted().map(PeerID.init(raw:)) }

    // MARK: - data path

    /// Outbound: the payload is at buffer[transportHeaderSize ..< transportHeaderSize + payloadLength] and
    /// the buffer has room for the 16-byte tag after it. Seals in place and writes the header.
    public func seal(peer id: PeerID, buffer: UnsafeMutableRawBufferPointer, payloadLength: Int,
                     now: ContinuousClock.Instant) -> SealResult {
        guard let peer = peers[id.raw], payloadLength >= 0,
              buffer.count - Self.transportOverhead >= payloadLength else { return .noSession }
        guard let endpoint = peer.endpoint else { return .noEndpoint }
        guard let keypair = peer.current, canSend(keypair, now: now) else {
            let payload = UnsafeRawBufferPointer(rebasing: buffer[Self.transportHeaderSize ..< Self.transportHeaderSize + payloadLength])
            if peer.queue.count >= Self.maxQueuedFrames { peer.queue.removeFirst() }
            peer.queue.append(Array(payload))
            wantHandshake(peer, now: now)
            return .noSession
        }
        guard let length = sealTransport(keypair, peer: peer, buffer: buffer, payloadLength: payloadLength, now: now) else {
            return .noSession
        }
        return .send(length: length, to: endpoint)
    }

    /// Inbound: one UDP datagram (the first `length` bytes of `datagram`). Transport payloads are opened in place.
    public func receive(datagram: UnsafeMutableRawBufferPointer, length: Int, from: Endpoint,
                        now: ContinuousClock.Instant) -> ReceiveResult {
        guard length >= 4, length <= datagram.count else { return drop(.malformed, peer: nil) }
        let packet = UnsafeMutableRawBufferPointer(rebasing: datagram[0 ..< length])
        switch packet[0] {
        case LinkMessageType.transport.rawValue: return receiveTransport(packet, from: from, now: now)
        case LinkMessageType.initiation.rawValue: return receiveInitiation(UnsafeRawBufferPointer(packet), from: from, now: now)
        case LinkMessageType.response.rawValue: return receiveResponse(UnsafeRawBufferPointer(packet), from: from, now: now)
        default: return drop(.malformed, peer: nil)
        }
    }

    private func receiveTransport(_ packet: UnsafeMutableRawBufferPointer, from: Endpoint,
                                  now: ContinuousClock.Instant) -> ReceiveResult {
        guard let header = try? TransportHeader(decoding: UnsafeRawBufferPointer(packet)) else {
            return drop(.malformed, peer: nil)
        }
        guard let keypair = keypairsByIndex[header.receiverIndex], let peer = peers[keypair.peer] else {
            return drop(.unknownPeer, peer: nil)
        }
        guard keypair.createdAt.duration(to: now) < timers.rejectAfterTime else { return drop(.stale, peer: peer) }
        guard keypair.replay.mayAccept(header.counter) else { return drop(.replay, peer: peer) }
        let body = UnsafeMutableRawBufferPointer(rebasing: packet[Self.transportHeaderSize...])
        guard let length = try? keypair.receiver.open(counter: header.counter, buffer: body) else {
            return drop(.authFailure, peer: peer)
        }
        guard keypair.replay.accept(header.counter) else { return drop(.replay, peer: peer) }

        peer.lastReceived = now
        peer.firstUnansweredSend = nil
        if peer.endpoint != from { peer.endpoint = from }
        if keypair === peer.next { confirmNext(peer, now: now) }
        if length == 0 { return .handled }
        peer.rxFrames &+= 1
        peer.rxBytes &+= UInt64(length)
        if peer.firstUnacknowledgedReceive == nil { peer.firstUnacknowledgedReceive = now }
        return .frame(peer: peer.id, offset: Self.transportHeaderSize, length: length)
    }

    // MARK: - status

    public func status(_ id: PeerID, now: ContinuousClock.Instant) -> PeerStatus {
        guard let peer = peers[id.raw] else {
            return PeerStatus(name: "", overlay: "", endpoint: nil, state: .connecting, lastHandshake: nil,
                              rxFrames: 0, rxBytes: 0, txFrames: 0, txBytes: 0, drops: DropCounters().dictionary,
                              rekeys: 0, handshakeAttempts: 0, publicKey: "")
        }
        // A session alone is not "up": a peer that stopped answering (dead-peer or silence detection
        // forced a new handshake) shows as connecting until it answers again.
        let up = (peer.current.map { canSend($0, now: now) } ?? false) && !peer.handshakeForced
        return PeerStatus(name: peer.name, overlay: peer.overlayID, endpoint: peer.endpoint,
                          state: up ? .up : .connecting, lastHandshake: peer.lastHandshake,
                          rxFrames: peer.rxFrames, rxBytes: peer.rxBytes, txFrames: peer.txFrames, txBytes: peer.txBytes,
                          drops: peer.drops.dictionary, rekeys: peer.sessionsEstablished > 0 ? peer.sessionsEstablished - 1 : 0,
                          handshakeAttempts: peer.handshakeAttempts,
                          publicKey: Data(peer.publicKeyBytes).base64EncodedString(),
                          lastReceived: peer.lastReceived)
    }

    /// Drop counters of one peer.
    public func drops(of id: PeerID) -> DropCounters { peers[id.raw]?.drops ?? DropCounters() }

    // MARK: - helpers shared with the handshake and timer code

    func drop(_ reason: DropReason, peer: Peer?) -> ReceiveResult {
        drops.add(reason)
        peer?.drops.add(reason)
        return .dropped(reason)
    }

    /// A session may send while younger than rejectAfterTime and below the message limit.
    func canSend(_ keypair: Keypair, now: ContinuousClock.Instant) -> Bool {
        keypair.createdAt.duration(to: now) < timers.rejectAfterTime && keypair.sendCounter < timers.rejectAfterMessages
    }

    /// Writes header + ciphertext + tag into `buffer` (payload already at offset 16). Returns the packet length.
    func sealTransport(_ keypair: Keypair, peer: Peer, buffer: UnsafeMutableRawBufferPointer, payloadLength: Int,
                       now: ContinuousClock.Instant) -> Int? {
        let counter = keypair.sendCounter
        let end = Self.transportHeaderSize + payloadLength + TransportCipher.tagSize
        do {
            try keypair.sender.seal(counter: counter, buffer: UnsafeMutableRawBufferPointer(
                rebasing: buffer[Self.transportHeaderSize ..< end]))
        } catch {
            return nil
        }
        keypair.sendCounter = counter + 1
        TransportHeader(receiverIndex: keypair.remoteIndex, counter: counter).write(to: buffer)
        peer.lastSent = now
        peer.firstUnacknowledgedReceive = nil
        if payloadLength > 0 {
            peer.txFrames &+= 1
            peer.txBytes &+= UInt64(payloadLength)
            if peer.firstUnansweredSend == nil { peer.firstUnansweredSend = now }
        }
        if keypair.isInitiator, peer.handshake == nil,
           keypair.createdAt.duration(to: now) >= timers.rekeyAfterTime || counter >= timers.rekeyAfterMessages {
            wantHandshake(peer, now: now)
        }
        return end
    }

    /// Seals a frame (or a keepalive, when empty) on the current session into the outbox.
    func enqueueTransport(_ payload: [UInt8], peer: Peer, now: ContinuousClock.Instant) {
        guard let keypair = peer.current, let endpoint = peer.endpoint else { return }
        var packet = [UInt8](repeating: 0, count: payload.count + Self.transportOverhead)
        let length = packet.withUnsafeMutableBytes { buffer -> Int? in
            payload.withUnsafeBytes { source in
                UnsafeMutableRawBufferPointer(rebasing: buffer[Self.transportHeaderSize...]).copyMemory(from: source)
            }
            return sealTransport(keypair, peer: peer, buffer: buffer, payloadLength: payload.count, now: now)
        }
        if length != nil { outbox.append((packet, endpoint)) }
    }

    /// Asks for an initiation at the next poll unless one is already in flight.
    func wantHandshake(_ peer: Peer, now: ContinuousClock.Instant) {
        guard peer.handshake == nil else { return }
        if let due = peer.handshakeDue, due <= now { return }
        peer.handshakeDue = now
    }

    func randomIndex() -> UInt32 {
        while true {
            let index = UInt32(truncatingIfNeeded: random.next())
            if index != 0, keypairsByIndex[index] == nil, handshakesByIndex[index] == nil { return index }
        }
    }

    func randomPrivateKey() -> Curve25519.KeyAgreement.PrivateKey {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(32)
        for _ in 0..<4 {
            let word = random.next()
            for shift in stride(from: 0, to: 64, by: 8) { bytes.append(UInt8(truncatingIfNeeded: word >> UInt64(shift))) }
        }
        return (try? Curve25519.KeyAgreement.PrivateKey(rawRepresentation: bytes)) ?? Curve25519.KeyAgreement.PrivateKey()
    }
}

/// Per-overlay keys and derived constants.
struct OverlayState {
    let id: String
    let tag: UInt32
    let prologue: [UInt8]
    let privateKey: Curve25519.KeyAgreement.PrivateKey
    let psk: SymmetricKey?
    let publicKeyBytes: [UInt8]
    /// mac1 key of messages sent to us in this overlay.
    let mac1Key: SymmetricKey

    init(id: String, privateKey: Curve25519.KeyAgreement.PrivateKey, psk: SymmetricKey?) {
        self.id = id
        tag = LinkMessage.overlayTag(id)
        prologue = LinkMessage.prologue(overlay: id)
        self.privateKey = privateKey
        self.psk = psk
        publicKeyBytes = Array(privateKey.publicKey.rawRepresentation)
        mac1Key = Mac1.key(for: privateKey.publicKey)
    }
}
