import Crypto
import _CryptoExtras

/// Why a SASL exchange failed on our side.
public enum SASLError: Error, Sendable, Equatable, CustomStringConvertible {
    case malformedChallenge(String)
    case nonceMismatch
    case iterationCountOutOfRange(Int)
    case unsupportedExtension
    case serverError(String)
    case serverSignatureMismatch
    case unexpectedMessage(String)
    case cryptoFailure(String)

    public var description: String {
        switch self {
        case .malformedChallenge(let s): return "sasl: malformed server message (\(s))"
        case .nonceMismatch: return "sasl: server nonce does not extend ours"
        case .iterationCountOutOfRange(let i): return "sasl: iteration count \(i) out of range"
        case .unsupportedExtension: return "sasl: server requires an unsupported SCRAM extension"
        case .serverError(let e): return "sasl: server reported \(e)"
        case .serverSignatureMismatch: return "sasl: server signature mismatch: the server does not know our password"
        case .unexpectedMessage(let s): return "sasl: unexpected message (\(s))"
        case .cryptoFailure(let s): return "sasl: \(s)"
        }
    }
}

/// SCRAM-SHA-1 client (RFC 5802), without channel binding (gs2 header `n,,`).
///
/// Usage: send `clientFirstMessage`; pass the server's challenge to `respond(toServerFirst:)` and
/// send the result; pass the final server data (in `<success/>` or a last challenge) to
/// `verifyServerFinal(_:)`. Passwords are used as their UTF-8 bytes (SASLprep of non-ASCII
/// passwords is not implemented; ASCII passwords are unaffected).
public struct SCRAMSHA1Client: Sendable {
    /// Iteration counts accepted from the server (a hostile server must not make us spin).
    public static let iterationRange = 1...1_000_000

    public let username: String
    private let password: [UInt8]
    public let clientNonce: String
    private var authMessage: [UInt8] = []
    private(set) var serverSignature: [UInt8] = []

    /// `clientNonce` is for tests; by default 24 random bytes, base64.
    public init(username: String, password: String, clientNonce: String? = nil) {
        self.username = username
        self.password = Array(password.utf8)
        if let clientNonce {
            self.clientNonce = clientNonce
        } else {
            var rng = SystemRandomNumberGenerator()
            self.clientNonce = Base64.encode((0..<24).map { _ in UInt8.random(in: 0...255, using: &rng) })
        }
    }

    static func saslName(_ s: String) -> String {
        var out = ""
        for c in s.unicodeScalars {
            switch c {
            case "=": out += "=3D"
            case ",": out += "=2C"
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }

    public var clientFirstMessageBare: String { "n=\(Self.saslName(username)),r=\(clientNonce)" }
    public var clientFirstMessage: String { "n,," + clientFirstMessageBare }

    static func attributes(_ msg: String) throws(SASLError) -> [(Character, String)] {
        var out: [(Character, String)] = []
        for part in msg.split(separator: ",", omittingEmptySubsequences: false) {
            guard part.count >= 2, let k = part.first, part[part.index(after: part.startIndex)] == "=" else {
                throw .malformedChallenge(String(msg.prefix(64)))
            }
            out.append((k, String(part.dropFirst(2))))
        }
        return out
    }

    /// Computes client-final-message from server-first-message.
    public mutating func respond(toServerFirst serverFirst: String) throws(SASLError) -> String {
        let attrs = try Self.attributes(serverFirst)
        guard let first = attrs.first else { throw .malformedChallenge("empty") }
        if first.0 == "m" { throw .unsupportedExtension }
        guard attrs.count >= 3, attrs[0].0 == "r", attrs[1].0 == "s", attrs[2].0 == "i" else {
            throw .malformedChallenge(String(serverFirst.prefix(64)))
        }
        let nonce = attrs[0].1
        guard nonce.hasPrefix(clientNonce), nonce.count > clientNonce.count,
              nonce.allSatisfy({ $0.isASCII && $0 != "," && $0.asciiValue.map { $0 > 0x20 && $0 < 0x7F } == true })
        else { throw .nonceMismatch }
        guard let salt = Base64.decode(attrs[1].1), !salt.isEmpty else { throw .malformedChallenge("salt") }
        guard let iterations = Int(attrs[2].1) else { throw .malformedChallenge("iteration count") }
        guard Self.iterationRange.contains(iterations) else { throw .iterationCountOutOfRange(iterations) }

        let salted: [UInt8]
        do {
            let key = try KDF.Insecure.PBKDF2.deriveKey(from: password, salt: salt, using: .insecureSHA1,
                                                       outputByteCount: Insecure.SHA1.byteCount,
                                                       unsafeUncheckedRounds: iterations)
            salted = key.withUnsafeBytes { Array($0) }
        } catch {
            throw .cryptoFailure("PBKDF2 failed: \(error)")
        }
        let saltedKey = SymmetricKey(data: salted)
        let clientKey = Array(HMAC<Insecure.SHA1>.authenticationCode(for: Array("Client Key".utf8), using: saltedKey))
        let storedKey = Array(Insecure.SHA1.hash(data: clientKey))
        let withoutProof = "c=biws,r=\(nonce)"   // biws = base64("n,,")
        let auth = Array("\(clientFirstMessageBare),\(serverFirst),\(withoutProof)".utf8)
        let clientSignature = Array(HMAC<Insecure.SHA1>.authenticationCode(for: auth, using: SymmetricKey(data: storedKey)))
        var proof = clientKey
        for k in 0..<proof.count { proof[k] ^= clientSignature[k] }
        let serverKey = HMAC<Insecure.SHA1>.authenticationCode(for: Array("Server Key".utf8), using: saltedKey)
        serverSignature = Array(HMAC<Insecure.SHA1>.authenticationCode(for: auth, using: SymmetricKey(data: Array(serverKey))))
        authMessage = auth
        return "\(withoutProof),p=\(Base64.encode(proof))"
    }

    /// Checks server-final-message (`v=...` or `e=...`).
    public func verifyServerFinal(_ serverFinal: String) throws(SASLError) {
        guard !serverSignature.isEmpty else { throw .unexpectedMessage("server-final before server-first") }
        let attrs = try Self.attributes(serverFinal)
        guard let first = attrs.first else { throw .malformedChallenge("empty") }
        if first.0 == "e" { throw .serverError(first.1) }
        guard first.0 == "v", let v = Base64.decode(first.1) else { throw .malformedChallenge(String(serverFinal.prefix(64))) }
        // Constant-time comparison (the value is public by then, but it costs nothing).
        guard v.count == serverSignature.count else { throw .serverSignatureMismatch }
        var diff: UInt8 = 0
        for k in 0..<v.count { diff |= v[k] ^ serverSignature[k] }
        guard diff == 0 else { throw .serverSignatureMismatch }
    }
}

/// SASL PLAIN (RFC 4616) initial response: `\0user\0password`. Only ever sent over TLS.
public func saslPlainMessage(username: String, password: String) -> String {
    var b: [UInt8] = [0]
    b += Array(username.utf8)
    b.append(0)
    b += Array(password.utf8)
    return Base64.encode(b)
}
