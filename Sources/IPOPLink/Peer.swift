import Crypto
import IPOPWire

/// Handle of one peer (one remote node in one overlay) inside a `LinkEngine`.
public struct PeerID: Hashable, Sendable, CustomStringConvertible {
    public let raw: UInt32
    public init(raw: UInt32) { self.raw = raw }
    public var description: String { "peer#\(raw)" }
}

/// Why the engine refused a datagram.
public enum DropReason: String, Sendable, CaseIterable {
    case malformed
    case authFailure = "auth_failure"
    case replay
    case unknownPeer = "unknown_peer"
    case rateLimited = "rate_limited"
    case badMAC = "bad_mac"
    case stale
}

/// One counter per `DropReason`, as plain fields (no hashing on the packet path).
public struct DropCounters: Sendable, Equatable {
    public var malformed: UInt64 = 0
    public var authFailure: UInt64 = 0
    public var replay: UInt64 = 0
    public var unknownPeer: UInt64 = 0
    public var rateLimited: UInt64 = 0
    public var badMAC: UInt64 = 0
    public var stale: UInt64 = 0

    public init() {}

    public mutating func add(_ reason: DropReason) {
        switch reason {
        case .malformed: malformed &+= 1
        case .authFailure: authFailure &+= 1
        case .replay: replay &+= 1
        case .unknownPeer: unknownPeer &+= 1
        case .rateLimited: rateLimited &+= 1
        case .badMAC: badMAC &+= 1
        case .stale: stale &+= 1
        }
    }

    public subscript(reason: DropReason) -> UInt64 {
        switch reason {
        case .malformed: return malformed
        case .authFailure: return authFailure
        case .replay: return replay
        case .unknownPeer: return unknownPeer
        case .rateLimited: return rateLimited
        case .badMAC: return badMAC
        case .stale: return stale
        }
    }

    public var total: UInt64 { DropReason.allCases.reduce(0) { $0 &+ self[$1] } }

    /// Keyed by `DropReason.rawValue` ("auth_failure", ...), for JSON.
    public var dictionary: [String: UInt64] {
        Dictionary(uniqueKeysWithValues: DropReason.allCases.map { ($0.rawValue, self[$0]) })
    }
}

/// A snapshot of one peer, for status output.
public struct PeerStatus: Sendable {
    public enum State: String, Sendable {
        case up
        case connecting
    }

    public var name: String
    public var overlay: String
    public var endpoint: Endpoint?
    public var state: State
    /// When the current session was established.
    public var lastHandshake: ContinuousClock.Instant?
    public var rxFrames: UInt64
    public var rxBytes: UInt64
    public var txFrames: UInt64
    public var txBytes: UInt64
    /// Drop counts by `DropReason.rawValue`.
    public var drops: [String: UInt64]
    /// Sessions established after the first one.
    public var rekeys: UInt64
    /// Initiations sent since the last completed handshake (retries while unreachable).
    public var handshakeAttempts: Int
    /// Base64 of the peer's static public key.
    public var publicKey: String
    /// When the last authenticated datagram (data, keepalive or handshake) came from the peer.
    public var lastReceived: ContinuousClock.Instant? = nil
}

/// One direction pair of transport keys with its indices, counters and replay window.
final class Keypair {
    let localIndex: UInt32
    let remoteIndex: UInt32
    let sender: TransportCipher
    let receiver: TransportCipher
    let createdAt: ContinuousClock.Instant
    /// True if we sent the initiation: only the initiator rekeys on age (avoids both sides racing).
    let isInitiator: Bool
    let peer: UInt32
    /// Responder sessions only: our own initiation to the peer was in flight when the peer's arrived,
    /// i.e. both sides initiated at once and the tie-break decides which session both send on.
    /// (A peer's initiation with nothing of ours in flight means the peer restarted or rekeyed:
    /// its session wins, since the peer may have forgotten ours.)
    var crossedOurInitiation = false
    var sendCounter: UInt64 = 0
    var replay: ReplayWindow

    /// Nil when the ciphers cannot be set up (out of memory, see `TransportCipher.init`).
    init?(localIndex: UInt32, remoteIndex: UInt32, keys: NoiseTransportKeys, createdAt: ContinuousClock.Instant,
          isInitiator: Bool, peer: UInt32, rejectAfterMessages: UInt64) {
        guard let sender = TransportCipher(key: keys.sending), let receiver = TransportCipher(key: keys.receiving) else {
            return nil
        }
        self.localIndex = localIndex
        self.remoteIndex = remoteIndex
        self.sender = sender
        self.receiver = receiver
        self.createdAt = createdAt
        self.isInitiator = isInitiator
        self.peer = peer
        replay = ReplayWindow(rejectAfterMessages: rejectAfterMessages)
    }
}

/// An initiation we sent and whose response we wait for.
struct PendingHandshake {
    var state: NoiseHandshake
    let localIndex: UInt32
    let sentAt: ContinuousClock.Instant
}

/// Everything the engine knows about one peer.
final class Peer {
    let id: PeerID
    var name: String
    let overlayID: String
    let publicKey: Curve25519.KeyAgreement.PublicKey
    let publicKeyBytes: [UInt8]
    /// mac1 key for messages we send to this peer.
    let mac1Key: SymmetricKey
    var endpoint: Endpoint?

    // Sessions, WireGuard style: `next` is a responder session not yet confirmed by the initiator's
    // first transport packet; `current` is used for sending; `previous` (newest first, at most
    // `maxPrevious`) still open packets sealed before a rotation, until they expire. Keeping more than
    // one previous session makes simultaneous handshakes and rekeys lossless whatever the peer picked.
    var current: Keypair?
    var previous: [Keypair] = []
    var next: Keypair?

    var handshake: PendingHandshake?
    /// When to send the next initiation (nil: none wanted). Also the retry deadline while one is pending.
    var handshakeDue: ContinuousClock.Instant?
    var handshakeAttempts = 0
    /// Set by dead-peer detection: keep handshaking even though `current` still looks usable.
    var handshakeForced = false
    /// Wall time (Unix ns) in our latest initiation to this peer.
    var lastTimestampSent: UInt64?
    /// Greatest initiation timestamp accepted from this peer.
    var latestTimestamp: [UInt8]?
    var lastHandshake: ContinuousClock.Instant?

    var lastSent: ContinuousClock.Instant?
    var lastReceived: ContinuousClock.Instant?
    /// First data packet received since we last sent anything (passive keepalive).
    var firstUnacknowledgedReceive: ContinuousClock.Instant?
    /// First data packet sent since we last heard from the peer (dead-peer detection).
    var firstUnansweredSend: ContinuousClock.Instant?

    /// Frames sealed while no session existed, sent once one is up.
    var queue: [[UInt8]] = []

    var rxFrames: UInt64 = 0
    var rxBytes: UInt64 = 0
    var txFrames: UInt64 = 0
    var txBytes: UInt64 = 0
    var drops = DropCounters()
    var sessionsEstablished: UInt64 = 0

    init(id: PeerID, name: String, overlayID: String, publicKey: Curve25519.KeyAgreement.PublicKey, endpoint: Endpoint?) {
        self.id = id
        self.name = name
        self.overlayID = overlayID
        self.publicKey = publicKey
        publicKeyBytes = Array(publicKey.rawRepresentation)
        mac1Key = Mac1.key(for: publicKey)
        self.endpoint = endpoint
    }

    static let maxPrevious = 3

    var keypairs: [Keypair] { [current, next].compactMap { $0 } + previous }
}
