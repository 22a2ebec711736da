import Glibc
import IPOPLinux
import IPOPWire
import Testing

/// sendmmsg batches with UDP GSO runs, over loopback: every datagram must arrive whole, in
/// order, with its own length, whether a run went out as one GSO message or not.
@Suite struct DatagramBatchTests {
    static let loopback: UInt32 = 0x7F00_0001

    /// Fills slot i with `length` bytes derived from (tag, i) and addresses it to `to`.
    func fill(_ batch: DatagramBatch, _ i: Int, length: Int, tag: UInt8, to: Endpoint) {
        let slot = batch.buffer(i)
        for j in 0..<length { slot[j] = UInt8(truncatingIfNeeded: j &* 31 &+ i &* 7) ^ tag }
        batch.set(i, length: length, to: to)
    }

    /// Receives until `count` datagrams arrived (at most 2 s). Returns (length, bytes-ok) pairs.
    func receive(_ socket: UDPSocket, count: Int, tag: UInt8, firstSlot: [Int]) -> [Int] {
        let rx = DatagramBatch(capacity: 64, bufferSize: 9216)!
        var lengths: [Int] = []
        let deadline = ContinuousClock.now + .seconds(2)
        while lengths.count < count && ContinuousClock.now < deadline {
            let n = rx.receive(from: socket)
            if n == 0 { usleep(1000); continue }
            for k in 0..<n {
                let index = lengths.count
                let slot = index < firstSlot.count ? firstSlot[index] : -1
                let buffer = rx.buffer(k)
                var intact = true
                for j in 0..<rx.length(k) where buffer[j] != UInt8(truncatingIfNeeded: j &* 31 &+ slot &* 7) ^ tag {
                    intact = false
                    break
                }
                lengths.append(intact ? rx.length(k) : -rx.length(k))
            }
        }
        return lengths
    }

    @Test(arguments: [true, false])
    func runsToOneDestinationArriveAsTheSameDatagrams(gso: Bool) throws {
        let sender = try UDPSocket(port: 0)
        let b = try UDPSocket(port: 0)
        let c = try UDPSocket(port: 0)
        let toB = Endpoint(address: Self.loopback, port: b.port)
        let toC = Endpoint(address: Self.loopback, port: c.port)
        let tx = DatagramBatch(capacity: 64, bufferSize: 9216)!
        tx.gso = gso
        // 10 x 1300 and a 700 (one run), 3 x 1300 (a run), 2 x 100 to c, 1 x 1300 to b, 1 x 1400 to b.
        var plan: [(Int, Endpoint)] = Array(repeating: (1300, toB), count: 10) + [(700, toB)]
        plan += Array(repeating: (1300, toB), count: 3) + [(100, toC), (100, toC), (1300, toB), (1400, toB)]
        for (i, (length, to)) in plan.enumerated() { fill(tx, i, length: length, tag: 0x5A, to: to) }
        #expect(tx.send(count: plan.count, on: sender) == plan.count)

        let bSlots = plan.indices.filter { plan[$0].1 == toB }
        let cSlots = plan.indices.filter { plan[$0].1 == toC }
        #expect(receive(b, count: bSlots.count, tag: 0x5A, firstSlot: bSlots) == bSlots.map { plan[$0].0 })
        #expect(receive(c, count: cSlots.count, tag: 0x5A, firstSlot: cSlots) == cSlots.map { plan[$0].0 })

        let stats = tx.stats
        #expect(stats.datagrams == UInt64(plan.count))
        if gso && !stats.gsoDisabled {
            // runs: [0...10], [11...13], [14,15], [16], [17]
            #expect(stats.messages == 5)
        } else {
            #expect(stats.messages == UInt64(plan.count))
        }
    }

    @Test func aRunLongerThan64KBIsSplit() throws {
        let sender = try UDPSocket(port: 0)
        let b = try UDPSocket(port: 0)
        let toB = Endpoint(address: Self.loopback, port: b.port)
        let tx = DatagramBatch(capacity: 64, bufferSize: 9216)!
        for i in 0..<60 { fill(tx, i, length: 1326, tag: 0x33, to: toB) }
        #expect(tx.send(count: 60, on: sender) == 60)
        #expect(receive(b, count: 60, tag: 0x33, firstSlot: Array(0..<60)) == Array(repeating: 1326, count: 60))
        if !tx.stats.gsoDisabled { #expect(tx.stats.messages == 2) }   // 49 x 1326 <= 65000 < 50 x 1326
    }

    @Test(arguments: [true, false])
    func groReceiveCutsCoalescedRunsBackIntoDatagrams(gso: Bool) throws {
        let sender = try UDPSocket(port: 0)
        let b = try UDPSocket(port: 0)
        let toB = Endpoint(address: Self.loopback, port: b.port)
        let rx = DatagramBatch(capacity: 16, bufferSize: 9216)!
        #expect(rx.enableGRO(on: b))
        let tx = DatagramBatch(capacity: 64, bufferSize: 9216)!
        tx.gso = gso
        // 40 x 1300, a 500 (ends the run), 3 x 200, an empty one: a coalesced run, then small ones.
        let plan = Array(repeating: 1300, count: 40) + [500, 200, 200, 200, 0]
        for (i, length) in plan.enumerated() { fill(tx, i, length: length, tag: 0x77, to: toB) }
        #expect(tx.send(count: plan.count, on: sender) == plan.count)

        var lengths: [Int] = []
        var sawPending = false
        let deadline = ContinuousClock.now + .seconds(2)
        while lengths.count < plan.count && ContinuousClock.now < deadline {
            let n = rx.receive(from: b)
            if rx.hasPending { sawPending = true }
            if n == 0 { usleep(1000); continue }
            for k in 0..<n {
                let slot = lengths.count
                let buffer = rx.buffer(k)
                var intact = true
                for j in 0..<rx.length(k) where buffer[j] != UInt8(truncatingIfNeeded: j &* 31 &+ slot &* 7) ^ 0x77 {
                    intact = false
                    break
                }
                #expect(rx.source(k) == Endpoint(address: Self.loopback, port: sender.port))
                lengths.append(intact ? rx.length(k) : -rx.length(k))
            }
        }
        #expect(lengths == plan)
        #expect(!rx.hasPending)
        if gso && !tx.stats.gsoDisabled { #expect(sawPending) }   // one 41-datagram message > 16 slots
    }
}
