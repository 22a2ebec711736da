// A small immutable-by-value XML tree used for stanzas: what XMLStreamReader yields and what the
// client renders onto the wire. Names are namespace-resolved (local name + namespace URI).

/// The XML namespace that the reserved prefix `xml` is bound to.
public let xmlNamespaceURI = "http://www.w3.org/XML/1998/namespace"

/// One attribute: a local name, its namespace ("" for an unprefixed attribute) and its decoded value.
public struct XAttribute: Sendable, Equatable, Hashable {
    public var name: String
    public var namespace: String
    public var value: String

    public init(_ name: String, _ value: String, namespace: String = "") {
        self.name = name
        self.value = value
        self.namespace = namespace
    }
}

/// A child of an element: another element or character data (entities already decoded).
public enum XNode: Sendable, Equatable {
    case element(XElement)
    case text(String)
}

/// An XML element with a namespace-resolved name.
public struct XElement: Sendable, Equatable {
    public var name: String
    /// The namespace URI the element is in ("" when none is in scope).
    public var namespace: String
    public var attributes: [XAttribute]
    public var children: [XNode]

    public init(_ name: String, namespace: String, attributes: [XAttribute] = [], children: [XNode] = []) {
        self.name = name
        self.namespace = namespace
        self.attributes = attributes
        self.children = children
    }

    /// The value of the attribute `name` that has no namespace (e.g. `to`, `type`, `id`).
    public func attribute(_ name: String, namespace: String = "") -> String? {
        for a in attributes where a.name == name && a.namespace == namespace { return a.value }
        return nil
    }

    /// Sets (or with `nil` removes) an attribute.
    public mutating func setAttribute(_ name: String, _ value: String?, namespace: String = "") {
        attributes.removeAll { $0.name == name && $0.namespace == namespace }
        if let value { attributes.append(XAttribute(name, value, namespace: namespace)) }
    }

    /// Child elements, in document order.
    public var elements: [XElement] {
        children.compactMap { if case .element(let e) = $0 { return e } else { return nil } }
    }

    /// The first child element named `name` (in `namespace`, or in any namespace when nil).
    public func child(_ name: String, namespace: String? = nil) -> XElement? {
        for case .element(let e) in children where e.name == name && (namespace == nil || e.namespace == namespace) {
            return e
        }
        return nil
    }

    /// All child elements named `name` (in `namespace`, or in any namespace when nil).
    public func children(_ name: String, namespace: String? = nil) -> [XElement] {
        var out: [XElement] = []
        for case .element(let e) in children where e.name == name && (namespace == nil || e.namespace == namespace) {
            out.append(e)
        }
        return out
    }

    /// The concatenated character data directly inside this element.
    public var text: String {
        var s = ""
        for case .text(let t) in children { s += t }
        return s
    }

    public mutating func append(_ element: XElement) { children.append(.element(element)) }
    public mutating func append(text: String) { children.append(.text(text)) }

    /// Builder-style helpers.
    public func adding(_ element: XElement) -> XElement { var c = self; c.append(element); return c }
    public func adding(text: String) -> XElement { var c = self; c.append(text: text); return c }
    public func setting(_ name: String, _ value: String?) -> XElement {
        var c = self; c.setAttribute(name, value); return c
    }
}

// MARK: - Rendering

extension XElement {
    /// Serialises the element as it appears inside a stream whose default namespace is
    /// `parentNamespace` (for a top-level stanza: `jabber:client`). Text and attribute values are
    /// escaped; characters XML 1.0 cannot carry at all (most C0 controls, lone surrogates,
    /// U+FFFE/U+FFFF) are replaced by U+FFFD.
    public func render(parentNamespace: String = XMPPNamespace.client) -> String {
        var out = ""
        out.reserveCapacity(128)
        render(into: &out, parentNamespace: parentNamespace)
        return out
    }

    func render(into out: inout String, parentNamespace: String) {
        out += "<"
        out += name
        if namespace != parentNamespace {
            out += " xmlns='"
            XMLEscape.attribute(namespace, into: &out)
            out += "'"
        }
        var generated = 0
        for a in attributes {
            out += " "
            if a.namespace.isEmpty {
                out += a.name
            } else if a.namespace == xmlNamespaceURI {
                out += "xml:"
                out += a.name
            } else {
                // Rare: a namespaced attribute other than xml:*; declare a private prefix for it.
                let prefix = "ns\(generated)"
                generated += 1
                out += "xmlns:\(prefix)='"
                XMLEscape.attribute(a.namespace, into: &out)
                out += "' \(prefix):\(a.name)"
            }
            out += "='"
            XMLEscape.attribute(a.value, into: &out)
            out += "'"
        }
        if children.isEmpty {
            out += "/>"
            return
        }
        out += ">"
        for c in children {
            switch c {
            case .text(let t): XMLEscape.text(t, into: &out)
            case .element(let e): e.render(into: &out, parentNamespace: namespace)
            }
        }
        out += "</"
        out += name
        out += ">"
    }
}

/// Escaping for text and attribute values.
public enum XMLEscape {
    /// Whether the scalar is a legal XML 1.0 `Char`.
    @inline(__always)
    static func isXMLChar(_ v: UInt32) -> Bool {
        switch v {
        case 0x9, 0xA, 0xD: return true
        case 0x20...0xD7FF, 0xE000...0xFFFD, 0x10000...0x10FFFF: return true
        default: return false
        }
    }

    public static func text(_ s: String) -> String { var o = ""; text(s, into: &o); return o }
    public static func attribute(_ s: String) -> String { var o = ""; attribute(s, into: &o); return o }

    static func text(_ s: String, into out: inout String) {
        for u in s.unicodeScalars {
            switch u {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\r": out += "&#13;"   // would otherwise be normalised to \n by the receiver
            default:
                if isXMLChar(u.value) { out.unicodeScalars.append(u) } else { out += "\u{FFFD}" }
            }
        }
    }

    static func attribute(_ s: String, into out: inout String) {
        for u in s.unicodeScalars {
            switch u {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&apos;"
            case "\t": out += "&#9;"
            case "\n": out += "&#10;"
            case "\r": out += "&#13;"
            default:
                if isXMLChar(u.value) { out.unicodeScalars.append(u) } else { out += "\u{FFFD}" }
            }
        }
    }
}
