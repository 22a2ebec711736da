// Sans-I/O connectivity checks between this node and one peer (ICE-like, RFC 8445 in
// spirit, one component, no nomination).
//
// Probe format: STUN Binding requests, as ICE uses them.
//   request:  Binding request, USERNAME = "<receiverID>:<senderID>" (node ids, which must
//             not contain ':'), PRIORITY = the sender's candidate priority recomputed as
//             peer-reflexive, MESSAGE-INTEGRITY with the short-term key shared by both
//             peers (`Configuration.key`; e.g. derived from the signalling session, or
//             a constant like IPOP's fixed ICE password — security rests on the link's
//             own handshake), FINGERPRINT.
//   ack:      Binding success response, same transaction id, XOR-MAPPED-ADDRESS = the
//             request's source as seen by the receiver, MESSAGE-INTEGRITY, FINGERPRINT.
//   420 error response with UNKNOWN-ATTRIBUTES if a request carries comprehension-required
//   attributes we do not know.
// Requests without the right USERNAME, a valid MESSAGE-INTEGRITY and FINGERPRINT are
// ignored; an ack counts only if it comes from the address (and path) the probe went to.
//
// Schedule: `start` probes every pair at once (direct pairs first in the returned list);
// every `pacing` (200 ms) each unfinished pair is probed again with a fresh transaction id
// (so each ack gives an unambiguous RTT) until `timeout` (10 s). A probe that arrives from
// an address with no pair creates a peer-reflexive remote candidate and pair and triggers
// an immediate probe back (this is what makes cone ↔ symmetric NAT work). The check
// completes `settle` (1 s) after the first direct pair succeeds (time to measure the other
// direct pairs), or when every pair is relayed and one succeeded, or at `timeout`; the
// selected pair is the best succeeded one (direct over relay, then lower RTT). Each side
// selects on its own: there is no nomination, so the two directions may use different
// pairs, which is harmless for datagrams the link layer authenticates anyway.
//
// Local host and server-reflexive candidates share the one UDP socket, so pairs are
// formed per (path, remote address): the socket path is represented by the best local
// host candidate (its base; RFC 8445 §6.1.2.4 pruning), the relay path by the relayed one.

import IPOPWire

public struct ConnectivityChecker: Sendable {
    public struct Configuration: Hashable, Sendable {
        public var localID: String
        public var remoteID: String
        /// Short-term MESSAGE-INTEGRITY key shared by both peers.
        public var key: StunKey
        /// Only affects pair priorities (RFC 8445 formula); set on exactly one side.
        public var controlling: Bool
        public var pacing: Duration
        public var timeout: Duration
        public var settle: Duration
        /// Cap on pairs (including peer-reflexive ones learned from probes).
        public var maxPairs: Int

        public init(localID: String, remoteID: String, key: StunKey, controlling: Bool,
                    pacing: Duration = .milliseconds(200), timeout: Duration = .seconds(10),
                    settle: Duration = .seconds(1), maxPairs: Int = 100) {
            self.localID = localID
            self.remoteID = remoteID
            self.key = key
            self.controlling = controlling
            self.pacing = pacing
            self.timeout = timeout
            self.settle = settle
            self.maxPairs = maxPairs
        }
    }

    public enum State: Hashable, Sendable {
        case idle
        case checking
        case completed(CandidatePair)
        case failed
    }

    /// A datagram for the caller to send: from the socket, or through the TURN client.
    public struct Probe: Hashable, Sendable {
        public var bytes: [UInt8]
        public var destination: Endpoint
        public var path: TransportPath
    }

    private struct Outstanding: Sendable {
        var pairIndex: Int
        var sentAt: ContinuousClock.Instant
    }

    public let configuration: Configuration
    public private(set) var state: State = .idle
    /// Pairs in check order (direct first, then priority); peer-reflexive ones appended.
    public private(set) var pairs: [CandidatePair] = []

    private var random: any RandomNumberGenerator & Sendable
    private var localSocket: Candidate?
    private var localRelay: Candidate?
    private var nextProbe: [ContinuousClock.Instant?] = []
    private var outstanding: [TransactionID: Outstanding] = [:]
    private var startedAt: ContinuousClock.Instant?
    private var settleAt: ContinuousClock.Instant?

    public init(configuration: Configuration, local: [Candidate], remote: [Candidate],
                random: some RandomNumberGenerator & Sendable) {
        self.configuration = configuration
        self.random = random
        let sockets = local.filter { !$0.isRelayed }
        localSocket = sockets.filter { $0.type == .host }.max { $0.priority < $1.priority }
            ?? sockets.max { $0.priority < $1.priority }
        localRelay = local.filter(\.isRelayed).max { $0.priority < $1.priority }
        var built: [CandidatePair] = []
        for remoteCandidate in ConnectivityChecker.dedupe(remote) {
            for base in [localSocket, localRelay].compactMap({ $0 }) {
                built.append(CandidatePair(local: base, remote: remoteCandidate, controlling: configuration.controlling))
            }
        }
        pairs = Array(built.sorted(by: CandidatePair.checkOrder).prefix(configuration.maxPairs))
        nextProbe = Array(repeating: nil, count: pairs.count)
    }

    // MARK: Observation

    /// The best pair that works so far (direct over relay, then lower RTT); usable
    /// before the check completes.
    public var best: CandidatePair? {
        pairs.filter { $0.state == .succeeded }.min(by: CandidatePair.preferenceOrder)
    }

    /// The pair chosen at completion.
    public var selected: CandidatePair? {
        if case .completed(let pair) = state { return pair }
        return nil
    }

    /// When `tick` next has work, nil when idle or finished.
    public var nextDeadline: ContinuousClock.Instant? {
        guard state == .checking, let startedAt else { return nil }
        var deadline = startedAt + configuration.timeout
        if let settleAt { deadline = min(deadline, settleAt) }
        for (index, pair) in pairs.enumerated() where pair.state == .waiting || pair.state == .inProgress {
            if let next = nextProbe[index] { deadline = min(deadline, next) }
        }
        return deadline
    }

    /// True if `bytes` is an ack this checker is waiting for (demultiplexing responses).
    public func isAwaiting(_ bytes: [UInt8]) -> Bool {
        guard bytes.count >= 20, let id = TransactionID(bytes: bytes[8..<20]) else { return false }
        return outstanding[id] != nil
    }

    /// For demultiplexing requests among checkers: (receiver, sender) node ids from a
    /// probe's USERNAME, or nil if `bytes` is not a Binding request with one.
    public static func probeIdentities(_ bytes: [UInt8]) -> (receiver: String, sender: String)? {
        guard StunMessage.isStunPacket(bytes), let message = try? StunMessage.decode(bytes),
              message.type == .bindingRequest, let username = message.username,
              let colon = username.firstIndex(of: ":") else { return nil }
        return (String(username[..<colon]), String(username[username.index(after: colon)...]))
    }

    // MARK: Driving

    /// Probes every pair at once.
    public mutating func start(now: ContinuousClock.Instant) -> [Probe] {
        guard state == .idle else { return [] }
        state = .checking
        startedAt = now
        if pairs.isEmpty && localSocket == nil && localRelay == nil {
            state = .failed
            return []
        }
        var out: [Probe] = []
        for index in pairs.indices { out.append(probe(index, now: now)) }
        return out
    }

    /// Paced re-probes and completion at `now`.
    public mutating func tick(now: ContinuousClock.Instant) -> [Probe] {
        pruneOutstanding(now: now)
        guard state == .checking, let startedAt else { return [] }
        if now >= startedAt + configuration.timeout || settleAt.map({ now >= $0 }) == true {
            finish()
            return []
        }
        var out: [Probe] = []
        for index in pairs.indices where pairs[index].state == .waiting || pairs[index].state == .inProgress {
            if let next = nextProbe[index], now >= next {
                out.append(probe(index, now: now))
            }
        }
        return out
    }

    /// Adds remote candidates learned later (trickled); new pairs are probed at once when
    /// checking.
    public mutating func addRemoteCandidates(_ candidates: [Candidate], now: ContinuousClock.Instant) -> [Probe] {
        var out: [Probe] = []
        for candidate in ConnectivityChecker.dedupe(candidates) {
            for base in [localSocket, localRelay].compactMap({ $0 }) {
                let path: TransportPath = base.isRelayed ? .relay : .socket
                guard pairIndex(path: path, remote: candidate.endpoint) == nil,
                      pairs.count < configuration.maxPairs else { continue }
                pairs.append(CandidatePair(local: base, remote: candidate, controlling: configuration.controlling))
                nextProbe.append(nil)
                if state == .checking { out.append(probe(pairs.count - 1, now: now)) }
            }
        }
        return out
    }

    /// Handles a STUN datagram that arrived from `source` over `path` (for `.relay`:
    /// `source` is the peer address `TurnClient.unwrap` reported). Returns the probes
    /// to send in reply (an ack, possibly a triggered probe). Foreign or invalid
    /// datagrams are ignored.
    public mutating func receive(_ bytes: [UInt8], from source: Endpoint, path: TransportPath,
                                 now: ContinuousClock.Instant) -> [Probe] {
        guard StunMessage.isStunPacket(bytes), let message = try? StunMessage.decode(bytes),
              message.type.method == .binding else { return [] }
        switch message.type.messageClass {
        case .request:
            return handleRequest(message, bytes: bytes, from: source, path: path, now: now)
        case .successResponse, .errorResponse:
            handleResponse(message, bytes: bytes, from: source, path: path, now: now)
            return []
        case .indication:
            return []
        }
    }

    // MARK: Internals

    private static func dedupe(_ candidates: [Candidate]) -> [Candidate] {
        var byEndpoint: [Endpoint: Candidate] = [:]
        var order: [Endpoint] = []
        for candidate in candidates {
            if let existing = byEndpoint[candidate.endpoint] {
                if candidate.priority > existing.priority { byEndpoint[candidate.endpoint] = candidate }
            } else {
                byEndpoint[candidate.endpoint] = candidate
                order.append(candidate.endpoint)
            }
        }
        return order.compactMap { byEndpoint[$0] }
    }

    private func pairIndex(path: TransportPath, remote: Endpoint) -> Int? {
        pairs.firstIndex { $0.path == path && $0.remote.endpoint == remote }
    }

    private mutating func probe(_ index: Int, now: ContinuousClock.Instant) -> Probe {
        let pair = pairs[index]
        let id = TransactionID.random(using: &random)
        let prflxPriority = Candidate.priority(type: .peerReflexive,
                                               localPreference: UInt16(truncatingIfNeeded: pair.local.priority >> 8))
        let message = StunMessage(type: .bindingRequest, transactionID: id, attributes: [
            .username("\(configuration.remoteID):\(configuration.localID)"),
            .priority(prflxPriority),
        ])
        outstanding[id] = Outstanding(pairIndex: index, sentAt: now)
        pairs[index].state = pairs[index].state == .waiting ? .inProgress : pairs[index].state
        nextProbe[index] = now + configuration.pacing
        return Probe(bytes: message.encode(integrity: configuration.key, fingerprint: true),
                     destination: pair.remote.endpoint, path: pair.path)
    }

    private mutating func handleRequest(_ message: StunMessage, bytes: [UInt8], from source: Endpoint,
                                        path: TransportPath, now: ContinuousClock.Instant) -> [Probe] {
        guard message.username == "\(configuration.localID):\(configuration.remoteID)",
              StunMessage.checkIntegrity(bytes, key: configuration.key) == .valid,
              StunMessage.checkFingerprint(bytes) == .valid else { return [] }
        let unknown = message.unknownComprehensionRequired
        if !unknown.isEmpty {
            let reply = StunMessage(type: .bindingError, transactionID: message.transactionID, attributes: [
                .errorCode(code: 420, reason: "Unknown Attribute"), .unknownAttributes(unknown),
            ])
            return [Probe(bytes: reply.encode(integrity: configuration.key, fingerprint: true),
                          destination: source, path: path)]
        }
        let ack = StunMessage(type: .bindingSuccess, transactionID: message.transactionID,
                              attributes: [.xorMappedAddress(.ipv4(source))])
        var out = [Probe(bytes: ack.encode(integrity: configuration.key, fingerprint: true),
                         destination: source, path: path)]
        guard state == .checking else { return out }

        var index = pairIndex(path: path, remote: source)
        if index == nil, pairs.count < configuration.maxPairs,
           let base = path == .relay ? localRelay : localSocket {
            var priority: UInt32 = Candidate.priority(type: .peerReflexive)
            for case .priority(let value) in message.attributes { priority = min(max(value, 1), 0x7FFF_FFFF) }
            let remote = Candidate(type: .peerReflexive, endpoint: source, priority: priority)
            pairs.append(CandidatePair(local: base, remote: remote, controlling: configuration.controlling))
            nextProbe.append(nil)
            index = pairs.count - 1
        }
        if let index, pairs[index].state == .waiting || pairs[index].state == .inProgress {
            out.append(probe(index, now: now))   // triggered check
        }
        return out
    }

    private mutating func handleResponse(_ message: StunMessage, bytes: [UInt8], from source: Endpoint,
                                         path: TransportPath, now: ContinuousClock.Instant) {
        guard let sent = outstanding[message.transactionID], pairs.indices.contains(sent.pairIndex) else { return }
        let pair = pairs[sent.pairIndex]
        guard pair.remote.endpoint == source, pair.path == path,
              StunMessage.checkIntegrity(bytes, key: configuration.key) == .valid,
              StunMessage.checkFingerprint(bytes) != .invalid else { return }
        outstanding[message.transactionID] = nil
        guard message.type.messageClass == .successResponse else {
            if pairs[sent.pairIndex].state != .succeeded { pairs[sent.pairIndex].state = .failed }
            return
        }
        let rtt = now - sent.sentAt
        pairs[sent.pairIndex].rtt = min(pairs[sent.pairIndex].rtt ?? rtt, rtt)
        pairs[sent.pairIndex].state = .succeeded
        guard state == .checking, settleAt == nil else { return }
        if pair.isDirect || !pairs.contains(where: \.isDirect) {
            settleAt = now + configuration.settle
        }
    }

    private mutating func finish() {
        for index in pairs.indices where pairs[index].state != .succeeded {
            pairs[index].state = .failed
        }
        if let best { state = .completed(best) } else { state = .failed }
    }

    /// Forgets probes older than the check timeout (their acks no longer matter).
    private mutating func pruneOutstanding(now: ContinuousClock.Instant) {
        let horizon = configuration.timeout
        outstanding = outstanding.filter { now - $0.value.sentAt <= horizon }
    }
}
