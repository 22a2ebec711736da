import IPOPWire

/// Sans-I/O STUN Binding client: learns the node's server-reflexive address from one or
/// more STUN servers, keeps the NAT mapping alive by re-asking periodically, and reports
/// when the mapping changes.
///
/// Drive it with `start(now:)`, then `tick(now:)` whenever `nextDeadline` passes, and
/// `receive(_:from:now:)` for every STUN datagram from a configured server. Results come
/// out of `drainEvents()`. No clock reads, no sockets; randomness (transaction ids) comes
/// from the injected generator.
public struct StunBindingClient: Sendable {
    public struct Configuration: Hashable, Sendable {
        public var servers: [Endpoint]
        public var retransmission: RetransmissionPolicy
        /// Re-binding interval after a success: keeps the mapping alive, notices changes.
        public var refreshInterval: Duration
        /// Delay before asking a server again after a timeout or error response.
        public var retryAfterFailure: Duration
        /// Optional SOFTWARE attribute.
        public var software: String?

        public init(servers: [Endpoint], retransmission: RetransmissionPolicy = .rfc8489,
                    refreshInterval: Duration = .seconds(25), retryAfterFailure: Duration = .seconds(25),
                    software: String? = nil) {
            self.servers = servers
            self.retransmission = retransmission
            self.refreshInterval = refreshInterval
            self.retryAfterFailure = retryAfterFailure
            self.software = software
        }
    }

    public enum Failure: Hashable, Sendable {
        /// No answer after all retransmissions.
        case timedOut
        /// The server answered with an error response.
        case errorResponse(code: Int, reason: String)
        /// A success response without a usable IPv4 (XOR-)MAPPED-ADDRESS, or with unknown
        /// comprehension-required attributes.
        case badResponse
    }

    public enum Event: Hashable, Sendable {
        /// First reflexive address learned from `server`.
        case mapped(server: Endpoint, reflexive: Endpoint)
        /// `server` now reports a different reflexive address than before (NAT rebinding).
        case mappingChanged(server: Endpoint, old: Endpoint, new: Endpoint)
        case failed(server: Endpoint, Failure)
    }

    private struct InFlight: Sendable {
        var transactionID: TransactionID
        var bytes: [UInt8]
        var timer: RetransmissionTimer
    }

    private struct ServerState: Sendable {
        var inFlight: InFlight?
        var nextQuery: ContinuousClock.Instant?
        var reflexive: Endpoint?
    }

    public let configuration: Configuration
    private var random: any RandomNumberGenerator & Sendable
    private var servers: [Endpoint: ServerState] = [:]
    private var events: [Event] = []
    public private(set) var started = false

    /// The most recently learned reflexive address (from any server).
    public private(set) var reflexiveAddress: Endpoint?

    public init(configuration: Configuration, random: some RandomNumberGenerator & Sendable) {
        self.configuration = configuration
        self.random = random
        for server in configuration.servers { servers[server] = ServerState() }
    }

    /// Reflexive address per server (server → mapping it saw).
    public var mappings: [Endpoint: Endpoint] {
        servers.compactMapValues(\.reflexive)
    }

    /// True when two servers currently report different mappings: the NAT's mapping
    /// depends on the destination ("symmetric"), so a server-reflexive candidate is of
    /// little use to peers.
    public var isMappingDestinationDependent: Bool {
        Set(mappings.values).count > 1
    }

    /// Sends a Binding request to every configured server.
    public mutating func start(now: ContinuousClock.Instant) -> [OutgoingDatagram] {
        started = true
        var out: [OutgoingDatagram] = []
        for server in configuration.servers {
            out.append(query(server, now: now))
        }
        return out
    }

    /// Retransmissions, timeouts and periodic refreshes due at `now`.
    public mutating func tick(now: ContinuousClock.Instant) -> [OutgoingDatagram] {
        guard started else { return [] }
        var out: [OutgoingDatagram] = []
        for server in configuration.servers {
            guard var state = servers[server] else { continue }
            if var flight = state.inFlight {
                switch flight.timer.poll(now: now) {
                case .wait:
                    state.inFlight = flight
                case .retransmit:
                    state.inFlight = flight
                    out.append(OutgoingDatagram(bytes: flight.bytes, destination: server))
                case .timedOut:
                    state.inFlight = nil
                    state.nextQuery = now + configuration.retryAfterFailure
                    events.append(.failed(server: server, .timedOut))
                }
                servers[server] = state
            } else if let next = state.nextQuery, now >= next {
                out.append(query(server, now: now))
            }
        }
        return out
    }

    /// Feeds a datagram received from `source`. Returns true if it was the answer to one
    /// of this client's requests (consumed), false if it belongs to someone else.
    public mutating func receive(_ bytes: [UInt8], from source: Endpoint, now: ContinuousClock.Instant) -> Bool {
        guard var state = servers[source], let flight = state.inFlight,
              StunMessage.isStunPacket(bytes),
              let message = try? StunMessage.decode(bytes),
              message.transactionID == flight.transactionID,
              message.type.method == .binding,
              message.type.messageClass == .successResponse || message.type.messageClass == .errorResponse,
              StunMessage.checkFingerprint(bytes) != .invalid
        else { return false }

        state.inFlight = nil
        if message.type.messageClass == .errorResponse {
            let error = message.errorCode ?? (code: 0, reason: "")
            state.nextQuery = now + configuration.retryAfterFailure
            servers[source] = state
            events.append(.failed(server: source, .errorResponse(code: error.code, reason: error.reason)))
            return true
        }
        guard message.unknownComprehensionRequired.isEmpty, let mapped = message.mappedAddress?.endpoint else {
            state.nextQuery = now + configuration.retryAfterFailure
            servers[source] = state
            events.append(.failed(server: source, .badResponse))
            return true
        }
        state.nextQuery = now + configuration.refreshInterval
        let previous = state.reflexive
        state.reflexive = mapped
        servers[source] = state
        if let previous {
            if previous != mapped {
                events.append(.mappingChanged(server: source, old: previous, new: mapped))
            }
        } else {
            events.append(.mapped(server: source, reflexive: mapped))
        }
        reflexiveAddress = mapped
        return true
    }

    /// Events since the last call, oldest first.
    public mutating func drainEvents() -> [Event] {
        defer { events.removeAll() }
        return events
    }

    /// When `tick` next has something to do (nil before `start`).
    public var nextDeadline: ContinuousClock.Instant? {
        guard started else { return nil }
        return servers.values.compactMap { $0.inFlight?.timer.deadline ?? $0.nextQuery }.min()
    }

    /// True while any request is awaiting an answer.
    public var isQuerying: Bool { servers.values.contains { $0.inFlight != nil } }

    private mutating func query(_ server: Endpoint, now: ContinuousClock.Instant) -> OutgoingDatagram {
        let id = TransactionID.random(using: &random)
        var attributes: [StunAttribute] = []
        if let software = configuration.software { attributes.append(.software(software)) }
        let bytes = StunMessage(type: .bindingRequest, transactionID: id, attributes: attributes)
            .encode(fingerprint: true)
        servers[server, default: ServerState()].inFlight = InFlight(
            transactionID: id, bytes: bytes,
            timer: RetransmissionTimer(policy: configuration.retransmission, sentAt: now))
        servers[server]?.nextQuery = nil
        return OutgoingDatagram(bytes: bytes, destination: server)
    }
}
