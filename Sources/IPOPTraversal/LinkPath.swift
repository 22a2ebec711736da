import IPOPWire

/// The path a link's datagrams take, as the node wires it.
public enum LinkPath: Hashable, Sendable, CustomStringConvertible {
    /// From our UDP socket straight to the peer (host, server- or peer-reflexive address).
    case direct(Endpoint)
    /// From our UDP socket to the peer's relayed address: the peer's TURN server relays.
    case peerRelay(Endpoint)
    /// Through our own TURN allocation: datagrams go to `server` wrapped in ChannelData on
    /// `channel` (once bound) and the server relays them to `peer`.
    case relay(server: Endpoint, peer: Endpoint)

    /// The address the link engine sends to (and sees as the source of the peer's datagrams).
    public var peerEndpoint: Endpoint {
        switch self {
        case .direct(let e), .peerRelay(let e): return e
        case .relay(_, let peer): return peer
        }
    }

    public var isDirect: Bool { if case .direct = self { return true } else { return false } }

    /// `direct` or `relay`, as `ipop status` reports it.
    public var kind: String { isDirect ? "direct" : "relay" }

    /// The path for a pair the connectivity check selected; `turnServer` is our TURN server (for
    /// pairs whose local candidate is relayed).
    public init?(pair: CandidatePair, turnServer: Endpoint?) {
        if pair.local.isRelayed {
            guard let turnServer else { return nil }
            self = .relay(server: turnServer, peer: pair.remote.endpoint)
        } else if pair.remote.isRelayed {
            self = .peerRelay(pair.remote.endpoint)
        } else {
            self = .direct(pair.remote.endpoint)
        }
    }

    public var description: String {
        switch self {
        case .direct(let e): return "direct to \(e)"
        case .peerRelay(let e): return "relay: to the peer's relayed address \(e)"
        case .relay(let server, let peer): return "relay: through our TURN server \(server) to \(peer)"
        }
    }
}

/// Per-link timing of connectivity checks, pure (the caller passes `now`):
/// - after a check finds only a relayed path, direct paths are re-tried every `directRetry`;
/// - after a check finds nothing, the next one waits `failureBackoff`, doubling up to `failureBackoffCap`;
/// - a newly selected pair replaces the current one when it is better: direct over relay, then an
///   RTT lower by at least `rttMargin` (so measurement noise does not make links flap).
public struct PathSchedule: Hashable, Sendable {
    public struct Configuration: Hashable, Sendable {
        public var directRetry: Duration
        public var failureBackoff: Duration
        public var failureBackoffCap: Duration
        public var rttMargin: Double

        public init(directRetry: Duration = .seconds(30), failureBackoff: Duration = .seconds(5),
                    failureBackoffCap: Duration = .seconds(60), rttMargin: Double = 0.8) {
            self.directRetry = directRetry
            self.failureBackoff = failureBackoff
            self.failureBackoffCap = failureBackoffCap
            self.rttMargin = rttMargin
        }
    }

    public enum Decision: Hashable, Sendable {
        /// Use this pair from now on.
        case switchTo(CandidatePair)
        /// Keep the current pair (the new one is not better, or the check found nothing).
        case keep
    }

    public let configuration: Configuration
    /// The pair in use.
    public private(set) var current: CandidatePair?
    /// When the next check is due (nil: none planned, the current path is direct).
    public private(set) var nextCheck: ContinuousClock.Instant?
    private var backoff: Duration

    public init(configuration: Configuration = Configuration()) {
        self.configuration = configuration
        backoff = configuration.failureBackoff
    }

    /// True if `candidate` should replace `current`.
    public static func isBetter(_ candidate: CandidatePair, than current: CandidatePair?, rttMargin: Double) -> Bool {
        guard let current else { return true }
        if candidate.isDirect != current.isDirect { return candidate.isDirect }
        if candidate.local == current.local && candidate.remote.endpoint == current.remote.endpoint { return false }
        guard let new = candidate.rtt, let old = current.rtt else { return false }
        return Double(new.components.attoseconds) / 1e18 + Double(new.components.seconds)
            < rttMargin * (Double(old.components.attoseconds) / 1e18 + Double(old.components.seconds))
    }

    /// A pair that works before the check has finished (the best so far, direct preferred): used at
    /// once if there is no path yet, so a link does not wait for the whole check; `checkFinished`
    /// then moves it to a better pair if one turned up.
    public mutating func early(_ pair: CandidatePair) -> Decision {
        guard current == nil else { return .keep }
        current = pair
        return .switchTo(pair)
    }

    /// A check finished at `now` with `selected` (nil: no pair worked). `pathWorks` tells whether
    /// the link is currently up (a failed re-try on a working link keeps the link as it is).
    public mutating func checkFinished(selected: CandidatePair?, pathWorks: Bool,
                                       now: ContinuousClock.Instant) -> Decision {
        guard let selected else {
            if !pathWorks { current = nil }
            nextCheck = now + backoff
            backoff = min(backoff * 2, configuration.failureBackoffCap)
            return .keep
        }
        backoff = configuration.failureBackoff
        let decision: Decision
        if !pathWorks || PathSchedule.isBetter(selected, than: current, rttMargin: configuration.rttMargin) {
            current = selected
            decision = .switchTo(selected)
        } else {
            decision = .keep
        }
        nextCheck = (current?.isDirect ?? false) ? nil : now + configuration.directRetry
        return decision
    }

    /// True when a check is due at `now`.
    public func checkDue(now: ContinuousClock.Instant) -> Bool {
        nextCheck.map { now >= $0 } ?? false
    }

    /// A check was started (by us or by the peer's offer): nothing else is due until it finishes.
    public mutating func checkStarted() {
        nextCheck = nil
    }

    /// We sent an offer to start a check: if no check has started by `now + timeout` (the offer or
    /// the answer was lost, e.g. while signalling reconnected), one is due again.
    public mutating func offerSent(now: ContinuousClock.Instant, timeout: Duration) {
        nextCheck = now + timeout
    }

    /// The link lost its path (e.g. it went down): check again as soon as possible.
    public mutating func pathLost(now: ContinuousClock.Instant) {
        current = nil
        nextCheck = now
    }
}
