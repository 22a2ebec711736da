import IPOPLink
import IPOPLinux
import IPOPSwitch
import IPOPWire

/// TAP -> switch -> seal -> UDP.
///
/// Frames are read straight into send slots behind room for the link header, sealed in place
/// and sent as one sendmmsg batch. Nothing here allocates, logs or locks.
extension Node {
    func drainTap(_ overlay: Overlay, now: ContinuousClock.Instant) {
        if overlay.tap.vnetHeader { return drainOffloadTap(overlay, now: now) }
        let header = LinkEngine.transportHeaderSize
        let maxFrame = Tunables.slotSize - LinkEngine.transportOverhead
        var used = 0
        for _ in 0..<Tunables.tapReadBudget {
            // Keep room for a flood to every link of this overlay.
            if used + max(1, overlay.links.count) > tx.capacity {
                tx.send(count: used, on: udp)
                used = 0
            }
            let slot = tx.buffer(used)
            let payload = UnsafeMutableRawBufferPointer(rebasing: slot[header..<(header + maxFrame)])
            guard let length = overlay.tap.read(into: payload) else { break }
            forward(overlay, length: length, slots: &used, now: now)
        }
        tx.send(count: used, on: udp)
    }

    /// A TAP with offloads: one read may be a TCP segment of up to 64 KB (cut here into frames of
    /// the TAP's MTU, each written straight into its send slot: the one copy) or a frame whose
    /// checksum is left to us. Reads go to `offloadScratch`, behind the 10-byte vnet header.
    private func drainOffloadTap(_ overlay: Overlay, now: ContinuousClock.Instant) {
        let header = LinkEngine.transportHeaderSize
        let maxFrame = Tunables.slotSize - LinkEngine.transportOverhead
        let perFrame = max(1, overlay.links.count)
        var used = 0
        for _ in 0..<Tunables.tapReadBudget {
            guard let length = overlay.tap.read(into: offloadScratch), length > VirtioNetHeader.size else { break }
            let vnet = VirtioNetHeader(UnsafeRawBufferPointer(offloadScratch))
            let frame = UnsafeMutableRawBufferPointer(rebasing: offloadScratch[VirtioNetHeader.size ..< length])
            guard let plan = try? Segmentation.plan(vnet, frame: frame) else {
                offloadDrops &+= 1
                continue
            }
            for i in 0..<plan.count {
                if used + perFrame > tx.capacity {
                    tx.send(count: used, on: udp)
                    used = 0
                }
                guard plan.length(of: i) <= maxFrame else { offloadDrops &+= 1; break }
                let slot = tx.buffer(used)
                let payload = UnsafeMutableRawBufferPointer(rebasing: slot[header..<(header + maxFrame)])
                let frameLength = Segmentation.segment(plan, index: i, frame: UnsafeRawBufferPointer(frame), into: payload)
                forward(overlay, length: frameLength, slots: &used, now: now)
            }
        }
        tx.send(count: used, on: udp)
    }

    /// The frame in slot `used` (behind the link header) goes where the switch says: sealed in
    /// place for one link, or copied to one slot per link for a flood. Advances `used`.
    @inline(__always)
    private func forward(_ overlay: Overlay, length: Int, slots used: inout Int, now: ContinuousClock.Instant) {
        let header = LinkEngine.transportHeaderSize
        let frame = UnsafeMutableRawBufferPointer(start: tx.buffer(used).baseAddress! + header, count: length)
        overlay.clampMSS(frame)
        switch decide(overlay, UnsafeRawBufferPointer(frame), now: now) {
        case .unicast(let link):
            used += seal(PeerID(raw: link.raw), slot: used, length: length, now: now)
        case .flood:
            // One copy of the plaintext per extra link: sealing works in place.
            let links = overlay.links
            if links.count > 1 {
                floodScratch.baseAddress!.copyMemory(from: frame.baseAddress!, byteCount: length)
            }
            for (i, link) in links.enumerated() {
                if i > 0 {
                    tx.buffer(used).baseAddress!.advanced(by: header)
                        .copyMemory(from: floodScratch.baseAddress!, byteCount: length)
                }
                used += seal(link, slot: used, length: length, now: now)
            }
        case .drop(.tooBig):
            answerTooBigIntoTap(UnsafeRawBufferPointer(frame), overlay: overlay, now: now)
        case .drop:
            break
        }
    }

    /// The forwarding decision of the overlay's switch, or of its router (which answers ARP and
    /// neighbour solicitations itself, straight back into the TAP).
    @inline(__always)
    private func decide(_ overlay: Overlay, _ frame: UnsafeRawBufferPointer, now: ContinuousClock.Instant) -> TapDecision {
        guard overlay.router != nil else { return overlay.fabric.fromTap(frame, now: now) }
        switch overlay.router!.fromTap(frame, reply: replyScratch, now: now) {
        case .reply(let length):
            overlay.tap.write(UnsafeRawBufferPointer(rebasing: replyScratch[0..<length]))
            return .drop(.localDestination)
        case .unicast(let link): return .unicast(link)
        case .flood: return .flood
        case .drop(.noRoute):
            answerUnreachableIntoTap(frame, overlay: overlay, now: now)
            return .drop(.malformed)   // counted by the router (dropNoRoute); the reason is not used further
        case .drop(let reason): return .drop(reason == .tooBig ? .tooBig : .malformed)
        }
    }

    /// Seals the frame in slot `slot` for `peer`. Returns 1 if the slot is ready to send, 0 if not
    /// (no session yet: the engine keeps the frame in a small per-peer queue and starts a handshake).
    @inline(__always)
    func seal(_ peer: PeerID, slot: Int, length: Int, now: ContinuousClock.Instant) -> Int {
        switch engine.seal(peer: peer, buffer: tx.buffer(slot), payloadLength: length, now: now) {
        case .send(let sealedLength, let endpoint):
            // Relayed link: ChannelData to our TURN server (Node+Traversal.swift).
            if !nat.relayRoutes.isEmpty, let channel = nat.relayRoutes[endpoint] {
                return relaySlot(tx.buffer(slot), slot: slot, length: sealedLength, to: endpoint, channel: channel)
            }
            tx.set(slot, length: sealedLength, to: endpoint)
            return 1
        case .noSession, .noEndpoint:
            engineWantsPoll = true
            return 0
        }
    }
}
