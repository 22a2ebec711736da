import CLinuxNet

/// An eventfd: other threads (the XMPP client's event loop) ring it after queueing work for the
/// node's loop, which then drains the queue on its own thread.
public final class Wakeup: @unchecked Sendable {
    public let fd: Int32

    public init() throws(SystemError) {
        let fd = ipop_eventfd_create()
        if fd < 0 { throw SystemError("eventfd", result: fd) }
        self.fd = fd
    }

    public func ring() { ipop_eventfd_signal(fd) }
    public func drain() { ipop_eventfd_drain(fd) }

    deinit { _ = ipop_close(fd) }
}

/// An IPv4 address of one of this host's interfaces.
public struct LocalAddress: Sendable, Equatable {
    public var interface: String
    public var address: UInt32
    public var prefixLength: Int

    public func contains(_ other: UInt32) -> Bool {
        let mask: UInt32 = prefixLength == 0 ? 0 : ~UInt32(0) << (32 - prefixLength)
        return address & mask == other & mask
    }

    /// Up, non-loopback IPv4 addresses, without the interfaces named in `excluding`
    /// (the node's own TAPs and the user's ignored_interfaces: never tunnel the overlay through itself).
    public static func all(excluding: Set<String>) -> [LocalAddress] {
        var addrs = [UInt32](repeating: 0, count: 64)
        var prefixes = [Int32](repeating: 0, count: 64)
        var names = [(CChar, CChar, CChar, CChar, CChar, CChar, CChar, CChar,
                      CChar, CChar, CChar, CChar, CChar, CChar, CChar, CChar)](
            repeating: (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0), count: 64)
        let n = names.withUnsafeMutableBufferPointer { namesBuf in
            ipop_local_ipv4(&addrs, &prefixes, namesBuf.baseAddress, 64)
        }
        guard n > 0 else { return [] }
        var out: [LocalAddress] = []
        for i in 0..<Int(n) {
            let name = withUnsafeBytes(of: names[i]) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if excluding.contains(name) { continue }
            out.append(LocalAddress(interface: name, address: addrs[i], prefixLength: Int(prefixes[i])))
        }
        return out
    }
}
