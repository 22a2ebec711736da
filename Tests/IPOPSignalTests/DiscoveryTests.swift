import Testing
@testable import IPOPSignal

/// Parses stanzas written as text (inside a jabber:client stream).
func stanzas(_ text: String) throws -> [XElement] {
    var r = XMLStreamReader()
    return try r.read(Array((header + text).utf8)).compactMap { if case .element(let e) = $0 { e } else { nil } }
}

func stanza(_ text: String) throws -> XElement {
    let s = try stanzas(text)
    guard s.count == 1 else { throw XMPPError.protocolViolation("expected one stanza") }
    return s[0]
}

let key2 = "q83vEjRWeJASNFZ4kBI0VniQEjRWeJASNFZ4kBI0Vng="
func nodeExt(_ name: String, _ overlays: [String] = ["lab"]) -> String {
    "<node xmlns='urn:ipop-swift:signal:0' name='\(name)' key='\(key2)'>"
        + overlays.map { "<overlay>\($0)</overlay>" }.joined() + "</node>"
}

@Suite struct DiscoveryTests {
    let me = JID("ipop@xmpp.ipop.test/vm1-aaaaaa")!
    let announcement = NodeAnnouncement(nodeName: "vm1", overlays: ["lab"], publicKey: "AAAA")

    func sent(_ a: [DiscoveryState.Action]) -> [XElement] {
        a.compactMap { if case .send(let e) = $0 { e } else { nil } }
    }
    func emitted(_ a: [DiscoveryState.Action]) -> [SignalEvent] {
        a.compactMap { if case .emit(let e) = $0 { e } else { nil } }
    }

    @Test func sharedAccountPresenceAnnouncesPeers() throws {
        var d = DiscoveryState(ownJID: me, room: nil, announcement: announcement)
        let initial = d.initialStanzas()
        #expect(initial.count == 1)
        #expect(NodeAnnouncement.parse(presence: initial[0]) == announcement)
        #expect(initial[0].attribute("to") == nil)

        // Our own presence, reflected by the server: ignored.
        #expect(d.handle(try stanza("<presence from='ipop@xmpp.ipop.test/vm1-aaaaaa'>\(nodeExt("vm1"))</presence>")).isEmpty)

        let p = try stanza("<presence from='ipop@xmpp.ipop.test/vm2-bbbbbb' to='ipop@xmpp.ipop.test/vm1-aaaaaa'>\(nodeExt("vm2"))</presence>")
        let a = d.handle(p)
        let peer = PeerAnnouncement(nodeName: "vm2", overlays: ["lab"], publicKey: key2, address: "ipop@xmpp.ipop.test/vm2-bbbbbb")
        #expect(emitted(a) == [.peerOnline(peer)])
        // A newcomer gets our presence directly.
        #expect(sent(a).count == 1)
        #expect(sent(a).first?.attribute("to") == "ipop@xmpp.ipop.test/vm2-bbbbbb")
        #expect(NodeAnnouncement.parse(presence: sent(a)[0]) == announcement)

        // The same again: nothing.
        #expect(d.handle(p).isEmpty)
        // Changed overlays: announced again, no presence reply.
        let changed = d.handle(try stanza("<presence from='ipop@xmpp.ipop.test/vm2-bbbbbb'>\(nodeExt("vm2", ["lab", "two"]))</presence>"))
        #expect(emitted(changed).count == 1 && sent(changed).isEmpty)
        // Presence without our extension from another resource (a chat client): ignored.
        #expect(d.handle(try stanza("<presence from='ipop@xmpp.ipop.test/gajim'/>")).isEmpty)
        // Leaves.
        #expect(emitted(d.handle(try stanza("<presence type='unavailable' from='IPOP@xmpp.ipop.test/vm2-bbbbbb'/>")))
            == [.peerOffline(address: "ipop@xmpp.ipop.test/vm2-bbbbbb")])
        #expect(d.handle(try stanza("<presence type='unavailable' from='ipop@xmpp.ipop.test/vm2-bbbbbb'/>")).isEmpty)
        #expect(d.peers.isEmpty)
    }

    @Test func messagesMustBeAddressedToOurFullJID() throws {
        var d = DiscoveryState(ownJID: me, room: nil, announcement: announcement)
        let ok = d.handle(try stanza("""
        <message type='chat' from='ipop@xmpp.ipop.test/vm2-bbbbbb' to='ipop@xmpp.ipop.test/vm1-aaaaaa'>\
        <signal xmlns='urn:ipop-swift:signal:0' overlay='lab' kind='con_req'>hello &amp; bye</signal></message>
        """))
        #expect(emitted(ok) == [.message(from: "ipop@xmpp.ipop.test/vm2-bbbbbb", overlay: "lab", kind: "con_req", body: "hello & bye")])
        for to in ["ipop@xmpp.ipop.test", "ipop@xmpp.ipop.test/vm3-cccccc", ""] {
            let a = d.handle(try stanza("""
            <message type='chat' from='ipop@xmpp.ipop.test/vm2-bbbbbb' to='\(to)'>\
            <signal xmlns='urn:ipop-swift:signal:0' overlay='lab' kind='con_req'>x</signal></message>
            """))
            #expect(emitted(a).isEmpty, "to='\(to)'")
        }
        // Not ours / bounced.
        #expect(emitted(d.handle(try stanza("<message from='a@b/c' to='ipop@xmpp.ipop.test/vm1-aaaaaa'><body>hi</body></message>"))).isEmpty)
        #expect(emitted(d.handle(try stanza("<message type='error' from='a@b/c' to='ipop@xmpp.ipop.test/vm1-aaaaaa'><signal xmlns='urn:ipop-swift:signal:0' overlay='lab' kind='k'/></message>"))).isEmpty)
    }

    @Test func unknownIQRequestsGetAnError() throws {
        var d = DiscoveryState(ownJID: me, room: nil, announcement: announcement)
        let a = d.handle(try stanza("<iq type='get' id='v1' from='xmpp.ipop.test'><query xmlns='jabber:iq:version'/></iq>"))
        let reply = try #require(sent(a).first)
        #expect(reply.attribute("type") == "error" && reply.attribute("id") == "v1" && reply.attribute("to") == "xmpp.ipop.test")
        #expect(Stanza.errorCondition(reply)?.condition == "service-unavailable")
        #expect(d.handle(try stanza("<iq type='result' id='x'/>")).isEmpty)
    }

    @Test func mucJoinOccupantsAndPrivateMessages() throws {
        let room = JID("ipop@conference.xmpp.ipop.test")!
        let myJID = JID("node1@xmpp.ipop.test/vm1-aaaaaa")!
        var d = DiscoveryState(ownJID: myJID, room: room, announcement: announcement, randomSuffix: { "beef" })
        let initial = d.initialStanzas()
        #expect(initial.count == 2)
        #expect(NodeAnnouncement.parse(presence: initial[0]) == nil)
        #expect(initial[1].attribute("to") == "ipop@conference.xmpp.ipop.test/vm1")
        #expect(initial[1].child("x", namespace: XMPPNamespace.muc) != nil)
        #expect(NodeAnnouncement.parse(presence: initial[1]) == announcement)

        // Nickname taken: retry with a suffix.
        let conflict = d.handle(try stanza("""
        <presence type='error' from='ipop@conference.xmpp.ipop.test/vm1'><x xmlns='http://jabber.org/protocol/muc'/>\
        <error type='cancel'><conflict xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></presence>
        """))
        #expect(sent(conflict).first?.attribute("to") == "ipop@conference.xmpp.ipop.test/vm1-beef")
        #expect(d.nick == "vm1-beef")

        // The room is locked (just created by another node): retry later, slower each time.
        let locked = "<presence type='error' from='ipop@conference.xmpp.ipop.test/vm1-beef'><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></presence>"
        var delays: [Duration] = []
        for _ in 0..<8 {
            for case .sendLater(let e, let d) in d.handle(try stanza(locked)) {
                #expect(e.attribute("to") == "ipop@conference.xmpp.ipop.test/vm1-beef")
                delays.append(d)
            }
        }
        #expect(delays == [1, 2, 4, 8, 16, 32, 60, 60].map { Duration.seconds($0) })

        // An occupant already there, with our extension.
        let occ = d.handle(try stanza("""
        <presence from='ipop@conference.xmpp.ipop.test/vm2' to='node1@xmpp.ipop.test/vm1-aaaaaa'>\(nodeExt("vm2"))\
        <x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='none' role='participant'/></x></presence>
        """))
        #expect(emitted(occ) == [.peerOnline(PeerAnnouncement(nodeName: "vm2", overlays: ["lab"], publicKey: key2,
                                                              address: "ipop@conference.xmpp.ipop.test/vm2"))])
        #expect(sent(occ).isEmpty)
        // A non-IPOP occupant: ignored.
        #expect(d.handle(try stanza("<presence from='ipop@conference.xmpp.ipop.test/human'/>")).isEmpty)
        // Shared-account presence is not used in MUC mode.
        #expect(d.handle(try stanza("<presence from='node1@xmpp.ipop.test/other'>\(nodeExt("vm9"))</presence>")).isEmpty)

        // Our own presence, room just created: accept the default configuration.
        let selfP = d.handle(try stanza("""
        <presence from='ipop@conference.xmpp.ipop.test/vm1-beef'>\(nodeExt("vm1"))\
        <x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='owner' role='moderator'/>\
        <status code='110'/><status code='201'/></x></presence>
        """))
        #expect(d.joined)
        let config = try #require(sent(selfP).first)
        #expect(config.name == "iq" && config.attribute("to") == "ipop@conference.xmpp.ipop.test")
        #expect(config.child("query", namespace: XMPPNamespace.mucOwner)?.child("x", namespace: XMPPNamespace.dataForms)?.attribute("type") == "submit")
        #expect(emitted(selfP).isEmpty)

        // Private message from an occupant to us; our own groupchat echo is ignored.
        let pm = d.handle(try stanza("""
        <message type='chat' from='ipop@conference.xmpp.ipop.test/vm2' to='node1@xmpp.ipop.test/vm1-aaaaaa'>\
        <signal xmlns='urn:ipop-swift:signal:0' overlay='lab' kind='k'>b</signal><x xmlns='http://jabber.org/protocol/muc#user'/></message>
        """))
        #expect(emitted(pm) == [.message(from: "ipop@conference.xmpp.ipop.test/vm2", overlay: "lab", kind: "k", body: "b")])
        let echo = d.handle(try stanza("""
        <message type='groupchat' from='ipop@conference.xmpp.ipop.test/vm1-beef' to='node1@xmpp.ipop.test/vm1-aaaaaa'>\
        <signal xmlns='urn:ipop-swift:signal:0' overlay='lab' kind='k'>b</signal></message>
        """))
        #expect(emitted(echo).isEmpty)

        // Outbound addressing.
        let payload = SignalPayload(overlay: "lab", kind: "k", body: "x")
        let priv = try #require(d.message(to: "ipop@conference.xmpp.ipop.test/vm2", payload: payload, id: "1"))
        #expect(priv.attribute("type") == "chat" && priv.child("x", namespace: XMPPNamespace.mucUser) != nil)
        let group = try #require(d.message(to: "ipop@conference.xmpp.ipop.test", payload: payload, id: "2"))
        #expect(group.attribute("type") == "groupchat")
        let direct = try #require(d.message(to: "node2@xmpp.ipop.test/r", payload: payload, id: "3"))
        #expect(direct.attribute("type") == "chat" && direct.child("x", namespace: XMPPNamespace.mucUser) == nil)
        #expect(d.message(to: "not a jid@", payload: payload, id: "4") == nil)

        // Occupant leaves.
        #expect(emitted(d.handle(try stanza("<presence type='unavailable' from='ipop@conference.xmpp.ipop.test/vm2'/>")))
            == [.peerOffline(address: "ipop@conference.xmpp.ipop.test/vm2")])

        // We are kicked: peers forgotten, rejoin.
        _ = d.handle(try stanza("<presence from='ipop@conference.xmpp.ipop.test/vm3'>\(nodeExt("vm3"))</presence>"))
        let kicked = d.handle(try stanza("""
        <presence type='unavailable' from='ipop@conference.xmpp.ipop.test/vm1-beef'>\
        <x xmlns='http://jabber.org/protocol/muc#user'><status code='110'/><status code='307'/></x></presence>
        """))
        #expect(emitted(kicked) == [.peerOffline(address: "ipop@conference.xmpp.ipop.test/vm3")])
        #expect(sent(kicked).first?.attribute("to") == "ipop@conference.xmpp.ipop.test/vm1-beef")
        #expect(!d.joined)
    }

    @Test func peerTableIsBounded() throws {
        var d = DiscoveryState(ownJID: me, room: nil, announcement: announcement)
        let ext = nodeExt("x")
        for i in 0..<(DiscoveryState.maxPeers + 10) {
            _ = d.handle(try stanza("<presence from='ipop@xmpp.ipop.test/r\(i)'>\(ext)</presence>"))
        }
        #expect(d.peers.count == DiscoveryState.maxPeers)
    }

    @Test func nicknamesAndResourcesAreSanitised() {
        #expect(DiscoveryState.sanitizedNick("vm 1/a@b") == "vm_1_a_b")
        #expect(DiscoveryState.sanitizedNick("") == "node")
        #expect(DiscoveryState.sanitizedNick(String(repeating: "x", count: 100)).count == 48)
    }
}
