import Testing
@testable import IPOPSignal

@Suite struct StanzaTests {
    func reparse(_ e: XElement) throws -> XElement {
        var r = XMLStreamReader()
        let events = try r.read(Array((header + e.render()).utf8))
        guard events.count == 2, case .element(let back) = events[1] else {
            Issue.record("did not parse back")
            return e
        }
        return back
    }

    @Test func textAndAttributesAreEscaped() throws {
        let body = "<script>alert('x') & \"y\"</script>]]> \r\n\t tab \u{1F600}"
        let m = Stanza.signalMessage(to: "a@b/c'd\"<e>", type: "chat", id: "1",
                                     payload: SignalPayload(overlay: "o&v", kind: "k<", body: body))
        let text = m.render()
        #expect(!text.contains("<script>"))
        #expect(text.contains("to='a@b/c&apos;d&quot;&lt;e&gt;'"))
        #expect(text.contains("&lt;script&gt;alert('x') &amp; \"y\"&lt;/script&gt;]]&gt; &#13;\n\t tab \u{1F600}"))
        #expect(text.contains("overlay='o&amp;v' kind='k&lt;'"))
        let back = try reparse(m)
        #expect(back == m)
        #expect(SignalPayload.parse(message: back)?.body == body)
        #expect(back.attribute("to") == "a@b/c'd\"<e>")
    }

    @Test func invalidXMLCharactersAreReplaced() {
        #expect(XMLEscape.text("a\u{0}b\u{1B}c\u{FFFE}") == "a\u{FFFD}b\u{FFFD}c\u{FFFD}")
        #expect(XMLEscape.attribute("x\ny") == "x&#10;y")
    }

    @Test func renderingDeclaresNamespacesOnlyWhenTheyChange() {
        let p = Stanza.presence(extensions: [NodeAnnouncement(nodeName: "vm1", overlays: ["lab"], publicKey: "AAAA").element])
        #expect(p.render() == "<presence><node xmlns='urn:ipop-swift:signal:0' name='vm1' key='AAAA'><overlay>lab</overlay></node></presence>")
        var e = XElement("a", namespace: "jabber:client")
        e.setAttribute("lang", "en", namespace: xmlNamespaceURI)
        #expect(e.render() == "<a xml:lang='en'/>")
        #expect(Stanza.streamHeader(to: "x.test", from: nil)
            == "<?xml version='1.0'?><stream:stream to='x.test' version='1.0' xml:lang='en' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>")
    }

    @Test func announcementRoundTripAndValidation() throws {
        let a = NodeAnnouncement(nodeName: "vm1", overlays: ["lab", "ov2"], publicKey: "q83vEjRWeJASNFZ4kBI0VniQEjRWeJASNFZ4kBI0Vng=")
        let back = try reparse(Stanza.presence(extensions: [a.element]))
        #expect(NodeAnnouncement.parse(presence: back) == a)

        func parse(_ inner: String) throws -> NodeAnnouncement? {
            var r = XMLStreamReader()
            let ev = try r.read(Array((header + "<presence>\(inner)</presence>").utf8))
            guard case .element(let p) = ev[1] else { return nil }
            return NodeAnnouncement.parse(presence: p)
        }
        #expect(try parse("<node xmlns='urn:ipop-swift:signal:0' name='n' key='AAAA'/>")?.overlays == [])
        #expect(try parse("<node xmlns='urn:ipop-swift:signal:0' name='n' key='not base64!'/>") == nil)
        #expect(try parse("<node xmlns='urn:ipop-swift:signal:0' key='AAAA'/>") == nil)
        #expect(try parse("<node xmlns='urn:ipop-swift:signal:0' name='' key='AAAA'/>") == nil)
        #expect(try parse("<node xmlns='urn:other' name='n' key='AAAA'/>") == nil)
        #expect(try parse("<node xmlns='urn:ipop-swift:signal:0' name='n' key='AAAA'><overlay/></node>") == nil)
        let tooMany = String(repeating: "<overlay>x</overlay>", count: NodeAnnouncement.maxOverlays + 1)
        #expect(try parse("<node xmlns='urn:ipop-swift:signal:0' name='n' key='AAAA'>\(tooMany)</node>") == nil)
    }

    @Test func announcementCarriesL3AddressesPerOverlay() throws {
        let a = NodeAnnouncement(nodeName: "vm1", overlays: ["l3", "sw"], publicKey: "AAAA",
                                 addresses: ["l3": OverlayAddresses(ip4: "10.10.0.1", ip6: "fd00:10::1")])
        let presence = try reparse(Stanza.presence(extensions: [a.element]))
        let back = NodeAnnouncement.parse(presence: presence)
        #expect(back == a)
        #expect(back?.addresses["sw"] == nil)
        // An announcement from a node without addresses (switchmode, or an older node) still parses.
        let plain = NodeAnnouncement(nodeName: "vm2", overlays: ["sw"], publicKey: "AAAA")
        #expect(NodeAnnouncement.parse(presence: try reparse(Stanza.presence(extensions: [plain.element]))) == plain)
        // An absurdly long address makes the whole announcement invalid.
        let huge = NodeAnnouncement(nodeName: "vm3", overlays: ["l3"], publicKey: "AAAA",
                                    addresses: ["l3": OverlayAddresses(ip4: String(repeating: "1", count: 65))])
        #expect(NodeAnnouncement.parse(presence: try reparse(Stanza.presence(extensions: [huge.element]))) == nil)
    }

    @Test func signalPayloadParsing() throws {
        var r = XMLStreamReader()
        let ev = try r.read(Array((header + """
        <message to='a@b/c' type='chat'><signal xmlns='urn:ipop-swift:signal:0' overlay='lab' kind='cas'/></message>\
        <message to='a@b/c'><signal xmlns='urn:ipop-swift:signal:0' kind='cas'>x</signal></message>\
        <message to='a@b/c'><body>hi</body></message>
        """).utf8))
        guard case .element(let m1) = ev[1], case .element(let m2) = ev[2], case .element(let m3) = ev[3] else {
            Issue.record("parse"); return
        }
        #expect(SignalPayload.parse(message: m1) == SignalPayload(overlay: "lab", kind: "cas", body: ""))
        #expect(SignalPayload.parse(message: m2) == nil)
        #expect(SignalPayload.parse(message: m3) == nil)
    }

    @Test func jids() {
        let j = JID("Node1@Example.ORG/res/with/slash")
        #expect(j?.local == "Node1" && j?.domain == "Example.ORG" && j?.resource == "res/with/slash")
        #expect(j?.bare.description == "Node1@Example.ORG")
        #expect(JID("node1@example.org/res/with/slash") == j)
        #expect(JID("node1@example.org/Res") != JID("node1@example.org/res"))
        #expect(JID("example.org")?.local == nil)
        #expect(JID("@example.org") == nil)
        #expect(JID("a@") == nil)
        #expect(JID("a@b/") == nil)
        #expect(JID("a@b@c") == nil)
    }

    @Test func configParsing() throws {
        var c = XMPPConfig(server: "127.0.0.1:15222", jid: "ipop@xmpp.ipop.test", password: "pw")
        #expect(try c.endpoint() == ("127.0.0.1", 15222))
        c.server = "[::1]:5223"
        #expect(try c.endpoint() == ("::1", 5223))
        c.server = "xmpp.example.org"
        #expect(try c.endpoint() == ("xmpp.example.org", 5222))
        c.server = ""
        #expect(try c.endpoint() == ("xmpp.ipop.test", 5222))
        c.server = "h:0"
        #expect(throws: XMPPError.self) { try c.endpoint() }
        c.server = "::1:5222"
        #expect(throws: XMPPError.self) { try c.endpoint() }
        c.server = "h:1"
        #expect(try c.roomJID() == nil)
        c.room = "ipop"
        #expect(try c.roomJID()?.description == "ipop@conference.xmpp.ipop.test")
        c.room = "lab@muc.example.org"
        #expect(try c.roomJID()?.description == "lab@muc.example.org")
        c.room = "lab@muc.example.org/nick"
        #expect(throws: XMPPError.self) { try c.roomJID() }
        c.room = nil
        c.jid = "nolocal.example.org"
        #expect(throws: XMPPError.self) { try c.validate() }
    }

    @Test func errorMessages() {
        #expect(XMPPError.authenticationFailed(jid: "node1@example.org", condition: "not-authorized", text: "x").description
            == "xmpp: authentication failed for node1@example.org (not-authorized)")
        #expect(XMPPError.tlsUnavailable(server: "x.test").description == "xmpp: x.test does not offer STARTTLS and tls is required")
        #expect(XMPPError.noUsableMechanism(offered: ["PLAIN"], tlsActive: false).description
            == "xmpp: no usable SASL mechanism (server offers PLAIN; PLAIN is only used over TLS)")
    }

    @Test func backoffGrowsWithJitterAndIsCapped() {
        var b = ReconnectBackoff(minimum: .seconds(1), maximum: .seconds(60))
        var rng = SplitMix(seed: 7)
        var ceilings: [Double] = []
        for n in 0..<12 {
            let d = ReconnectBackoff.seconds(b.nextDelay(using: &rng))
            let ceiling = min(60, Double(1 << n))
            ceilings.append(ceiling)
            #expect(d >= ceiling / 2 - 1e-9 && d <= ceiling + 1e-9, "attempt \(n): \(d)")
        }
        #expect(ceilings.last == 60)
        b.reset()
        #expect(ReconnectBackoff.seconds(b.nextDelay(using: &rng)) <= 1)
        // Jitter: two clients do not retry in lockstep.
        var x = ReconnectBackoff(minimum: .seconds(1), maximum: .seconds(60))
        var y = ReconnectBackoff(minimum: .seconds(1), maximum: .seconds(60))
        var r1 = SplitMix(seed: 1), r2 = SplitMix(seed: 2)
        for _ in 0..<5 { _ = x.nextDelay(using: &r1); _ = y.nextDelay(using: &r2) }
        #expect(x.nextDelay(using: &r1) != y.nextDelay(using: &r2))
    }
}
