import Foundation

/// What `ipop status --json` prints. Field names are a contract: extend, never rename.
public struct StatusReport: Codable, Sendable {
    public var node: String
    public var listen_port: Int
    public var uptime_s: Int
    /// Datagrams dropped by the link engine before they could be tied to a link, by cause
    /// (unknown_peer, bad_mac, rate_limited, malformed, ...), plus every link's drops.
    public var dropped: [String: UInt64]
    public var overlays: [OverlayStatus]

    public struct OverlayStatus: Codable, Sendable {
        public var id: String
        public var mode: String
        public var tap: String
        public var mtu: Int
        public var links: [LinkStatus]
        public var mac_table: [MACEntry]
        public var counters: [String: UInt64]
        /// L3 mode: address or prefix -> peer.
        public var routes: [RouteStatus]?
    }

    public struct RouteStatus: Codable, Sendable {
        public var prefix: String
        public var peer: String
        public var packets_out: UInt64
        public var packets_in: UInt64
    }

    public struct LinkStatus: Codable, Sendable {
        public var peer: String
        public var endpoint: String?
        public var state: String
        public var rx_frames: UInt64
        public var tx_frames: UInt64
        public var rx_bytes: UInt64
        public var tx_bytes: UInt64
        public var last_handshake_s: Int?
        public var dropped: [String: UInt64]
        /// `direct` (our socket to the peer's own or NAT address) or `relay` (through a TURN server).
        public var path: String = "direct"
        /// The candidate pair the connectivity checks chose ("srflx 203.0.113.7:61022 1694498815");
        /// absent for links without checks (static peers).
        public var local_candidate: String? = nil
        public var remote_candidate: String? = nil
        /// Round-trip time of that pair as the checks measured it.
        public var rtt_ms: Double? = nil
        /// Connectivity checks run for this link (through signalling), and whether one runs now.
        public var checks: Int = 0
        public var checking: Bool = false
    }

    public struct MACEntry: Codable, Sendable {
        public var mac: String
        public var link: String
        public var age_s: Int
    }

    public func json(pretty: Bool = false) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = pretty ? [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
                                          : [.sortedKeys, .withoutEscapingSlashes]
        // Encoding plain structs of strings and integers cannot fail.
        return Array((try? encoder.encode(self)) ?? Data("{}".utf8)) + [UInt8(ascii: "\n")]
    }

    /// The human view, in the spirit of `wg show`.
    public func text() -> String {
        var out = "node \(node): udp port \(listen_port), up \(Self.duration(uptime_s))\n"
        for o in overlays {
            out += "\noverlay \(o.id) (\(o.mode), tap \(o.tap), mtu \(o.mtu))\n"
            // What the node did about packets the MTU or the routes could not carry, when it did anything.
            let mtuWork = [("mssClamped", "TCP SYNs clamped"), ("dropTooBig", "too big dropped"),
                           ("icmpTooBigSent", "ICMP too-big sent"), ("icmpUnreachableSent", "ICMP unreachable sent")]
                .compactMap { key, label in o.counters[key].flatMap { $0 > 0 ? "\($0) \(label)" : nil } }
            if !mtuWork.isEmpty { out += "  " + mtuWork.joined(separator: ", ") + "\n" }
            if o.links.isEmpty { out += "  no links\n" }
            for l in o.links {
                out += "  link \(l.peer): \(l.state)"
                out += ", endpoint \(l.endpoint ?? "(none)"), path \(l.path)"
                if let rtt = l.rtt_ms { out += String(format: ", rtt %.1f ms", rtt) }
                if let hs = l.last_handshake_s { out += ", handshake \(Self.duration(hs)) ago" }
                out += "\n    rx \(l.rx_frames) frames / \(Self.bytes(l.rx_bytes)), tx \(l.tx_frames) frames / \(Self.bytes(l.tx_bytes))\n"
                if let local = l.local_candidate, let remote = l.remote_candidate {
                    out += "    candidates: \(local) -> \(remote)\n"
                }
                let drops = l.dropped.filter { $0.value > 0 }.sorted { $0.key < $1.key }
                if !drops.isEmpty {
                    out += "    dropped: " + drops.map { "\($0.key) \($0.value)" }.joined(separator: ", ") + "\n"
                }
            }
            if let routes = o.routes {
                out += "  routes (\(routes.count))\n"
                for r in routes { out += "    \(r.prefix.padding(toLength: max(r.prefix.count, 20), withPad: " ", startingAt: 0))  -> \(r.peer)\n" }
                continue
            }
            out += "  mac table (\(o.mac_table.count) entries)\n"
            for e in o.mac_table {
                out += "    \(e.mac)  \(e.link.padding(toLength: max(e.link.count, 10), withPad: " ", startingAt: 0))  age \(e.age_s)s\n"
            }
        }
        return out
    }

    static func duration(_ s: Int) -> String {
        if s < 60 { return "\(s)s" }
        if s < 3600 { return "\(s / 60)m\(s % 60)s" }
        return "\(s / 3600)h\(s / 60 % 60)m"
    }

    static func bytes(_ b: UInt64) -> String {
        if b < 1024 { return "\(b) B" }
        if b < 1 << 20 { return String(format: "%.1f KiB", Double(b) / 1024) }
        if b < 1 << 30 { return String(format: "%.1f MiB", Double(b) / 1048576) }
        return String(format: "%.2f GiB", Double(b) / 1073741824)
    }
}
