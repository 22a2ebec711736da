/// A Jabber ID `localpart@domainpart/resourcepart` (RFC 7622), split but not stringprep'd:
/// the localpart and domain are compared case-insensitively (ASCII), the resource exactly.
public struct JID: Sendable, Hashable, CustomStringConvertible {
    public var local: String?
    public var domain: String
    public var resource: String?

    public init(local: String?, domain: String, resource: String? = nil) {
        self.local = local
        self.domain = domain
        self.resource = resource
    }

    /// Parses a JID; nil when a part is empty or too long (1023 bytes each, RFC 7622).
    public init?(_ s: String) {
        var rest = Substring(s)
        var res: Substring?
        if let slash = rest.firstIndex(of: "/") {
            res = rest[rest.index(after: slash)...]
            rest = rest[..<slash]
        }
        var loc: Substring?
        if let at = rest.firstIndex(of: "@") {
            loc = rest[..<at]
            rest = rest[rest.index(after: at)...]
        }
        guard !rest.isEmpty, rest.utf8.count <= 1023, !rest.contains("@") else { return nil }
        if let l = loc { guard !l.isEmpty, l.utf8.count <= 1023 else { return nil } }
        if let r = res { guard !r.isEmpty, r.utf8.count <= 1023 else { return nil } }
        local = loc.map(String.init)
        domain = String(rest)
        resource = res.map(String.init)
    }

    public var bare: JID { JID(local: local, domain: domain) }
    public var isBare: Bool { resource == nil }

    public var description: String {
        var s = ""
        if let local { s += local + "@" }
        s += domain
        if let resource { s += "/" + resource }
        return s
    }

    /// The form used for comparisons: local and domain lower-cased (ASCII only), trailing dot dropped.
    public var normalized: String {
        var d = domain.lowercased()
        if d.hasSuffix(".") { d.removeLast() }
        var s = ""
        if let local { s += local.lowercased() + "@" }
        s += d
        if let resource { s += "/" + resource }
        return s
    }

    public static func == (a: JID, b: JID) -> Bool { a.normalized == b.normalized }
    public func hash(into h: inout Hasher) { h.combine(normalized) }
}
