// An incremental, bounded reader for one XMPP stream (RFC 6120 §4, §11).
//
// Feed it arbitrary chunks of UTF-8 (an element may be split anywhere, even inside a multi-byte
// character) and pull events: the opening `<stream:stream>` tag, each complete top-level child
// (a stanza, `<stream:features>`, SASL/TLS elements...), and the closing tag. It only ever builds
// the tree of the stanza it is reading, and every dimension of that tree is capped by
// `XMLLimits`. Following RFC 6120 §11.1 it refuses DOCTYPE/entity declarations (so no billion
// laughs), comments and processing instructions; it decodes only the five predefined entities and
// numeric character references. Every byte is scanned a bounded number of times, whatever the
// chunking. After an error the reader stays failed: the caller must close the stream.

/// Hard bounds on what a peer may make the reader hold.
public struct XMLLimits: Sendable, Equatable {
    /// Maximum element nesting, counting `<stream:stream>` as depth 1.
    public var maxDepth: Int
    /// Maximum bytes of one top-level child, from its `<` to the end of its closing tag.
    public var maxStanzaBytes: Int
    /// Maximum bytes of one tag (`<` ... `>`), including its attributes.
    public var maxTagBytes: Int
    /// Maximum attributes on one element, namespace declarations included.
    public var maxAttributes: Int
    /// Maximum raw bytes of one attribute value.
    public var maxAttributeValueBytes: Int
    /// Maximum bytes of an element or attribute name.
    public var maxNameBytes: Int

    public init(maxDepth: Int = 32, maxStanzaBytes: Int = 256 * 1024, maxTagBytes: Int = 64 * 1024,
                maxAttributes: Int = 64, maxAttributeValueBytes: Int = 16 * 1024, maxNameBytes: Int = 256) {
        self.maxDepth = maxDepth
        self.maxStanzaBytes = maxStanzaBytes
        self.maxTagBytes = maxTagBytes
        self.maxAttributes = maxAttributes
        self.maxAttributeValueBytes = maxAttributeValueBytes
        self.maxNameBytes = maxNameBytes
    }

    public static let `default` = XMLLimits()
}

/// Why the reader gave up. All are fatal for the stream.
public enum XMLStreamError: Error, Sendable, Equatable, CustomStringConvertible {
    case malformed(String)
    /// `<!DOCTYPE`, `<!ENTITY` or any other markup declaration.
    case doctypeForbidden
    /// Comments and processing instructions (RFC 6120 §11.1 restricted XML).
    case restrictedXML(String)
    case undefinedEntity(String)
    case invalidCharacterReference(String)
    case invalidCharacter(UInt32)
    case invalidUTF8
    case undeclaredPrefix(String)
    case mismatchedEndTag(expected: String, found: String)
    case duplicateAttribute(String)
    /// The document element is not `<stream:stream xmlns:stream='http://etherx.jabber.org/streams'>`.
    case notAStream(String)
    case dataAfterStreamEnd
    case tooDeep(limit: Int)
    case stanzaTooLarge(limit: Int)
    case tagTooLarge(limit: Int)
    case tooManyAttributes(limit: Int)
    case attributeTooLong(limit: Int)
    case nameTooLong(limit: Int)

    public var description: String {
        switch self {
        case .malformed(let s): return "xml: malformed: \(s)"
        case .doctypeForbidden: return "xml: DOCTYPE/entity declarations are not allowed"
        case .restrictedXML(let s): return "xml: restricted XML: \(s) not allowed"
        case .undefinedEntity(let s): return "xml: undefined entity &\(s);"
        case .invalidCharacterReference(let s): return "xml: invalid character reference &\(s);"
        case .invalidCharacter(let v): return "xml: invalid character U+\(String(v, radix: 16, uppercase: true))"
        case .invalidUTF8: return "xml: invalid UTF-8"
        case .undeclaredPrefix(let p): return "xml: undeclared namespace prefix '\(p)'"
        case .mismatchedEndTag(let e, let f): return "xml: end tag </\(f)> does not match <\(e)>"
        case .duplicateAttribute(let a): return "xml: duplicate attribute '\(a)'"
        case .notAStream(let n): return "xml: document element <\(n)> is not an XMPP stream"
        case .dataAfterStreamEnd: return "xml: data after the end of the stream"
        case .tooDeep(let l): return "xml: elements nested deeper than \(l)"
        case .stanzaTooLarge(let l): return "xml: stanza larger than \(l) bytes"
        case .tagTooLarge(let l): return "xml: tag larger than \(l) bytes"
        case .tooManyAttributes(let l): return "xml: more than \(l) attributes on one element"
        case .attributeTooLong(let l): return "xml: attribute value longer than \(l) bytes"
        case .nameTooLong(let l): return "xml: name longer than \(l) bytes"
        }
    }
}

/// What the reader yields.
public enum XMLStreamEvent: Sendable, Equatable {
    /// The opening `<stream:stream ...>`: its attributes, no children.
    case streamStart(XElement)
    /// A complete child of the stream element.
    case element(XElement)
    /// `</stream:stream>`.
    case streamEnd
}

/// The XMPP streams namespace (`stream` prefix).
public let xmppStreamsNamespace = "http://etherx.jabber.org/streams"

public struct XMLStreamReader: Sendable {
    public let limits: XMLLimits

    private struct Binding: Sendable {
        var prefix: String   // "" for the default namespace
        var uri: String
    }

    private struct Frame: Sendable {
        var rawName: [UInt8]
        var bindings: [Binding]
        var element: XElement
        var text: [UInt8]
    }

    private enum Phase: Sendable, Equatable {
        case prolog, inStream, ended
        case failed(XMLStreamError)
    }

    private enum Step {
        case needMore, consumed
        case event(XMLStreamEvent)
    }

    private var buf: [UInt8] = []
    private var pos = 0            // first unconsumed byte of buf
    private var base = 0           // stream offset of buf[0]
    private var scan = 0           // where the scan for the current token's end resumes
    private var quote: UInt8 = 0   // open quote while scanning a tag
    private var frames: [Frame] = []
    private var stanzaStart: Int?  // stream offset of the current top-level child's '<'
    private var phase: Phase = .prolog
    private var sawProlog = false

    public init(limits: XMLLimits = .default) {
        self.limits = limits
    }

    /// Forget everything (used on XMPP stream restarts after STARTTLS and SASL).
    public mutating func reset() {
        self = XMLStreamReader(limits: limits)
    }

    /// Current element depth (1 inside `<stream:stream>`).
    public var depth: Int { frames.count }

    /// Bytes received but not yet consumed (bounded by the limits).
    public var bufferedByteCount: Int { buf.count - pos }

    /// Adds received bytes. Call `next()` until it returns nil afterwards.
    public mutating func append<C: Collection>(_ bytes: C) where C.Element == UInt8 {
        if pos > 0 {
            if pos >= buf.count {
                base += buf.count
                buf.removeAll(keepingCapacity: true)
                scan = 0
                pos = 0
            } else if pos >= 4096 && pos * 2 >= buf.count {
                buf.removeFirst(pos)
                base += pos
                scan = max(0, scan - pos)
                pos = 0
            }
        }
        buf.append(contentsOf: bytes)
    }

    /// The next event, or nil when more bytes are needed.
    public mutating func next() throws(XMLStreamError) -> XMLStreamEvent? {
        if case .failed(let e) = phase { throw e }
        do throws(XMLStreamError) {
            while true {
                switch try step() {
                case .needMore:
                    try checkPending()
                    return nil
                case .consumed:
                    continue
                case .event(let e):
                    return e
                }
            }
        } catch {
            phase = .failed(error)
            frames.removeAll()
            buf.removeAll()
            pos = 0
            throw error
        }
    }

    /// Convenience: `append` then drain `next()`.
    public mutating func read<C: Collection>(_ bytes: C) throws(XMLStreamError) -> [XMLStreamEvent] where C.Element == UInt8 {
        append(bytes)
        var out: [XMLStreamEvent] = []
        while let e = try next() { out.append(e) }
        return out
    }

    // MARK: - Tokens

    private mutating func step() throws(XMLStreamError) -> Step {
        guard pos < buf.count else { return .needMore }
        if phase == .ended || frames.count <= 1 {
            // Between stanzas, before the root, after the end: only whitespace is allowed, and it
            // is dropped at once so a whitespace flood cannot grow the buffer.
            while pos < buf.count, buf[pos] != UInt8(ascii: "<") {
                guard Self.isSpace(buf[pos]) else {
                    if phase == .ended { throw .dataAfterStreamEnd }
                    throw .malformed(frames.isEmpty ? "text before the stream element" : "text outside a stanza")
                }
                pos += 1
            }
            if pos >= buf.count { return .needMore }
            if phase == .ended { throw .dataAfterStreamEnd }
            return try markup()
        }
        if buf[pos] == UInt8(ascii: "<") { return try markup() }
        return try text()
    }

    private mutating func markup() throws(XMLStreamError) -> Step {
        guard buf.count - pos >= 2 else { return .needMore }
        switch buf[pos + 1] {
        case UInt8(ascii: "?"):
            return try processingInstruction()
        case UInt8(ascii: "!"):
            guard buf.count - pos >= 3 else { return .needMore }
            switch buf[pos + 2] {
            case UInt8(ascii: "-"): throw .restrictedXML("comment")
            case UInt8(ascii: "["): return try cdata()
            default: throw .doctypeForbidden
            }
        case UInt8(ascii: "/"):
            guard let gt = try scanTagEnd() else { return .needMore }
            return try endTag(gt)
        default:
            if frames.count == 1 && stanzaStart == nil { stanzaStart = base + pos }
            guard let gt = try scanTagEnd() else { return .needMore }
            return try startTag(gt)
        }
    }

    /// Finds the `>` that ends the tag starting at `pos`, outside quotes; resumable.
    private mutating func scanTagEnd() throws(XMLStreamError) -> Int? {
        var i = max(scan, pos + 1)
        var q = scan > pos ? quote : 0
        let end = buf.count
        while i < end {
            let b = buf[i]
            if q != 0 {
                if b == q { q = 0 }
            } else if b == UInt8(ascii: ">") {
                scan = 0
                quote = 0
                if i - pos + 1 > limits.maxTagBytes { throw .tagTooLarge(limit: limits.maxTagBytes) }
                return i
            } else if b == UInt8(ascii: "\"") || b == UInt8(ascii: "'") {
                q = b
            } else if b == UInt8(ascii: "<") {
                throw .malformed("'<' inside a tag")
            }
            i += 1
        }
        scan = i
        quote = q
        if i - pos > limits.maxTagBytes { throw .tagTooLarge(limit: limits.maxTagBytes) }
        return nil
    }

    /// Finds `terminator` (e.g. `?>`, `]]>`) at or after `from`; resumable.
    private mutating func scanFor(_ terminator: [UInt8], from: Int, limit: Int) throws(XMLStreamError) -> Int? {
        var i = max(scan, from)
        let last = terminator[terminator.count - 1]
        while i < buf.count {
            if buf[i] == last, i - from + 1 >= terminator.count {
                var match = true
                for k in 0..<terminator.count where buf[i - terminator.count + 1 + k] != terminator[k] {
                    match = false
                    break
                }
                if match {
                    scan = 0
                    return i - terminator.count + 1
                }
            }
            i += 1
        }
        scan = max(from, buf.count - terminator.count + 1)
        if buf.count - pos > limit { throw .tagTooLarge(limit: limit) }
        return nil
    }

    private mutating func processingInstruction() throws(XMLStreamError) -> Step {
        // Only the XML declaration, once, before the document element.
        guard phase == .prolog, !sawProlog else { throw .restrictedXML("processing instruction") }
        let decl: [UInt8] = Array("<?xml".utf8)
        let have = min(buf.count - pos, decl.count + 1)
        for k in 0..<min(have, decl.count) where buf[pos + k] != decl[k] {
            throw .restrictedXML("processing instruction")
        }
        guard have == decl.count + 1 else { return .needMore }
        guard Self.isSpace(buf[pos + decl.count]) else { throw .restrictedXML("processing instruction") }
        guard let q = try scanFor(Array("?>".utf8), from: pos + decl.count, limit: 1024) else { return .needMore }
        // Only UTF-8 is supported (RFC 6120 §11.6).
        let body = Array(buf[(pos + decl.count)..<q])
        if let enc = Self.findSubsequence(Array("encoding".utf8), in: body) {
            var k = enc + 8
            while k < body.count, Self.isSpace(body[k]) || body[k] == UInt8(ascii: "=") { k += 1 }
            guard k < body.count, body[k] == UInt8(ascii: "\"") || body[k] == UInt8(ascii: "'") else {
                throw .malformed("bad XML declaration")
            }
            let q = body[k]
            let value = body[(k + 1)...].prefix(while: { $0 != q }).map { $0 | 0x20 }
            guard value == Array("utf-8".utf8) || value == Array("utf8".utf8) else {
                throw .malformed("only UTF-8 streams are supported")
            }
        }
        pos = q + 2
        sawProlog = true
        return .consumed
    }

    private mutating func cdata() throws(XMLStreamError) -> Step {
        let open: [UInt8] = Array("<![CDATA[".utf8)
        let have = min(buf.count - pos, open.count)
        for k in 0..<have where buf[pos + k] != open[k] { throw .doctypeForbidden }
        guard have == open.count else { return .needMore }
        guard frames.count >= 2 else { throw .malformed("CDATA outside a stanza") }
        guard let end = try scanFor(Array("]]>".utf8), from: pos + open.count, limit: limits.maxStanzaBytes) else {
            return .needMore
        }
        for k in (pos + open.count)..<end {
            let b = buf[k]
            if b < 0x20 && b != 0x9 && b != 0xA && b != 0xD { throw .invalidCharacter(UInt32(b)) }
        }
        guard String(validating: buf[(pos + open.count)..<end], as: UTF8.self) != nil else { throw .invalidUTF8 }
        frames[frames.count - 1].text.append(contentsOf: buf[(pos + open.count)..<end])
        pos = end + 3
        try checkStanzaSize(upTo: base + pos)
        return .consumed
    }

    private mutating func text() throws(XMLStreamError) -> Step {
        var i = max(scan, pos)
        while i < buf.count, buf[i] != UInt8(ascii: "<") { i += 1 }
        if i >= buf.count {
            scan = i
            return .needMore
        }
        scan = 0
        let top = frames.count - 1
        try Self.decode(buf[pos..<i], into: &frames[top].text, attribute: false)
        pos = i
        try checkStanzaSize(upTo: base + pos)
        return .consumed
    }

    private mutating func startTag(_ gt: Int) throws(XMLStreamError) -> Step {
        var inner = (pos + 1)..<gt
        var selfClosing = false
        if let l = inner.last, buf[l] == UInt8(ascii: "/") {
            selfClosing = true
            inner = inner.lowerBound..<(inner.upperBound - 1)
        }
        // Name.
        var i = inner.lowerBound
        while i < inner.upperBound, !Self.isSpace(buf[i]) { i += 1 }
        let rawName = Array(buf[inner.lowerBound..<i])
        try checkName(rawName)
        // Attributes.
        var rawAttrs: [(name: [UInt8], value: String)] = []
        while i < inner.upperBound {
            let wsStart = i
            while i < inner.upperBound, Self.isSpace(buf[i]) { i += 1 }
            if i >= inner.upperBound { break }
            guard i > wsStart else { throw .malformed("attributes must be separated by whitespace") }
            let nameStart = i
            while i < inner.upperBound, buf[i] != UInt8(ascii: "="), !Self.isSpace(buf[i]) { i += 1 }
            let attrName = Array(buf[nameStart..<i])
            try checkName(attrName)
            while i < inner.upperBound, Self.isSpace(buf[i]) { i += 1 }
            guard i < inner.upperBound, buf[i] == UInt8(ascii: "=") else {
                throw .malformed("attribute without value")
            }
            i += 1
            while i < inner.upperBound, Self.isSpace(buf[i]) { i += 1 }
            guard i < inner.upperBound, buf[i] == UInt8(ascii: "\"") || buf[i] == UInt8(ascii: "'") else {
                throw .malformed("attribute value must be quoted")
            }
            let q = buf[i]
            i += 1
            let valueStart = i
            while i < inner.upperBound, buf[i] != q { i += 1 }
            guard i < inner.upperBound else { throw .malformed("unterminated attribute value") }
            if i - valueStart > limits.maxAttributeValueBytes {
                throw .attributeTooLong(limit: limits.maxAttributeValueBytes)
            }
            var decoded: [UInt8] = []
            decoded.reserveCapacity(i - valueStart)
            try Self.decode(buf[valueStart..<i], into: &decoded, attribute: true)
            guard let value = String(validating: decoded, as: UTF8.self) else { throw .invalidUTF8 }
            i += 1
            guard i >= inner.upperBound || Self.isSpace(buf[i]) else {
                throw .malformed("attributes must be separated by whitespace")
            }
            if rawAttrs.contains(where: { $0.name == attrName }) {
                throw .duplicateAttribute(String(decoding: attrName, as: UTF8.self))
            }
            rawAttrs.append((attrName, value))
            if rawAttrs.count > limits.maxAttributes { throw .tooManyAttributes(limit: limits.maxAttributes) }
        }
        guard frames.count < limits.maxDepth else { throw .tooDeep(limit: limits.maxDepth) }

        // Namespace declarations first, then resolution.
        var bindings: [Binding] = []
        var plain: [(prefix: String, local: String, value: String)] = []
        for (n, v) in rawAttrs {
            let (prefix, local) = try Self.split(n)
            if prefix == nil && local == "xmlns" {
                bindings.append(Binding(prefix: "", uri: v))
            } else if prefix == "xmlns" {
                guard !v.isEmpty else { throw .malformed("empty namespace for prefix '\(local)'") }
                guard local != "xmlns", (local == "xml") == (v == xmlNamespaceURI) else {
                    throw .malformed("reserved prefix '\(local)'")
                }
                bindings.append(Binding(prefix: local, uri: v))
            } else {
                plain.append((prefix ?? "", local, v))
            }
        }
        let (elPrefix, elLocal) = try Self.split(rawName)
        guard let ns = resolve(elPrefix ?? "", extra: bindings) else {
            throw .undeclaredPrefix(elPrefix ?? "")
        }
        var attributes: [XAttribute] = []
        attributes.reserveCapacity(plain.count)
        for a in plain {
            var attrNS = ""
            if !a.prefix.isEmpty {
                guard let u = resolve(a.prefix, extra: bindings) else { throw .undeclaredPrefix(a.prefix) }
                attrNS = u
            }
            if attributes.contains(where: { $0.name == a.local && $0.namespace == attrNS }) {
                throw .duplicateAttribute(a.local)
            }
            attributes.append(XAttribute(a.local, a.value, namespace: attrNS))
        }
        let element = XElement(elLocal, namespace: ns, attributes: attributes)
        pos = gt + 1

        if frames.isEmpty {
            guard elLocal == "stream", ns == xmppStreamsNamespace, !selfClosing else {
                throw .notAStream(String(decoding: rawName, as: UTF8.self))
            }
            frames.append(Frame(rawName: rawName, bindings: bindings, element: element, text: []))
            phase = .inStream
            return .event(.streamStart(element))
        }
        if frames.count >= 2 { flushText(frames.count - 1) }
        if selfClosing {
            return try closeElement(element)
        }
        frames.append(Frame(rawName: rawName, bindings: bindings, element: element, text: []))
        try checkStanzaSize(upTo: base + pos)
        return .consumed
    }

    private mutating func endTag(_ gt: Int) throws(XMLStreamError) -> Step {
        var e = gt
        while e > pos + 2, Self.isSpace(buf[e - 1]) { e -= 1 }
        let name = Array(buf[(pos + 2)..<e])
        guard let top = frames.last else { throw .malformed("end tag before the stream element") }
        guard name == top.rawName else {
            throw .mismatchedEndTag(expected: String(decoding: top.rawName, as: UTF8.self),
                                    found: String(decoding: name, as: UTF8.self))
        }
        pos = gt + 1
        if frames.count == 1 {
            frames.removeAll()
            phase = .ended
            return .event(.streamEnd)
        }
        flushText(frames.count - 1)
        guard let frame = frames.popLast() else { throw .malformed("unbalanced end tag") }
        return try closeElement(frame.element)
    }

    /// Attaches a finished element to its parent, or yields it when it is a top-level child.
    private mutating func closeElement(_ element: XElement) throws(XMLStreamError) -> Step {
        if frames.count == 1 {
            try checkStanzaSize(upTo: base + pos)
            stanzaStart = nil
            return .event(.element(element))
        }
        frames[frames.count - 1].element.children.append(.element(element))
        try checkStanzaSize(upTo: base + pos)
        return .consumed
    }

    private mutating func flushText(_ index: Int) {
        guard !frames[index].text.isEmpty else { return }
        // Already validated as UTF-8 by the caller's decode (see below); a split multi-byte
        // character cannot straddle '<', so every text run is complete.
        let s = String(decoding: frames[index].text, as: UTF8.self)
        frames[index].text.removeAll()
        frames[index].element.children.append(.text(s))
    }

    // MARK: - Limits

    private func checkStanzaSize(upTo end: Int) throws(XMLStreamError) {
        if let s = stanzaStart, end - s > limits.maxStanzaBytes {
            throw .stanzaTooLarge(limit: limits.maxStanzaBytes)
        }
    }

    /// While waiting for more bytes: what is buffered must still fit.
    private func checkPending() throws(XMLStreamError) {
        try checkStanzaSize(upTo: base + buf.count)
        if stanzaStart == nil, buf.count - pos > limits.maxTagBytes {
            throw .tagTooLarge(limit: limits.maxTagBytes)
        }
    }

    private func checkName(_ n: [UInt8]) throws(XMLStreamError) {
        guard let first = n.first else { throw .malformed("empty name") }
        guard n.count <= limits.maxNameBytes else { throw .nameTooLong(limit: limits.maxNameBytes) }
        if first == UInt8(ascii: "-") || first == UInt8(ascii: ".") || (first >= 0x30 && first <= 0x39) {
            throw .malformed("invalid name start")
        }
        for b in n {
            switch b {
            case UInt8(ascii: "<"), UInt8(ascii: ">"), UInt8(ascii: "&"), UInt8(ascii: "\""), UInt8(ascii: "'"),
                 UInt8(ascii: "="), UInt8(ascii: "/"), UInt8(ascii: "!"), UInt8(ascii: "?"):
                throw .malformed("invalid character in name")
            default:
                if b < 0x20 || b == 0x7F { throw .malformed("invalid character in name") }
            }
        }
        guard String(validating: n, as: UTF8.self) != nil else { throw .invalidUTF8 }
    }

    private func resolve(_ prefix: String, extra: [Binding]) -> String? {
        if prefix == "xml" { return xmlNamespaceURI }
        for b in extra.reversed() where b.prefix == prefix { return b.uri }
        for f in frames.reversed() {
            for b in f.bindings.reversed() where b.prefix == prefix { return b.uri }
        }
        return prefix.isEmpty ? "" : nil
    }

    private static func split(_ raw: [UInt8]) throws(XMLStreamError) -> (prefix: String?, local: String) {
        guard let c = raw.firstIndex(of: UInt8(ascii: ":")) else {
            return (nil, String(decoding: raw, as: UTF8.self))
        }
        let p = raw[..<c]
        let l = raw[(c + 1)...]
        guard !p.isEmpty, !l.isEmpty, !l.contains(UInt8(ascii: ":")) else {
            throw .malformed("invalid qualified name '\(String(decoding: raw, as: UTF8.self))'")
        }
        return (String(decoding: p, as: UTF8.self), String(decoding: l, as: UTF8.self))
    }

    // MARK: - Character data

    @inline(__always)
    static func isSpace(_ b: UInt8) -> Bool {
        b == 0x20 || b == 0x0A || b == 0x0D || b == 0x09
    }

    private static func findSubsequence(_ needle: [UInt8], in hay: [UInt8]) -> Int? {
        guard hay.count >= needle.count else { return nil }
        for i in 0...(hay.count - needle.count) where Array(hay[i..<(i + needle.count)]) == needle { return i }
        return nil
    }

    /// Decodes references and normalises line ends (and, in attributes, whitespace); validates
    /// raw characters and UTF-8.
    static func decode(_ raw: ArraySlice<UInt8>, into out: inout [UInt8], attribute: Bool) throws(XMLStreamError) {
        guard String(validating: raw, as: UTF8.self) != nil else { throw .invalidUTF8 }
        var i = raw.startIndex
        let end = raw.endIndex
        while i < end {
            let b = raw[i]
            switch b {
            case UInt8(ascii: "&"):
                var j = i + 1
                while j < end, j - i <= 12, raw[j] != UInt8(ascii: ";") { j += 1 }
                guard j < end, raw[j] == UInt8(ascii: ";") else { throw .malformed("unterminated entity reference") }
                let name = raw[(i + 1)..<j]
                try appendReference(name, into: &out)
                i = j + 1
                continue
            case UInt8(ascii: "<"):
                throw .malformed("'<' in character data")
            case 0x0D:
                // CRLF and lone CR become LF (XML 1.0 §2.11); in attributes, a space (§3.3.3).
                out.append(attribute ? 0x20 : 0x0A)
                if i + 1 < end, raw[i + 1] == 0x0A { i += 1 }
            case 0x0A, 0x09:
                out.append(attribute ? 0x20 : b)
            default:
                if b < 0x20 { throw .invalidCharacter(UInt32(b)) }
                out.append(b)
            }
            i += 1
        }
    }

    private static func appendReference(_ name: ArraySlice<UInt8>, into out: inout [UInt8]) throws(XMLStreamError) {
        let s = String(decoding: name, as: UTF8.self)
        switch s {
        case "lt": out.append(UInt8(ascii: "<"))
        case "gt": out.append(UInt8(ascii: ">"))
        case "amp": out.append(UInt8(ascii: "&"))
        case "quot": out.append(UInt8(ascii: "\""))
        case "apos": out.append(UInt8(ascii: "'"))
        default:
            guard s.hasPrefix("#") else { throw .undefinedEntity(s) }
            var digits = Substring(s.dropFirst())
            var radix = 10
            if digits.hasPrefix("x") {
                radix = 16
                digits = digits.dropFirst()
            }
            guard !digits.isEmpty, digits.count <= 8, digits.allSatisfy({ $0.isHexDigit && (radix == 16 || $0.isNumber) }),
                  let v = UInt32(digits, radix: radix), XMLEscape.isXMLChar(v), let scalar = Unicode.Scalar(v)
            else { throw .invalidCharacterReference(s) }
            out.append(contentsOf: Array(String(Character(scalar)).utf8))
        }
    }
}
