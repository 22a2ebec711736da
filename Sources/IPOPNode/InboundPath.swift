import IPOPLink
import IPOPLinux
import IPOPSwitch
import IPOPWire

/// UDP -> open -> switch -> TAP.
///
/// One recvmmsg batch; each datagram is authenticated and decrypted in place, the switch learns
/// its source MAC on that link, and the frame goes to that overlay's TAP only (split horizon).
extension Node {
    func drainSocket(now: ContinuousClock.Instant) {
        // GRO: datagrams the batch still holds when we stop are handed out on the next loop turn.
        // Coalesced TCP segments go to the TAP at the end of the turn.
        defer {
            socketBacklog = rx.hasPending
            flushCoalescer()
        }
        // Bounded: at most a few batches per wake-up so TAP readers get their turn.
        for _ in 0..<4 {
            let count = rx.receive(from: udp)
            if count == 0 { return }
            for i in 0..<count {
                var datagram = rx.buffer(i)
                var length = rx.length(i)
                var source = rx.source(i)
                // Not transport data (type 4): maybe STUN or TURN ChannelData (Node+Traversal.swift).
                if length > 0, datagram[0] != LinkMessageType.transport.rawValue {
                    guard case .link(let inner, let innerLength, let from) = demuxTraversal(datagram, length: length, from: source, now: now) else { continue }
                    (datagram, length, source) = (inner, innerLength, from)
                }
                switch engine.receive(datagram: datagram, length: length, from: source, now: now) {
                case .frame(let peer, let offset, let length):
                    fromLink(peer, frame: UnsafeMutableRawBufferPointer(rebasing: datagram[offset..<(offset + length)]), now: now)
                case .handled:
                    engineWantsPoll = true
                case .dropped:
                    continue
                }
            }
            if count < rx.capacity { return }
        }
    }

    /// A decrypted frame from a link: the overlay's switch (or, in L3 mode, its router, which checks
    /// the source address belongs to that link and rewrites the MACs) decides whether the TAP gets it.
    /// Either way the frame reaches the TAP through `deliver` (TCP segments coalesced).
    @inline(__always)
    func fromLink(_ peer: PeerID, frame: UnsafeMutableRawBufferPointer, now: ContinuousClock.Instant) {
        guard let overlay = overlayOfLink[peer.raw] else { return }
        overlay.clampMSS(frame)
        if overlay.router != nil {
            switch overlay.router!.fromLink(LinkID(peer.raw), frame: frame, length: frame.count, now: now) {
            case .deliverToTap: deliver(UnsafeRawBufferPointer(frame), to: overlay)
            case .drop(.tooBig): answerTooBigOverLink(UnsafeRawBufferPointer(frame), overlay: overlay, link: peer, now: now)
            case .drop: break
            }
        } else {
            switch overlay.fabric.fromLink(LinkID(peer.raw), frame: UnsafeRawBufferPointer(frame), now: now) {
            case .deliverToTap: deliver(UnsafeRawBufferPointer(frame), to: overlay)
            case .drop(.tooBig): answerTooBigOverLink(UnsafeRawBufferPointer(frame), overlay: overlay, link: peer, now: now)
            case .drop: break
            }
        }
    }

    /// Writes a frame to the overlay's TAP; on a TAP with offloads, consecutive TCP segments of one
    /// flow are first joined into one GSO write (`TCPCoalescer`). Frame order is kept.
    @inline(__always)
    func deliver(_ frame: UnsafeRawBufferPointer, to overlay: Overlay) {
        guard overlay.tap.vnetHeader, Tunables.tapCoalesce else {
            overlay.tap.write(frame)
            return
        }
        if coalescer.owner != overlay.index { flushCoalescer() }
        switch coalescer.offer(frame) {
        case .taken:
            coalescer.owner = overlay.index
        case .flushFirst:
            flushCoalescer()
            _ = coalescer.offer(frame)   // an eligible frame always starts an empty coalescer
            coalescer.owner = overlay.index
        case .notEligible:
            flushCoalescer()
            overlay.tap.write(frame)
        }
    }

    func flushCoalescer() {
        guard !coalescer.isEmpty else { return }
        let overlay = overlays[coalescer.owner]
        overlay.tap.write(withVnetHeader: coalescer.take())
    }
}
