import Foundation
import IPOPFuzz

// Two builds of one file:
// - `scripts/fuzz` builds with `-sanitize=fuzzer,address -DFUZZING`: libFuzzer's main drives
//   LLVMFuzzerTestOneInput below (coverage-guided, see `scripts/fuzz --help`).
// - a plain build is a replayer: `ipop-fuzz FILE|DIR...` runs the harness on each file (a crash
//   found by the fuzzer, a corpus), `ipop-fuzz --seeds DIR` writes the seed corpus.

#if FUZZING
nonisolated(unsafe) private var harness: FuzzHarness? = nil

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    if harness == nil { harness = FuzzHarness() }
    harness!.run(UnsafeRawBufferPointer(start: data, count: data == nil ? 0 : size))
    return 0
}

/// libFuzzer's driver (in the runtime `-sanitize=fuzzer` links). SwiftPM names an executable's
/// entry point itself, so libFuzzer's own `main` is not used; ours hands over to the driver.
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<Int32>,
                         _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
                         _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32) -> Int32

@main
struct Fuzz {
    static func main() {
        var argc = CommandLine.argc
        var argv = CommandLine.unsafeArgv
        exit(LLVMFuzzerRunDriver(&argc, &argv, fuzzOne))
    }
}
#else
@main
struct Replay {
    static func main() throws {
        let arguments = Array(CommandLine.arguments.dropFirst())
        let harness = FuzzHarness()
        if arguments.count == 2, arguments[0] == "--seeds" {
            try FileManager.default.createDirectory(atPath: arguments[1], withIntermediateDirectories: true)
            for (i, seed) in harness.seeds().enumerated() {
                try Data(seed).write(to: URL(fileURLWithPath: "\(arguments[1])/seed-\(i)"))
            }
            print("ipop-fuzz: wrote \(harness.seeds().count) seeds to \(arguments[1])")
            return
        }
        guard !arguments.isEmpty, !arguments[0].hasPrefix("-") else {
            print("usage: ipop-fuzz FILE|DIR...      run the harness on each input\n       ipop-fuzz --seeds DIR        write the seed corpus")
            return
        }
        var files: [String] = []
        for path in arguments {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
                FileHandle.standardError.write(Data("ipop-fuzz: \(path): no such file\n".utf8))
                exit(2)
            }
            if isDirectory.boolValue {
                files += (try FileManager.default.contentsOfDirectory(atPath: path)).sorted().map { "\(path)/\($0)" }
            } else {
                files.append(path)
            }
        }
        for file in files {
            let bytes = try Data(contentsOf: URL(fileURLWithPath: file))
            bytes.withUnsafeBytes { harness.run($0) }
        }
        print("ipop-fuzz: \(files.count) input(s) ran without a crash")
    }
}
#endif
