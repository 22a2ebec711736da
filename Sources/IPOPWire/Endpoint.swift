/// A UDP endpoint on the underlay: an IPv4 address and port, stored in host byte order.
///
/// Pure value type so the link engine and the switch never see a `sockaddr`; the Linux
/// layer converts at the socket boundary. (IPv6 underlay endpoints are a later extension.)
public struct Endpoint: Hashable, Sendable, CustomStringConvertible {
    /// IPv4 address, host byte order (10.0.0.1 == 0x0A00_0001).
    public var address: UInt32
    public var port: UInt16

    public init(address: UInt32, port: UInt16) {
        self.address = address
        self.port = port
    }

    /// Parses "a.b.c.d:port". Returns nil on anything else.
    public init?(_ text: String) {
        guard let colon = text.lastIndex(of: ":"),
              let port = UInt16(text[text.index(after: colon)...]),
              let address = Endpoint.parseIPv4(text[..<colon]) else { return nil }
        self.init(address: address, port: port)
    }

    /// Parses dotted-quad IPv4 text into host byte order.
    public static func parseIPv4<S: StringProtocol>(_ text: S) -> UInt32? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var value: UInt32 = 0
        for part in parts {
            guard !part.isEmpty, part.count <= 3, part.allSatisfy({ $0.isASCII && $0.isNumber }),
                  let octet = UInt32(part), octet <= 255 else { return nil }
            value = value << 8 | octet
        }
        return value
    }

    public static func formatIPv4(_ address: UInt32) -> String {
        "\(address >> 24).\(address >> 16 & 0xff).\(address >> 8 & 0xff).\(address & 0xff)"
    }

    public var description: String { "\(Endpoint.formatIPv4(address)):\(port)" }
}
