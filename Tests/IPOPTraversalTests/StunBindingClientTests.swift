import IPOPWire
import Testing
@testable import IPOPTraversal

/// Builds a Binding success response to `request` reporting `mapped`.
func bindingResponse(to request: [UInt8], mapped: Endpoint) throws -> [UInt8] {
    let message = try StunMessage.decode(request)
    return StunMessage(type: .bindingSuccess, transactionID: message.transactionID,
                       attributes: [.xorMappedAddress(.ipv4(mapped))]).encode(fingerprint: true)
}

@Suite struct StunBindingClientTests {
    let server1 = ep("198.51.100.1:3478")
    let server2 = ep("198.51.100.2:3478")

    func client(_ servers: [Endpoint]) -> StunBindingClient {
        StunBindingClient(configuration: .init(servers: servers, software: "ipop-swift"),
                          random: SplitMix64(seed: 1))
    }

    @Test func startQueriesEveryServer() throws {
        var c = client([server1, server2])
        let t0 = ContinuousClock.now
        #expect(c.nextDeadline == nil)
        let out = c.start(now: t0)
        #expect(out.map(\.destination) == [server1, server2])
        for datagram in out {
            let message = try StunMessage.decode(datagram.bytes)
            #expect(message.type == .bindingRequest)
            #expect(message.software == "ipop-swift")
            #expect(StunMessage.checkFingerprint(datagram.bytes) == .valid)
        }
        #expect(out[0].bytes != out[1].bytes)   // distinct transaction ids
    }

    /// RFC 8489 §6.2.1: sends at 0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5 s; timeout at 39.5 s.
    @Test func retransmissionScheduleAndTimeout() throws {
        var c = client([server1])
        let t0 = ContinuousClock.now
        let first = c.start(now: t0)
        var sendTimes: [Int] = [0]
        var ms = 0
        while ms <= 45_000 {
            ms += 50
            let out = c.tick(now: t0.after(ms: ms))
            if !out.isEmpty {
                #expect(out.count == 1)
                #expect(out[0].bytes == first[0].bytes)   // same transaction retransmitted
                sendTimes.append(ms)
            }
            let events = c.drainEvents()
            if !events.isEmpty {
                #expect(events == [.failed(server: server1, .timedOut)])
                #expect(ms == 39_500)
                break
            }
        }
        #expect(sendTimes == [0, 500, 1500, 3500, 7500, 15500, 31500])
        #expect(!c.isQuerying)
        #expect(c.nextDeadline == t0.after(ms: 39_500).advanced(by: .seconds(25)))
    }

    @Test func responseYieldsReflexiveAddressAndRefreshes() throws {
        var c = client([server1])
        let t0 = ContinuousClock.now
        let request = c.start(now: t0)[0]
        let mapped = ep("203.0.113.5:40000")
        // Wrong source, garbage and a foreign transaction are not consumed.
        do { let value = !c.receive(try bindingResponse(to: request.bytes, mapped: mapped), from: server2, now: t0.after(ms: 20)); #expect(value) }
        do { let value = !c.receive([1, 2, 3], from: server1, now: t0.after(ms: 20)); #expect(value) }
        let foreign = StunMessage(type: .bindingSuccess, transactionID: TransactionID(high: 9, low: 9),
                                  attributes: [.xorMappedAddress(.ipv4(mapped))]).encode()
        do { let value = !c.receive(foreign, from: server1, now: t0.after(ms: 20)); #expect(value) }

        do { let value = c.receive(try bindingResponse(to: request.bytes, mapped: mapped), from: server1, now: t0.after(ms: 30)); #expect(value) }
        do { let value = c.drainEvents() == [.mapped(server: server1, reflexive: mapped)]; #expect(value) }
        #expect(c.reflexiveAddress == mapped)
        #expect(c.mappings == [server1: mapped])
        // A duplicate answer is not consumed twice.
        do { let value = !c.receive(try bindingResponse(to: request.bytes, mapped: mapped), from: server1, now: t0.after(ms: 40)); #expect(value) }
        // No retransmission after the answer; refresh 25 s later.
        do { let value = c.tick(now: t0.after(ms: 600)).isEmpty; #expect(value) }
        #expect(c.nextDeadline == t0.after(ms: 30).advanced(by: .seconds(25)))
        let refresh = c.tick(now: t0.after(ms: 25_030))
        #expect(refresh.count == 1)
        // Same mapping: no event. Different mapping: mappingChanged.
        do { let value = c.receive(try bindingResponse(to: refresh[0].bytes, mapped: mapped), from: server1, now: t0.after(ms: 25_050)); #expect(value) }
        do { let value = c.drainEvents().isEmpty; #expect(value) }
        let refresh2 = c.tick(now: t0.after(ms: 50_050))
        let moved = ep("203.0.113.5:40001")
        do { let value = c.receive(try bindingResponse(to: refresh2[0].bytes, mapped: moved), from: server1, now: t0.after(ms: 50_060)); #expect(value) }
        do { let value = c.drainEvents() == [.mappingChanged(server: server1, old: mapped, new: moved)]; #expect(value) }
        #expect(c.reflexiveAddress == moved)
    }

    @Test func destinationDependentMappingIsNoticed() throws {
        var c = client([server1, server2])
        let t0 = ContinuousClock.now
        let out = c.start(now: t0)
        do { let value = c.receive(try bindingResponse(to: out[0].bytes, mapped: ep("203.0.113.5:40000")), from: server1, now: t0); #expect(value) }
        #expect(!c.isMappingDestinationDependent)
        do { let value = c.receive(try bindingResponse(to: out[1].bytes, mapped: ep("203.0.113.5:40001")), from: server2, now: t0); #expect(value) }
        #expect(c.isMappingDestinationDependent)
    }

    @Test func errorAndBadResponses() throws {
        var c = client([server1, server2])
        let t0 = ContinuousClock.now
        let out = c.start(now: t0)
        let id1 = try StunMessage.decode(out[0].bytes).transactionID
        let error = StunMessage(type: .bindingError, transactionID: id1,
                                attributes: [.errorCode(code: 400, reason: "Bad Request")]).encode()
        do { let value = c.receive(error, from: server1, now: t0); #expect(value) }
        let id2 = try StunMessage.decode(out[1].bytes).transactionID
        let unknown = StunMessage(type: .bindingSuccess, transactionID: id2, attributes: [
            .xorMappedAddress(.ipv4(ep("203.0.113.5:1"))), .other(type: 0x7001, value: []),
        ]).encode()
        do { let value = c.receive(unknown, from: server2, now: t0); #expect(value) }
        let events = c.drainEvents()
        #expect(events == [
            .failed(server: server1, .errorResponse(code: 400, reason: "Bad Request")),
            .failed(server: server2, .badResponse),
        ])
        #expect(c.reflexiveAddress == nil)
        #expect(c.tick(now: t0.after(seconds: 25)).count == 2)   // retried later
    }

    @Test func corruptFingerprintIsIgnored() throws {
        var c = client([server1])
        let t0 = ContinuousClock.now
        let request = c.start(now: t0)[0]
        var response = try bindingResponse(to: request.bytes, mapped: ep("203.0.113.5:40000"))
        response[response.count - 1] ^= 1
        do { let value = !c.receive(response, from: server1, now: t0); #expect(value) }
        #expect(c.isQuerying)
    }
}
