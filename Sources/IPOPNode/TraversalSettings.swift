import Foundation
import IPOPWire

/// `host:port` of a STUN or TURN server, as written in the config. The host may be a name; it is
/// resolved when the node starts (IPv4 only, like the rest of the underlay).
public struct ServerAddress: Hashable, Sendable, CustomStringConvertible {
    public var host: String
    public var port: UInt16

    public var description: String { "\(host):\(port)" }

    /// Parses `host:port` (port 1...65535; default 3478, the STUN/TURN port, when omitted).
    static func parse(_ text: String, path: String) throws(ConfigError) -> ServerAddress {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard !trimmed.isEmpty else { throw ConfigError(path, "must not be empty (want \"host:port\")") }
        var host = trimmed
        var port = 3478
        if let colon = trimmed.lastIndex(of: ":") {
            host = String(trimmed[..<colon])
            let portText = trimmed[trimmed.index(after: colon)...]
            guard let p = Int(portText), (1...65535).contains(p) else {
                throw ConfigError(path, "\"\(text)\": port \"\(portText)\" is not in 1...65535")
            }
            port = p
        }
        guard !host.isEmpty, !host.contains(":"), !host.contains(" "),
              host.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "." || $0 == "-") }) else {
            throw ConfigError(path, "\"\(text)\" is not \"host:port\"")
        }
        return ServerAddress(host: host, port: UInt16(port))
    }
}

/// One `turn` entry: a TURN server with long-term credentials (RFC 8656).
public struct TurnServerSettings: Hashable, Sendable {
    public var server: ServerAddress
    public var username: String
    public var password: String
}

/// The `stun` and `turn` keys: where NAT traversal learns the node's reflexive and relayed addresses.
public struct TraversalSettings: Hashable, Sendable {
    public var stun: [ServerAddress] = []
    public var turn: [TurnServerSettings] = []

    public var isEmpty: Bool { stun.isEmpty && turn.isEmpty }

    static func parseStun(_ values: [String]?, path: String) throws(ConfigError) -> [ServerAddress] {
        var out: [ServerAddress] = []
        for (i, text) in (values ?? []).enumerated() {
            out.append(try ServerAddress.parse(text, path: "\(path)[\(i)]"))
        }
        guard out.count <= 8 else { throw ConfigError(path, "lists \(out.count) servers; at most 8") }
        return out
    }

    static func parseTurn(_ values: [JSONValue]?, path: String) throws(ConfigError) -> [TurnServerSettings] {
        var out: [TurnServerSettings] = []
        for (i, value) in (values ?? []).enumerated() {
            var r = try ConfigReader(value, path: "\(path)[\(i)]")
            let serverText = try r.requiredString("server")
            let server = try ServerAddress.parse(serverText, path: r.keyPath("server"))
            let username = try r.requiredString("username")
            let password = try r.requiredString("password")
            try r.rejectUnknownKeys(known: ["server", "username", "password"])
            out.append(TurnServerSettings(server: server, username: username, password: password))
        }
        guard out.count <= 8 else { throw ConfigError(path, "lists \(out.count) servers; at most 8") }
        return out
    }
}
