// ipop-hotpath-bench: frames through switch + seal + open + switch in memory (no kernel, no
// namespaces), reporting ns/frame and heap allocations/frame. See IPOPBench.HotPath.
//
// usage: ipop-hotpath-bench [--frames N] [--size BYTES] [--reps R] [--warmup N]
//   --frames N    frames per timed repetition (default 200000)
//   --size BYTES  Ethernet frame size (default 1294: MTU 1280 + 14)
//   --reps R      timed repetitions; the median and the best are printed (default 5)
//   --warmup N    untimed frames first (default 20000)
// Wall ns/frame suffers when other processes share the CPUs; "cpu ns/frame" (thread CPU time) less so.
// Allocations are counted by CAllocCounter (malloc & co. interposed in this executable).
// Under `valgrind --tool=callgrind` use e.g. --frames 2000 --reps 1 --warmup 200 and divide
// the instruction count of HotPath.run by the frames.
import CAllocCounter
import Foundation
import IPOPBench

func usage(_ message: String) -> Never {
    FileHandle.standardError.write(Data("ipop-hotpath-bench: \(message)\nusage: ipop-hotpath-bench [--frames N] [--size BYTES] [--reps R] [--warmup N]\n".utf8))
    exit(2)
}

var frames = 200_000, size = HotPath.defaultFrameSize, reps = 5, warmup = 20_000
var args = CommandLine.arguments.dropFirst()
while let flag = args.popFirst() {
    if flag == "-h" || flag == "--help" { usage("help") }
    guard let text = args.popFirst(), let value = Int(text), value >= 0 else { usage("\(flag) needs a non-negative number") }
    switch flag {
    case "--frames": frames = max(1, value)
    case "--size": size = value
    case "--reps": reps = max(1, value)
    case "--warmup": warmup = value
    default: usage("unknown option \(flag)")
    }
}
guard ipop_alloc_counter_active() == 1 else { usage("allocation counter not active (malloc not interposed)") }

let path: HotPath
do { path = try HotPath(frameSize: size) } catch { usage("\(error)") }

if path.run(warmup) != 0 { usage("frames failed during warm-up") }

/// CPU time of this thread (not disturbed by other processes taking the CPU away, unlike wall time).
func threadCPUNanoseconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
    return Double(ts.tv_sec) * 1e9 + Double(ts.tv_nsec)
}

var nsPerFrame: [Double] = []
var cpuPerFrame: [Double] = []
var allocations: [UInt64] = []
for _ in 0..<reps {
    let a0 = ipop_alloc_count_thread()
    let c0 = threadCPUNanoseconds()
    let t0 = ContinuousClock.now
    let failed = path.run(frames)
    let elapsed = t0.duration(to: .now)
    cpuPerFrame.append((threadCPUNanoseconds() - c0) / Double(frames))
    let a1 = ipop_alloc_count_thread()
    if failed != 0 { usage("\(failed) of \(frames) frames failed") }
    let ns = Double(elapsed.components.seconds) * 1e9 + Double(elapsed.components.attoseconds) / 1e9
    nsPerFrame.append(ns / Double(frames))
    allocations.append(a1 - a0)
}
guard path.lastFrameIntact else { usage("the delivered frame differs from the sent one") }
let stages = path.perStage(min(frames, 10_000)) { ipop_alloc_count_thread() }
let stageFrames = Double(min(frames, 10_000))

let sorted = nsPerFrame.sorted()
let median = sorted[sorted.count / 2]
let best = sorted[0]
let allocsPerFrame = Double(allocations.max()!) / Double(frames)
func f(_ x: Double, _ digits: Int = 1) -> String { String(format: "%.\(digits)f", x) }
print("hotpath: \(frames) frames x \(reps) reps of \(size) bytes (switch + seal + open + switch, one thread)")
let cpu = cpuPerFrame.sorted()
print("  ns/frame:          \(f(median)) median, \(f(best)) best wall   (\(f(1e3 / median, 3)) Mframes/s, \(f(Double(size) * 8 / median, 2)) Gbit/s of frames)")
print("  cpu ns/frame:      \(f(cpu[cpu.count / 2])) median, \(f(cpu[0])) best   (thread CPU time: what the wall time would be on an idle core)")
print("  allocations/frame: \(f(allocsPerFrame, 2))   (" + stages.map { "\($0.stage.rawValue) \(f(Double($0.total) / stageFrames, 2))" }.joined(separator: ", ") + ")")
