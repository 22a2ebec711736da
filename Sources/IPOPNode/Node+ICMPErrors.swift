import IPOPLink
import IPOPWire

/// ICMP errors the node sends on behalf of an overlay (`ICMPError`), so senders get an answer
/// instead of a timeout:
/// - frames too big for the overlay's MTU get "fragmentation needed" / "packet too big": the
///   sending host learns the MTU and sends smaller packets (a peer configured with a larger `mtu`
///   then sees "Frag needed and DF set (mtu = 1280)" instead of a black hole);
/// - in L3 mode, packets to an overlay address no peer holds get "host unreachable" (ping:
///   "From 10.10.0.77 icmp_seq=1 Destination Host Unreachable" at once).
/// Rate-limited per overlay (`Tunables.icmpErrorsPerSecond`); nothing here allocates.
extension Node {
    /// A frame from `link` that this node's MTU cannot take: the answer goes back over the link.
    func answerTooBigOverLink(_ frame: UnsafeRawBufferPointer, overlay: Overlay, link: PeerID,
                              now: ContinuousClock.Instant) {
        guard overlay.mayAnswerICMPError(now: now) else { return }
        // The send batch is idle outside drainTap; slot 0 holds the answer.
        let header = LinkEngine.transportHeaderSize
        let room = UnsafeMutableRawBufferPointer(rebasing: tx.buffer(0)[header...])
        guard let length = ICMPError.tooBig(frame, mtu: overlay.config.mtu, into: room) else { return }
        overlay.tooBigAnswered &+= 1
        tx.send(count: seal(link, slot: 0, length: length, now: now), on: udp)
    }

    /// A frame from the TAP larger than the overlay carries: the answer goes back into the TAP.
    func answerTooBigIntoTap(_ frame: UnsafeRawBufferPointer, overlay: Overlay, now: ContinuousClock.Instant) {
        guard overlay.mayAnswerICMPError(now: now),
              let length = ICMPError.tooBig(frame, mtu: overlay.config.mtu, into: floodScratch) else { return }
        overlay.tooBigAnswered &+= 1
        overlay.tap.write(UnsafeRawBufferPointer(rebasing: floodScratch[0 ..< length]))
    }

    /// L3 mode: a packet from the TAP for an address no peer holds; the answer goes back into the TAP.
    func answerUnreachableIntoTap(_ frame: UnsafeRawBufferPointer, overlay: Overlay, now: ContinuousClock.Instant) {
        guard overlay.mayAnswerICMPError(now: now),
              let length = ICMPError.unreachable(frame, mtu: overlay.config.mtu, into: floodScratch) else { return }
        overlay.unreachableAnswered &+= 1
        overlay.tap.write(UnsafeRawBufferPointer(rebasing: floodScratch[0 ..< length]))
    }
}
