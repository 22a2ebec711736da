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
}
