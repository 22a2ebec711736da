import IPOPWire
import Testing
@testable import IPOPTraversal

/// A TURN client wired to a `FakeTurnServer`, with helpers to pump messages.
struct TurnHarness {
    var client: TurnClient
    var server: FakeTurnServer
    let t0 = ContinuousClock.now

    init(password: String = "secret", lifetime: UInt32? = nil) {
        let serverAddress = ep("192.0.2.10:3478")
        client = TurnClient(configuration: .init(server: serverAddress, username: "node-a", password: password,
                                                 requestedLifetime: lifetime),
                            random: SplitMix64(seed: 3))
        server = FakeTurnServer(address: serverAddress, relayed: ep("192.0.2.10:49152"),
                                clientAddress: ep("203.0.113.4:61000"), users: ["node-a": "secret"])
    }

    /// Delivers client datagrams to the server and the answers back, until quiet.
    mutating func pump(_ datagrams: [[UInt8]], at now: ContinuousClock.Instant) throws {
        var queue = datagrams
        while !queue.isEmpty {
            let bytes = queue.removeFirst()
            if let answer = server.handle(bytes, now: now) {
                let inbound = try client.unwrap(answer, from: server.address, now: now)
                #expect(inbound == .control)
                queue += client.tick(now: now)
            }
        }
    }

    mutating func allocate() throws {
        try pump(client.start(now: t0), at: t0)
    }
}

@Suite struct TurnClientTests {
    @Test func allocationAnswersTheChallenge() throws {
        var h = TurnHarness()
        let first = h.client.start(now: h.t0)
        #expect(h.client.state == .allocating)
        let request = try StunMessage.decode(first[0])
        #expect(request.type == StunMessageType(method: .allocate, messageClass: .request))
        #expect(request.attributes.contains(.requestedTransport(17)))
        #expect(request.username == nil)
        #expect(StunMessage.checkFingerprint(first[0]) == .valid)
        try h.pump(first, at: h.t0)

        #expect(h.server.requests.count == 2)
        let second = h.server.requests[1]
        #expect(second.username == "node-a")
        #expect(second.realm == "ipop.test")
        #expect(second.nonce == "nonce-1")
        #expect(h.client.isAllocated)
        #expect(h.client.relayedAddress == ep("192.0.2.10:49152"))
        #expect(h.client.mappedAddress == ep("203.0.113.4:61000"))
        #expect(h.client.lastError == nil)
        let events = h.client.drainEvents()
        #expect(events == [.allocated(relayed: ep("192.0.2.10:49152"), mapped: ep("203.0.113.4:61000"))])
        // Refresh is due one minute before the 600 s lifetime ends.
        #expect(h.client.nextDeadline == h.t0.after(seconds: 540))
    }

    @Test func badCredentialsAreATypedFailure() throws {
        var h = TurnHarness(password: "wrong")
        try h.allocate()
        #expect(h.client.state == .failed(.authenticationFailed))
        #expect(h.client.lastError == .authenticationFailed)
        let events = h.client.drainEvents()
        #expect(events == [.failed(.authenticationFailed)])
        #expect(throws: TurnError.notAllocated) { try h.client.wrap([1], to: ep("198.51.100.7:5000")) }
        #expect(h.server.requests.count == 2)   // no endless retry
    }

    @Test func staleNonceIsRetriedWithTheNewNonce() throws {
        var h = TurnHarness()
        try h.allocate()
        h.server.rotateNonceTo = "nonce-2"
        let refresh = h.client.tick(now: h.t0.after(seconds: 540))
        #expect(refresh.count == 1)
        try h.pump(refresh, at: h.t0.after(seconds: 540))
        #expect(h.server.requests.suffix(2).map(\.nonce) == ["nonce-1", "nonce-2"])
        let events = h.client.drainEvents()
        #expect(events.last == .refreshed(expires: h.t0.after(seconds: 1140)))
        #expect(h.client.isAllocated)
    }

    @Test func staleNonceLoopGivesUp() throws {
        var h = TurnHarness()
        try h.allocate()
        _ = h.client.drainEvents()
        var now = h.t0.after(seconds: 540)
        var datagrams = h.client.tick(now: now)
        for round in 0..<10 where !datagrams.isEmpty {
            h.server.rotateNonceTo = "n\(round)"
            let handled = h.server.handle(datagrams[0], now: now)
            let answer = try #require(handled)
            _ = try h.client.unwrap(answer, from: h.server.address, now: now)
            datagrams = h.client.tick(now: now)
            now = now.after(ms: 1)
        }
        #expect(h.client.state == .failed(.staleNonceLoop))
    }

    @Test func refreshKeepsTheAllocationAndCloseReleasesIt() throws {
        var h = TurnHarness(lifetime: 300)
        try h.allocate()
        #expect(h.server.requests[1].lifetime == 300)
        #expect(h.client.tick(now: h.t0.after(seconds: 239)).isEmpty)
        let refresh = h.client.tick(now: h.t0.after(seconds: 240))
        #expect(try StunMessage.decode(refresh[0]).type.method == .refresh)
        try h.pump(refresh, at: h.t0.after(seconds: 240))
        guard case .allocated(_, _, let expires) = h.client.state else {
            Issue.record("not allocated")
            return
        }
        #expect(expires == h.t0.after(seconds: 540))
        let bye = h.client.close(now: h.t0.after(seconds: 300))
        #expect(try StunMessage.decode(bye[0]).lifetime == 0)
        #expect(h.client.state == .closed)
        _ = h.server.handle(bye[0], now: h.t0.after(seconds: 300))
        #expect(!h.server.allocated)
    }

    @Test func unansweredRefreshLosesTheAllocationAtExpiry() throws {
        var h = TurnHarness()
        try h.allocate()
        _ = h.client.drainEvents()
        var sent = 0
        var second = 540
        while second <= 610, h.client.isAllocated {
            sent += h.client.tick(now: h.t0.after(seconds: second)).count
            second += 1
        }
        #expect(sent > 1)   // refresh retransmitted
        #expect(h.client.state == .failed(.allocationLost))
        #expect(second - 1 == 600)
    }

    @Test func allocateTimesOut() {
        var h = TurnHarness()
        _ = h.client.start(now: h.t0)
        var sends = 1
        for ms in stride(from: 50, through: 40_000, by: 50) {
            sends += h.client.tick(now: h.t0.after(ms: ms)).count
        }
        #expect(sends == 7)
        #expect(h.client.state == .failed(.timedOut(.allocate)))
    }

    @Test func successWithoutValidIntegrityIsIgnored() throws {
        var h = TurnHarness()
        h.server.corruptIntegrity = true
        try h.allocate()
        #expect(h.client.state == .allocating)
        #expect(h.client.nextDeadline == h.t0.after(ms: 500))   // still retransmitting
    }

    @Test func permissionsChannelsAndFraming() throws {
        var h = TurnHarness()
        try h.allocate()
        _ = h.client.drainEvents()
        let peer = ep("198.51.100.7:5000")
        let now = h.t0.after(seconds: 1)

        // Before the channel is bound: a Send indication; the peer is registered.
        let early = try h.client.wrap([0xAA, 0xBB], to: peer)
        let indication = try StunMessage.decode(early)
        #expect(indication.type == StunMessageType(method: .send, messageClass: .indication))
        #expect(indication.xorPeerAddress == .ipv4(peer))
        #expect(indication.data == [0xAA, 0xBB])
        #expect(h.server.relayToPeer(early, now: now) == nil)   // no permission yet: dropped

        let requests = h.client.tick(now: now)
        #expect(try requests.map { try StunMessage.decode($0).type.method } == [.createPermission, .channelBind])
        let channelRequest = try StunMessage.decode(requests[1])
        #expect(channelRequest.attributes.contains(.channelNumber(0x4000)))
        try h.pump(requests, at: now)
        let events = h.client.drainEvents()
        #expect(events == [.permissionCreated(address: peer.address), .channelBound(peer: peer, channel: 0x4000)])
        #expect(h.client.hasPermission(for: peer.address))
        #expect(h.client.channel(for: peer) == 0x4000)

        // Bound: ChannelData, unpadded.
        let framed = try h.client.wrap([1, 2, 3], to: peer)
        #expect(framed == [0x40, 0x00, 0x00, 0x03, 1, 2, 3])
        let relayed = try #require(h.server.relayToPeer(framed, now: now))
        #expect(relayed.payload == [1, 2, 3])
        #expect(relayed.peer == peer)

        // From the peer: ChannelData (padded by this server) and Data indications.
        let back = try #require(h.server.relayFromPeer([9, 8, 7, 6, 5], peer: peer, now: now))
        #expect(try h.client.unwrap(back, from: h.server.address, now: now) == .data([9, 8, 7, 6, 5], from: peer))
        let other = ep("198.51.100.7:6000")   // same IP: covered by the permission, no channel
        let dataIndication = try #require(h.server.relayFromPeer([4], peer: other, now: now))
        #expect(try h.client.unwrap(dataIndication, from: h.server.address, now: now) == .data([4], from: other))

        // Permission refresh at 4 min, channel refresh at 9 min.
        #expect(h.client.tick(now: now.after(seconds: 239)).isEmpty)
        let permissionRefresh = h.client.tick(now: now.after(seconds: 240))
        #expect(try permissionRefresh.map { try StunMessage.decode($0).type.method } == [.createPermission])
        try h.pump(permissionRefresh, at: now.after(seconds: 240))
        let at480 = h.client.tick(now: now.after(seconds: 480))
        #expect(try at480.map { try StunMessage.decode($0).type.method } == [.createPermission])
        try h.pump(at480, at: now.after(seconds: 480))
        // Allocation refresh (t0 + 540 s) precedes the channel refresh (now + 540 s).
        let at539 = h.client.tick(now: h.t0.after(seconds: 540))
        #expect(try at539.map { try StunMessage.decode($0).type.method } == [.refresh])
        try h.pump(at539, at: h.t0.after(seconds: 540))
        let channelRefresh = h.client.tick(now: now.after(seconds: 540))
        #expect(try channelRefresh.map { try StunMessage.decode($0).type.method } == [.channelBind])
        #expect(try StunMessage.decode(channelRefresh[0]).attributes.contains(.channelNumber(0x4000)))
    }

    @Test func unwrapErrors() throws {
        var h = TurnHarness()
        try h.allocate()
        let now = h.t0.after(seconds: 1)
        #expect(throws: TurnError.notFromServer(ep("1.2.3.4:5"))) {
            try h.client.unwrap([0x40, 0, 0, 0], from: ep("1.2.3.4:5"), now: now)
        }
        #expect(throws: TurnError.unknownChannel(0x4001)) {
            try h.client.unwrap([0x40, 0x01, 0, 1, 7], from: h.server.address, now: now)
        }
        #expect(throws: TurnError.malformedChannelData(.lengthMismatch(declared: 9, actual: 1))) {
            try h.client.unwrap([0x40, 0x00, 0, 9, 7], from: h.server.address, now: now)
        }
        #expect(throws: TurnError.notTurn) { try h.client.unwrap([1, 2, 3, 4], from: h.server.address, now: now) }
        var truncated = StunMessage(type: .bindingRequest, transactionID: TransactionID(high: 1, low: 1),
                                    attributes: [.lifetime(1)]).encode()
        truncated[23] = 200
        #expect(throws: TurnError.malformed(.truncatedAttribute(type: 0x000D))) {
            try h.client.unwrap(truncated, from: h.server.address, now: now)
        }
        let request = StunMessage(type: .bindingRequest, transactionID: TransactionID(high: 1, low: 1)).encode()
        #expect(throws: TurnError.unexpectedMessage(.bindingRequest)) {
            try h.client.unwrap(request, from: h.server.address, now: now)
        }
        let badData = StunMessage(type: StunMessageType(method: .data, messageClass: .indication),
                                  transactionID: TransactionID(high: 1, low: 1), attributes: [.data([1])]).encode()
        #expect(throws: TurnError.malformedIndication) { try h.client.unwrap(badData, from: h.server.address, now: now) }
        // A stray response is consumed quietly.
        let stray = StunMessage(type: StunMessageType(method: .refresh, messageClass: .successResponse),
                                transactionID: TransactionID(high: 5, low: 5)).encode()
        #expect(try h.client.unwrap(stray, from: h.server.address, now: now) == .control)
    }

    @Test func permissionErrorIsReported() throws {
        var h = TurnHarness()
        try h.allocate()
        _ = h.client.drainEvents()
        let peer = ep("198.51.100.7:5000")
        h.client.addPeer(peer)
        h.server.allocated = false   // the server forgot: CreatePermission → 400 here
        try h.pump(h.client.tick(now: h.t0.after(seconds: 1)), at: h.t0.after(seconds: 1))
        let events = h.client.drainEvents()
        #expect(events.contains(.permissionFailed(address: peer.address,
                                                  .errorResponse(method: .createPermission, code: 400, reason: "Bad Request"))))
        #expect(h.client.channel(for: peer) == nil)
        #expect(h.client.isAllocated)
    }
}

@Suite struct ChannelDataTests {
    @Test func roundTripAndPadding() throws {
        for length in 0...9 {
            let payload = (0..<length).map { UInt8($0) }
            let plain = ChannelData(channel: 0x4FFF, payload: payload)
            #expect(plain.encode().count == 4 + length)
            #expect(plain.encode(padded: true).count == 4 + paddedTo4(length))
            #expect(try ChannelData.decode(plain.encode()) == plain)
            #expect(try ChannelData.decode(plain.encode(padded: true)) == plain)
            #expect(try ChannelData.decode(plain.encode()[...]) == plain)
        }
    }

    @Test func errors() {
        #expect(throws: ChannelDataError.truncated) { try ChannelData.decode([0x40, 0x00, 0x00]) }
        #expect(throws: ChannelDataError.invalidChannel(0x5000)) { try ChannelData.decode([0x50, 0x00, 0, 0]) }
        #expect(throws: ChannelDataError.invalidChannel(0x3FFF)) { try ChannelData.decode([0x3F, 0xFF, 0, 0]) }
        #expect(throws: ChannelDataError.lengthMismatch(declared: 1, actual: 5)) {
            try ChannelData.decode([0x40, 0x00, 0, 1, 1, 0, 0, 0, 0])
        }
        let frame = ChannelData(channel: 0x4123, payload: Array(repeating: 7, count: 10)).encode()
        for length in 0..<frame.count {
            #expect(throws: ChannelDataError.self) { try ChannelData.decode(Array(frame[0..<length])) }
        }
    }
}
