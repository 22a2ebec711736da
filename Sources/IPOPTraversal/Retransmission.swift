/// RFC 8489 §6.2.1 retransmission timing for requests over UDP.
///
/// A request is sent at t=0; while unanswered it is resent after RTO, then after 2·RTO,
/// 4·RTO … (doubling), up to `maxTransmissions` sends in all (Rc, default 7). After the
/// last send the transaction times out when `lastWaitMultiplier` × RTO (Rm, default 16)
/// more has passed. With RTO = 500 ms: sends at 0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5 s and
/// a timeout at 39.5 s.
public struct RetransmissionPolicy: Hashable, Sendable {
    public var initialRTO: Duration
    public var maxTransmissions: Int
    public var lastWaitMultiplier: Int

    public init(initialRTO: Duration = .milliseconds(500), maxTransmissions: Int = 7,
                lastWaitMultiplier: Int = 16) {
        self.initialRTO = initialRTO
        self.maxTransmissions = max(1, maxTransmissions)
        self.lastWaitMultiplier = max(1, lastWaitMultiplier)
    }

    public static let rfc8489 = RetransmissionPolicy()
}

/// Timer state of one outstanding request.
struct RetransmissionTimer: Sendable {
    enum Action { case wait, retransmit, timedOut }

    let policy: RetransmissionPolicy
    private(set) var transmissions: Int
    private(set) var deadline: ContinuousClock.Instant
    private var rto: Duration

    /// Call right after the first send.
    init(policy: RetransmissionPolicy, sentAt now: ContinuousClock.Instant) {
        self.policy = policy
        self.transmissions = 1
        self.rto = policy.initialRTO
        self.deadline = policy.maxTransmissions > 1
            ? now + policy.initialRTO : now + policy.initialRTO * policy.lastWaitMultiplier
    }

    mutating func poll(now: ContinuousClock.Instant) -> Action {
        guard now >= deadline else { return .wait }
        guard transmissions < policy.maxTransmissions else { return .timedOut }
        transmissions += 1
        rto = rto * 2
        deadline = transmissions < policy.maxTransmissions
            ? now + rto : now + policy.initialRTO * policy.lastWaitMultiplier
        return .retransmit
    }
}
