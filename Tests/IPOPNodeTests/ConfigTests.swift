import Foundation
import Testing
@testable import IPOPNode

/// Every config problem must name its key, in one line a user can act on.
@Suite struct ConfigTests {
    static let key = "KKgJuw2R2uNTr3tjdOuuSNK8zMDyFQTQt0zjqJ9Xh2s="
    static let peerKey = "Lg4bSKc2GwTXVJ2JNEbMCNrJ7zPFwOuyUyqwlnWyQ3k="

    func config(_ overlay: String = "", top: String = "") -> String {
        """
        { "node_name": "vm1", "private_key": "\(Self.key)" \(top),
          "overlays": [ { "id": "lab", "switchmode": 1 \(overlay),
            "peers": [ { "name": "vm2", "public_key": "\(Self.peerKey)", "endpoint": "10.200.0.2:5800" } ] } ] }
        """
    }

    func error(_ json: String) -> String {
        do {
            _ = try Config.parse(Data(json.utf8))
            return "no error"
        } catch {
            return error.description
        }
    }

    @Test func validConfigGetsDefaults() throws {
        let c = try Config.parse(Data(config().utf8))
        #expect(c.nodeName == "vm1")
        #expect(c.listenPort == 5800)
        #expect(c.controlSocket == "/run/ipop/ipop.sock")
        #expect(c.overlays[0].tapName == "ipop")
        #expect(c.overlays[0].mtu == 1280)
        #expect(c.overlays[0].macAging == .seconds(300))
        #expect(c.overlays[0].macTableSize == 8192)
        #expect(c.overlays[0].clampMSS)
        #expect(c.overlays[0].peers[0].endpoint?.description == "10.200.0.2:5800")
    }

    @Test func fullSeedConfigParses() throws {
        let c = try Config.parse(Data(config(#", "tap_name": "ipop", "mtu": 1400, "ip4": "10.0.3.1", "ip4_mask": 24, "bridge": "lxcbr0""#).utf8))
        #expect(c.overlays[0].bridge == "lxcbr0")
        #expect(c.overlays[0].ip4 == 0x0A00_0301)
        #expect(c.overlays[0].mtu == 1400)
        #expect(try !Config.parse(Data(config(#", "clamp_mss": 0"#).utf8)).overlays[0].clampMSS)
    }

    @Test(arguments: [
        (#", "mtu": 70000"#, "config: overlays[0].mtu: 70000 is not in 576...9000"),
        (#", "mtu": "big""#, "config: overlays[0].mtu: must be a number, not a string"),
        (#", "mtu": 1280.5"#, "config: overlays[0].mtu: 1280.5 is not a whole number"),
        (#", "mtv": 1280"#, "config: overlays[0].mtv: unknown key"),
        (#", "ip4": "10.0.3""#, "config: overlays[0].ip4: \"10.0.3\" is not an IPv4 address"),
        (#", "ip4_mask": 33"#, "config: overlays[0].ip4_mask: 33 is not in 1...32"),
        (#", "tap_name": "this-name-is-too-long""#, "config: overlays[0].tap_name:"),
        (#", "mac": "01:00:5e:00:00:01""#, "config: overlays[0].mac: 01:00:5e:00:00:01 is a multicast address"),
        (#", "mac": "zz""#, "config: overlays[0].mac: \"zz\" is not a MAC address"),
        (#", "psk": "short""#, "config: overlays[0].psk: is not a base64 32-byte key"),
        (#", "clamp_mss": 2"#, "config: overlays[0].clamp_mss: 2 is not in 0...1"),
    ])
    func overlayErrorsNameTheirKey(fragment: String, expected: String) {
        let message = error(config(fragment))
        #expect(message.hasPrefix(expected), "got: \(message)")
        #expect(!message.contains("\n"))
    }

    @Test func l3ModeNeedsAddresses() throws {
        let json = config().replacingOccurrences(of: #""switchmode": 1"#, with: #""switchmode": 0"#)
        #expect(error(json) == "config: overlays[0].ip4: is required in L3 mode (switchmode 0): the node's overlay address")
        let withOwn = config(#", "ip4": "10.10.0.1""#).replacingOccurrences(of: #""switchmode": 1"#, with: #""switchmode": 0"#)
        #expect(error(withOwn) == "config: overlays[0].peers[0].ip4: is required in L3 mode (switchmode 0): the peer's overlay address")
        let full = withOwn.replacingOccurrences(of: #""endpoint": "10.200.0.2:5800""#,
            with: #""endpoint": "10.200.0.2:5800", "ip4": "10.10.0.2", "ip6": "fd50::2", "subnets": ["192.168.20.0/24"]"#)
        let c = try Config.parse(Data(full.utf8))
        #expect(c.overlays[0].switchmode == false)
        #expect(c.overlays[0].peers[0].ip4 == 0x0A0A_0002)
        #expect(c.overlays[0].peers[0].subnets.first?.prefixLength == 24)
        let hostBits = full.replacingOccurrences(of: "192.168.20.0/24", with: "192.168.20.1/24")
        #expect(error(hostBits).hasPrefix("config: overlays[0].peers[0].subnets[0]: \"192.168.20.1/24\" has host bits set"))
        #expect(error(full.replacingOccurrences(of: "fd50::2", with: "fd50::zz"))
            == "config: overlays[0].peers[0].ip6: \"fd50::zz\" is not an IPv6 address")
    }

    @Test func switchmodeIsTheDefaultOnlyWhenAsked() throws {
        // Absent switchmode selects L3 (IPOP's default), which then needs ip4.
        let json = config().replacingOccurrences(of: #", "switchmode": 1"#, with: "")
        #expect(error(json).hasPrefix("config: overlays[0].ip4: is required in L3 mode"))
    }

    @Test func topLevelErrors() {
        #expect(error(config(top: #", "listen_port": 0"#)) == "config: listen_port: 0 is not in 1...65535")
        #expect(error(config(top: #", "log_level": "loud""#)).hasPrefix("config: log_level: \"loud\" is not one of"))
        #expect(error(config(top: #", "colour": 1"#)).hasPrefix("config: colour: unknown key"))
        #expect(error(config(top: #", "control_socket": "rel.sock""#)).hasPrefix("config: control_socket:"))
        #expect(error("{").hasPrefix("config: not valid JSON"))
        // The position of the mistake, as line and column.
        #expect(error("{\n  \"listen_port\": 5800,\n  \"overlays\": x\n}") == "config: not valid JSON (Invalid value at line 3, column 15)")
        #expect(error("[]") == "config: must be an object, not an array")
        let noKey = config().replacingOccurrences(of: "\"private_key\": \"\(Self.key)\"", with: "\"x_unused\": null")
        #expect(error(noKey).hasPrefix("config: private_key: is required"))
        let badKey = config().replacingOccurrences(of: Self.key, with: "notbase64!")
        #expect(error(badKey).hasPrefix("config: private_key: is not a base64 32-byte key"))
    }

    @Test func peerErrorsNameTheirKey() {
        #expect(error(config().replacingOccurrences(of: "10.200.0.2:5800", with: "10.200.0.2"))
            .hasPrefix("config: overlays[0].peers[0].endpoint: \"10.200.0.2\" is not an IPv4 address and port"))
        #expect(error(config().replacingOccurrences(of: Self.peerKey, with: "AAAA"))
            .hasPrefix("config: overlays[0].peers[0].public_key: is not a base64 32-byte public key"))
        #expect(error(config().replacingOccurrences(of: #""name": "vm2", "#, with: ""))
            == "config: overlays[0].peers[0].name: is required")
    }

    @Test func duplicatesAreRefused() {
        let two = """
        { "private_key": "\(Self.key)", "overlays": [ { "id": "a", "switchmode": 1 }, { "id": "a", "switchmode": 1, "tap_name": "x" } ] }
        """
        #expect(error(two) == "config: overlays[1].id: \"a\" is already used by overlays[0]")
        let taps = """
        { "private_key": "\(Self.key)", "overlays": [ { "id": "a", "switchmode": 1 }, { "id": "b", "switchmode": 1 } ] }
        """
        #expect(error(taps) == "config: overlays[1].tap_name: \"ipop\" is already used by overlays[0]")
    }

    @Test func privateKeyFileIsRead() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ipop-cfg-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try (Self.key + "\n").write(to: dir.appendingPathComponent("node.key"), atomically: true, encoding: .utf8)
        let json = config().replacingOccurrences(of: "\"private_key\": \"\(Self.key)\"", with: #""private_key_file": "node.key""#)
        let c = try Config.parse(Data(json.utf8), baseDirectory: dir.path)
        #expect(c.privateKey.rawRepresentation.base64EncodedString() == Self.key)
    }
    @Test func stunAndTurnParse() throws {
        let c = try Config.parse(Data(config(top: """
            , "stun": ["203.0.113.1:3478", "stun.example.org"],
              "turn": [{"server": "203.0.113.1:3479", "username": "u", "password": "p"}],
              "ignored_interfaces": ["docker0"]
            """).utf8))
        #expect(c.traversal.stun == [ServerAddress(host: "203.0.113.1", port: 3478),
                                     ServerAddress(host: "stun.example.org", port: 3478)])
        #expect(c.traversal.turn == [TurnServerSettings(server: ServerAddress(host: "203.0.113.1", port: 3479),
                                                        username: "u", password: "p")])
        #expect(c.ignoredInterfaces == ["docker0"])
        #expect(try Config.parse(Data(config().utf8)).traversal.isEmpty)
    }

    @Test(arguments: [
        (#", "stun": "203.0.113.1:3478""#, "config: stun: must be an array of strings, not a string"),
        (#", "stun": [""]"#, "config: stun[0]: must not be empty"),
        (#", "stun": ["1.2.3.4:0"]"#, "config: stun[0]: \"1.2.3.4:0\": port \"0\" is not in 1...65535"),
        (#", "stun": ["1.2.3.4:x"]"#, "config: stun[0]: \"1.2.3.4:x\": port"),
        (#", "stun": ["a b:1"]"#, "config: stun[0]: \"a b:1\" is not \"host:port\""),
        (#", "stun": [5]"#, "config: stun[0]: must be a string, not a number"),
        (#", "turn": {}"#, "config: turn: must be an array, not an object"),
        (#", "turn": [{"username": "u", "password": "p"}]"#, "config: turn[0].server: is required"),
        (#", "turn": [{"server": "1.2.3.4:99999", "username": "u", "password": "p"}]"#, "config: turn[0].server: \"1.2.3.4:99999\": port"),
        (#", "turn": [{"server": "1.2.3.4:3478", "password": "p"}]"#, "config: turn[0].username: is required"),
        (#", "turn": [{"server": "1.2.3.4:3478", "username": "u"}]"#, "config: turn[0].password: is required"),
        (#", "turn": [{"server": "1.2.3.4:3478", "username": "u", "password": "p", "realm": "x"}]"#, "config: turn[0].realm: unknown key"),
        (#", "turn": ["1.2.3.4:3478"]"#, "config: turn[0]: must be an object, not a string"),
    ])
    func traversalErrorsNameTheirKey(fragment: String, expected: String) {
        let message = error(config(top: fragment))
        #expect(message.hasPrefix(expected), "got: \(message)")
    }
}


@Suite struct MetricsConfigTests {
    let t = ConfigTests()

    @Test func metricsListenParsesOrNamesTheKey() throws {
        let c = try Config.parse(Data(t.config(top: #", "metrics_listen": "127.0.0.1:9587""#).utf8))
        #expect(c.metricsListen.map { "\($0)" } == "127.0.0.1:9587")
        #expect(try Config.parse(Data(t.config().utf8)).metricsListen == nil)
        #expect(t.error(t.config(top: #", "metrics_listen": "localhost""#))
            == #"config: metrics_listen: "localhost" is not an IPv4 address and port like 127.0.0.1:9587"#)
    }
}
