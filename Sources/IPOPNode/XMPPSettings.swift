import Foundation
import IPOPSignal

/// The `xmpp` section: how the node reaches its signalling server (IPOP's XmppClient settings).
///
/// ```
/// "xmpp": { "server": "xmpp.example.org:5222", "jid": "node1@example.org", "password": "…" | "password_file": "…",
///           "room": "lab@conference.example.org", "tls": "required", "ca_file": "/etc/ipop/ca.pem",
///           "accept_untrusted_server": false }
/// ```
public struct XMPPSettings: Sendable {
    public var client: XMPPConfig
    /// Links per overlay set up through discovery (all-to-all up to this many).
    public var maxLinks: Int
    /// A discovered peer offline this long (and with no working link) is forgotten.
    public var peerTimeout: Duration

    static func parse(_ value: JSONValue, path: String, baseDirectory: String) throws(ConfigError) -> XMPPSettings {
        var r = try ConfigReader(value, path: path)
        let server = try r.string("server") ?? ""
        if !server.isEmpty {
            let parts = server.split(separator: ":")
            guard parts.count == 2, !parts[0].isEmpty, let port = Int(parts[1]), (1...65535).contains(port) else {
                throw ConfigError(r.keyPath("server"), "\"\(server)\" must be host:port, like xmpp.example.org:5222")
            }
        }
        let jid = try r.requiredString("jid")
        guard let parsed = JID(jid), parsed.local != nil else {
            throw ConfigError(r.keyPath("jid"), "\"\(jid)\" is not a JID like node1@example.org")
        }
        let inline = try r.string("password")
        let file = try r.string("password_file")
        let password: String
        switch (inline, file) {
        case (let p?, nil): password = p
        case (nil, let f?):
            let full = f.hasPrefix("/") ? f : baseDirectory + "/" + f
            guard let data = FileManager.default.contents(atPath: full) else {
                throw ConfigError(r.keyPath("password_file"), "cannot read \(full)")
            }
            password = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .newlines)
        case (nil, nil): throw ConfigError(r.keyPath("password"), "is required (or password_file)")
        case (_?, _?): throw ConfigError(r.keyPath("password_file"), "give either password or password_file, not both")
        }
        let room = try r.string("room")
        let tlsText = try r.string("tls") ?? "required"
        guard let tls = TLSMode(rawValue: tlsText) else {
            throw ConfigError(r.keyPath("tls"), "\"\(tlsText)\" is not one of required, optional")
        }
        let caFile = try r.string("ca_file")
        if let caFile, !FileManager.default.fileExists(atPath: caFile) {
            throw ConfigError(r.keyPath("ca_file"), "\(caFile): no such file")
        }
        var untrusted = false
        if let v = r.raw("accept_untrusted_server") {
            guard case .bool(let b) = v else {
                throw ConfigError(r.keyPath("accept_untrusted_server"), "must be true or false, not \(v.typeName)")
            }
            untrusted = b
        }
        let maxLinks = try r.int("max_links", in: 1...1000) ?? 64
        let timeout = try r.int("peer_timeout_s", in: 5...86400) ?? 60
        try r.rejectUnknownKeys(known: ["server", "jid", "password", "password_file", "room", "tls", "ca_file",
                                        "accept_untrusted_server", "max_links", "peer_timeout_s"])
        let client = XMPPConfig(server: server, jid: jid, password: password, room: room, tls: tls,
                                caFile: caFile, acceptUntrustedServer: untrusted)
        return XMPPSettings(client: client, maxLinks: maxLinks, peerTimeout: .seconds(timeout))
    }
}
