import Testing
@testable import IPOPSignal

/// A realistic server-to-client stream: header, features, TLS/SASL elements, stanzas with
/// namespaces, entities, CDATA, multi-byte UTF-8, whitespace keepalives, end.
let realisticStream = """
<?xml version='1.0' encoding='UTF-8'?>
<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' id='c2s-1a2b' \
from='xmpp.ipop.test' version='1.0' xml:lang='en'>
<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>\
<mechanisms xmlns="urn:ietf:params:xml:ns:xmpp-sasl"><mechanism>SCRAM-SHA-1</mechanism>\
<mechanism>PLAIN</mechanism></mechanisms></stream:features>
 \t
<presence from='ipop@xmpp.ipop.test/vm2-ab12cd' to='ipop@xmpp.ipop.test/vm1-0f0f0f'>\
<node xmlns='urn:ipop-swift:signal:0' name='vm2' key='q83vEjRWeJASNFZ4kBI0VniQEjRWeJASNFZ4kBI0Vng='>\
<overlay>lab</overlay><overlay>caf\u{e9} \u{1F600}</overlay></node>\
<c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='http://prosody.im' ver='abc='/></presence>
<message type='chat' from="vm2@xmpp.ipop.test/r" to='vm1@xmpp.ipop.test/r' id='m1'>\
<signal xmlns='urn:ipop-swift:signal:0' overlay='lab' kind='con_req'>a &lt; b &amp;&amp; c &gt; d \
&quot;q&quot; &apos;s&apos; &#65;&#x42;&#x1F600; caf\u{e9}<![CDATA[<raw> & stuff]]></signal>\
<p:extra xmlns:p='urn:example:p' p:attr='v' plain='w'><p:inner/><inner2 xmlns='urn:example:q'/></p:extra></message>
<iq type='result' id='bind-1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>vm1@xmpp.ipop.test/r</jid></bind></iq>
<stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>\
<text xmlns='urn:ietf:params:xml:ns:xmpp-streams' xml:lang='en'>Replaced by new connection</text></stream:error>
</stream:stream>
"""

func readAll(_ text: String, chunks: [Int]? = nil, limits: XMLLimits = .default) throws(XMLStreamError) -> [XMLStreamEvent] {
    var r = XMLStreamReader(limits: limits)
    let bytes = Array(text.utf8)
    guard let chunks else { return try r.read(bytes) }
    var out: [XMLStreamEvent] = []
    var i = 0
    for c in chunks where i < bytes.count {
        let end = min(bytes.count, i + c)
        out += try r.read(bytes[i..<end])
        i = end
    }
    if i < bytes.count { out += try r.read(bytes[i...]) }
    return out
}

func expectError(_ expected: XMLStreamError, _ text: String, limits: XMLLimits = .default,
                 sourceLocation: SourceLocation = #_sourceLocation) {
    do {
        let events = try readAll(text, limits: limits)
        Issue.record("expected \(expected), got \(events.count) events", sourceLocation: sourceLocation)
    } catch {
        #expect(error == expected, sourceLocation: sourceLocation)
    }
}

let header = "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"

@Suite struct XMLStreamReaderTests {
    @Test func realisticStreamParsesIntoExpectedEvents() throws {
        let events = try readAll(realisticStream)
        #expect(events.count == 7)
        guard case .streamStart(let root) = events[0] else { Issue.record("no stream start"); return }
        #expect(root.name == "stream" && root.namespace == xmppStreamsNamespace)
        #expect(root.attribute("id") == "c2s-1a2b")
        #expect(root.attribute("lang", namespace: xmlNamespaceURI) == "en")
        #expect(root.children.isEmpty)

        guard case .element(let features) = events[1] else { Issue.record("no features"); return }
        #expect(features.name == "features" && features.namespace == xmppStreamsNamespace)
        let tls = try #require(features.child("starttls", namespace: XMPPNamespace.tls))
        #expect(tls.child("required")?.namespace == XMPPNamespace.tls)
        let mechs = features.child("mechanisms", namespace: XMPPNamespace.sasl)?.children("mechanism").map(\.text)
        #expect(mechs == ["SCRAM-SHA-1", "PLAIN"])

        guard case .element(let presence) = events[2] else { Issue.record("no presence"); return }
        #expect(presence.namespace == XMPPNamespace.client)
        let a = try #require(NodeAnnouncement.parse(presence: presence))
        #expect(a.nodeName == "vm2" && a.overlays == ["lab", "caf\u{e9} \u{1F600}"])
        #expect(presence.child("c")?.namespace == "http://jabber.org/protocol/caps")

        guard case .element(let message) = events[3] else { Issue.record("no message"); return }
        let p = try #require(SignalPayload.parse(message: message))
        #expect(p.overlay == "lab" && p.kind == "con_req")
        #expect(p.body == "a < b && c > d \"q\" 's' AB\u{1F600} caf\u{e9}<raw> & stuff")
        let extra = try #require(message.child("extra"))
        #expect(extra.namespace == "urn:example:p")
        #expect(extra.attribute("attr", namespace: "urn:example:p") == "v")
        #expect(extra.attribute("plain") == "w")
        #expect(extra.child("inner")?.namespace == "urn:example:p")
        #expect(extra.child("inner2")?.namespace == "urn:example:q")

        guard case .element(let iq) = events[4] else { Issue.record("no iq"); return }
        #expect(iq.child("bind")?.child("jid")?.text == "vm1@xmpp.ipop.test/r")

        guard case .element(let err) = events[5] else { Issue.record("no error"); return }
        let cond = try #require(Stanza.errorCondition(err))
        #expect(cond.condition == "conflict" && cond.text == "Replaced by new connection")
        #expect(events[6] == .streamEnd)
    }

    @Test func splitAtEveryByteBoundaryGivesTheSameEvents() throws {
        let whole = try readAll(realisticStream)
        let n = realisticStream.utf8.count
        for cut in 1..<n {
            let events = try readAll(realisticStream, chunks: [cut])
            #expect(events == whole, "split at \(cut)")
            if events != whole { break }
        }
    }

    @Test func byteByByteAndRandomChunksGiveTheSameEvents() throws {
        let whole = try readAll(realisticStream)
        #expect(try readAll(realisticStream, chunks: Array(repeating: 1, count: realisticStream.utf8.count)) == whole)
        var rng = SplitMix(seed: 42)
        for _ in 0..<50 {
            let chunks = (0..<400).map { _ in Int(rng.next() % 17) + 1 }
            #expect(try readAll(realisticStream, chunks: chunks) == whole)
        }
    }

    @Test func pullingEventsOneByOne() throws {
        var r = XMLStreamReader()
        r.append(Array((header + "<a/><b/>").utf8))
        #expect(try r.next().map { if case .streamStart = $0 { true } else { false } } == true)
        #expect(try r.next() == .element(XElement("a", namespace: "jabber:client")))
        #expect(try r.next() == .element(XElement("b", namespace: "jabber:client")))
        #expect(try r.next() == nil)
        #expect(r.depth == 1)
    }

    @Test func namespacesAndPrefixes() throws {
        let text = header + """
        <iq xmlns:a='urn:a' a:x='1' y='2'><a:q xmlns='urn:default'><c/><a:d xmlns:a='urn:a2'/>\
        <e xmlns=''/></a:q></iq>
        """
        let events = try readAll(text)
        guard case .element(let iq) = events[1] else { Issue.record("no iq"); return }
        #expect(iq.namespace == "jabber:client")
        #expect(iq.attribute("x", namespace: "urn:a") == "1")
        #expect(iq.attribute("x") == nil)
        #expect(iq.attribute("y") == "2")
        let q = try #require(iq.child("q"))
        #expect(q.namespace == "urn:a")
        #expect(q.child("c")?.namespace == "urn:default")
        #expect(q.child("d")?.namespace == "urn:a2")
        #expect(q.child("e")?.namespace == "")
    }

    @Test func undeclaredPrefixAndReservedPrefixes() {
        expectError(.undeclaredPrefix("zz"), header + "<zz:a/>")
        expectError(.undeclaredPrefix("zz"), header + "<a zz:b='1'/>")
        expectError(.malformed("reserved prefix 'xml'"), header + "<a xmlns:xml='urn:other'/>")
        expectError(.notAStream("stream"), "<stream xmlns='http://etherx.jabber.org/streams'/>")
        expectError(.notAStream("html"), "<html>")
        expectError(.duplicateAttribute("x"), header + "<a xmlns:p='urn:1' xmlns:q='urn:1' p:x='1' q:x='2'/>")
        expectError(.duplicateAttribute("x"), header + "<a x='1' x='2'/>")
    }

    @Test func entitiesAndLineEnds() throws {
        let events = try readAll(header + "<m a='x&#10;y\tz\r\nw &lt;&#x3C;'>l1\r\nl2\rl3&#13;</m>")
        guard case .element(let m) = events[1] else { Issue.record("no element"); return }
        #expect(m.attribute("a") == "x\ny z w <<")
        #expect(m.text == "l1\nl2\nl3\r")
    }

    @Test func badReferencesAreRefused() {
        expectError(.undefinedEntity("nbsp"), header + "<m>&nbsp;</m>")
        expectError(.undefinedEntity("lol"), header + "<m a='&lol;'/>")
        expectError(.invalidCharacterReference("#0"), header + "<m>&#0;</m>")
        expectError(.invalidCharacterReference("#xD800"), header + "<m>&#xD800;</m>")
        expectError(.invalidCharacterReference("#x110000"), header + "<m>&#x110000;</m>")
        expectError(.invalidCharacterReference("#"), header + "<m>&#;</m>")
        expectError(.malformed("unterminated entity reference"), header + "<m>a & b</m>")
        expectError(.invalidCharacter(1), header + "<m>\u{01}</m>")
    }

    @Test func doctypeAndBillionLaughsAreRefused() {
        let laughs = """
        <?xml version="1.0"?>
        <!DOCTYPE lolz [
         <!ENTITY lol "lol">
         <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
         <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
        ]>
        <stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'><m>&lol3;</m>
        """
        expectError(.doctypeForbidden, laughs)
        expectError(.doctypeForbidden, header + "<!DOCTYPE x>")
        expectError(.doctypeForbidden, header + "<m><!ENTITY x 'y'></m>")
        // Even split byte by byte, the error comes as soon as the markup is recognisable.
        var r = XMLStreamReader()
        var failure: XMLStreamError?
        for b in Array("<!DOCTYPE lolz [".utf8) {
            r.append([b])
            do { _ = try r.next() } catch { failure = error; break }
        }
        #expect(failure == .doctypeForbidden)
        expectError(.restrictedXML("comment"), header + "<m><!-- hi --></m>")
        expectError(.restrictedXML("processing instruction"), header + "<?php x ?>")
        expectError(.restrictedXML("processing instruction"), "<?xml version='1.0'?><?xml version='1.0'?>")
        expectError(.malformed("only UTF-8 streams are supported"), "<?xml version='1.0' encoding='UTF-16'?>" + header)
    }

    @Test func deepNestingIsRefused() throws {
        let limits = XMLLimits()
        // Depth 32 (the stream counts as 1) is fine; 33 is not.
        let ok = header + String(repeating: "<a>", count: 31) + String(repeating: "</a>", count: 31)
        #expect(try readAll(ok).count == 2)
        let deep = header + String(repeating: "<a>", count: 32)
        expectError(.tooDeep(limit: limits.maxDepth), deep)
        expectError(.tooDeep(limit: limits.maxDepth), header + String(repeating: "<a>", count: 100_000))
    }

    @Test func hugeAttributesAndTagsAreRefusedWithoutBuffering() {
        let l = XMLLimits()
        expectError(.attributeTooLong(limit: l.maxAttributeValueBytes),
                    header + "<m a='" + String(repeating: "x", count: l.maxAttributeValueBytes + 1) + "'/>")
        let many = (0...l.maxAttributes).map { "a\($0)='1'" }.joined(separator: " ")
        expectError(.tooManyAttributes(limit: l.maxAttributes), header + "<m \(many)/>")
        expectError(.nameTooLong(limit: l.maxNameBytes), header + "<" + String(repeating: "n", count: l.maxNameBytes + 1) + "/>")
        // An attribute value that never ends, streamed: refused once the tag limit is passed,
        // and the reader never holds much more than that.
        var r = XMLStreamReader()
        var failure: XMLStreamError?
        var fed = 0
        do {
            _ = try r.read(Array((header + "<m a='").utf8))
            let chunk = [UInt8](repeating: UInt8(ascii: "x"), count: 1000)
            while fed < 10_000_000 {
                _ = try r.read(chunk)
                fed += chunk.count
                #expect(r.bufferedByteCount <= l.maxTagBytes + 1000)
            }
        } catch {
            failure = error
        }
        #expect(failure == .tagTooLarge(limit: l.maxTagBytes))
        #expect(fed <= l.maxTagBytes + 1000)
    }

    @Test func oversizedStanzaIsRefusedEarly() {
        let l = XMLLimits()
        expectError(.stanzaTooLarge(limit: l.maxStanzaBytes),
                    header + "<m>" + String(repeating: "y", count: l.maxStanzaBytes) + "</m>")
        // Many small children add up too.
        expectError(.stanzaTooLarge(limit: l.maxStanzaBytes),
                    header + "<m>" + String(repeating: "<c a='1'/>", count: l.maxStanzaBytes / 10 + 1) + "</m>")
        // Streamed: fails after about maxStanzaBytes, not after the 10 MB the server would send.
        var r = XMLStreamReader()
        var fed = 0
        var failure: XMLStreamError?
        do {
            _ = try r.read(Array((header + "<message><body>").utf8))
            let chunk = [UInt8](repeating: UInt8(ascii: "z"), count: 4096)
            while fed < 10_000_000 {
                _ = try r.read(chunk)
                fed += chunk.count
            }
        } catch {
            failure = error
        }
        #expect(failure == .stanzaTooLarge(limit: l.maxStanzaBytes))
        #expect(fed <= l.maxStanzaBytes + 4096)
        // A stanza just under the limit is fine.
        let fits = "<m>" + String(repeating: "y", count: l.maxStanzaBytes - 7) + "</m>"
        #expect(fits.utf8.count == l.maxStanzaBytes)
        #expect((try? readAll(header + fits).count) == 2)
    }

    @Test func whitespaceFloodBetweenStanzasIsNotBuffered() throws {
        var r = XMLStreamReader()
        _ = try r.read(Array(header.utf8))
        let spaces = [UInt8](repeating: 0x20, count: 100_000)
        for _ in 0..<20 { #expect(try r.read(spaces).isEmpty) }
        #expect(r.bufferedByteCount == 0)
        #expect(try r.read(Array("<a/>".utf8)) == [.element(XElement("a", namespace: "jabber:client"))])
    }

    @Test func structuralErrors() {
        expectError(.malformed("text outside a stanza"), header + "hello")
        expectError(.malformed("text before the stream element"), "hello")
        expectError(.mismatchedEndTag(expected: "a", found: "b"), header + "<a></b>")
        expectError(.dataAfterStreamEnd, header + "</stream:stream><a/>")
        expectError(.malformed("attribute value must be quoted"), header + "<a b=c/>")
        expectError(.malformed("attribute without value"), header + "<a b/>")
        expectError(.malformed("attributes must be separated by whitespace"), header + "<a b='1'c='2'/>")
        expectError(.malformed("'<' inside a tag"), header + "<a <b/>")
        expectError(.malformed("invalid name start"), header + "<1a/>")
        expectError(.malformed("CDATA outside a stanza"), header + "<![CDATA[x]]>")
    }

    @Test func invalidUTF8IsRefused() {
        var r = XMLStreamReader()
        var failure: XMLStreamError?
        do {
            _ = try r.read(Array((header + "<a>").utf8) + [0xC3, 0x28] + Array("</a>".utf8))
        } catch { failure = error }
        #expect(failure == .invalidUTF8)
        var r2 = XMLStreamReader()
        failure = nil
        do {
            _ = try r2.read(Array((header + "<a b='").utf8) + [0xFF] + Array("'/>".utf8))
        } catch { failure = error }
        #expect(failure == .invalidUTF8)
    }

    @Test func readerStaysFailedAndResetRecovers() throws {
        var r = XMLStreamReader()
        #expect(throws: XMLStreamError.doctypeForbidden) { try r.read(Array("<!DOCTYPE x>".utf8)) }
        #expect(throws: XMLStreamError.doctypeForbidden) { try r.read(Array(header.utf8)) }
        r.reset()
        #expect(try r.read(Array(header.utf8)).count == 1)
    }

    @Test func randomMutationsNeverCrash() {
        // Hostile or broken input must end in events or a typed error, never a trap.
        let base = Array(realisticStream.utf8)
        let interesting: [UInt8] = Array("<>&;'\"/=:!?[]-#x \n".utf8) + [0x00, 0x80, 0xC3, 0xE2, 0xF0, 0xFF]
        var rng = SplitMix(seed: 2024)
        var errors = 0
        for _ in 0..<3000 {
            var bytes = base
            for _ in 0..<Int(rng.next() % 4 + 1) {
                let i = Int(rng.next() % UInt64(bytes.count))
                let b = rng.next() % 2 == 0 ? interesting[Int(rng.next() % UInt64(interesting.count))] : UInt8(truncatingIfNeeded: rng.next())
                switch rng.next() % 3 {
                case 0: bytes[i] = b
                case 1: bytes.insert(b, at: i)
                default: bytes.remove(at: i)
                }
            }
            var r = XMLStreamReader()
            var i = 0
            do {
                while i < bytes.count {
                    let n = min(bytes.count - i, Int(rng.next() % 64 + 1))
                    _ = try r.read(bytes[i..<(i + n)])
                    i += n
                }
            } catch {
                errors += 1
            }
        }
        #expect(errors > 0)
        // Pure noise.
        for _ in 0..<500 {
            var r = XMLStreamReader()
            let noise = (0..<256).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            _ = try? r.read(Array(header.utf8) + noise)
        }
    }

    @Test func streamRestartNeedsReset() throws {
        var r = XMLStreamReader()
        _ = try r.read(Array((header + "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>").utf8))
        r.reset()
        let events = try r.read(Array((header + "<stream:features/>").utf8))
        #expect(events.count == 2)
    }
}

/// Deterministic PRNG for chunking tests.
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
