import IPOPWire

/// Errors reported by `TurnClient`.
public enum TurnError: Error, Hashable, Sendable {
    /// `wrap` before an allocation exists (or after it failed / was closed).
    case notAllocated
    /// The server rejected our credentials (401 to a request that carried them).
    case authenticationFailed
    /// 438 Stale Nonce kept coming back after fresh nonces.
    case staleNonceLoop
    /// An error response to a request of `method`.
    case errorResponse(method: StunMethod, code: Int, reason: String)
    /// The allocation expired or the server no longer knows it (437 to a Refresh).
    case allocationLost
    /// A request of `method` got no answer after all retransmissions.
    case timedOut(StunMethod)
    /// A success response without the attributes it must carry (e.g. an IPv6 or missing
    /// XOR-RELAYED-ADDRESS, or unknown comprehension-required attributes).
    case badResponse(StunMethod)
    /// `unwrap` got a datagram from somewhere other than the TURN server.
    case notFromServer(Endpoint)
    /// Neither STUN nor ChannelData.
    case notTurn
    case malformed(StunDecodeError)
    case malformedChannelData(ChannelDataError)
    /// A Data indication without XOR-PEER-ADDRESS (IPv4) or DATA.
    case malformedIndication
    /// ChannelData on a channel this client never bound.
    case unknownChannel(UInt16)
    /// A STUN message the client has no use for (a request, or an unknown indication).
    case unexpectedMessage(StunMessageType)
    /// Payload too large to frame.
    case payloadTooLarge(Int)
}

/// Sans-I/O TURN client (RFC 8656) for one UDP allocation with long-term credentials.
///
/// Protocol handled: Allocate (first unauthenticated; 401 → retry with USERNAME, REALM,
/// NONCE and MESSAGE-INTEGRITY; 438 Stale Nonce → retry with the new nonce), Refresh
/// before expiry, CreatePermission per peer IP (refreshed every `permissionRefresh`,
/// 4 min; they last 5), ChannelBind per peer (channels from 0x4000 up, refreshed every
/// `channelRefresh`, 9 min; they last 10), ChannelData framing once a channel is bound,
/// Send/Data indications before that. Requests are retransmitted per RFC 8489 and carry
/// FINGERPRINT. Success responses to authenticated requests must carry a valid
/// MESSAGE-INTEGRITY or they are ignored; error responses without one are accepted
/// (401/438 never carry it).
///
/// Driving it: `start(now:)` once, then `tick(now:)` whenever `nextDeadline` passes
/// (and right after `unwrap` returned `.control` or `addPeer`/`wrap` introduced a new
/// peer: new requests go out from `tick`). All returned datagrams go to
/// `configuration.server`.
public struct TurnClient: Sendable {
    public struct Configuration: Hashable, Sendable {
        public var server: Endpoint
        public var username: String
        public var password: String
        /// LIFETIME asked for in Allocate/Refresh (seconds); nil = server default (600 s).
        public var requestedLifetime: UInt32?
        public var permissionRefresh: Duration
        public var channelRefresh: Duration
        /// Refresh the allocation this long before it expires (at most half its lifetime).
        public var refreshMargin: Duration
        public var retransmission: RetransmissionPolicy
        public var maxStaleNonceRetries: Int
        public var software: String?

        public init(server: Endpoint, username: String, password: String, requestedLifetime: UInt32? = nil,
                    permissionRefresh: Duration = .seconds(240), channelRefresh: Duration = .seconds(540),
                    refreshMargin: Duration = .seconds(60), retransmission: RetransmissionPolicy = .rfc8489,
                    maxStaleNonceRetries: Int = 3, software: String? = nil) {
            self.server = server
            self.username = username
            self.password = password
            self.requestedLifetime = requestedLifetime
            self.permissionRefresh = permissionRefresh
            self.channelRefresh = channelRefresh
            self.refreshMargin = refreshMargin
            self.retransmission = retransmission
            self.maxStaleNonceRetries = maxStaleNonceRetries
            self.software = software
        }
    }

    public enum State: Hashable, Sendable {
        case idle
        case allocating
        case allocated(relayed: Endpoint, mapped: Endpoint?, expires: ContinuousClock.Instant)
        case failed(TurnError)
        case closed
    }

    public enum Event: Hashable, Sendable {
        case allocated(relayed: Endpoint, mapped: Endpoint?)
        case refreshed(expires: ContinuousClock.Instant)
        /// First successful CreatePermission for this IPv4 address (host order).
        case permissionCreated(address: UInt32)
        case permissionFailed(address: UInt32, TurnError)
        /// First successful ChannelBind for this peer.
        case channelBound(peer: Endpoint, channel: UInt16)
        case channelBindFailed(peer: Endpoint, TurnError)
        /// The allocation could not be made or was lost; `state` is `.failed`.
        case failed(TurnError)
    }

    /// What `unwrap` found.
    public enum Inbound: Hashable, Sendable {
        /// Application data relayed from `peer`.
        case data([UInt8], from: Endpoint)
        /// A response the client consumed (call `tick` next: it may have follow-ups).
        case control
    }

    // MARK: State

    private enum RequestKind: Hashable, Sendable {
        case allocate
        case refresh(lifetime: UInt32?)
        case createPermission(address: UInt32)
        case channelBind(peer: Endpoint, channel: UInt16)

        var method: StunMethod {
            switch self {
            case .allocate: return .allocate
            case .refresh: return .refresh
            case .createPermission: return .createPermission
            case .channelBind: return .channelBind
            }
        }
    }

    private struct Pending: Sendable {
        var kind: RequestKind
        var bytes: [UInt8]
        var timer: RetransmissionTimer
        var authenticated: Bool
        var staleRetries: Int
    }

    private struct Permission: Sendable {
        /// nil = as soon as allocated.
        var nextRefresh: ContinuousClock.Instant?
        var inFlight = false
        var installed = false
    }

    private struct Channel: Sendable {
        var number: UInt16
        var nextRefresh: ContinuousClock.Instant?
        var inFlight = false
        var bound = false
    }

    public let configuration: Configuration
    public private(set) var state: State = .idle
    /// The last error, sticky until the next success of the same kind of thing.
    public private(set) var lastError: TurnError?

    private var random: any RandomNumberGenerator & Sendable
    private var pending: [TransactionID: Pending] = [:]
    private var realm: String?
    private var nonce: String?
    private var key: StunKey?
    private var refreshAt: ContinuousClock.Instant?
    private var permissions: [UInt32: Permission] = [:]
    private var channels: [Endpoint: Channel] = [:]
    private var peerByChannel: [UInt16: Endpoint] = [:]
    private var nextChannelNumber: UInt16 = ChannelData.channelRange.lowerBound
    private var lastNow: ContinuousClock.Instant?
    private var events: [Event] = []

    public init(configuration: Configuration, random: some RandomNumberGenerator & Sendable) {
        self.configuration = configuration
        self.random = random
    }

    // MARK: Observation

    public var relayedAddress: Endpoint? {
        if case .allocated(let relayed, _, _) = state { return relayed }
        return nil
    }

    /// The server-reflexive address the TURN server saw (XOR-MAPPED-ADDRESS), if any.
    public var mappedAddress: Endpoint? {
        if case .allocated(_, let mapped, _) = state { return mapped }
        return nil
    }

    public var isAllocated: Bool { relayedAddress != nil }

    /// The bound channel for `peer`, if the server confirmed it.
    public func channel(for peer: Endpoint) -> UInt16? {
        guard let channel = channels[peer], channel.bound else { return nil }
        return channel.number
    }

    /// True once the server confirmed a permission for `address` (IPv4, host order).
    public func hasPermission(for address: UInt32) -> Bool {
        permissions[address]?.installed ?? false
    }

    /// Events since the last call, oldest first.
    public mutating func drainEvents() -> [Event] {
        defer { events.removeAll() }
        return events
    }

    /// When `tick` next has work: a retransmission, a refresh, or (if it equals the last
    /// `now` seen) requests for newly added peers.
    public var nextDeadline: ContinuousClock.Instant? {
        var deadlines = pending.values.map(\.timer.deadline)
        if !queuedImmediate.isEmpty, let lastNow { deadlines.append(lastNow) }
        if case .allocated(_, _, let expires) = state {
            deadlines.append(expires)
            if let refreshAt, !pending.values.contains(where: { if case .refresh = $0.kind { true } else { false } }) {
                deadlines.append(refreshAt)
            }
            for permission in permissions.values where !permission.inFlight {
                deadlines.append(permission.nextRefresh ?? lastNow ?? expires)
            }
            for channel in channels.values where !channel.inFlight {
                deadlines.append(channel.nextRefresh ?? lastNow ?? expires)
            }
        }
        return deadlines.min()
    }

    // MARK: Driving

    /// Sends the first (unauthenticated) Allocate request. Also restarts after a failure.
    public mutating func start(now: ContinuousClock.Instant) -> [[UInt8]] {
        lastNow = now
        pending.removeAll()
        queuedImmediate.removeAll()
        state = .allocating
        refreshAt = nil
        for address in permissions.keys { permissions[address] = Permission() }
        for (peer, channel) in channels { channels[peer] = Channel(number: channel.number) }
        return [send(.allocate, now: now, staleRetries: 0)]
    }

    /// Retransmissions, timeouts, refreshes and requests for new peers due at `now`.
    public mutating func tick(now: ContinuousClock.Instant) -> [[UInt8]] {
        lastNow = now
        var out = queuedImmediate
        queuedImmediate.removeAll()
        for id in Array(pending.keys) {
            guard var request = pending[id] else { continue }
            switch request.timer.poll(now: now) {
            case .wait:
                pending[id] = request
            case .retransmit:
                pending[id] = request
                out.append(request.bytes)
            case .timedOut:
                pending[id] = nil
                timedOut(request.kind, now: now)
            }
        }
        guard case .allocated(_, _, let expires) = state else { return out }
        if now >= expires {
            fail(.allocationLost)
            return out
        }
        let refreshing = pending.values.contains { if case .refresh = $0.kind { true } else { false } }
        if let refreshAt, now >= refreshAt, !refreshing {
            out.append(send(.refresh(lifetime: configuration.requestedLifetime), now: now, staleRetries: 0))
        }
        for address in permissions.keys.sorted() {
            guard var permission = permissions[address], !permission.inFlight,
                  permission.nextRefresh.map({ now >= $0 }) ?? true else { continue }
            permission.inFlight = true
            permissions[address] = permission
            out.append(send(.createPermission(address: address), now: now, staleRetries: 0))
        }
        for peer in channels.keys.sorted(by: { ($0.address, $0.port) < ($1.address, $1.port) }) {
            guard var channel = channels[peer], !channel.inFlight,
                  channel.nextRefresh.map({ now >= $0 }) ?? true else { continue }
            channel.inFlight = true
            channels[peer] = channel
            out.append(send(.channelBind(peer: peer, channel: channel.number), now: now, staleRetries: 0))
        }
        return out
    }

    /// Registers a peer: a permission for its IP and (while numbers last) a channel.
    /// The requests go out from the next `tick`.
    public mutating func addPeer(_ peer: Endpoint) {
        if permissions[peer.address] == nil { permissions[peer.address] = Permission() }
        guard channels[peer] == nil, ChannelData.channelRange.contains(nextChannelNumber) else { return }
        channels[peer] = Channel(number: nextChannelNumber)
        peerByChannel[nextChannelNumber] = peer
        nextChannelNumber &+= 1
    }

    /// Frames `payload` for `peer`: ChannelData (unpadded) once the peer's channel is
    /// bound, otherwise a Send indication. Registers the peer if new (see `addPeer`).
    /// Data sent before the permission is installed is dropped by the server.
    public mutating func wrap(_ payload: [UInt8], to peer: Endpoint) throws(TurnError) -> [UInt8] {
        guard isAllocated else { throw .notAllocated }
        addPeer(peer)
        if let number = channel(for: peer) {
            guard payload.count <= Int(UInt16.max) else { throw .payloadTooLarge(payload.count) }
            return ChannelData(channel: number, payload: payload).encode()
        }
        // 20 header + 12 XOR-PEER-ADDRESS + 4 DATA header + up to 3 padding.
        guard payload.count <= Int(UInt16.max) - 39 else { throw .payloadTooLarge(payload.count) }
        let indication = StunMessage(
            type: StunMessageType(method: .send, messageClass: .indication),
            transactionID: TransactionID.random(using: &random),
            attributes: [.xorPeerAddress(.ipv4(peer)), .data(payload)])
        return indication.encode()
    }

    /// Processes a datagram from `source` (which must be the server).
    public mutating func unwrap(_ datagram: [UInt8], from source: Endpoint,
                                now: ContinuousClock.Instant) throws(TurnError) -> Inbound {
        lastNow = now
        guard source == configuration.server else { throw .notFromServer(source) }
        if ChannelData.looksLikeChannelData(datagram) {
            let frame: ChannelData
            do {
                frame = try ChannelData.decode(datagram)
            } catch {
                throw .malformedChannelData(error)
            }
            guard let peer = peerByChannel[frame.channel], channels[peer]?.bound == true else {
                throw .unknownChannel(frame.channel)
            }
            return .data(frame.payload, from: peer)
        }
        guard StunMessage.isStunPacket(datagram) else { throw .notTurn }
        let message: StunMessage
        do {
            message = try StunMessage.decode(datagram)
        } catch {
            throw .malformed(error)
        }
        switch message.type.messageClass {
        case .indication:
            guard message.type.method == .data else { throw .unexpectedMessage(message.type) }
            guard let peer = message.xorPeerAddress?.endpoint, let data = message.data else {
                throw .malformedIndication
            }
            return .data(data, from: peer)
        case .request:
            throw .unexpectedMessage(message.type)
        case .successResponse, .errorResponse:
            guard let request = pending[message.transactionID], request.kind.method == message.type.method else {
                return .control   // late duplicate or stray answer: nothing to do
            }
            handleResponse(message, bytes: datagram, request: request, now: now)
            return .control
        }
    }

    /// Releases the allocation: one Refresh with LIFETIME 0 (not retransmitted; if it is
    /// lost the allocation simply expires). State becomes `.closed`.
    public mutating func close(now: ContinuousClock.Instant) -> [[UInt8]] {
        lastNow = now
        let wasAllocated = isAllocated
        pending.removeAll()
        queuedImmediate.removeAll()
        permissions.removeAll()
        channels.removeAll()
        peerByChannel.removeAll()
        refreshAt = nil
        state = .closed
        guard wasAllocated else { return [] }
        let bytes = send(.refresh(lifetime: 0), now: now, staleRetries: 0)
        pending.removeAll()
        return [bytes]
    }

    // MARK: Requests

    /// Builds, records and returns a request of `kind`.
    private mutating func send(_ kind: RequestKind, now: ContinuousClock.Instant, staleRetries: Int) -> [UInt8] {
        let id = TransactionID.random(using: &random)
        var attributes: [StunAttribute] = []
        switch kind {
        case .allocate:
            attributes.append(.requestedTransport(17))
            if let lifetime = configuration.requestedLifetime { attributes.append(.lifetime(lifetime)) }
        case .refresh(let lifetime):
            if let lifetime { attributes.append(.lifetime(lifetime)) }
        case .createPermission(let address):
            attributes.append(.xorPeerAddress(.ipv4(Endpoint(address: address, port: 0))))
        case .channelBind(let peer, let channel):
            attributes.append(.channelNumber(channel))
            attributes.append(.xorPeerAddress(.ipv4(peer)))
        }
        if let software = configuration.software { attributes.append(.software(software)) }
        let authenticated = key != nil
        if let realm, let nonce {
            attributes += [.username(configuration.username), .realm(realm), .nonce(nonce)]
        }
        let message = StunMessage(type: StunMessageType(method: kind.method, messageClass: .request),
                                  transactionID: id, attributes: attributes)
        let bytes = message.encode(integrity: key, fingerprint: true)
        pending[id] = Pending(kind: kind, bytes: bytes,
                              timer: RetransmissionTimer(policy: configuration.retransmission, sentAt: now),
                              authenticated: authenticated, staleRetries: staleRetries)
        return bytes
    }

    /// Re-sends `kind` with fresh credentials (after a 401 challenge or 438). The bytes are
    /// queued and go out from the next `tick` (`nextDeadline` is then the last `now`).
    private mutating func resend(_ kind: RequestKind, now: ContinuousClock.Instant, staleRetries: Int) {
        let bytes = send(kind, now: now, staleRetries: staleRetries)
        queuedImmediate.append(bytes)
    }

    private var queuedImmediate: [[UInt8]] = []

    // MARK: Responses

    private mutating func handleResponse(_ message: StunMessage, bytes: [UInt8], request: Pending,
                                         now: ContinuousClock.Instant) {
        if request.authenticated, let key {
            let integrity = StunMessage.checkIntegrity(bytes, key: key)
            if integrity == .invalid { return }
            if message.type.messageClass == .successResponse, integrity != .valid { return }
        }
        pending[message.transactionID] = nil
        if message.type.messageClass == .successResponse {
            succeeded(request.kind, message: message, now: now)
            return
        }
        let error = message.errorCode ?? (code: 0, reason: "")
        switch error.code {
        case 401 where !request.authenticated:
            guard let realm = message.realm, let nonce = message.nonce else {
                failed(request.kind, .errorResponse(method: request.kind.method, code: 401, reason: error.reason),
                       now: now)
                return
            }
            self.realm = realm
            self.nonce = nonce
            key = .longTerm(username: configuration.username, realm: realm, password: configuration.password)
            resend(request.kind, now: now, staleRetries: request.staleRetries)
        case 401:
            failed(request.kind, .authenticationFailed, now: now)
        case 438:
            guard let nonce = message.nonce, request.staleRetries < configuration.maxStaleNonceRetries else {
                failed(request.kind, .staleNonceLoop, now: now)
                return
            }
            self.nonce = nonce
            if let realm = message.realm, realm != self.realm {
                self.realm = realm
                key = .longTerm(username: configuration.username, realm: realm, password: configuration.password)
            }
            resend(request.kind, now: now, staleRetries: request.staleRetries + 1)
        case 437 where request.kind.method == .refresh:
            failed(request.kind, .allocationLost, now: now)
        default:
            failed(request.kind, .errorResponse(method: request.kind.method, code: error.code, reason: error.reason),
                   now: now)
        }
    }

    private mutating func succeeded(_ kind: RequestKind, message: StunMessage, now: ContinuousClock.Instant) {
        guard message.unknownComprehensionRequired.isEmpty else {
            failed(kind, .badResponse(kind.method), now: now)
            return
        }
        switch kind {
        case .allocate:
            guard let relayed = message.xorRelayedAddress?.endpoint else {
                failed(kind, .badResponse(.allocate), now: now)
                return
            }
            let mapped = message.mappedAddress?.endpoint
            let expires = scheduleRefresh(lifetime: message.lifetime ?? 600, now: now)
            state = .allocated(relayed: relayed, mapped: mapped, expires: expires)
            lastError = nil
            events.append(.allocated(relayed: relayed, mapped: mapped))
        case .refresh(let lifetime):
            guard lifetime != 0, case .allocated(let relayed, let mapped, _) = state else { return }
            let expires = scheduleRefresh(lifetime: message.lifetime ?? lifetime ?? 600, now: now)
            state = .allocated(relayed: relayed, mapped: mapped, expires: expires)
            events.append(.refreshed(expires: expires))
        case .createPermission(let address):
            guard var permission = permissions[address] else { return }
            permission.inFlight = false
            permission.nextRefresh = now + configuration.permissionRefresh
            if !permission.installed { events.append(.permissionCreated(address: address)) }
            permission.installed = true
            permissions[address] = permission
        case .channelBind(let peer, let number):
            guard var channel = channels[peer], channel.number == number else { return }
            channel.inFlight = false
            channel.nextRefresh = now + configuration.channelRefresh
            if !channel.bound { events.append(.channelBound(peer: peer, channel: number)) }
            channel.bound = true
            channels[peer] = channel
        }
    }

    /// Records expiry and the next refresh time; returns the expiry.
    private mutating func scheduleRefresh(lifetime: UInt32, now: ContinuousClock.Instant) -> ContinuousClock.Instant {
        let life = Duration.seconds(Int64(lifetime))
        refreshAt = now + life - min(configuration.refreshMargin, life / 2)
        return now + life
    }

    private mutating func failed(_ kind: RequestKind, _ error: TurnError, now: ContinuousClock.Instant) {
        lastError = error
        switch kind {
        case .allocate:
            fail(error)
        case .refresh(let lifetime):
            if lifetime != 0 { fail(error) }
        case .createPermission(let address):
            let retry = now + configuration.permissionRefresh
            permissions[address]?.inFlight = false
            permissions[address]?.nextRefresh = retry
            events.append(.permissionFailed(address: address, error))
            if error == .authenticationFailed { fail(error) }
        case .channelBind(let peer, _):
            let retry = now + configuration.permissionRefresh
            channels[peer]?.inFlight = false
            channels[peer]?.nextRefresh = retry
            events.append(.channelBindFailed(peer: peer, error))
            if error == .authenticationFailed { fail(error) }
        }
    }

    private mutating func timedOut(_ kind: RequestKind, now: ContinuousClock.Instant) {
        switch kind {
        case .allocate:
            lastError = .timedOut(.allocate)
            fail(.timedOut(.allocate))
        case .refresh:
            refreshAt = now   // try again; `tick` declares the allocation lost at expiry
        case .createPermission(let address):
            permissions[address]?.inFlight = false
            permissions[address]?.nextRefresh = now
        case .channelBind(let peer, _):
            channels[peer]?.inFlight = false
            channels[peer]?.nextRefresh = now
        }
    }

    /// Enters `.failed`: forgets pending requests and bindings (they die with the allocation).
    private mutating func fail(_ error: TurnError) {
        lastError = error
        state = .failed(error)
        pending.removeAll()
        queuedImmediate.removeAll()
        refreshAt = nil
        for address in permissions.keys { permissions[address] = Permission() }
        for (peer, channel) in channels { channels[peer] = Channel(number: channel.number) }
        events.append(.failed(error))
    }
}
