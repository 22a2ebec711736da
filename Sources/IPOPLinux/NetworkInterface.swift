import CLinuxNet
import Glibc
import IPOPWire

/// Configuration of a kernel network interface by name (MTU, MAC, address, up/down, bridge port).
/// Each call is one ioctl; errors name the interface and the operation.
public struct NetworkInterface: Sendable {
    public let name: String

    public init(name: String) { self.name = name }

    public var exists: Bool { ipop_if_index(name) > 0 }

    public func setMTU(_ mtu: Int) throws(SystemError) {
        let r = ipop_if_set_mtu(name, Int32(mtu))
        if r < 0 { throw SystemError("set MTU \(mtu) on \(name)", result: r) }
    }

    public func mtu() throws(SystemError) -> Int {
        let r = ipop_if_get_mtu(name)
        if r < 0 { throw SystemError("read MTU of \(name)", result: r) }
        return Int(r)
    }

    public func setMAC(_ mac: [UInt8]) throws(SystemError) {
        precondition(mac.count == 6, "a MAC address is 6 bytes")
        let r = mac.withUnsafeBufferPointer { ipop_if_set_mac(name, $0.baseAddress) }
        if r < 0 { throw SystemError("set MAC on \(name)", result: r) }
    }

    public func mac() throws(SystemError) -> [UInt8] {
        var mac = [UInt8](repeating: 0, count: 6)
        let r = mac.withUnsafeMutableBufferPointer { ipop_if_get_mac(name, $0.baseAddress) }
        if r < 0 { throw SystemError("read MAC of \(name)", result: r) }
        return mac
    }

    public func setUp(_ up: Bool = true) throws(SystemError) {
        let r = ipop_if_set_up(name, up ? 1 : 0)
        if r < 0 { throw SystemError("set \(name) \(up ? "up" : "down")", result: r) }
    }

    public func setTxQueueLength(_ length: Int) throws(SystemError) {
        let r = ipop_if_set_txqueuelen(name, Int32(length))
        if r < 0 { throw SystemError("set txqueuelen on \(name)", result: r) }
    }

    /// Assigns an IPv4 address (host byte order) with a prefix length.
    public func setIPv4(_ address: UInt32, prefixLength: Int) throws(SystemError) {
        let r = ipop_if_set_ipv4(name, address, Int32(prefixLength))
        if r < 0 {
            throw SystemError("set address \(Endpoint.formatIPv4(address))/\(prefixLength) on \(name)", result: r)
        }
    }

    /// Adds an IPv6 address (16 bytes, network order). Duplicate address detection is turned off
    /// first: the overlay's addresses are assigned by configuration, not autoconfigured.
    public func addIPv6(_ address: [UInt8], prefixLength: Int) throws(SystemError) {
        writeSysctl("/proc/sys/net/ipv6/conf/\(name)/accept_dad", "0")
        writeSysctl("/proc/sys/net/ipv6/conf/\(name)/disable_ipv6", "0")
        let r = address.withUnsafeBufferPointer { ipop_if_add_ipv6(name, $0.baseAddress, Int32(prefixLength)) }
        if r < 0 && r != -EEXIST { throw SystemError("add IPv6 address to \(name)", result: r) }
    }

    private func writeSysctl(_ path: String, _ value: String) {
        let fd = Glibc.open(path, O_WRONLY)
        if fd >= 0 {
            _ = value.withCString { Glibc.write(fd, $0, strlen($0)) }
            Glibc.close(fd)
        }
    }

    /// Disables IPv6 on the interface (switchmode TAPs that join a bridge need no address of
    /// their own, and router solicitations/MLD from a bare TAP are noise on every link).
    public func disableIPv6() {
        let path = "/proc/sys/net/ipv6/conf/\(name)/disable_ipv6"
        let fd = Glibc.open(path, O_WRONLY)
        if fd >= 0 {
            _ = "1".withCString { Glibc.write(fd, $0, 1) }
            Glibc.close(fd)
        }
    }
}

/// A Linux bridge, such as the seed's `lxcbr0`.
public struct Bridge: Sendable {
    public enum Failure: Error, CustomStringConvertible, Equatable {
        case missing(String)
        case notABridge(String)
        case system(SystemError)

        public var description: String {
            switch self {
            case .missing(let name):
                return "bridge \(name) does not exist (create it first: ip link add \(name) type bridge && ip link set \(name) up)"
            case .notABridge(let name):
                return "\(name) exists but is not a bridge"
            case .system(let error):
                return error.description
            }
        }
    }

    public let name: String
    public init(name: String) { self.name = name }

    /// Adds `interface` as a port, like `ip link set IF master BRIDGE` / `brctl addif BRIDGE IF`.
    public func addPort(_ interface: String) throws(Failure) {
        let kind = ipop_if_is_bridge(name)
        if kind == -ENOENT || kind == -ENODEV { throw .missing(name) }
        if kind < 0 { throw .system(SystemError("inspect bridge \(name)", result: kind)) }
        if kind == 0 { throw .notABridge(name) }
        let r = ipop_bridge_add_if(name, interface)
        if r < 0 { throw .system(SystemError("add \(interface) to bridge \(name)", result: r)) }
    }

    public func removePort(_ interface: String) {
        _ = ipop_bridge_del_if(name, interface)
    }
}
