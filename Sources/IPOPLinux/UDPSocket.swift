import CLinuxNet
import IPOPWire

/// The node's one UDP socket on the underlay, with batched receive (recvmmsg) and send (sendmmsg).
public final class UDPSocket {
    public let fd: Int32
    public let port: UInt16

    public init(port: UInt16) throws(SystemError) {
        let fd = ipop_udp_open(port)
        if fd < 0 {
            throw SystemError("bind UDP port \(port)", result: fd)
        }
        self.fd = fd
        self.port = UInt16(truncatingIfNeeded: ipop_udp_local_port(fd))
    }

    /// Sends one datagram (control plane: handshakes, keepalives). Errors are counted, not thrown:
    /// an unreachable peer is normal life for a VPN.
    @discardableResult
    public func send(_ bytes: UnsafeRawBufferPointer, to endpoint: Endpoint) -> Bool {
        ipop_udp_sendto(fd, bytes.baseAddress, bytes.count, endpoint.address, endpoint.port) >= 0
    }

    public func send(_ bytes: [UInt8], to endpoint: Endpoint) -> Bool {
        bytes.withUnsafeBytes { send($0, to: endpoint) }
    }

    deinit { _ = ipop_close(fd) }
}

/// A fixed set of datagram buffers for recvmmsg/sendmmsg, allocated once.
public final class DatagramBatch {
    let raw: OpaquePointer
    public let capacity: Int
    public let bufferSize: Int

    public init?(capacity: Int, bufferSize: Int) {
        guard let raw = ipop_batch_create(Int32(capacity), Int32(bufferSize)) else { return nil }
        self.raw = raw
        self.capacity = capacity
        self.bufferSize = bufferSize
    }

    deinit { ipop_batch_destroy(raw) }

    @inline(__always)
    public func buffer(_ i: Int) -> UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(start: ipop_batch_buffer(raw, Int32(i)), count: bufferSize)
    }

    @inline(__always)
    public func length(_ i: Int) -> Int { Int(ipop_batch_length(raw, Int32(i))) }

    @inline(__always)
    public func source(_ i: Int) -> Endpoint {
        Endpoint(address: ipop_batch_addr(raw, Int32(i)), port: ipop_batch_port(raw, Int32(i)))
    }

    @inline(__always)
    public func set(_ i: Int, length: Int, to endpoint: Endpoint) {
        ipop_batch_set(raw, Int32(i), Int32(length), endpoint.address, endpoint.port)
    }

    /// Turns on UDP GRO for `socket`, received through this batch (which must then be the only
    /// one receiving from it): coalesced datagrams are cut back into slots. Returns false if the
    /// kernel refused (GRO stays off; nothing else changes).
    public func enableGRO(on socket: UDPSocket) -> Bool {
        ipop_batch_enable_gro(socket.fd, raw) == 0
    }

    /// Datagrams already received from the kernel but not yet handed out (GRO only): call
    /// `receive` again before waiting for the socket to become readable.
    @inline(__always)
    public var hasPending: Bool { ipop_batch_pending(raw) != 0 }

    /// Receives what is waiting (up to capacity) without blocking. Returns the count.
    @inline(__always)
    public func receive(from socket: UDPSocket) -> Int {
        let n = ipop_batch_recv(socket.fd, raw)
        return n > 0 ? Int(n) : 0
    }

    /// Send counters: messages handed to the kernel (a UDP GSO run is one) and the datagrams in them.
    public struct Stats: Equatable, Sendable {
        public var messages: UInt64
        public var datagrams: UInt64
        /// GSO runs the kernel refused (they were sent again one datagram per message).
        public var gsoRefused: UInt64
        /// GSO was turned off after the kernel refused it (no UDP GSO on this kernel or route).
        public var gsoDisabled: Bool
    }

    public var stats: Stats {
        let s = ipop_batch_get_stats(raw)
        return Stats(messages: s.messages, datagrams: s.datagrams, gsoRefused: s.gso_refused, gsoDisabled: s.gso_disabled != 0)
    }

    /// UDP GSO on `send` (default on): runs of slots to one destination with one length (the last may be
    /// shorter) go to the kernel as one message with UDP_SEGMENT, up to 64 datagrams / 65000 bytes.
    public var gso: Bool = true {
        didSet { ipop_batch_set_gso(raw, gso ? 1 : 0) }
    }

    /// Sends slots 0..<count.
    @inline(__always)
    @discardableResult
    public func send(count: Int, on socket: UDPSocket) -> Int {
        guard count > 0 else { return 0 }
        let n = ipop_batch_send(socket.fd, raw, Int32(count))
        return n > 0 ? Int(n) : 0
    }
}
