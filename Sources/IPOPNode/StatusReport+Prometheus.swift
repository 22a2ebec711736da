/// The status as Prometheus text exposition format (version 0.0.4), for `GET /metrics`.
///
/// One family per quantity, labelled by overlay and peer; counters end in `_total`. The names are a
/// contract like the JSON keys: extend, never rename.
extension StatusReport {
    public func prometheus() -> String {
        var out = PrometheusText()
        out.family("ipop_up", .gauge, "1 while the node runs.")
        out.sample("ipop_up", [("node", node)], 1)
        out.family("ipop_uptime_seconds", .gauge, "Seconds since the node started.")
        out.sample("ipop_uptime_seconds", [], Double(uptime_s))
        out.family("ipop_dropped_total", .counter,
                   "Datagrams dropped node-wide before reaching a TAP, by cause (every link's drops included).")
        for (reason, n) in dropped.sorted(by: { $0.key < $1.key }) {
            out.sample("ipop_dropped_total", [("reason", reason)], Double(n))
        }

        let links = overlays.flatMap { o in o.links.map { (o.id, $0) } }
        func perLink(_ name: String, _ type: PrometheusText.Kind, _ help: String,
                     _ value: (LinkStatus) -> Double?) {
            out.family(name, type, help)
            for (overlay, l) in links {
                if let v = value(l) { out.sample(name, [("overlay", overlay), ("peer", l.peer)], v) }
            }
        }
        perLink("ipop_link_up", .gauge, "1 if the link works (session up, peer answering), else 0.") {
            $0.state == "up" ? 1 : 0
        }
        perLink("ipop_link_relayed", .gauge, "1 if the link runs through a TURN relay, 0 if direct.") {
            $0.path == "relay" ? 1 : 0
        }
        perLink("ipop_link_rx_frames_total", .counter, "Frames received on the link.") { Double($0.rx_frames) }
        perLink("ipop_link_tx_frames_total", .counter, "Frames sent on the link.") { Double($0.tx_frames) }
        perLink("ipop_link_rx_bytes_total", .counter, "Frame bytes received on the link.") { Double($0.rx_bytes) }
        perLink("ipop_link_tx_bytes_total", .counter, "Frame bytes sent on the link.") { Double($0.tx_bytes) }
        perLink("ipop_link_last_handshake_seconds", .gauge, "Seconds since the link's current session was made.") {
            $0.last_handshake_s.map(Double.init)
        }
        perLink("ipop_link_rtt_seconds", .gauge, "Round-trip time of the link's path, as the connectivity checks measured it.") {
            $0.rtt_ms.map { $0 / 1000 }
        }
        out.family("ipop_link_dropped_total", .counter, "Datagrams of the link dropped, by cause.")
        for (overlay, l) in links {
            for (reason, n) in l.dropped.sorted(by: { $0.key < $1.key }) {
                out.sample("ipop_link_dropped_total", [("overlay", overlay), ("peer", l.peer), ("reason", reason)], Double(n))
            }
        }

        out.family("ipop_overlay_links", .gauge, "Links of the overlay.")
        for o in overlays { out.sample("ipop_overlay_links", [("overlay", o.id), ("mode", o.mode)], Double(o.links.count)) }
        out.family("ipop_mac_table_entries", .gauge, "Entries in the overlay's MAC table (switchmode).")
        for o in overlays where o.mode == "switchmode" {
            out.sample("ipop_mac_table_entries", [("overlay", o.id)], Double(o.mac_table.count))
        }
        out.family("ipop_routes", .gauge, "Routes in the overlay's route table (L3 mode).")
        for o in overlays { if let r = o.routes { out.sample("ipop_routes", [("overlay", o.id)], Double(r.count)) } }
        out.family("ipop_forwarding_events_total", .counter,
                   "Switch (switchmode) or router (L3) events of the overlay: learned, flooded, dropTooBig, ...")
        for o in overlays {
            for (event, n) in o.counters.sorted(by: { $0.key < $1.key }) {
                out.sample("ipop_forwarding_events_total", [("overlay", o.id), ("event", event)], Double(n))
            }
        }
        return out.text
    }
}

/// Builds exposition text: `# HELP`, `# TYPE`, then `name{label="value",...} number` lines.
struct PrometheusText {
    enum Kind: String { case counter, gauge }

    private(set) var text = ""

    mutating func family(_ name: String, _ kind: Kind, _ help: String) {
        text += "# HELP \(name) \(help)\n# TYPE \(name) \(kind.rawValue)\n"
    }

    mutating func sample(_ name: String, _ labels: [(String, String)], _ value: Double) {
        text += name
        if !labels.isEmpty {
            text += "{" + labels.map { "\($0.0)=\"\(Self.escape($0.1))\"" }.joined(separator: ",") + "}"
        }
        text += " " + Self.format(value) + "\n"
    }

    /// Label values escape backslash, double quote and line feed (the format's only escapes).
    static func escape(_ s: String) -> String {
        var out = ""
        for c in s {
            switch c {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            default: out.append(c)
            }
        }
        return out
    }

    /// Integers without a fraction (counters stay exact up to 2^53), others as Swift prints them.
    static func format(_ v: Double) -> String {
        if v == v.rounded(), abs(v) < 9.0e15 { return String(Int64(v)) }
        return "\(v)"
    }
}
