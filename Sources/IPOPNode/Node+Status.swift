import IPOPLink
import IPOPSwitch

extension Node {
    func statusReport(now: ContinuousClock.Instant) -> StatusReport {
        var overlaysOut: [StatusReport.OverlayStatus] = []
        for overlay in overlays {
            var links: [StatusReport.LinkStatus] = []
            for link in overlay.links {
                let s = engine.status(link, now: now)
                let p = pathStatus(link, endpoint: s.endpoint)
                let c = checkStatus(link)
                links.append(StatusReport.LinkStatus(
                    peer: s.name,
                    endpoint: s.endpoint.map { "\($0)" },
                    state: s.state.rawValue,
                    rx_frames: s.rxFrames, tx_frames: s.txFrames, rx_bytes: s.rxBytes, tx_bytes: s.txBytes,
                    last_handshake_s: s.lastHandshake.map { Int($0.duration(to: now).components.seconds) },
                    dropped: s.drops, path: p.path, local_candidate: p.local, remote_candidate: p.remote,
                    rtt_ms: p.rtt.map { ($0 * 1000).rounded() / 1000 }, checks: c.run, checking: c.running))
            }
            let macs = overlay.fabric.entries(now: now).map { e in
                StatusReport.MACEntry(mac: e.mac.description,
                                      link: e.link.map { overlay.name(of: $0) } ?? "local",
                                      age_s: Int(e.age.components.seconds))
            }
            let routes = overlay.router?.routes(now: now).map {
                StatusReport.RouteStatus(prefix: $0.prefix, peer: overlay.name(of: $0.link),
                                         packets_out: $0.packetsOut, packets_in: $0.packetsIn)
            }
            overlaysOut.append(StatusReport.OverlayStatus(
                id: overlay.config.id, mode: overlay.modeName, tap: overlay.tap.name, mtu: overlay.config.mtu,
                links: links, mac_table: macs,
                counters: (overlay.router?.counters.dictionary ?? overlay.fabric.counters.dictionary)
                    .merging(["mssClamped": overlay.mssClamped, "icmpTooBigSent": overlay.tooBigAnswered,
                              "icmpUnreachableSent": overlay.unreachableAnswered]) { a, _ in a },
                routes: routes))
        }
        return StatusReport(node: config.nodeName, listen_port: Int(udp.port),
                            uptime_s: Int(startedAt.duration(to: now).components.seconds),
                            dropped: engine.drops.dictionary.merging(["stray_traversal": nat.strayDrops]) { a, _ in a },
                            overlays: overlaysOut)
    }

    func statusJSON(now: ContinuousClock.Instant) -> [UInt8] {
        statusReport(now: now).json()
    }
}
