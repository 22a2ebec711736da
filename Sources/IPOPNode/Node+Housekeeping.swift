import IPOPLink
import IPOPSwitch

/// Once a second: age MAC entries, log link state changes and MTU trouble.
extension Node {
    func housekeeping(now: ContinuousClock.Instant) {
        nextHousekeeping = now + Tunables.housekeepingInterval
        signallingHousekeeping(now: now)
        metrics?.board.publish(statusReport(now: now).prometheus())
        for overlay in overlays {
            overlay.fabric.expire(now: now)
            overlay.warnAboutTooBigFrames(now: now, log: log)
            for link in overlay.links {
                let status = engine.status(link, now: now)
                let state = status.state.rawValue
                if lastLinkState[link.raw] != state {
                    let previous = lastLinkState[link.raw]
                    lastLinkState[link.raw] = state
                    let endpoint = status.endpoint.map { "\($0)" } ?? "unknown endpoint"
                    if state == "up" {
                        log.info("overlay \(overlay.config.id): link \(status.name) up via \(endpoint)")
                    } else if previous != nil {
                        log.info("overlay \(overlay.config.id): link \(status.name) \(state) (\(endpoint))")
                        overlay.fabric.linkRemoved(LinkID(link.raw))
                    }
                }
            }
        }
    }
}
