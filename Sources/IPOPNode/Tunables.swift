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
    /// UDP GSO on the send batches: a run of sealed frames to one peer is one message to the
    /// kernel (UDP_SEGMENT), which cuts it into datagrams as late as it can; the batch falls back
    /// by itself where the kernel or route refuses. `IPOP_UDP_GSO=0` in the environment turns it
    /// off (for A/B benchmarks).
    public static let udpGSO: Bool = {
        guard let value = getenv("IPOP_UDP_GSO") else { return true }
        return String(cString: value) != "0"
    }()
    /// UDP GRO on the socket: the kernel hands over a peer's GSO run (or datagrams it coalesced)
    /// as one message, which the receive batch cuts back into datagrams. `IPOP_UDP_GRO=0` turns it off.
    public static let udpGRO: Bool = {
        guard let value = getenv("IPOP_UDP_GRO") else { return true }
        return String(cString: value) != "0"
    }()
    /// TAP offloads (IFF_VNET_HDR + TUNSETOFFLOAD CSUM|TSO4|TSO6): the kernel hands over TCP
    /// segments up to 64 KB, which the node cuts into MTU-sized frames itself (one TAP read
    /// instead of ~45). `IPOP_TAP_OFFLOAD=0` turns it off.
    public static let tapOffload: Bool = {
        guard let value = getenv("IPOP_TAP_OFFLOAD") else { return true }
        return String(cString: value) != "0"
    }()
    /// On a TAP with offloads, join received TCP segments of one flow into one GSO write
    /// (`TCPCoalescer`). `IPOP_TAP_COALESCE=0` turns it off.
    public static let tapCoalesce: Bool = {
        guard let value = getenv("IPOP_TAP_COALESCE") else { return true }
        return String(cString: value) != "0"
    }()
}
