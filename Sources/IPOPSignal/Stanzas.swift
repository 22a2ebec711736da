// Namespaces, stanza builders and the parsers for our signalling extension.
//
// Our extension (namespace `urn:ipop-swift:signal:0`):
//   in presence:  <node xmlns='urn:ipop-swift:signal:0' name='vm1' key='BASE64'>
//                   <overlay>lab</overlay><overlay>...</overlay></node>
//   in messages:  <signal xmlns='urn:ipop-swift:signal:0' overlay='lab' kind='con_req'>text</signal>

public enum XMPPNamespace {
    public static let client = "jabber:client"
    public static let streams = xmppStreamsNamespace
    public static let streamErrors = "urn:ietf:params:xml:ns:xmpp-streams"
    public static let tls = "urn:ietf:params:xml:ns:xmpp-tls"
    public static let sasl = "urn:ietf:params:xml:ns:xmpp-sasl"
    public static let bind = "urn:ietf:params:xml:ns:xmpp-bind"
    public static let session = "urn:ietf:params:xml:ns:xmpp-session"
    public static let stanzas = "urn:ietf:params:xml:ns:xmpp-stanzas"
    public static let ping = "urn:xmpp:ping"
    public static let muc = "http://jabber.org/protocol/muc"
    public static let mucUser = "http://jabber.org/protocol/muc#user"
    public static let mucOwner = "http://jabber.org/protocol/muc#owner"
    public static let dataForms = "jabber:x:data"
    public static let hints = "urn:xmpp:hints"
    /// Our own signalling namespace.
    public static let signal = "urn:ipop-swift:signal:0"
}

/// What a node announces about itself in presence.
/// A node's overlay addresses in one L3-mode overlay, as text (the node validates them).
public struct OverlayAddresses: Sendable, Equatable {
    public var ip4: String?
    public var ip6: String?

    public init(ip4: String? = nil, ip6: String? = nil) {
        self.ip4 = ip4
        self.ip6 = ip6
    }

    public var isEmpty: Bool { ip4 == nil && ip6 == nil }
}

public struct NodeAnnouncement: Sendable, Equatable {
    public var nodeName: String
    public var overlays: [String]
    public var publicKey: String
    /// L3 mode: the node's overlay addresses, per overlay id (IPOP announced each node's virtual IP).
    public var addresses: [String: OverlayAddresses]

    public init(nodeName: String, overlays: [String], publicKey: String, addresses: [String: OverlayAddresses] = [:]) {
        self.nodeName = nodeName
        self.overlays = overlays
        self.publicKey = publicKey
        self.addresses = addresses
    }

    /// Bounds applied to what peers announce.
    public static let maxNameLength = 255
    public static let maxOverlays = 256
    public static let maxKeyLength = 512
    /// An IPv6 address in text is at most 45 characters.
    public static let maxAddressLength = 64

    /// `<node xmlns='urn:ipop-swift:signal:0' name=... key=...><overlay ip4=... ip6=...>id</overlay>...</node>`
    /// (`ip4`/`ip6` only for L3-mode overlays).
    public var element: XElement {
        var n = XElement("node", namespace: XMPPNamespace.signal,
                         attributes: [XAttribute("name", nodeName), XAttribute("key", publicKey)])
        for o in overlays {
            var attributes: [XAttribute] = []
            if let a = addresses[o] {
                if let ip4 = a.ip4 { attributes.append(XAttribute("ip4", ip4)) }
                if let ip6 = a.ip6 { attributes.append(XAttribute("ip6", ip6)) }
            }
            n.append(XElement("overlay", namespace: XMPPNamespace.signal, attributes: attributes, children: [.text(o)]))
        }
        return n
    }

    /// Parses our extension out of a presence stanza; nil when absent or invalid.
    public static func parse(presence: XElement) -> NodeAnnouncement? {
        guard let n = presence.child("node", namespace: XMPPNamespace.signal),
              let name = n.attribute("name"), let key = n.attribute("key"),
              !name.isEmpty, name.count <= maxNameLength,
              !key.isEmpty, key.count <= maxKeyLength, Base64.decode(key) != nil
        else { return nil }
        let overlayElements = n.children("overlay", namespace: XMPPNamespace.signal)
        guard overlayElements.count <= maxOverlays else { return nil }
        var overlays: [String] = []
        var addresses: [String: OverlayAddresses] = [:]
        for o in overlayElements {
            let id = o.text
            guard !id.isEmpty, id.count <= maxNameLength else { return nil }
            overlays.append(id)
            let a = OverlayAddresses(ip4: o.attribute("ip4"), ip6: o.attribute("ip6"))
            guard (a.ip4?.count ?? 0) <= maxAddressLength, (a.ip6?.count ?? 0) <= maxAddressLength else { return nil }
            if !a.isEmpty { addresses[id] = a }
        }
        return NodeAnnouncement(nodeName: name, overlays: overlays, publicKey: key, addresses: addresses)
    }
}

/// A signalling message in our namespace.
public struct SignalPayload: Sendable, Equatable {
    public var overlay: String
    public var kind: String
    public var body: String

    public init(overlay: String, kind: String, body: String) {
        self.overlay = overlay
        self.kind = kind
        self.body = body
    }

    public static let maxFieldLength = 255

    public var element: XElement {
        XElement("signal", namespace: XMPPNamespace.signal,
                 attributes: [XAttribute("overlay", overlay), XAttribute("kind", kind)],
                 children: body.isEmpty ? [] : [.text(body)])
    }

    public static func parse(message: XElement) -> SignalPayload? {
        guard let s = message.child("signal", namespace: XMPPNamespace.signal),
              let overlay = s.attribute("overlay"), let kind = s.attribute("kind"),
              !overlay.isEmpty, overlay.count <= maxFieldLength,
              !kind.isEmpty, kind.count <= maxFieldLength
        else { return nil }
        return SignalPayload(overlay: overlay, kind: kind, body: s.text)
    }
}

/// Stanza construction.
public enum Stanza {
    /// The opening stream header (RFC 6120 §4.7). `from` is only sent once TLS protects the stream.
    public static func streamHeader(to domain: String, from: String?) -> String {
        var s = "<?xml version='1.0'?><stream:stream to='\(XMLEscape.attribute(domain))'"
        if let from { s += " from='\(XMLEscape.attribute(from))'" }
        s += " version='1.0' xml:lang='en' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"
        return s
    }

    public static let streamFooter = "</stream:stream>"

    static func element(_ name: String, _ ns: String, _ attrs: [(String, String?)] = [], _ children: [XNode] = []) -> XElement {
        var e = XElement(name, namespace: ns, children: children)
        for (k, v) in attrs { if let v { e.attributes.append(XAttribute(k, v)) } }
        return e
    }

    public static func presence(to: String? = nil, type: String? = nil, extensions: [XElement] = []) -> XElement {
        element("presence", XMPPNamespace.client, [("to", to), ("type", type)], extensions.map { .element($0) })
    }

    public static func iq(type: String, id: String, to: String? = nil, payload: XElement? = nil) -> XElement {
        element("iq", XMPPNamespace.client, [("type", type), ("id", id), ("to", to)],
                payload.map { [.element($0)] } ?? [])
    }

    /// `<message type=... to=... id=...>` with our `<signal/>` child and no-store hints.
    public static func signalMessage(to: String, type: String, id: String, payload: SignalPayload,
                                     mucPrivate: Bool = false) -> XElement {
        var m = element("message", XMPPNamespace.client, [("to", to), ("type", type), ("id", id)])
        m.append(payload.element)
        if mucPrivate { m.append(XElement("x", namespace: XMPPNamespace.mucUser)) }
        m.append(XElement("no-store", namespace: XMPPNamespace.hints))
        m.append(XElement("no-permanent-store", namespace: XMPPNamespace.hints))
        return m
    }

    /// MUC join presence (XEP-0045 §7.2) without history, with our announcement.
    public static func mucJoin(occupant: String, announcement: NodeAnnouncement?) -> XElement {
        let x = XElement("x", namespace: XMPPNamespace.muc,
                         children: [.element(element("history", XMPPNamespace.muc, [("maxstanzas", "0")]))])
        var ext = [x]
        if let announcement { ext.append(announcement.element) }
        return presence(to: occupant, extensions: ext)
    }

    /// Accepts the default configuration of a room we just created (XEP-0045 §10.1.2, instant room).
    public static func mucInstantRoom(room: String, id: String) -> XElement {
        let form = element("x", XMPPNamespace.dataForms, [("type", "submit")])
        return iq(type: "set", id: id, to: room,
                  payload: XElement("query", namespace: XMPPNamespace.mucOwner, children: [.element(form)]))
    }

    public static func ping(id: String, to: String) -> XElement {
        iq(type: "get", id: id, to: to, payload: XElement("ping", namespace: XMPPNamespace.ping))
    }

    /// An error reply to an IQ we do not handle (RFC 6120 §8.2.3).
    public static func iqError(replyingTo iq: XElement, condition: String = "service-unavailable") -> XElement {
        let err = element("error", XMPPNamespace.client, [("type", "cancel")],
                          [.element(XElement(condition, namespace: XMPPNamespace.stanzas))])
        return element("iq", XMPPNamespace.client,
                       [("type", "error"), ("id", iq.attribute("id") ?? ""), ("to", iq.attribute("from"))],
                       [.element(err)])
    }

    /// The defined condition of a stanza error or stream error, e.g. "conflict".
    public static func errorCondition(_ e: XElement) -> (condition: String, text: String?)? {
        let err: XElement
        if e.name == "error" && e.namespace == XMPPNamespace.streams {
            err = e
        } else if let c = e.child("error") {
            err = c
        } else {
            return nil
        }
        var condition = "undefined-condition"
        var text: String?
        for c in err.elements {
            if c.name == "text" { text = c.text } else if c.namespace == XMPPNamespace.stanzas || c.namespace == XMPPNamespace.streamErrors {
                condition = c.name
            }
        }
        return (condition, text)
    }

    /// A random stanza id.
    public static func randomID(_ prefix: String) -> String {
        var rng = SystemRandomNumberGenerator()
        return prefix + "-" + String(rng.next() & 0xFFFF_FFFF_FFFF, radix: 36)
    }
}
