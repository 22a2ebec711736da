import CLinuxNet
import Glibc

/// The control socket: a Unix stream socket; one request line in, one reply out, then close.
public final class UnixListener {
    public let fd: Int32
    public let path: String

    public init(path: String) throws(SystemError) {
        let fd = ipop_unix_listen(path)
        if fd == -EADDRINUSE {
            throw SystemError("control socket \(path) is in use by a running node", errno: EADDRINUSE)
        }
        if fd < 0 { throw SystemError("listen on control socket \(path)", result: fd) }
        self.fd = fd
        self.path = path
    }

    /// Accepts one waiting client, or nil.
    public func accept() -> UnixConnection? {
        let c = ipop_unix_accept(fd)
        return c >= 0 ? UnixConnection(fd: c) : nil
    }

    public func close() {
        _ = ipop_close(fd)
        unlink(path)
    }
}

public final class UnixConnection {
    public let fd: Int32

    init(fd: Int32) { self.fd = fd }

    public static func connect(path: String) throws(SystemError) -> UnixConnection {
        let fd = ipop_unix_connect(path)
        if fd < 0 { throw SystemError("connect to \(path)", result: fd) }
        return UnixConnection(fd: fd)
    }

    /// Reads one line (up to 4 KiB) — requests are short.
    public func readLine() -> String? {
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 512)
        while bytes.count < 4096 {
            let n = chunk.withUnsafeMutableBytes { ipop_read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            bytes += chunk[0..<n]
            if let nl = bytes.firstIndex(of: UInt8(ascii: "\n")) {
                return String(decoding: bytes[..<nl], as: UTF8.self)
            }
        }
        return bytes.isEmpty ? nil : String(decoding: bytes, as: UTF8.self)
    }

    /// Reads until the peer closes (replies may be large).
    public func readAll(limit: Int = 64 << 20) -> [UInt8] {
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while bytes.count < limit {
            let n = chunk.withUnsafeMutableBytes { ipop_read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            bytes += chunk[0..<n]
        }
        return bytes
    }

    public func write(_ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { ipop_write(fd, $0.baseAddress! + offset, $0.count - offset) }
            if n <= 0 { return }
            offset += n
        }
    }

    public func close() { _ = ipop_close(fd) }
}
