import Crypto
import Foundation
import IPOPWire

/// One overlay: its TAP, its switch settings and its peers. Frames of one overlay never reach another.
public struct OverlayConfig: Sendable {
    public var id: String
    public var switchmode: Bool
    public var tapName: String
    public var mtu: Int
    public var mac: [UInt8]?
    public var ip4: UInt32?
    public var ip4Mask: Int
    /// L3 mode: the node's overlay IPv6 address and prefix length (neighbour solicitations answered locally).
    public var ip6: IPv6Address?
    public var ip6PrefixLength: Int
    public var bridge: String?
    public var psk: SymmetricKey?
    /// Overrides the node key for this overlay only (so membership of one overlay gives nothing in another).
    public var privateKey: Curve25519.KeyAgreement.PrivateKey?
    public var macAging: Duration
    public var macTableSize: Int
    public var peers: [PeerConfig]
    /// Lower the MSS option of TCP SYNs crossing the overlay to what its MTU carries (tinc's
    /// ClampMSS): hosts with a larger MTU than the overlay (containers at 1500 on a bridge with the
    /// TAP) then never send TCP segments the overlay would drop. Config `clamp_mss`, default 1.
    public var clampMSS: Bool = true

    public static let mtuRange = 576...9000
    public static let defaultTapName = "ipop"
    /// IPOP's tap MTU; the seed sets containers to 1280 too.
    public static let defaultMTU = 1280

    static let knownKeys = ["id", "switchmode", "tap_name", "mtu", "mac", "ip4", "ip4_mask", "ip6", "ip6_prefix_len",
                            "bridge", "psk",
                            "private_key", "private_key_file", "mac_aging_s", "mac_table_size", "peers", "clamp_mss"]

    static func parse(_ value: JSONValue, path: String, baseDirectory: String) throws(ConfigError) -> OverlayConfig {
        var r = try ConfigReader(value, path: path)
        let id = try r.requiredString("id")
        let switchmode = (try r.int("switchmode", in: 0...1) ?? 0) == 1
        let tapName = try r.string("tap_name") ?? defaultTapName
        guard (1...15).contains(tapName.utf8.count),
              tapName.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) }) else {
            throw ConfigError(r.keyPath("tap_name"), "\"\(tapName)\" must be 1 to 15 letters, digits, '-', '_' or '.'")
        }
        let mtu = try r.int("mtu", in: mtuRange) ?? defaultMTU
        var mac: [UInt8]? = nil
        if let text = try r.string("mac") {
            guard let parsed = MACText.parse(text) else {
                throw ConfigError(r.keyPath("mac"), "\"\(text)\" is not a MAC address like 02:00:5e:10:00:01")
            }
            guard parsed[0] & 1 == 0 else {
                throw ConfigError(r.keyPath("mac"), "\(text) is a multicast address; a TAP needs a unicast MAC")
            }
            mac = parsed
        }
        var ip4: UInt32? = nil
        if let text = try r.string("ip4") {
            guard let a = Endpoint.parseIPv4(text) else {
                throw ConfigError(r.keyPath("ip4"), "\"\(text)\" is not an IPv4 address")
            }
            ip4 = a
        }
        let ip4Mask = try r.int("ip4_mask", in: 1...32) ?? 24
        var ip6: IPv6Address? = nil
        if let text = try r.string("ip6") {
            guard let a = IPv6Address(text) else {
                throw ConfigError(r.keyPath("ip6"), "\"\(text)\" is not an IPv6 address")
            }
            ip6 = a
        }
        let ip6PrefixLength = try r.int("ip6_prefix_len", in: 8...128) ?? 64
        if !switchmode && ip4 == nil {
            throw ConfigError(r.keyPath("ip4"), "is required in L3 mode (switchmode 0): the node's overlay address")
        }
        let bridge = try r.string("bridge")
        if let bridge, !(1...15).contains(bridge.utf8.count) {
            throw ConfigError(r.keyPath("bridge"), "\"\(bridge)\" is not an interface name (1 to 15 characters)")
        }
        if bridge != nil && !switchmode {
            throw ConfigError(r.keyPath("bridge"), "only switchmode overlays join a bridge (L3 mode routes IP packets)")
        }
        var psk: SymmetricKey? = nil
        if let text = try r.string("psk") {
            psk = try KeyCoding.symmetricKey(base64: text, path: r.keyPath("psk"))
        }
        let privateKey = try Config.readPrivateKey(&r, baseDirectory: baseDirectory, required: false)
        let aging = try r.int("mac_aging_s", in: 10...86400) ?? 300
        let tableSize = try r.int("mac_table_size", in: 16...1_000_000) ?? 8192
        let clampMSS = (try r.int("clamp_mss", in: 0...1) ?? 1) == 1
        var peers: [PeerConfig] = []
        for (i, p) in (try r.array("peers") ?? []).enumerated() {
            peers.append(try PeerConfig.parse(p, path: r.keyPath("peers") + "[\(i)]", l3: !switchmode))
        }
        var seen: [String: Int] = [:]
        var seenKeys: [Data: Int] = [:]
        for (i, p) in peers.enumerated() {
            if let first = seen[p.name] {
                throw ConfigError(r.keyPath("peers") + "[\(i)].name", "\"\(p.name)\" is already used by peers[\(first)]")
            }
            if let first = seenKeys[p.publicKey.rawRepresentation] {
                throw ConfigError(r.keyPath("peers") + "[\(i)].public_key", "is the same key as peers[\(first)]")
            }
            seen[p.name] = i
            seenKeys[p.publicKey.rawRepresentation] = i
        }
        try r.rejectUnknownKeys(known: knownKeys)
        return OverlayConfig(id: id, switchmode: switchmode, tapName: tapName, mtu: mtu, mac: mac, ip4: ip4,
                             ip4Mask: ip4Mask, ip6: ip6, ip6PrefixLength: ip6PrefixLength, bridge: bridge, psk: psk, privateKey: privateKey,
                             macAging: .seconds(aging), macTableSize: tableSize, peers: peers, clampMSS: clampMSS)
    }
}

/// A statically configured peer of an overlay.
public struct PeerConfig: Sendable {
    public var name: String
    public var publicKey: Curve25519.KeyAgreement.PublicKey
    /// Where to reach it; nil means it is expected to contact us (its address is learned then).
    public var endpoint: Endpoint?
    /// L3 mode: the peer's overlay addresses and the LAN prefixes it routes for (IPOP's router mode).
    public var ip4: UInt32? = nil
    public var ip6: IPv6Address? = nil
    public var subnets: [(address: UInt32, prefixLength: Int)] = []

    static func parse(_ value: JSONValue, path: String, l3: Bool) throws(ConfigError) -> PeerConfig {
        var r = try ConfigReader(value, path: path)
        let name = try r.requiredString("name")
        let keyText = try r.requiredString("public_key")
        let key = try KeyCoding.publicKey(base64: keyText, path: r.keyPath("public_key"))
        var endpoint: Endpoint? = nil
        if let text = try r.string("endpoint") {
            guard let e = Endpoint(text) else {
                throw ConfigError(r.keyPath("endpoint"), "\"\(text)\" is not an IPv4 address and port like 10.200.0.2:5800")
            }
            endpoint = e
        }
        var peer = PeerConfig(name: name, publicKey: key, endpoint: endpoint)
        if let text = try r.string("ip4") {
            guard let a = Endpoint.parseIPv4(text) else {
                throw ConfigError(r.keyPath("ip4"), "\"\(text)\" is not an IPv4 address")
            }
            peer.ip4 = a
        }
        if let text = try r.string("ip6") {
            guard let a = IPv6Address(text) else {
                throw ConfigError(r.keyPath("ip6"), "\"\(text)\" is not an IPv6 address")
            }
            peer.ip6 = a
        }
        for (i, text) in (try r.stringArray("subnets") ?? []).enumerated() {
            let parts = text.split(separator: "/")
            guard parts.count == 2, let a = Endpoint.parseIPv4(parts[0]), let len = Int(parts[1]), (0...32).contains(len) else {
                throw ConfigError(r.keyPath("subnets") + "[\(i)]", "\"\(text)\" is not an IPv4 prefix like 192.168.10.0/24")
            }
            let mask: UInt32 = len == 0 ? 0 : ~UInt32(0) << (32 - len)
            guard a & ~mask == 0 else {
                throw ConfigError(r.keyPath("subnets") + "[\(i)]", "\"\(text)\" has host bits set (did you mean \(Endpoint.formatIPv4(a & mask))/\(len)?)")
            }
            peer.subnets.append((a, len))
        }
        if l3 && peer.ip4 == nil {
            throw ConfigError(r.keyPath("ip4"), "is required in L3 mode (switchmode 0): the peer's overlay address")
        }
        try r.rejectUnknownKeys(known: ["name", "public_key", "endpoint", "ip4", "ip6", "subnets"])
        return peer
    }
}

/// MAC text for config values (the data path uses IPOPWire's MACAddress).
enum MACText {
    static func parse(_ text: String) -> [UInt8]? {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 6 else { return nil }
        var out: [UInt8] = []
        for p in parts {
            guard p.count == 2, let b = UInt8(p, radix: 16) else { return nil }
            out.append(b)
        }
        return out
    }
}
