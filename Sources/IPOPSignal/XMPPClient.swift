import Logging
import NIOCore
import NIOPosix
import NIOSSL

/// One XMPP client connection (RFC 6120/6121), negotiated up to a bound resource:
/// TCP connect, stream open, STARTTLS, SASL (SCRAM-SHA-1, or PLAIN over TLS only), stream
/// restart, resource binding, session (if required by the server). After `connect` returns,
/// `nextStanza()` yields the stanzas the server sends and `send` writes stanzas; XEP-0199 pings
/// keep the connection checked. Not thread-safe: owned by one task; `channel` is Sendable and may
/// be used for writes from anywhere.
public final class XMPPClient {
    public let boundJID: JID
    public let channel: Channel
    /// The server's stream features after authentication.
    public let features: XElement
    public let tlsActive: Bool
    private var events: AsyncThrowingStream<XMLStreamEvent, Error>.AsyncIterator

    private init(boundJID: JID, channel: Channel, features: XElement, tlsActive: Bool,
                 events: AsyncThrowingStream<XMLStreamEvent, Error>.AsyncIterator) {
        self.boundJID = boundJID
        self.channel = channel
        self.features = features
        self.tlsActive = tlsActive
        self.events = events
    }

    /// Writes a stanza (fire and forget).
    public func send(_ stanza: XElement) {
        Self.write(stanza.render(), on: channel)
    }

    static func write(_ text: String, on channel: Channel) {
        channel.writeAndFlush(ByteBuffer(string: text), promise: nil)
    }

    /// The next stanza (or other top-level element) from the server. Throws when the connection
    /// ends, with the reason (`XMPPError`); a `<stream:error/>` is turned into `.streamError`.
    public func nextStanza() async throws(XMPPError) -> XElement {
        while true {
            let event = try await Self.nextEvent(&events)
            switch event {
            case .element(let e):
                if e.name == "error" && e.namespace == XMPPNamespace.streams {
                    let (c, t) = Stanza.errorCondition(e) ?? ("undefined-condition", nil)
                    throw .streamError(condition: c, text: t)
                }
                return e
            case .streamEnd:
                throw .streamClosed
            case .streamStart:
                throw .protocolViolation("second stream header")
            }
        }
    }

    /// Sends `</stream:stream>` (after `lastStanza`, if any) and closes the connection.
    public func close(lastStanza: XElement? = nil) async {
        var text = lastStanza?.render() ?? ""
        text += Stanza.streamFooter
        try? await channel.writeAndFlush(ByteBuffer(string: text)).get()
        try? await channel.close().get()
    }

    private static func nextEvent(_ it: inout AsyncThrowingStream<XMLStreamEvent, Error>.AsyncIterator) async throws(XMPPError) -> XMLStreamEvent {
        do {
            guard let e = try await it.next() else {
                // The stream ended without an error: our task was cancelled.
                throw XMPPError.stopped
            }
            return e
        } catch let e as XMPPError {
            throw e
        } catch {
            throw .io(String(describing: error))
        }
    }

    // MARK: - Connect and negotiate

    /// Connects and negotiates. `resource` is used when the configured JID has none.
    public static func connect(config: XMPPConfig, resource: String, logger: Logger,
                               group: EventLoopGroup) async throws(XMPPError) -> XMPPClient {
        try config.validate()
        let account = try config.accountJID()
        let (host, port) = try config.endpoint()
        let domain = account.domain
        let tlsContext = try makeTLSContext(config: config)

        let (stream, continuation) = AsyncThrowingStream.makeStream(
            of: XMLStreamEvent.self, throwing: Error.self, bufferingPolicy: .bufferingOldest(256))
        let bootstrap = ClientBootstrap(group: group)
            .connectTimeout(TimeAmount(config.connectTimeout))
            .channelOption(ChannelOptions.socketOption(.so_keepalive), value: 1)
            .channelInitializer { channel in
                // Cancelling the consuming task terminates the stream, which closes the socket.
                continuation.onTermination = { _ in channel.close(promise: nil) }
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(XMPPFramingHandler())
                    try channel.pipeline.syncOperations.addHandler(
                        XMPPBridgeHandler(continuation: continuation, serverName: domain))
                }
            }
        let channel: Channel
        do {
            channel = try await bootstrap.connect(host: host, port: port).get()
        } catch {
            continuation.finish()
            throw .connectFailed("\(host):\(port) (\(error))")
        }
        logger.debug("xmpp: connected to \(host):\(port)")

        let deadline = channel.eventLoop.scheduleTask(in: TimeAmount(config.negotiationTimeout)) {
            channel.pipeline.fireErrorCaught(XMPPError.timeout("stream negotiation with \(domain)"))
        }
        var negotiation = Negotiation(config: config, account: account, resource: resource, channel: channel,
                                      tlsContext: tlsContext, logger: logger, events: stream.makeAsyncIterator())
        do throws(XMPPError) {
            let client = try await negotiation.run()
            deadline.cancel()
            let interval = TimeAmount(config.pingInterval)
            let timeout = TimeAmount(config.pingTimeout)
            do {
                try await channel.eventLoop.submit {
                    let keepalive = XMPPKeepaliveHandler(interval: interval, timeout: timeout, server: domain)
                    let sync = channel.pipeline.syncOperations
                    let framing = try sync.handler(type: XMPPFramingHandler.self)
                    try sync.addHandler(keepalive, position: .after(framing))
                }.get()
            } catch {
                channel.close(promise: nil)
                throw XMPPError.io("cannot install keepalive (\(error))")
            }
            return client
        } catch {
            deadline.cancel()
            channel.close(promise: nil)
            throw error
        }
    }

    static func makeTLSContext(config: XMPPConfig) throws(XMPPError) -> NIOSSLContext {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.minimumTLSVersion = .tlsv12
        if config.acceptUntrustedServer {
            tls.certificateVerification = .none
        } else if let ca = config.caFile {
            tls.additionalTrustRoots = [.file(ca)]
        }
        do {
            return try NIOSSLContext(configuration: tls)
        } catch {
            if let ca = config.caFile {
                throw .tls("cannot load ca_file \(ca) (\(error))")
            }
            throw .tls("cannot set up TLS (\(error))")
        }
    }

    /// The negotiation steps, in order.
    private struct Negotiation {
        let config: XMPPConfig
        let account: JID
        let resource: String
        let channel: Channel
        let tlsContext: NIOSSLContext
        let logger: Logger
        var events: AsyncThrowingStream<XMLStreamEvent, Error>.AsyncIterator
        var tlsActive = false
        var authenticated = false
        var idCounter = 0

        init(config: XMPPConfig, account: JID, resource: String, channel: Channel, tlsContext: NIOSSLContext,
             logger: Logger, events: AsyncThrowingStream<XMLStreamEvent, Error>.AsyncIterator) {
            self.config = config
            self.account = account
            self.resource = resource
            self.channel = channel
            self.tlsContext = tlsContext
            self.logger = logger
            self.events = events
        }

        var domain: String { account.domain }

        func write(_ e: XElement) { XMPPClient.write(e.render(), on: channel) }

        mutating func nextElement(_ what: String) async throws(XMPPError) -> XElement {
            let event = try await XMPPClient.nextEvent(&events)
            switch event {
            case .element(let e):
                if e.name == "error" && e.namespace == XMPPNamespace.streams {
                    let (c, t) = Stanza.errorCondition(e) ?? ("undefined-condition", nil)
                    throw .streamError(condition: c, text: t)
                }
                return e
            case .streamEnd: throw .streamClosed
            case .streamStart: throw .protocolViolation("unexpected stream header while waiting for \(what)")
            }
        }

        /// Opens a (new) stream and returns the server's features.
        mutating func openStream() async throws(XMPPError) -> XElement {
            XMPPClient.write(Stanza.streamHeader(to: domain, from: tlsActive ? account.bare.description : nil), on: channel)
            let event = try await XMPPClient.nextEvent(&events)
            guard case .streamStart(let header) = event else {
                throw .protocolViolation("expected a stream header")
            }
            if let v = header.attribute("version"), !(v.hasPrefix("1.") || v.first.map { $0 >= "2" && $0 <= "9" } == true) {
                throw .protocolViolation("server speaks stream version \(v)")
            }
            let features = try await nextElement("stream features")
            guard features.name == "features", features.namespace == XMPPNamespace.streams else {
                throw .protocolViolation("expected <stream:features/>, got <\(features.name)/>")
            }
            return features
        }

        /// Runs on the event loop: forget the old stream, optionally put TLS in front.
        func restartReader(addingTLS: Bool) async throws(XMPPError) {
            let ctx = tlsContext
            let host = domain
            let channel = self.channel
            do {
                try await channel.eventLoop.submit {
                    let sync = channel.pipeline.syncOperations
                    try sync.handler(type: XMPPFramingHandler.self).resetStream()
                    if addingTLS {
                        let isIP = (try? SocketAddress(ipAddress: host, port: 0)) != nil
                        let tls = try NIOSSLClientHandler(context: ctx, serverHostname: isIP ? nil : host)
                        try sync.addHandler(tls, position: .first)
                    }
                }.get()
            } catch {
                throw .tls("cannot start TLS (\(error))")
            }
        }

        mutating func run() async throws(XMPPError) -> XMPPClient {
            var features = try await openStream()
            // STARTTLS (RFC 6120 §5).
            if let starttls = features.child("starttls", namespace: XMPPNamespace.tls) {
                _ = starttls
                write(XElement("starttls", namespace: XMPPNamespace.tls))
                let answer = try await nextElement("STARTTLS proceed")
                guard answer.namespace == XMPPNamespace.tls, answer.name == "proceed" else {
                    throw .tls("server refused STARTTLS (<\(answer.name)/>)")
                }
                if config.acceptUntrustedServer {
                    logger.warning("xmpp: accept_untrusted_server is set: the TLS certificate of \(domain) is NOT verified; anyone on the network path can impersonate the server and read the signalling")
                }
                try await restartReader(addingTLS: true)
                tlsActive = true
                features = try await openStream()
            } else if config.tls == .required {
                throw .tlsUnavailable(server: domain)
            } else {
                logger.warning("xmpp: \(domain) does not offer STARTTLS; continuing WITHOUT TLS (tls: optional)")
            }

            // SASL (RFC 6120 §6).
            try await authenticate(features: features)
            try await restartReader(addingTLS: false)
            features = try await openStream()

            // Resource binding (RFC 6120 §7).
            guard features.child("bind", namespace: XMPPNamespace.bind) != nil else {
                throw .bindFailed("server does not offer resource binding")
            }
            let wanted = account.resource ?? resource
            let bindID = nextID("bind")
            write(Stanza.iq(type: "set", id: bindID, payload: XElement(
                "bind", namespace: XMPPNamespace.bind,
                children: [.element(XElement("resource", namespace: XMPPNamespace.bind, children: [.text(wanted)]))])))
            let bound = try await awaitResult(id: bindID, what: "bind")
            guard let jidText = bound.child("bind", namespace: XMPPNamespace.bind)?.child("jid", namespace: XMPPNamespace.bind)?.text,
                  let jid = JID(jidText), jid.resource != nil, jid.bare == account.bare
            else { throw .bindFailed("server returned no usable JID") }

            // Legacy session (RFC 3921 §3), only if the server does not mark it optional.
            if let session = features.child("session", namespace: XMPPNamespace.session), session.child("optional") == nil {
                let sid = nextID("sess")
                write(Stanza.iq(type: "set", id: sid, payload: XElement("session", namespace: XMPPNamespace.session)))
                do throws(XMPPError) {
                    _ = try await awaitResult(id: sid, what: "session")
                } catch {
                    if case .bindFailed(let s) = error { throw .sessionFailed(s) }
                    throw error
                }
            }
            logger.info("xmpp: logged in as \(jid) (TLS: \(tlsActive ? "yes" : "NO"))")
            return XMPPClient(boundJID: jid, channel: channel, features: features, tlsActive: tlsActive, events: events)
        }

        mutating func nextID(_ p: String) -> String {
            idCounter += 1
            return "\(p)-\(idCounter)"
        }

        /// Waits for the IQ result `id`; an IQ error is reported as `.bindFailed(condition)`.
        mutating func awaitResult(id: String, what: String) async throws(XMPPError) -> XElement {
            while true {
                let e = try await nextElement(what)
                guard e.name == "iq", e.namespace == XMPPNamespace.client, e.attribute("id") == id else {
                    // Nothing else is expected before we are bound; ignore it.
                    logger.debug("xmpp: ignoring <\(e.name)/> during \(what)")
                    continue
                }
                switch e.attribute("type") {
                case "result": return e
                case "error": throw .bindFailed(Stanza.errorCondition(e)?.condition ?? "error")
                default: throw .protocolViolation("unexpected iq type during \(what)")
                }
            }
        }

        mutating func authenticate(features: XElement) async throws(XMPPError) {
            let mechanisms = features.child("mechanisms", namespace: XMPPNamespace.sasl)?
                .children("mechanism", namespace: XMPPNamespace.sasl).map { $0.text.trimmingSpaces } ?? []
            let user = account.local ?? ""
            let bare = account.bare.description
            if mechanisms.contains("SCRAM-SHA-1") {
                var scram = SCRAMSHA1Client(username: user, password: config.password)
                write(XElement("auth", namespace: XMPPNamespace.sasl, attributes: [XAttribute("mechanism", "SCRAM-SHA-1")],
                               children: [.text(Base64.encode(scram.clientFirstMessage))]))
                var answer = try await nextElement("SASL challenge")
                try checkFailure(answer, jid: bare)
                guard answer.name == "challenge", let first = decodeSASL(answer.text) else {
                    throw .sasl(.unexpectedMessage("<\(answer.name)/> instead of a challenge"))
                }
                let final: String
                do throws(SASLError) { final = try scram.respond(toServerFirst: first) } catch { throw .sasl(error) }
                write(XElement("response", namespace: XMPPNamespace.sasl, children: [.text(Base64.encode(final))]))
                answer = try await nextElement("SASL outcome")
                try checkFailure(answer, jid: bare)
                if answer.name == "challenge" {
                    // Some servers send server-final as a challenge and <success/> empty.
                    guard let v = decodeSASL(answer.text) else { throw .sasl(.malformedChallenge("base64")) }
                    do throws(SASLError) { try scram.verifyServerFinal(v) } catch { throw .sasl(error) }
                    write(XElement("response", namespace: XMPPNamespace.sasl))
                    answer = try await nextElement("SASL success")
                    try checkFailure(answer, jid: bare)
                    guard answer.name == "success" else { throw .sasl(.unexpectedMessage("<\(answer.name)/>")) }
                } else if answer.name == "success" {
                    guard let v = decodeSASL(answer.text), !v.isEmpty else {
                        throw .sasl(.unexpectedMessage("success without server signature"))
                    }
                    do throws(SASLError) { try scram.verifyServerFinal(v) } catch { throw .sasl(error) }
                } else {
                    throw .sasl(.unexpectedMessage("<\(answer.name)/>"))
                }
            } else if mechanisms.contains("PLAIN") && tlsActive {
                write(XElement("auth", namespace: XMPPNamespace.sasl, attributes: [XAttribute("mechanism", "PLAIN")],
                               children: [.text(saslPlainMessage(username: user, password: config.password))]))
                let answer = try await nextElement("SASL outcome")
                try checkFailure(answer, jid: bare)
                guard answer.name == "success" else { throw .sasl(.unexpectedMessage("<\(answer.name)/>")) }
            } else {
                throw .noUsableMechanism(offered: mechanisms, tlsActive: tlsActive)
            }
            authenticated = true
        }

        func decodeSASL(_ text: String) -> String? {
            let t = text.trimmingSpaces
            if t.isEmpty || t == "=" { return "" }
            guard let bytes = Base64.decode(t) else { return nil }
            return String(validating: bytes, as: UTF8.self)
        }

        func checkFailure(_ e: XElement, jid: String) throws(XMPPError) {
            guard e.namespace == XMPPNamespace.sasl else {
                throw .protocolViolation("unexpected <\(e.name)/> during SASL")
            }
            guard e.name == "failure" else { return }
            var condition = "not-authorized"
            var text: String?
            for c in e.elements {
                if c.name == "text" { text = c.text } else { condition = c.name }
            }
            throw .authenticationFailed(jid: jid, condition: condition, text: text)
        }
    }
}
