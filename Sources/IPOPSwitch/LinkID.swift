/// Identifies one overlay link (a switch port other than the local TAP).
/// The node assigns the numbers; the switch only compares them.
public struct LinkID: Hashable, Sendable, Comparable, CustomStringConvertible {
    public let raw: UInt32

    @inline(__always)
    public init(_ raw: UInt32) { self.raw = raw }

    public var description: String { "link#\(raw)" }

    @inline(__always)
    public static func < (lhs: LinkID, rhs: LinkID) -> Bool { lhs.raw < rhs.raw }
}
