// Candidates and their signalling text form.
//
// Text encoding of one candidate (ASCII, fields separated by one or more spaces):
//
//     <type> <a.b.c.d>:<port> <priority>
//     host 10.0.0.2:5800 2130706431
//     srflx 203.0.113.7:61022 1694498815
//     relay 198.51.100.9:49152 16777215
//
// <type> is host | srflx | prflx | relay; <port> is 1–65535; <priority> is decimal,
// 1 … 2^31−1. A candidate list joins candidates with ";" (whitespace around items is
// ignored): "host 10.0.0.2:5800 2130706431;srflx 203.0.113.7:61022 1694498815".
// Lists are capped at `Candidate.maxListCount` candidates and `maxListLength` bytes,
// so a hostile peer cannot make us probe an unbounded number of addresses.

import IPOPWire

public enum CandidateType: String, CaseIterable, Hashable, Sendable {
    case host = "host"
    case serverReflexive = "srflx"
    case peerReflexive = "prflx"
    case relayed = "relay"

    /// RFC 8445 §5.1.2.2 recommended type preferences.
    public var typePreference: UInt32 {
        switch self {
        case .host: return 126
        case .peerReflexive: return 110
        case .serverReflexive: return 100
        case .relayed: return 0
        }
    }
}

/// Why candidate text was rejected.
public enum CandidateParseError: Error, Hashable, Sendable {
    case empty
    case tooLong(Int)
    case tooManyCandidates(Int)
    case wrongFieldCount(Int)
    case unknownType(String)
    case invalidEndpoint(String)
    case invalidPriority(String)
}

public struct Candidate: Hashable, Sendable, CustomStringConvertible {
    public static let maxListCount = 32
    public static let maxListLength = 4096

    public var type: CandidateType
    public var endpoint: Endpoint
    public var priority: UInt32

    public init(type: CandidateType, endpoint: Endpoint, priority: UInt32) {
        self.type = type
        self.endpoint = endpoint
        self.priority = priority
    }

    /// A candidate with the RFC 8445 priority for its type.
    public init(type: CandidateType, endpoint: Endpoint, localPreference: UInt16 = 65535, componentID: UInt8 = 1) {
        self.init(type: type, endpoint: endpoint,
                  priority: Candidate.priority(type: type, localPreference: localPreference, componentID: componentID))
    }

    /// RFC 8445 §5.1.2.1: (2^24)·type preference + (2^8)·local preference + (256 − component ID).
    public static func priority(type: CandidateType, localPreference: UInt16 = 65535, componentID: UInt8 = 1) -> UInt32 {
        type.typePreference << 24 + UInt32(localPreference) << 8 + (256 - UInt32(max(componentID, 1)))
    }

    public var isRelayed: Bool { type == .relayed }

    /// The one-candidate text form (see the top of this file).
    public var description: String { "\(type.rawValue) \(endpoint) \(priority)" }

    /// Parses the one-candidate text form.
    public init(parsing text: some StringProtocol) throws(CandidateParseError) {
        let fields = text.split(whereSeparator: { $0 == " " || $0 == "\t" })
        guard !fields.isEmpty else { throw .empty }
        guard fields.count == 3 else { throw .wrongFieldCount(fields.count) }
        guard let type = CandidateType(rawValue: String(fields[0])) else { throw .unknownType(String(fields[0])) }
        let endpointText = fields[1]
        guard let colon = endpointText.lastIndex(of: ":"),
              endpointText[endpointText.index(after: colon)...].allSatisfy({ $0.isASCII && $0.isNumber }),
              let endpoint = Endpoint(String(endpointText)), endpoint.port != 0 else {
            throw .invalidEndpoint(String(endpointText))
        }
        let priorityText = fields[2]
        guard priorityText.count <= 10, priorityText.allSatisfy({ $0.isASCII && $0.isNumber }),
              let priority = UInt32(priorityText), (1...0x7FFF_FFFF).contains(priority) else {
            throw .invalidPriority(String(priorityText))
        }
        self.init(type: type, endpoint: endpoint, priority: priority)
    }

    /// Joins candidates with ";".
    public static func encodeList(_ candidates: [Candidate]) -> String {
        candidates.map(\.description).joined(separator: ";")
    }

    /// Parses a ";"-separated list. Empty items are skipped; an empty list is allowed.
    public static func parseList(_ text: some StringProtocol) throws(CandidateParseError) -> [Candidate] {
        guard text.utf8.count <= maxListLength else { throw .tooLong(text.utf8.count) }
        let items = text.split(separator: ";").filter { !$0.allSatisfy { $0 == " " || $0 == "\t" } }
        guard items.count <= maxListCount else { throw .tooManyCandidates(items.count) }
        var result: [Candidate] = []
        for item in items {
            result.append(try Candidate(parsing: item))
        }
        return result
    }
}

/// How a datagram leaves (or arrived at) this node: straight from the shared UDP socket,
/// or through this node's TURN allocation (`TurnClient.wrap` / `unwrap`).
public enum TransportPath: Hashable, Sendable {
    case socket
    case relay
}

public struct CandidatePair: Hashable, Sendable, CustomStringConvertible {
    public enum State: Hashable, Sendable {
        case waiting
        case inProgress
        case succeeded
        case failed
    }

    public let local: Candidate
    public let remote: Candidate
    /// RFC 8445 §6.1.2.3 pair priority.
    public let priority: UInt64
    public internal(set) var state: State = .waiting
    /// Smallest round-trip time measured on this pair.
    public internal(set) var rtt: Duration?

    public init(local: Candidate, remote: Candidate, controlling: Bool) {
        self.local = local
        self.remote = remote
        self.priority = controlling
            ? CandidatePair.priority(controlling: local.priority, controlled: remote.priority)
            : CandidatePair.priority(controlling: remote.priority, controlled: local.priority)
    }

    /// RFC 8445 §6.1.2.3: 2^32·MIN(G,D) + 2·MAX(G,D) + (G > D ? 1 : 0).
    /// Inputs are clamped to the legal 2^31−1 so that wire-supplied priorities cannot
    /// overflow the result.
    public static func priority(controlling: UInt32, controlled: UInt32) -> UInt64 {
        let g = UInt64(min(controlling, 0x7FFF_FFFF))
        let d = UInt64(min(controlled, 0x7FFF_FFFF))
        return (min(g, d) << 32) + 2 * max(g, d) + (g > d ? 1 : 0)
    }

    /// Neither side relayed: traffic goes peer to peer.
    public var isDirect: Bool { !local.isRelayed && !remote.isRelayed }

    /// How probes (and later data) for this pair leave this node.
    public var path: TransportPath { local.isRelayed ? .relay : .socket }

    /// Check order: direct pairs first, then higher pair priority.
    public static func checkOrder(_ a: CandidatePair, _ b: CandidatePair) -> Bool {
        if a.isDirect != b.isDirect { return a.isDirect }
        return a.priority > b.priority
    }

    /// Selection order among working pairs: direct first, then lower RTT, then priority.
    public static func preferenceOrder(_ a: CandidatePair, _ b: CandidatePair) -> Bool {
        if a.isDirect != b.isDirect { return a.isDirect }
        switch (a.rtt, b.rtt) {
        case let (x?, y?) where x != y: return x < y
        case (.some, nil): return true
        case (nil, .some): return false
        default: return a.priority > b.priority
        }
    }

    public var description: String {
        "\(local.type.rawValue) → \(remote.type.rawValue) \(remote.endpoint) [\(state)\(rtt.map { " \($0)" } ?? "")]"
    }
}
