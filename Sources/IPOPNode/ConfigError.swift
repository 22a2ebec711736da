/// A config problem, always naming the key: `config: overlays[0].mtu: 70000 is not in 576...9000`.
public struct ConfigError: Error, CustomStringConvertible, Equatable, Sendable {
    /// Key path such as `overlays[0].peers[1].public_key`; empty for file-level problems.
    public let path: String
    public let problem: String

    public init(_ path: String, _ problem: String) {
        self.path = path
        self.problem = problem
    }

    public var description: String {
        path.isEmpty ? "config: \(problem)" : "config: \(path): \(problem)"
    }
}
