import Crypto
import Foundation
import IPOPLink
import IPOPLinux
import IPOPSwitch
import IPOPTraversal
import IPOPWire

#if canImport(Glibc)
import Glibc
#endif

/// NAT traversal state of the node: the STUN client (reflexive address), the TURN client (relayed
/// address), and per link the connectivity check, the path schedule and the path in use.
///
/// Everything here runs on the node's one loop. The data path only looks at `relayRoutes` (outbound,
/// a dictionary lookup skipped while it is empty) and `peerByChannel` (inbound ChannelData).
final class NATTraversal {
    struct LinkState {
        let overlay: Int
        let localID: String
        let remoteID: String
        let key: StunKey
        let controlling: Bool
        var remote: [Candidate] = []
        var checker: ConnectivityChecker?
        var schedule = PathSchedule(configuration: .init(
            directRetry: Tunables.directRetryOnRelay, failureBackoff: Tunables.checkFailureBackoff,
            failureBackoffCap: Tunables.checkFailureBackoffCap))
        var path: LinkPath?
        var checksRun = 0
        /// The checker's result was acted on; it stays to answer the peer's probes until the next check.
        var checkHandled = false
    }

    var stun: StunBindingClient?
    var stunServers: Set<Endpoint> = []
    /// Resolved `turn` entries, in config order; `turnIndex` is the one in use.
    var turnServers: [(endpoint: Endpoint, settings: TurnServerSettings)] = []
    var turnIndex = 0
    var turn: TurnClient?
    var turnRestartAt: ContinuousClock.Instant?
    var turnBackoff = Tunables.turnRetryStart
    var mismatchRetries = 0
    /// Our TURN server while an allocation exists (or is being made).
    var turnServer: Endpoint?
    /// Peer endpoint -> ChannelData channel (0 until the server confirmed it) of every link whose
    /// path goes through our TURN allocation. Outbound datagrams to these endpoints are wrapped.
    var relayRoutes: [Endpoint: UInt16] = [:]
    /// Channel -> peer endpoint, for every channel the server confirmed (inbound ChannelData).
    var peerByChannel: [UInt16: Endpoint] = [:]
    var links: [UInt32: LinkState] = [:]
    /// "receiverID:senderID" of probes -> link.
    var linkByIdentity: [String: UInt32] = [:]
    var nextWake: ContinuousClock.Instant
    var lastSymmetricLog: Set<Endpoint> = []
    /// STUN datagrams that answer no check or request of ours, and TURN traffic while we have no
    /// allocation (stray, stale or forged): dropped and counted as `stray_traversal`.
    var strayDrops: UInt64 = 0
    let startedAt: ContinuousClock.Instant

    init(now: ContinuousClock.Instant) {
        nextWake = now
        startedAt = now
    }
}
