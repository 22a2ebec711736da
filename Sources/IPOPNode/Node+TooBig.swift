import IPOPLink
import IPOPWire

/// Frames too big for the overlay's MTU are answered with ICMP "too big" (fragmentation needed /
/// packet too big, `ICMPTooBig`), so the sending host learns the MTU and sends smaller packets:
/// a peer configured with a larger `mtu`, or a host whose frames outgrow the TAP, then sees a clear
/// error (ping: "Frag needed and DF set (mtu = 1280)") instead of a black hole. Rate-limited per
/// overlay (`Tunables.tooBigAnswersPerSecond`); nothing here allocates.
extension Node {
    /// A frame from `link` that this node's MTU cannot take: the answer goes back over the link.
    func answerTooBigOverLink(_ frame: UnsafeRawBufferPointer, overlay: Overlay, link: PeerID,
                              now: ContinuousClock.Instant) {
        guard overlay.mayAnswerTooBig(now: now) else { return }
        // The send batch is idle outside drainTap; slot 0 holds the answer.
        let header = LinkEngine.transportHeaderSize
        let room = UnsafeMutableRawBufferPointer(rebasing: tx.buffer(0)[header...])
        guard let length = ICMPTooBig.answer(frame, mtu: overlay.config.mtu, into: room) else { return }
        overlay.tooBigAnswered &+= 1
        tx.send(count: seal(link, slot: 0, length: length, now: now), on: udp)
    }

    /// A frame from the TAP larger than the overlay carries: the answer goes back into the TAP.
    func answerTooBigIntoTap(_ frame: UnsafeRawBufferPointer, overlay: Overlay, now: ContinuousClock.Instant) {
        guard overlay.mayAnswerTooBig(now: now),
              let length = ICMPTooBig.answer(frame, mtu: overlay.config.mtu, into: floodScratch) else { return }
        overlay.tooBigAnswered &+= 1
        overlay.tap.write(UnsafeRawBufferPointer(rebasing: floodScratch[0 ..< length]))
    }
}
