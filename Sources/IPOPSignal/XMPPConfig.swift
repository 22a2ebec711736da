/// Whether STARTTLS must protect the stream.
public enum TLSMode: String, Sendable, Equatable, CaseIterable {
    /// Refuse to authenticate unless the server offers STARTTLS.
    case required
    /// Use STARTTLS when offered; otherwise continue in clear text (then only SCRAM may authenticate).
    case optional
}

/// How to reach and log into the XMPP server.
public struct XMPPConfig: Sendable, Equatable {
    /// `host:port` (IPv6 as `[::1]:5222`); a bare host means port 5222; empty means the JID's domain.
    public var server: String
    /// `user@domain`, optionally `/resource` (otherwise the client picks `<node>-<random>`).
    public var jid: String
    public var password: String
    /// MUC room for discovery: a room JID (`ipop@conference.example.org`) or a bare name, which is
    /// looked up as `name@conference.<jid domain>`. nil: discover through the shared account's presence.
    public var room: String?
    public var tls: TLSMode
    /// PEM file of a (private) CA to trust in addition to the system's.
    public var caFile: String?
    /// Disables certificate verification (a warning is logged at every connection).
    public var acceptUntrustedServer: Bool

    // Tunables (defaults follow the issue; tests shorten them).
    public var connectTimeout: Duration = .seconds(10)
    public var negotiationTimeout: Duration = .seconds(30)
    public var pingInterval: Duration = .seconds(30)
    public var pingTimeout: Duration = .seconds(10)
    public var reconnectMin: Duration = .seconds(1)
    public var reconnectMax: Duration = .seconds(60)
    /// Messages kept while disconnected; beyond it the oldest are dropped.
    public var outboundQueueLimit: Int = 256
    /// Queued messages older than this are dropped instead of sent after a reconnect.
    public var outboundQueueTTL: Duration = .seconds(60)

    public init(server: String, jid: String, password: String, room: String? = nil, tls: TLSMode = .required,
                caFile: String? = nil, acceptUntrustedServer: Bool = false) {
        self.server = server
        self.jid = jid
        self.password = password
        self.room = room
        self.tls = tls
        self.caFile = caFile
        self.acceptUntrustedServer = acceptUntrustedServer
    }

    /// The account JID; throws when malformed or without a localpart.
    public func accountJID() throws(XMPPError) -> JID {
        guard let j = JID(jid), j.local != nil else {
            throw .invalidConfig("jid: '\(jid)' is not user@domain[/resource]")
        }
        return j
    }

    /// Host and port to connect to.
    public func endpoint() throws(XMPPError) -> (host: String, port: Int) {
        let s = server.trimmingSpaces
        if s.isEmpty { return (try accountJID().domain, 5222) }
        var host = Substring(s)
        var portText: Substring?
        if host.hasPrefix("[") {
            guard let close = host.firstIndex(of: "]") else { throw .invalidConfig("server: '\(server)' is not host:port") }
            let after = host[host.index(after: close)...]
            host = host[host.index(after: host.startIndex)..<close]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { throw .invalidConfig("server: '\(server)' is not host:port") }
                portText = after.dropFirst()
            }
        } else if let colon = host.lastIndex(of: ":") {
            guard host.firstIndex(of: ":") == colon else {
                throw .invalidConfig("server: '\(server)': write an IPv6 address as [addr]:port")
            }
            portText = host[host.index(after: colon)...]
            host = host[..<colon]
        }
        guard !host.isEmpty else { throw .invalidConfig("server: '\(server)' has no host") }
        var port = 5222
        if let p = portText {
            guard let v = Int(p), (1...65535).contains(v) else { throw .invalidConfig("server: '\(server)': bad port") }
            port = v
        }
        return (String(host), port)
    }

    /// The MUC room JID, if a room is configured.
    public func roomJID() throws(XMPPError) -> JID? {
        guard let r = room?.trimmingSpaces, !r.isEmpty else { return nil }
        if r.contains("@") {
            guard let j = JID(r), j.local != nil, j.resource == nil else {
                throw .invalidConfig("room: '\(r)' is not a room JID (name@service)")
            }
            return j
        }
        guard !r.contains("/") else { throw .invalidConfig("room: '\(r)' is not a room name") }
        return JID(local: r, domain: "conference." + (try accountJID().domain))
    }

    /// Checks every field that can be checked without the network.
    public func validate() throws(XMPPError) {
        _ = try accountJID()
        _ = try endpoint()
        _ = try roomJID()
        if password.isEmpty { throw .invalidConfig("password: empty") }
        if let ca = caFile, ca.isEmpty { throw .invalidConfig("ca_file: empty path") }
        for (name, d) in [("ping_interval", pingInterval), ("ping_timeout", pingTimeout),
                          ("connect_timeout", connectTimeout), ("negotiation_timeout", negotiationTimeout),
                          ("reconnect_min", reconnectMin)] where d <= .zero {
            throw .invalidConfig("\(name): must be positive")
        }
        if reconnectMax < reconnectMin { throw .invalidConfig("reconnect_max: below reconnect_min") }
        if outboundQueueLimit < 0 { throw .invalidConfig("outbound_queue_limit: negative") }
    }
}

extension String {
    var trimmingSpaces: String {
        var s = Substring(self)
        while let f = s.first, f.isWhitespace { s.removeFirst() }
        while let l = s.last, l.isWhitespace { s.removeLast() }
        return String(s)
    }
}

/// Every failure of the XMPP client, with a message fit for the log.
public enum XMPPError: Error, Sendable, Equatable, CustomStringConvertible {
    case invalidConfig(String)
    case connectFailed(String)
    /// TLS could not be set up or the handshake failed (e.g. an untrusted certificate).
    case tls(String)
    /// `tls: required` but the server does not offer STARTTLS.
    case tlsUnavailable(server: String)
    /// The server rejected our credentials (SASL `<failure/>`).
    case authenticationFailed(jid: String, condition: String, text: String?)
    case noUsableMechanism(offered: [String], tlsActive: Bool)
    case sasl(SASLError)
    case bindFailed(String)
    case sessionFailed(String)
    /// The server sent `<stream:error/>`.
    case streamError(condition: String, text: String?)
    /// The server closed the XML stream (`</stream:stream>`).
    case streamClosed
    case connectionClosed
    /// A socket error in the middle of a session.
    case io(String)
    case timeout(String)
    /// No answer to an XEP-0199 ping in time.
    case pingTimeout
    case xml(XMLStreamError)
    case protocolViolation(String)
    /// The server sent stanzas faster than we could process them.
    case inboundOverflow
    case stopped

    public var description: String {
        switch self {
        case .invalidConfig(let s): return "xmpp: config: \(s)"
        case .connectFailed(let s): return "xmpp: cannot connect to \(s)"
        case .tls(let s): return "xmpp: TLS: \(s)"
        case .tlsUnavailable(let s): return "xmpp: \(s) does not offer STARTTLS and tls is required"
        case .authenticationFailed(let jid, let c, let t):
            _ = t
            return "xmpp: authentication failed for \(jid) (\(c))"
        case .noUsableMechanism(let offered, let tls):
            return "xmpp: no usable SASL mechanism (server offers \(offered.joined(separator: ", "))"
                + (tls ? ")" : "; PLAIN is only used over TLS)")
        case .sasl(let e): return "xmpp: \(e)"
        case .bindFailed(let s): return "xmpp: resource binding failed (\(s))"
        case .sessionFailed(let s): return "xmpp: session establishment failed (\(s))"
        case .streamError(let c, let t): return "xmpp: stream error from server (\(c))" + (t.map { ": \($0)" } ?? "")
        case .streamClosed: return "xmpp: server closed the stream"
        case .connectionClosed: return "xmpp: connection closed"
        case .io(let s): return "xmpp: connection error: \(s)"
        case .timeout(let s): return "xmpp: timed out waiting for \(s)"
        case .pingTimeout: return "xmpp: no reply to ping: connection is dead"
        case .xml(let e): return "xmpp: \(e)"
        case .protocolViolation(let s): return "xmpp: protocol violation: \(s)"
        case .inboundOverflow: return "xmpp: server sends faster than we can process"
        case .stopped: return "xmpp: stopped"
        }
    }
}
