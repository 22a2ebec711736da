import Foundation
import IPOPWire

/// Walks one JSON object and checks each key as it is read; whatever is left unread at the end
/// is an unknown key (a typo must not pass silently).
struct ConfigReader {
    let path: String
    private let object: [String: JSONValue]
    private var used: Set<String> = []

    init(_ value: JSONValue, path: String) throws(ConfigError) {
        guard case .object(let object) = value else {
            throw ConfigError(path, "must be an object, not \(value.typeName)")
        }
        self.object = object
        self.path = path
    }

    func keyPath(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    func has(_ key: String) -> Bool {
        if case .some(.null) = object[key] { return false }
        return object[key] != nil
    }

    mutating func raw(_ key: String) -> JSONValue? {
        used.insert(key)
        if case .some(.null) = object[key] { return nil }
        return object[key]
    }

    mutating func string(_ key: String) throws(ConfigError) -> String? {
        guard let value = raw(key) else { return nil }
        guard case .string(let s) = value else {
            throw ConfigError(keyPath(key), "must be a string, not \(value.typeName)")
        }
        return s
    }

    mutating func requiredString(_ key: String) throws(ConfigError) -> String {
        guard let s = try string(key) else { throw ConfigError(keyPath(key), "is required") }
        guard !s.isEmpty else { throw ConfigError(keyPath(key), "must not be empty") }
        return s
    }

    mutating func int(_ key: String, in range: ClosedRange<Int>) throws(ConfigError) -> Int? {
        guard let value = raw(key) else { return nil }
        guard case .number(let d) = value else {
            throw ConfigError(keyPath(key), "must be a number, not \(value.typeName)")
        }
        guard d.rounded() == d, abs(d) < 1e15 else {
            throw ConfigError(keyPath(key), "\(d) is not a whole number")
        }
        let i = Int(d)
        guard range.contains(i) else {
            throw ConfigError(keyPath(key), "\(i) is not in \(range.lowerBound)...\(range.upperBound)")
        }
        return i
    }

    mutating func stringArray(_ key: String) throws(ConfigError) -> [String]? {
        guard let value = raw(key) else { return nil }
        guard case .array(let items) = value else {
            throw ConfigError(keyPath(key), "must be an array of strings, not \(value.typeName)")
        }
        var out: [String] = []
        for (i, item) in items.enumerated() {
            guard case .string(let s) = item else {
                throw ConfigError("\(keyPath(key))[\(i)]", "must be a string, not \(item.typeName)")
            }
            out.append(s)
        }
        return out
    }

    mutating func array(_ key: String) throws(ConfigError) -> [JSONValue]? {
        guard let value = raw(key) else { return nil }
        guard case .array(let items) = value else {
            throw ConfigError(keyPath(key), "must be an array, not \(value.typeName)")
        }
        return items
    }

    /// Call last: any key nobody read is a typo or a key from another version.
    func rejectUnknownKeys(known hint: [String]) throws(ConfigError) {
        let unknown = object.keys.filter { !used.contains($0) }.sorted()
        if let first = unknown.first {
            throw ConfigError(keyPath(first), "unknown key (known keys here: \(hint.sorted().joined(separator: ", ")))")
        }
    }
}
