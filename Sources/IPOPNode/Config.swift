import Crypto
import Foundation
import IPOPWire

/// The node's configuration: one JSON file, validated completely before anything is touched.
///
/// ```
/// { "node_name": "vm1", "private_key": "<base64>", "listen_port": 5800,
///   "control_socket": "/run/ipop/ipop.sock", "log_level": "info",
///   "overlays": [ { "id": "lab", "switchmode": 1, "tap_name": "ipop", "mtu": 1280,
///                   "ip4": "10.0.3.1", "ip4_mask": 24, "bridge": "lxcbr0",
///                   "peers": [ { "name": "vm2", "public_key": "<base64>", "endpoint": "10.200.0.2:5800" } ] } ] }
/// ```
public struct Config: Sendable {
    public var nodeName: String
    public var privateKey: Curve25519.KeyAgreement.PrivateKey
    public var listenPort: UInt16
    public var controlSocket: String
    public var logLevel: LogLevel
    public var overlays: [OverlayConfig]
    /// A session is replaced by a fresh handshake once it is this old (forward secrecy).
    public var rekeyAfter: Duration = .seconds(120)
    /// A keepalive goes out on a link idle this long, so NAT mappings stay open.
    public var keepalive: Duration = .seconds(10)
    /// Signalling and discovery through an XMPP server (optional; static peers work without it).
    public var xmpp: XMPPSettings? = nil
    /// Interfaces whose addresses are never offered as candidates (besides the node's own TAPs).
    public var ignoredInterfaces: [String] = []
    /// STUN and TURN servers for NAT traversal (`stun`, `turn`).
    public var traversal = TraversalSettings()
    /// Where `GET /metrics` (Prometheus text format) is served; nil: nowhere.
    public var metricsListen: Endpoint? = nil

    public enum LogLevel: String, CaseIterable, Sendable {
        case trace, debug, info, notice, warning, error, critical
    }

    public static let defaultControlSocket = "/run/ipop/ipop.sock"
    public static let defaultListenPort: UInt16 = 5800

    /// Reads and validates a config file.
    public static func load(path: String) throws(ConfigError) -> Config {
        guard let data = FileManager.default.contents(atPath: path) else {
            let reason = FileManager.default.fileExists(atPath: path) ? "cannot be read (permissions?)" : "no such file"
            throw ConfigError("", "\(path): \(reason)")
        }
        return try parse(data, baseDirectory: (path as NSString).deletingLastPathComponent)
    }

    /// Parses and validates config JSON. `private_key_file` paths are relative to `baseDirectory`.
    public static func parse(_ data: Data, baseDirectory: String = ".") throws(ConfigError) -> Config {
        let root: JSONValue
        do {
            root = try JSONDecoder().decode(JSONValue.self, from: data)
        } catch {
            throw ConfigError("", "not valid JSON (\(jsonErrorSummary(error, data: data)))")
        }
        var r = try ConfigReader(root, path: "")
        let nodeName = try r.string("node_name") ?? ProcessInfo.processInfo.hostName
        guard !nodeName.isEmpty else { throw ConfigError("node_name", "must not be empty") }

        let privateKey = try readPrivateKey(&r, baseDirectory: baseDirectory, required: true)!
        let listenPort = UInt16(try r.int("listen_port", in: 1...65535) ?? Int(defaultListenPort))
        let controlSocket = try r.string("control_socket") ?? defaultControlSocket
        guard controlSocket.utf8.count < 108, controlSocket.hasPrefix("/") else {
            throw ConfigError("control_socket", "\"\(controlSocket)\" must be an absolute path shorter than 108 bytes")
        }
        let levelText = try r.string("log_level") ?? "info"
        guard let logLevel = LogLevel(rawValue: levelText.lowercased()) else {
            throw ConfigError("log_level", "\"\(levelText)\" is not one of \(LogLevel.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        let rekeyAfter = try r.int("rekey_after_s", in: 10...86400) ?? 120
        let keepalive = try r.int("keepalive_s", in: 1...3600) ?? 10
        var xmpp: XMPPSettings? = nil
        if let value = r.raw("xmpp") {
            xmpp = try XMPPSettings.parse(value, path: "xmpp", baseDirectory: baseDirectory)
        }
        let ignored = try r.stringArray("ignored_interfaces") ?? []
        var traversal = TraversalSettings()
        traversal.stun = try TraversalSettings.parseStun(try r.stringArray("stun"), path: "stun")
        traversal.turn = try TraversalSettings.parseTurn(try r.array("turn"), path: "turn")
        guard let overlayValues = try r.array("overlays") else { throw ConfigError("overlays", "is required") }
        guard !overlayValues.isEmpty else { throw ConfigError("overlays", "must list at least one overlay") }
        var overlays: [OverlayConfig] = []
        for (i, value) in overlayValues.enumerated() {
            overlays.append(try OverlayConfig.parse(value, path: "overlays[\(i)]", baseDirectory: baseDirectory))
        }
        var metricsListen: Endpoint?
        if let text = try r.string("metrics_listen") {
            guard let e = Endpoint(text), e.port != 0 else {
                throw ConfigError("metrics_listen", "\"\(text)\" is not an IPv4 address and port like 127.0.0.1:9587")
            }
            metricsListen = e
        }
        try r.rejectUnknownKeys(known: ["node_name", "private_key", "private_key_file", "listen_port",
                                        "control_socket", "log_level", "overlays", "rekey_after_s", "keepalive_s",
                                        "xmpp", "ignored_interfaces", "stun", "turn", "metrics_listen"])
        try checkUnique(overlays.map(\.id), key: "id")
        try checkUnique(overlays.map(\.tapName), key: "tap_name")
        return Config(nodeName: nodeName, privateKey: privateKey, listenPort: listenPort,
                      controlSocket: controlSocket, logLevel: logLevel, overlays: overlays,
                      rekeyAfter: .seconds(rekeyAfter), keepalive: .seconds(keepalive), xmpp: xmpp,
                      ignoredInterfaces: ignored, traversal: traversal, metricsListen: metricsListen)
    }

    private static func checkUnique(_ values: [String], key: String) throws(ConfigError) {
        var seen: [String: Int] = [:]
        for (i, v) in values.enumerated() {
            if let first = seen[v] {
                throw ConfigError("overlays[\(i)].\(key)", "\"\(v)\" is already used by overlays[\(first)]")
            }
            seen[v] = i
        }
    }

    /// Reads `private_key` or `private_key_file` (exactly one of them).
    static func readPrivateKey(_ r: inout ConfigReader, baseDirectory: String,
                               required: Bool) throws(ConfigError) -> Curve25519.KeyAgreement.PrivateKey? {
        let inline = try r.string("private_key")
        let file = try r.string("private_key_file")
        if inline != nil && file != nil {
            throw ConfigError(r.keyPath("private_key_file"), "give either private_key or private_key_file, not both")
        }
        if let inline {
            return try KeyCoding.privateKey(base64: inline, path: r.keyPath("private_key"))
        }
        if let file {
            let full = file.hasPrefix("/") ? file : baseDirectory + "/" + file
            guard let data = FileManager.default.contents(atPath: full) else {
                throw ConfigError(r.keyPath("private_key_file"), "cannot read \(full)")
            }
            let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            return try KeyCoding.privateKey(base64: text, path: r.keyPath("private_key_file"))
        }
        if required {
            throw ConfigError("private_key", "is required (generate one with: ipop genkey)")
        }
        return nil
    }

    /// What is wrong and where: JSONDecoder only says "not valid JSON", JSONSerialization names the
    /// offset ("Invalid value around character 17."), which becomes a line and column here.
    static func jsonErrorSummary(_ error: Error, data: Data) -> String {
        var summary = "\(error)"
        if case DecodingError.dataCorrupted(let context) = error {
            summary = context.underlyingError.map { "\($0)" } ?? context.debugDescription
        }
        do { _ = try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed]) } catch let e as NSError {
            if let detail = e.userInfo[NSDebugDescriptionErrorKey] as? String { summary = detail }
        }
        summary = summary.replacingOccurrences(of: "\n", with: " ")
        if let range = summary.range(of: #"around character (\d+)"#, options: .regularExpression),
           let offset = Int(summary[range].split(separator: " ").last ?? "") {
            let (line, column) = lineAndColumn(of: offset, in: data)
            summary.replaceSubrange(range, with: "at line \(line), column \(column)")
        }
        if summary.hasSuffix(".") { summary.removeLast() }
        return summary
    }

    /// 1-based line and column of a byte offset.
    static func lineAndColumn(of offset: Int, in data: Data) -> (Int, Int) {
        var line = 1, column = 1
        for byte in data.prefix(max(0, offset)) {
            if byte == UInt8(ascii: "\n") { line += 1; column = 1 } else { column += 1 }
        }
        return (line, column)
    }
}

/// Base64 X25519 keys, as `wg genkey` / `wg pubkey` print them.
public enum KeyCoding {
    public static func privateKey(base64: String, path: String) throws(ConfigError) -> Curve25519.KeyAgreement.PrivateKey {
        guard let raw = Data(base64Encoded: base64.trimmingCharacters(in: .whitespaces)), raw.count == 32 else {
            throw ConfigError(path, "is not a base64 32-byte key (generate one with: ipop genkey)")
        }
        do { return try Curve25519.KeyAgreement.PrivateKey(rawRepresentation: raw) } catch {
            throw ConfigError(path, "is not a valid X25519 private key")
        }
    }

    public static func publicKey(base64: String, path: String) throws(ConfigError) -> Curve25519.KeyAgreement.PublicKey {
        guard let raw = Data(base64Encoded: base64.trimmingCharacters(in: .whitespaces)), raw.count == 32 else {
            throw ConfigError(path, "is not a base64 32-byte public key (derive one with: ipop pubkey < private.key)")
        }
        do { return try Curve25519.KeyAgreement.PublicKey(rawRepresentation: raw) } catch {
            throw ConfigError(path, "is not a valid X25519 public key")
        }
    }

    public static func symmetricKey(base64: String, path: String) throws(ConfigError) -> SymmetricKey {
        guard let raw = Data(base64Encoded: base64.trimmingCharacters(in: .whitespaces)), raw.count == 32 else {
            throw ConfigError(path, "is not a base64 32-byte key (generate one with: ipop genpsk)")
        }
        return SymmetricKey(data: raw)
    }

    public static func encode(_ raw: some DataProtocol) -> String { Data(raw).base64EncodedString() }
}
