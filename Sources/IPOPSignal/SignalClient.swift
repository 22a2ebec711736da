import Logging
import NIOCore
import NIOPosix
import Synchronization

/// Discovery and signalling over XMPP, for the node.
///
/// `start` connects in the background and keeps reconnecting (exponential backoff with jitter,
/// 1 s → 60 s by default, also after authentication failures, each of which is logged). Once
/// logged in, the client announces the node in its presence (shared-account mode) or in its MUC
/// occupant presence (`room` configured), reports the other nodes' announcements, and carries
/// signalling messages. Events are delivered one at a time from a background task.
public final class SignalClient: Sendable {
    public let config: XMPPConfig
    public let announcement: NodeAnnouncement
    private let logger: Logger
    private let group: EventLoopGroup
    private let resource: String
    private let state = Mutex(State())

    private struct Queued: Sendable {
        var address: String
        var payload: SignalPayload
        var enqueued: ContinuousClock.Instant
    }

    private struct State: Sendable {
        var started = false
        var stopped = false
        var task: Task<Void, Never>?
        /// Set while a session is established: where `send` writes.
        var channel: Channel?
        var pending: [Queued] = []
        var dropped = 0
    }

    public convenience init(config: XMPPConfig, announcement: (nodeName: String, overlays: [String], publicKey: String),
                            logger: Logger, eventLoopGroup: EventLoopGroup? = nil) {
        self.init(config: config,
                  announcement: NodeAnnouncement(nodeName: announcement.nodeName, overlays: announcement.overlays,
                                                 publicKey: announcement.publicKey),
                  logger: logger, eventLoopGroup: eventLoopGroup)
    }

    public init(config: XMPPConfig, announcement: NodeAnnouncement,
                logger: Logger, eventLoopGroup: EventLoopGroup? = nil) {
        self.config = config
        self.announcement = announcement
        self.logger = logger
        self.group = eventLoopGroup ?? MultiThreadedEventLoopGroup.singleton
        self.resource = "\(DiscoveryState.sanitizedNick(announcement.nodeName))-\(DiscoveryState.randomHex(6))"
    }

    /// Starts connecting; returns at once. Calling it again (or after `stop`) does nothing.
    public func start(onEvent: @escaping @Sendable (SignalEvent) -> Void) {
        state.withLock { s in
            guard !s.started, !s.stopped else { return }
            s.started = true
            s.task = Task { [self] in await self.run(onEvent: onEvent) }
        }
    }

    /// Sends a signalling message to a peer's `address` (from its `PeerAnnouncement`), or to the
    /// room JID for a groupchat message. Best effort: while disconnected, messages wait in a
    /// bounded queue (oldest dropped) and expire after `outboundQueueTTL`.
    public func send(to address: String, overlay: String, kind: String, body: String) {
        let payload = SignalPayload(overlay: overlay, kind: kind, body: body)
        let room: JID?
        do { room = try config.roomJID() } catch { room = nil }
        guard let stanza = DiscoveryState.message(to: address, room: room, payload: payload,
                                                  id: Stanza.randomID("sig")) else {
            logger.warning("xmpp: cannot send to '\(address)': not a JID")
            return
        }
        let text = stanza.render()
        let dropped: Int = state.withLock { s in
            if let ch = s.channel {
                XMPPClient.write(text, on: ch)
                return 0
            }
            guard !s.stopped else { return 0 }
            s.pending.append(Queued(address: address, payload: payload, enqueued: .now))
            var n = 0
            while s.pending.count > config.outboundQueueLimit {
                s.pending.removeFirst()
                n += 1
            }
            return n
        }
        if dropped > 0 {
            logger.warning("xmpp: outbound queue full while disconnected: dropped \(dropped) oldest message(s)")
        }
    }

    /// Leaves (unavailable presence, stream close) and stops reconnecting.
    public func stop() async {
        let (task, channel) = state.withLock { s -> (Task<Void, Never>?, Channel?) in
            s.stopped = true
            let t = s.task
            s.task = nil
            let c = s.channel
            s.channel = nil
            s.pending.removeAll()
            return (t, c)
        }
        if let channel {
            XMPPClient.write(Stanza.presence(type: "unavailable").render() + Stanza.streamFooter, on: channel)
        }
        task?.cancel()
        await task?.value
    }

    // MARK: - The connection loop

    private var isStopped: Bool { state.withLock { $0.stopped } }

    private func run(onEvent: @escaping @Sendable (SignalEvent) -> Void) async {
        var backoff = ReconnectBackoff(minimum: config.reconnectMin, maximum: config.reconnectMax)
        let account = (try? config.accountJID())?.bare.description ?? config.jid
        while !Task.isCancelled && !isStopped {
            let began = ContinuousClock.now
            var established = false
            do throws(XMPPError) {
                let client = try await XMPPClient.connect(config: config, resource: resource, logger: logger, group: group)
                established = true
                try await session(client, onEvent: onEvent)
            } catch {
                let stopping = Task.isCancelled || isStopped
                if established {
                    state.withLock { $0.channel = nil }
                    onEvent(.disconnected(reason: stopping ? XMPPError.stopped.description : error.description))
                }
                if stopping { break }
                if case .invalidConfig = error {
                    logger.error("\(error): signalling disabled")
                    break
                }
                switch error {
                case .authenticationFailed, .invalidConfig, .tls, .tlsUnavailable, .noUsableMechanism, .sasl:
                    logger.error("\(error)")
                default:
                    logger.warning("\(established ? "xmpp: connection to \(account) lost: " : "")\(error)")
                }
            }
            if established && ContinuousClock.now - began > .seconds(30) { backoff.reset() }
            let delay = backoff.nextDelay()
            logger.info("xmpp: reconnecting in \(Self.format(delay))")
            do { try await Task.sleep(for: delay) } catch { break }
        }
    }

    static func format(_ d: Duration) -> String {
        let s = ReconnectBackoff.seconds(d)
        return s < 10 ? "\((s * 10).rounded() / 10) s" : "\(Int(s.rounded())) s"
    }

    /// One established session: presence, room, then stanzas until the connection ends.
    private func session(_ client: XMPPClient, onEvent: @escaping @Sendable (SignalEvent) -> Void) async throws(XMPPError) {
        var discovery = DiscoveryState(ownJID: client.boundJID, room: try config.roomJID(), announcement: announcement)
        for s in discovery.initialStanzas() { client.send(s) }
        onEvent(.connected(boundJID: client.boundJID.description))

        // From now on `send` writes directly; flush what waited (dropping what expired).
        let now = ContinuousClock.now
        let (expired, stopped): (Int, Bool) = state.withLock { s in
            guard !s.stopped else { return (0, true) }
            var expired = 0
            for q in s.pending {
                if now - q.enqueued > config.outboundQueueTTL {
                    expired += 1
                    continue
                }
                if let m = discovery.message(to: q.address, payload: q.payload, id: Stanza.randomID("sig")) {
                    client.send(m)
                }
            }
            s.pending.removeAll()
            s.channel = client.channel
            return (expired, false)
        }
        if stopped {
            await client.close(lastStanza: Stanza.presence(type: "unavailable"))
            throw .stopped
        }
        if expired > 0 { logger.info("xmpp: dropped \(expired) queued message(s) older than \(Self.format(config.outboundQueueTTL))") }

        do throws(XMPPError) {
            while true {
                let stanza = try await client.nextStanza()
                for action in discovery.handle(stanza) {
                    switch action {
                    case .emit(let e): onEvent(e)
                    case .send(let s): client.send(s)
                    case .sendLater(let s, let delay):
                        let channel = client.channel
                        let text = s.render()
                        Task {
                            try? await Task.sleep(for: delay)
                            if channel.isActive { XMPPClient.write(text, on: channel) }
                        }
                    case .log(let level, let text): logger.log(level: level, "\(text)")
                    }
                }
            }
        } catch {
            if case .streamClosed = error {
                await client.close()
            } else {
                client.channel.close(promise: nil)
            }
            throw error
        }
    }
}
