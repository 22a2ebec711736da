import Logging
import Synchronization
@testable import IPOPSignal
#if canImport(Glibc)
import Glibc
#endif

func env(_ name: String) -> String? {
    guard let p = getenv(name) else { return nil }
    let s = String(cString: p)
    return s.isEmpty ? nil : s
}

struct TimedOut: Error, CustomStringConvertible {
    var description: String
}

/// Collects SignalEvents and lets a test wait for one.
final class EventCollector: Sendable {
    private let events = Mutex<[SignalEvent]>([])
    let name: String

    init(_ name: String) { self.name = name }

    func add(_ e: SignalEvent) { events.withLock { $0.append(e) } }
    var all: [SignalEvent] { events.withLock { $0 } }

    /// Waits until `match` returns non-nil for some event (from index `after` on).
    func wait<T>(_ what: String, timeout: Duration = .seconds(20), _ match: (SignalEvent) -> T?) async throws -> T {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            for e in all { if let t = match(e) { return t } }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw TimedOut(description: "\(name): timed out waiting for \(what); events: \(all)")
    }

    func count(_ match: (SignalEvent) -> Bool) -> Int { all.filter(match).count }
}

/// A swift-log handler that keeps messages for assertions.
final class LogCollector: Sendable {
    private let lines = Mutex<[(Logger.Level, String)]>([])

    func logger(_ label: String, level: Logger.Level = .debug) -> Logger {
        var l = Logger(label: label) { _ in Handler(collector: self) }
        l.logLevel = level
        return l
    }

    func add(_ level: Logger.Level, _ s: String) { lines.withLock { $0.append((level, s)) } }
    var all: [(Logger.Level, String)] { lines.withLock { $0 } }
    func count(level: Logger.Level? = nil, containing s: String) -> Int {
        all.filter { (level == nil || $0.0 == level) && $0.1.contains(s) }.count
    }

    func wait(level: Logger.Level? = nil, containing s: String, count n: Int = 1, timeout: Duration = .seconds(20)) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if count(level: level, containing: s) >= n { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw TimedOut(description: "timed out waiting for \(n)× log '\(s)'; log: \(all.map { "\($0.0): \($0.1)" })")
    }

    struct Handler: LogHandler {
        let collector: LogCollector
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(event: LogEvent) {
            collector.add(event.level, "\(event.message)")
            if env("IPOP_TEST_VERBOSE") != nil { print("[\(event.level)] \(event.message)") }
        }
    }
}
