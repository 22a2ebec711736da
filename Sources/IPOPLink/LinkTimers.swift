/// Every time constant of the link layer, in one place.
public struct LinkTimers: Sendable {
    /// The initiator of a session starts a fresh handshake once the session is this old (forward secrecy).
    public var rekeyAfterTime: Duration = .seconds(120)
    /// A session older than this is dropped, never used to send or receive.
    public var rejectAfterTime: Duration = .seconds(180)
    /// Send a keepalive when we received but sent nothing for this long (keeps NAT mappings open).
    public var keepaliveTimeout: Duration = .seconds(10)
    /// Handshake retry base interval; doubled per attempt with jitter, capped at `rekeyBackoffCap`.
    public var rekeyTimeout: Duration = .seconds(5)
    /// Cap of the handshake retry backoff; we keep retrying forever at this interval.
    public var rekeyBackoffCap: Duration = .seconds(60)
    /// Random jitter added to each handshake retry (desynchronises peers).
    public var rekeyJitter: Duration = .milliseconds(333)
    /// If set, send a keepalive whenever we sent nothing for this long (holds NAT mappings on idle links).
    public var persistentKeepalive: Duration? = nil
    /// The initiator rekeys after sending this many messages on one session.
    public var rekeyAfterMessages: UInt64 = 1 << 60
    /// No message is sent or accepted with a counter at or above this (nonce never wraps).
    public var rejectAfterMessages: UInt64 = UInt64.max - (1 << 13)
    /// Handshake initiations accepted per second from one source address (token bucket rate).
    public var handshakeRatePerSecond: Double = 20
    /// Token bucket burst size for handshake initiations per source address.
    public var handshakeBurst: Double = 5

    public init() {}

    public static let `default` = LinkTimers()
}
