import CLinuxNet

/// epoll over the node's descriptors, plus a signalfd for SIGINT/SIGTERM/SIGHUP.
/// Tokens are the caller's: they say which descriptor woke up.
public final class Poller {
    let epfd: Int32
    private var tokens = [UInt64](repeating: 0, count: 64)

    public init() throws(SystemError) {
        let fd = ipop_epoll_create()
        if fd < 0 { throw SystemError("epoll_create", result: fd) }
        epfd = fd
    }

    deinit { _ = ipop_close(epfd) }

    public func add(fd: Int32, token: UInt64) throws(SystemError) {
        let r = ipop_epoll_add(epfd, fd, token)
        if r < 0 { throw SystemError("epoll_ctl add", result: r) }
    }

    public func remove(fd: Int32) { _ = ipop_epoll_del(epfd, fd) }

    /// Waits up to `timeoutMilliseconds` (-1: forever) and calls `body` with each ready token.
    @inline(__always)
    public func wait(timeoutMilliseconds: Int32, _ body: (UInt64) -> Void) {
        let n = tokens.withUnsafeMutableBufferPointer { ipop_epoll_wait(epfd, $0.baseAddress, 64, timeoutMilliseconds) }
        guard n > 0 else { return }
        for i in 0..<Int(n) { body(tokens[i]) }
    }
}

/// SIGINT/SIGTERM/SIGHUP delivered as a readable descriptor, so shutdown runs on the loop.
public final class SignalDescriptor {
    public let fd: Int32

    /// Blocks the signals for this thread: create it before starting any other thread.
    public init() throws(SystemError) {
        let fd = ipop_signalfd_create()
        if fd < 0 { throw SystemError("signalfd", result: fd) }
        self.fd = fd
    }

    /// The signal number that arrived, or nil.
    public func read() -> Int32? {
        let s = ipop_signalfd_read(fd)
        return s > 0 ? s : nil
    }

    deinit { _ = ipop_close(fd) }
}
