import Foundation
import IPOPWire
@testable import IPOPTraversal

enum Hex {
    static func decode(_ text: String) -> [UInt8] {
        var out: [UInt8] = []
        var chars = Array(text.utf8)[...]
        while chars.count >= 2 {
            out.append(UInt8(String(decoding: chars.prefix(2), as: UTF8.self), radix: 16) ?? 0)
            chars = chars.dropFirst(2)
        }
        return out
    }

    static func encode(_ bytes: [UInt8]) -> String {
        bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
    }
}

/// Deterministic generator for transaction ids and fuzzing.
struct SplitMix64: RandomNumberGenerator, Sendable {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

struct StunVector: Decodable {
    let name: String
    let section: String
    let hex: String
    let software: String?
    let username: String?
    let password: String
    let realm: String?
    let nonce: String?
    let xor_mapped_address: String?
    let port: Int?
    let fingerprint_valid: Bool?
    let message_integrity_valid: Bool

    var bytes: [UInt8] { Hex.decode(hex) }

    /// The MESSAGE-INTEGRITY key the RFC uses for this sample.
    var key: StunKey {
        if let realm, let username {
            return .longTerm(username: username, realm: realm, password: password)
        }
        return .shortTerm(password: password)
    }
}

private struct StunVectorFile: Decodable {
    let source: String
    let vectors: [StunVector]
}

func loadStunVectors() throws -> [StunVector] {
    guard let url = Bundle.module.url(forResource: "rfc5769-stun", withExtension: "json", subdirectory: "Resources") else {
        throw CocoaError(.fileNoSuchFile)
    }
    return try JSONDecoder().decode(StunVectorFile.self, from: Data(contentsOf: url)).vectors
}

func ep(_ text: String) -> Endpoint {
    Endpoint(text) ?? Endpoint(address: 0, port: 0)
}

extension ContinuousClock.Instant {
    func after(ms: Int) -> ContinuousClock.Instant { advanced(by: .milliseconds(ms)) }
    func after(seconds: Int) -> ContinuousClock.Instant { advanced(by: .seconds(seconds)) }
}
