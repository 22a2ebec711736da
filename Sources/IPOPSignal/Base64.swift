#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Base64 through Foundation's codec (standard alphabet, with padding).
enum Base64 {
    static func encode<C: Collection>(_ bytes: C) -> String where C.Element == UInt8 {
        Data(bytes).base64EncodedString()
    }

    static func encode(_ s: String) -> String { encode(Array(s.utf8)) }

    /// nil when `s` is not valid base64. Surrounding whitespace is ignored.
    static func decode(_ s: String) -> [UInt8]? {
        let trimmed = s.filter { !$0.isWhitespace }
        guard let d = Data(base64Encoded: trimmed) else { return nil }
        return [UInt8](d)
    }
}
