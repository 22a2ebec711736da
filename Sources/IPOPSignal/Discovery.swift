import Logging

/// A node seen on the signalling channel.
public struct PeerAnnouncement: Sendable, Equatable {
    public var nodeName: String
    public var overlays: [String]
    /// Base64 public key, as the node announced it.
    public var publicKey: String
    /// Where it was seen and where to `send` to: the full JID (shared account) or the room
    /// occupant JID `room@service/nick` (MUC).
    public var address: String
    /// L3 mode: its overlay addresses, per overlay id.
    public var addresses: [String: OverlayAddresses]

    public init(nodeName: String, overlays: [String], publicKey: String, address: String,
                addresses: [String: OverlayAddresses] = [:]) {
        self.nodeName = nodeName
        self.overlays = overlays
        self.publicKey = publicKey
        self.address = address
        self.addresses = addresses
    }
}

/// What `SignalClient` reports.
public enum SignalEvent: Sendable, Equatable {
    /// Logged in (and presence sent) as this full JID.
    case connected(boundJID: String)
    /// The connection ended; the client reconnects by itself. Peers known so far are forgotten
    /// without `peerOffline` (the data plane need not care); they are announced again after the
    /// reconnect.
    case disconnected(reason: String)
    /// A node appeared, or changed its announcement.
    case peerOnline(PeerAnnouncement)
    case peerOffline(address: String)
    /// A signalling message (our namespace) addressed to our full JID.
    case message(from: String, overlay: String, kind: String, body: String)
}

/// The per-connection discovery and signalling logic, without I/O: stanzas in, actions out.
struct DiscoveryState {
    enum Action: Equatable {
        case emit(SignalEvent)
        case send(XElement)
        /// Send after a delay, if the connection still exists then.
        case sendLater(XElement, Duration)
        case log(Logger.Level, String)
    }

    let ownJID: JID
    let room: JID?
    let announcement: NodeAnnouncement
    let baseNick: String
    private let randomSuffix: @Sendable () -> String
    private(set) var nick: String
    private(set) var joined = false
    private var nickAttempts = 0
    private var rejoins = 0
    private var joinFailures = 0
    private var idCounter = 0
    private(set) var peers: [String: PeerAnnouncement] = [:]   // key: normalised address

    /// Bound on remembered peers: a hostile server cannot make us grow without limit.
    static let maxPeers = 4096
    static let maxNickAttempts = 5
    static let maxRejoins = 5

    init(ownJID: JID, room: JID?, announcement: NodeAnnouncement,
         randomSuffix: @escaping @Sendable () -> String = { DiscoveryState.randomHex(4) }) {
        self.ownJID = ownJID
        self.room = room
        self.announcement = announcement
        self.randomSuffix = randomSuffix
        let n = Self.sanitizedNick(announcement.nodeName)
        baseNick = n
        nick = n
    }

    static func randomHex(_ count: Int) -> String {
        var rng = SystemRandomNumberGenerator()
        let alphabet = Array("0123456789abcdef")
        return String((0..<count).map { _ in alphabet[Int(rng.next() % 16)] })
    }

    /// A nickname/resource-safe form of the node name: no '/', '@', controls; at most 48 characters.
    static func sanitizedNick(_ s: String) -> String {
        var out = ""
        for c in s.unicodeScalars {
            if c == "/" || c == "@" || c.value < 0x20 || c.value == 0x7F || c.properties.isWhitespace {
                out += "_"
            } else {
                out.unicodeScalars.append(c)
            }
            if out.count >= 48 { break }
        }
        return out.isEmpty ? "node" : out
    }

    var occupantJID: JID? { room.map { JID(local: $0.local, domain: $0.domain, resource: nick) } }

    /// Stanzas to send right after binding: initial presence (with our announcement when
    /// discovery is through the shared account), and the room join.
    func initialStanzas() -> [XElement] {
        if let occupant = occupantJID {
            return [Stanza.presence(), Stanza.mucJoin(occupant: occupant.description, announcement: announcement)]
        }
        return [Stanza.presence(extensions: [announcement.element])]
    }

    /// Our presence to send to a peer that just appeared (so it learns about us even if the server
    /// did not tell it).
    func directedPresence(to address: String) -> XElement {
        Stanza.presence(to: address, extensions: [announcement.element])
    }

    mutating func handle(_ stanza: XElement) -> [Action] {
        guard stanza.namespace == XMPPNamespace.client else { return [] }
        switch stanza.name {
        case "presence": return handlePresence(stanza)
        case "message": return handleMessage(stanza)
        case "iq": return handleIQ(stanza)
        default: return []
        }
    }

    // MARK: Presence

    private mutating func handlePresence(_ p: XElement) -> [Action] {
        guard let fromText = p.attribute("from"), let from = JID(fromText) else { return [] }
        let type = p.attribute("type") ?? "available"
        if let room, from.bare == room {
            return handleRoomPresence(p, from: from, fromText: fromText, type: type)
        }
        // Shared-account (or roster) discovery; in MUC mode everything else is ignored.
        guard room == nil, from.resource != nil, from != ownJID else { return [] }
        switch type {
        case "unavailable":
            return forget(fromText)
        case "available":
            let isNew = peers[from.normalized] == nil
            var actions = learn(p, address: fromText)
            if isNew, peers[from.normalized] != nil {
                actions.append(.send(directedPresence(to: fromText)))
            }
            return actions
        default:
            return []   // subscribe, probe, error...
        }
    }

    private mutating func handleRoomPresence(_ p: XElement, from: JID, fromText: String, type: String) -> [Action] {
        guard let occupantNick = from.resource else { return [] }
        let x = p.child("x", namespace: XMPPNamespace.mucUser)
        let codes = Set(x?.children("status", namespace: XMPPNamespace.mucUser).compactMap { $0.attribute("code") } ?? [])
        let isSelf = codes.contains("110") || occupantNick == nick
        if type == "error" {
            guard occupantNick == nick else { return [] }
            let condition = Stanza.errorCondition(p)?.condition ?? "undefined-condition"
            if condition == "conflict", nickAttempts < Self.maxNickAttempts {
                nickAttempts += 1
                nick = "\(baseNick)-\(randomSuffix())"
                return [.log(.info, "xmpp: nickname taken in \(room?.description ?? ""); joining as \(nick)"),
                        .send(Stanza.mucJoin(occupant: occupantJID?.description ?? "", announcement: announcement))]
            }
            // E.g. item-not-found while another node has just created the room and not yet
            // unlocked it, or a room that needs configuring by an admin: retry, slower and slower.
            joinFailures += 1
            let delay = Duration.seconds(min(60, 1 << min(joinFailures - 1, 6)))
            return [.log(joinFailures == 1 ? .warning : .error,
                         "xmpp: cannot join room \(room?.description ?? "") as \(nick) (\(condition)); retrying in \(SignalClient.format(delay))"),
                    .sendLater(Stanza.mucJoin(occupant: occupantJID?.description ?? "", announcement: announcement), delay)]
        }
        if isSelf {
            if type == "unavailable" {
                // Kicked, banned, room destroyed, or a nick change we did not ask for.
                joined = false
                var actions: [Action] = [.log(.warning, "xmpp: removed from room \(room?.description ?? "") (status \(codes.sorted().joined(separator: ",")))")]
                for address in peers.values.map(\.address).sorted() { actions += forget(address) }
                if rejoins < Self.maxRejoins && !codes.contains("301") {
                    rejoins += 1
                    actions.append(.send(Stanza.mucJoin(occupant: occupantJID?.description ?? "", announcement: announcement)))
                }
                return actions
            }
            var actions: [Action] = []
            if !joined {
                joined = true
                joinFailures = 0
                actions.append(.log(.info, "xmpp: joined room \(room?.description ?? "") as \(nick)"))
            }
            if codes.contains("201"), let room {
                idCounter += 1
                actions.append(.send(Stanza.mucInstantRoom(room: room.description, id: "room-\(idCounter)")))
            }
            return actions
        }
        switch type {
        case "unavailable": return forget(fromText)
        case "available": return learn(p, address: fromText)
        default: return []
        }
    }

    private mutating func learn(_ p: XElement, address: String) -> [Action] {
        guard let key = JID(address)?.normalized else { return [] }
        guard let a = NodeAnnouncement.parse(presence: p) else {
            // Not (or no longer) one of ours.
            return forget(address)
        }
        let peer = PeerAnnouncement(nodeName: a.nodeName, overlays: a.overlays, publicKey: a.publicKey, address: address,
                                    addresses: a.addresses)
        if peers[key] == peer { return [] }
        if peers[key] == nil && peers.count >= Self.maxPeers {
            return [.log(.warning, "xmpp: ignoring \(address): already \(Self.maxPeers) peers")]
        }
        peers[key] = peer
        return [.emit(.peerOnline(peer))]
    }

    private mutating func forget(_ address: String) -> [Action] {
        guard let key = JID(address)?.normalized, let old = peers.removeValue(forKey: key) else { return [] }
        return [.emit(.peerOffline(address: old.address))]
    }

    // MARK: Messages

    private func handleMessage(_ m: XElement) -> [Action] {
        let type = m.attribute("type") ?? "normal"
        guard type != "error" else {
            let c = Stanza.errorCondition(m)?.condition ?? "error"
            return [.log(.debug, "xmpp: message to \(m.attribute("from") ?? "?") bounced (\(c))")]
        }
        guard let payload = SignalPayload.parse(message: m),
              let fromText = m.attribute("from"), let from = JID(fromText) else { return [] }
        // Addressed to our full JID only: the server may hand a message for a vanished resource of a
        // shared account to another resource.
        guard let toText = m.attribute("to"), let to = JID(toText), to == ownJID else {
            return [.log(.debug, "xmpp: ignoring signal from \(fromText) addressed to \(m.attribute("to") ?? "nobody")")]
        }
        if from == ownJID { return [] }
        if let room, from.bare == room {
            if from.resource == nil || from.resource == nick { return [] }   // our own groupchat echo
        }
        return [.emit(.message(from: fromText, overlay: payload.overlay, kind: payload.kind, body: payload.body))]
    }

    // MARK: IQ

    private func handleIQ(_ iq: XElement) -> [Action] {
        switch iq.attribute("type") {
        case "get", "set":
            return [.send(Stanza.iqError(replyingTo: iq))]
        case "error":
            let c = Stanza.errorCondition(iq)?.condition ?? "error"
            return [.log(.warning, "xmpp: request \(iq.attribute("id") ?? "?") to \(iq.attribute("from") ?? "server") failed (\(c))")]
        default:
            return []
        }
    }

    // MARK: Outbound

    /// The message stanza for `SignalClient.send`.
    func message(to address: String, payload: SignalPayload, id: String) -> XElement? {
        Self.message(to: address, room: room, payload: payload, id: id)
    }

    static func message(to address: String, room: JID?, payload: SignalPayload, id: String) -> XElement? {
        guard let to = JID(address) else { return nil }
        if let room, to.bare == room {
            if to.resource == nil {
                return Stanza.signalMessage(to: address, type: "groupchat", id: id, payload: payload)
            }
            return Stanza.signalMessage(to: address, type: "chat", id: id, payload: payload, mucPrivate: true)
        }
        return Stanza.signalMessage(to: address, type: "chat", id: id, payload: payload)
    }
}
