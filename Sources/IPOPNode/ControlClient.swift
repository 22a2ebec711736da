import IPOPLinux

/// The client side of the control socket (`ipop status`).
public enum ControlClient {
    public static func request(_ line: String, socket: String) throws(SystemError) -> [UInt8] {
        let c = try UnixConnection.connect(path: socket)
        defer { c.close() }
        c.write(Array((line + "\n").utf8))
        return c.readAll()
    }
}
