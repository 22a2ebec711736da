import Glibc

/// Implementation limits of the node, each with its reason. Protocol timers live in
/// IPOPLink's `LinkTimers`; switch defaults in `OverlayConfig`.
public enum Tunables {
    /// Datagrams per recvmmsg/sendmmsg call: enough to amortise a syscall over a burst,
    /// small enough that one overlay cannot starve the others for long.
    public static let batchSize = 64
    /// Bytes per datagram slot: the largest MTU (9000) + Ethernet header + two VLAN tags +
    /// link overhead, rounded up.
    public static let slotSize = 9216
    /// Frames read from one TAP per wake-up before the loop looks at other descriptors.
    public static let tapReadBudget = 64
    /// How often the loop runs housekeeping (MAC aging, link-state logging) when idle.
    public static let housekeepingInterval: Duration = .seconds(1)
    /// At most one "frames larger than the MTU" warning per overlay this often: the cause (an MTU
    /// mismatch between nodes, or a container with a larger MTU than the overlay) needs one clear
    /// line, not one per frame.
    public static let mtuWarningInterval: Duration = .seconds(60)
    /// ICMP error answers ("too big", "unreachable") per overlay and second at most: one per flow
    /// tells the sender what it needs, and ICMP errors are to be rate-limited (RFC 1812 §4.3.2.8,
    /// RFC 4443 §2.4(f)), so that a flood of bad packets never becomes a flood of answers.
    public static let icmpErrorsPerSecond = 20
    /// UDP GSO on the send batches: a run of sealed frames to one peer is one message to the
    /// kernel (UDP_SEGMENT), which cuts it into datagrams as late as it can; the batch falls back
    /// by itself where the kernel or route refuses. `IPOP_UDP_GSO=0` in the environment turns it
    /// off (for A/B benchmarks).
    public static let udpGSO: Bool = switchedOn("IPOP_UDP_GSO")
    /// UDP GRO on the socket: the kernel hands over a peer's GSO run (or datagrams it coalesced)
    /// as one message, which the receive batch cuts back into datagrams. `IPOP_UDP_GRO=0` turns it off.
    public static let udpGRO: Bool = switchedOn("IPOP_UDP_GRO")
    /// TAP offloads (IFF_VNET_HDR + TUNSETOFFLOAD CSUM|TSO4|TSO6): the kernel hands over TCP
    /// segments up to 64 KB, which the node cuts into MTU-sized frames itself (one TAP read
    /// instead of ~45). `IPOP_TAP_OFFLOAD=0` turns it off.
    public static let tapOffload: Bool = switchedOn("IPOP_TAP_OFFLOAD")
    /// On a TAP with offloads, join received TCP segments of one flow into one GSO write
    /// (`TCPCoalescer`). `IPOP_TAP_COALESCE=0` turns it off.
    public static let tapCoalesce: Bool = switchedOn("IPOP_TAP_COALESCE")

    /// A data-path feature is on unless the environment sets its switch to "0".
    private static func switchedOn(_ variable: String) -> Bool {
        guard let value = getenv(variable) else { return true }
        return String(cString: value) != "0"
    }
}

/// NAT traversal timing (Node+Traversal.swift), each with its reason.
extension Tunables {
    /// Re-ask the STUN servers this often: well inside the 30 s a Linux NAT keeps an unanswered UDP
    /// mapping, so the reflexive address stays valid and a changed mapping is noticed.
    public static let stunRefresh: Duration = .seconds(25)
    /// After a STUN server did not answer: ask again after this long (it may be down or filtered).
    public static let stunRetry: Duration = .seconds(15)
    /// The first offer waits at most this long for STUN and TURN answers, so that it carries the
    /// reflexive and relayed candidates (a server that answers at all answers within a second).
    public static let gatherWait: Duration = .seconds(3)
    /// One probe per candidate pair this often while checking (RFC 8445's Ta is 50 ms for a whole
    /// agent; with a handful of pairs per peer, 200 ms keeps the rate tiny and still finds a pair
    /// within a few hundred ms once both sides probe).
    public static let checkPacing: Duration = .milliseconds(200)
    /// Give up on pairs that did not answer after this long. Both sides start within one signalling
    /// round trip of each other; 6 s is 30 probes per pair, enough for hole punching over lossy paths,
    /// and short enough that a relayed link is up in seconds.
    public static let checkTimeout: Duration = .seconds(6)
    /// After the first direct pair works, wait this long to measure the other direct pairs' RTT.
    public static let checkSettle: Duration = .seconds(1)
    /// A link whose peer has been silent this many keepalive intervals (+2 s) is presumed to have
    /// lost its path (a NAT or relay forgot the mapping): the node asks STUN again and re-checks.
    /// Both sides send keepalives on idle links, so two missed ones are a real outage, not idleness.
    public static let deadPathKeepalives = 2
    /// An offer sent to start a check that got no answer in this long (signalling was down, the
    /// message was lost) is sent again. An XMPP round trip takes milliseconds to a second.
    public static let offerTimeout: Duration = .seconds(5)
    /// While a link runs over a relay, re-try the direct pairs this often (a NAT mapping may have
    /// opened, a peer may have moved to a friendlier network).
    public static let directRetryOnRelay: Duration = .seconds(30)
    /// After a check found nothing, the next one waits this long, doubling up to the cap.
    public static let checkFailureBackoff: Duration = .seconds(5)
    public static let checkFailureBackoffCap: Duration = .seconds(60)
    /// Allocation lifetime asked of the TURN server (its default, RFC 8656), refreshed this long
    /// before it expires (a lost refresh is retransmitted well before expiry).
    public static let turnLifetime: UInt32 = 600
    public static let turnRefreshMargin: Duration = .seconds(60)
    /// After a TURN allocation failed (server down, bad credentials): retry, next server in the
    /// list, waiting this long, doubling up to the cap.
    public static let turnRetryStart: Duration = .seconds(5)
    public static let turnRetryCap: Duration = .seconds(120)
    /// 437 Allocation Mismatch to an Allocate: the server still holds an allocation for our address
    /// and port (this node restarted; the release it sent on exit takes the server a moment). Ask the
    /// same server again this soon, this many times, before treating it as a failure.
    public static let turnMismatchRetry: Duration = .seconds(1)
    public static let turnMismatchRetries = 20
}
