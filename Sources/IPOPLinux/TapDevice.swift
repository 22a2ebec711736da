import CLinuxNet
import Glibc

/// A TAP device: Ethernet frames in and out through a file descriptor.
///
/// The device is not persistent: the kernel removes it when the descriptor closes, so a
/// daemon that dies leaves no stale `ipop` behind.
public final class TapDevice {
    public enum Failure: Error, CustomStringConvertible, Equatable {
        case noTunDevice
        case permissionDenied(String)
        case nameInUse(String)
        case nameTaken(String)
        case invalidName(String)
        case system(SystemError)

        public var description: String {
            switch self {
            case .noTunDevice:
                return "/dev/net/tun is missing: load the tun module (modprobe tun) or, in a container, pass the device through (--device /dev/net/tun)"
            case .permissionDenied(let name):
                return "cannot create TAP \(name): permission denied (run as root or with CAP_NET_ADMIN)"
            case .nameInUse(let name):
                return "TAP \(name) is already in use by another process (is another ipop running? pick another tap_name)"
            case .nameTaken(let name):
                return "cannot create TAP \(name): an interface of another kind already has that name (pick another tap_name)"
            case .invalidName(let name):
                return "invalid TAP name \"\(name)\" (1 to 15 characters, no '/' or spaces)"
            case .system(let error):
                return error.description
            }
        }
    }

    public let name: String
    public let fd: Int32
    /// Every read starts with a `virtio_net_hdr` (10 bytes) and the kernel may hand over TCP
    /// segments up to 64 KB and frames with unfinished checksums (`IPOPWire.Segmentation`);
    /// every write gets a zero header prepended by `write`.
    public let vnetHeader: Bool
    public var interface: NetworkInterface { NetworkInterface(name: name) }
    private var closed = false

    /// - Parameter offload: open with IFF_VNET_HDR and announce checksum/TSO offload (see
    ///   `vnetHeader`). If the kernel refuses the offload, the device is reopened without.
    public convenience init(name: String, offload: Bool) throws(Failure) {
        try self.init(name: name, vnetHeader: offload)
    }

    public convenience init(name: String) throws(Failure) {
        try self.init(name: name, vnetHeader: false)
    }

    private init(name: String, vnetHeader wanted: Bool) throws(Failure) {
        guard !name.isEmpty, name.utf8.count < 16, !name.contains("/"), !name.contains(" ") else {
            throw .invalidName(name)
        }
        var actual = [CChar](repeating: 0, count: 16)
        var fd = actual.withUnsafeMutableBufferPointer { ipop_tap_open(name, 0, wanted ? 1 : 0, $0.baseAddress) }
        var vnet = wanted
        if wanted && fd >= 0 && ipop_tap_set_offload(fd, 1) != 0 {
            _ = ipop_close(fd)
            vnet = false
            fd = actual.withUnsafeMutableBufferPointer { ipop_tap_open(name, 0, 0, $0.baseAddress) }
        }
        if fd < 0 {
            switch -fd {
            case ENOENT, ENODEV, ENXIO: throw .noTunDevice
            case EPERM, EACCES: throw .permissionDenied(name)
            case EBUSY: throw .nameInUse(name)
            case EINVAL: throw .nameTaken(name)
            default: throw .system(SystemError("create TAP \(name)", result: fd))
            }
        }
        self.fd = fd
        self.vnetHeader = vnet
        self.name = actual.withUnsafeBufferPointer { buf in
            String(decoding: buf.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
    }

    /// Reads one frame into `buffer`. Returns its length, or nil when none is waiting.
    @inline(__always)
    public func read(into buffer: UnsafeMutableRawBufferPointer) -> Int? {
        let n = ipop_read(fd, buffer.baseAddress, buffer.count)
        return n > 0 ? n : nil
    }

    /// Writes one frame. A full TAP queue drops it (like any congested link); returns false then.
    @inline(__always)
    @discardableResult
    public func write(_ frame: UnsafeRawBufferPointer) -> Bool {
        if vnetHeader {
            return withUnsafeBytes(of: TapDevice.zeroHeader) { header in
                ipop_writev2(fd, header.baseAddress, header.count, frame.baseAddress, frame.count) == header.count + frame.count
            }
        }
        return ipop_write(fd, frame.baseAddress, frame.count) == frame.count
    }

    /// Writes bytes that already start with a vnet header (a TAP with `vnetHeader` only).
    @inline(__always)
    @discardableResult
    public func write(withVnetHeader bytes: UnsafeRawBufferPointer) -> Bool {
        ipop_write(fd, bytes.baseAddress, bytes.count) == bytes.count
    }

    /// The virtio_net_hdr of a plain frame (no offload asked): 10 zero bytes.
    private static let zeroHeader: (UInt64, UInt16) = (0, 0)

    public func close() {
        guard !closed else { return }
        closed = true
        _ = ipop_close(fd)
    }

    deinit { close() }
}
