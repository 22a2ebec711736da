import Testing
@testable import IPOPNode

@Suite struct PrometheusTests {
    static func report() -> StatusReport {
        var link = StatusReport.LinkStatus(peer: "vm\"2\\\n", endpoint: "10.200.0.2:5800", state: "up",
                                           rx_frames: 3, tx_frames: 4, rx_bytes: 12_345_678_901, tx_bytes: 6,
                                           last_handshake_s: 7, dropped: ["replay": 2, "auth_failure": 0])
        link.path = "relay"
        link.rtt_ms = 1.5
        let down = StatusReport.LinkStatus(peer: "vm3", endpoint: nil, state: "connecting", rx_frames: 0, tx_frames: 0,
                                           rx_bytes: 0, tx_bytes: 0, last_handshake_s: nil, dropped: [:])
        let sw = StatusReport.OverlayStatus(id: "lab", mode: "switchmode", tap: "ipop", mtu: 1280, links: [link, down],
                                            mac_table: [.init(mac: "02:00:00:00:00:01", link: "local", age_s: 1)],
                                            counters: ["flooded": 9, "learned": 1], routes: nil)
        let l3 = StatusReport.OverlayStatus(id: "l3", mode: "l3", tap: "ipl3", mtu: 1280, links: [], mac_table: [],
                                            counters: ["dropNoRoute": 5],
                                            routes: [.init(prefix: "10.10.0.2/32", peer: "vm2", packets_out: 1, packets_in: 1)])
        return StatusReport(node: "vm1", listen_port: 5800, uptime_s: 42, dropped: ["malformed": 11, "stray_traversal": 1],
                            overlays: [sw, l3])
    }

    @Test func textShowsWhatTheNodeDidAboutTheMTUOnlyWhenItDidSomething() {
        var report = Self.report()
        #expect(!report.text().contains("clamped"))
        report.overlays[0].counters["mssClamped"] = 2
        report.overlays[0].counters["icmpTooBigSent"] = 7
        report.overlays[0].counters["icmpUnreachableSent"] = 0
        #expect(report.text().contains("overlay lab (switchmode, tap ipop, mtu 1280)\n  2 TCP SYNs clamped, 7 ICMP too-big sent\n"))
    }

    @Test func rendersEveryFamilyWithExactSamples() {
        let text = Self.report().prometheus()
        let lines = Set(text.split(separator: "\n").map(String.init))
        for expected in [
            #"ipop_up{node="vm1"} 1"#,
            "ipop_uptime_seconds 42",
            #"ipop_dropped_total{reason="malformed"} 11"#,
            #"ipop_dropped_total{reason="stray_traversal"} 1"#,
            // Label values escape quote, backslash and newline.
            #"ipop_link_up{overlay="lab",peer="vm\"2\\\n"} 1"#,
            #"ipop_link_up{overlay="lab",peer="vm3"} 0"#,
            #"ipop_link_relayed{overlay="lab",peer="vm\"2\\\n"} 1"#,
            #"ipop_link_rx_bytes_total{overlay="lab",peer="vm\"2\\\n"} 12345678901"#,
            #"ipop_link_rtt_seconds{overlay="lab",peer="vm\"2\\\n"} 0.0015"#,
            #"ipop_link_dropped_total{overlay="lab",peer="vm\"2\\\n",reason="replay"} 2"#,
            #"ipop_mac_table_entries{overlay="lab"} 1"#,
            #"ipop_routes{overlay="l3"} 1"#,
            #"ipop_overlay_links{overlay="lab",mode="switchmode"} 2"#,
            #"ipop_forwarding_events_total{overlay="l3",event="dropNoRoute"} 5"#,
            "# TYPE ipop_link_rx_bytes_total counter",
            "# TYPE ipop_link_up gauge",
        ] {
            #expect(lines.contains(expected), "missing: \(expected)")
        }
        // A link without a handshake or RTT has no sample rather than a made-up one.
        #expect(!text.contains(#"ipop_link_last_handshake_seconds{overlay="lab",peer="vm3"}"#))
        #expect(!text.contains(#"ipop_link_rtt_seconds{overlay="lab",peer="vm3"}"#))
        // Each family is declared once, and every sample line belongs to a declared family.
        let declared = lines.filter { $0.hasPrefix("# TYPE ") }.map { $0.split(separator: " ")[2] }
        #expect(declared.count == Set(declared).count)
        for line in lines where !line.hasPrefix("#") {
            let name = line.prefix { $0 != "{" && $0 != " " }
            #expect(declared.contains(Substring(name)), "undeclared: \(line)")
        }
        #expect(text.hasSuffix("\n"))
    }
}
