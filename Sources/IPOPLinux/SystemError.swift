import Glibc

/// An errno from a system call, with the operation that failed, so messages say what to fix.
public struct SystemError: Error, CustomStringConvertible, Sendable, Equatable {
    public let operation: String
    public let errno: Int32

    public init(_ operation: String, errno: Int32) {
        self.operation = operation
        self.errno = errno
    }

    /// Builds an error from a CLinuxNet return value (-errno).
    init<T: BinaryInteger>(_ operation: String, result: T) {
        self.init(operation, errno: Int32(truncatingIfNeeded: 0 - Int(result)))
    }

    public var reason: String { String(cString: strerror(errno)) }

    public var description: String {
        var text = "\(operation): \(reason)"
        switch errno {
        case EPERM, EACCES: text += " (run as root or with CAP_NET_ADMIN)"
        default: break
        }
        return text
    }
}
