import IPOPWire
import Testing
@testable import IPOPTraversal

private let key = StunKey.shortTerm(password: "overlay-secret")

private func checker(_ local: String, _ remote: String, controlling: Bool,
                     locals: [Candidate], remotes: [Candidate], seed: UInt64 = 1) -> ConnectivityChecker {
    ConnectivityChecker(configuration: .init(localID: local, remoteID: remote, key: key, controlling: controlling),
                        local: locals, remote: remotes, random: SplitMix64(seed: seed))
}

@Suite struct ConnectivityCheckerUnitTests {
    let hostA = Candidate(type: .host, endpoint: ep("10.0.0.1:5800"))
    let srflxA = Candidate(type: .serverReflexive, endpoint: ep("203.0.113.1:40000"))
    let relayA = Candidate(type: .relayed, endpoint: ep("192.0.2.10:49152"))
    let hostB = Candidate(type: .host, endpoint: ep("10.0.1.1:5800"))
    let srflxB = Candidate(type: .serverReflexive, endpoint: ep("203.0.113.2:40000"))
    let relayB = Candidate(type: .relayed, endpoint: ep("192.0.2.10:49153"))

    @Test func pairsAreFormedPerPathAndOrdered() {
        let c = checker("a", "b", controlling: true, locals: [srflxA, hostA, relayA], remotes: [relayB, hostB, srflxB, hostB])
        #expect(c.pairs.count == 6)
        #expect(c.pairs.prefix(2).allSatisfy { $0.isDirect })
        #expect(c.pairs[0].remote == hostB && c.pairs[0].local == hostA)
        #expect(c.pairs[1].remote == srflxB)
        #expect(c.pairs.allSatisfy { $0.local != srflxA })   // srflx is represented by its base
        #expect(Set(c.pairs.map(\.path)) == [.socket, .relay])
        #expect(c.state == .idle)
        #expect(c.nextDeadline == nil)
    }

    @Test func probesEveryPairAtOnceWithTheDocumentedFormat() throws {
        var c = checker("a", "b", controlling: true, locals: [hostA, relayA], remotes: [hostB, srflxB, relayB])
        let t0 = ContinuousClock.now
        let probes = c.start(now: t0)
        #expect(probes.count == 6)
        #expect(Set(probes.map { "\($0.path) \($0.destination)" }).count == 6)
        for probe in probes {
            let message = try StunMessage.decode(probe.bytes)
            #expect(message.type == .bindingRequest)
            #expect(message.username == "b:a")
            #expect(message.attributes.contains(.priority(Candidate.priority(type: .peerReflexive))))
            #expect(StunMessage.checkIntegrity(probe.bytes, key: key) == .valid)
            #expect(StunMessage.checkFingerprint(probe.bytes) == .valid)
            #expect(c.isAwaiting(probe.bytes))
            let ids = try #require(ConnectivityChecker.probeIdentities(probe.bytes))
            #expect(ids.receiver == "b" && ids.sender == "a")
        }
        #expect(c.pairs.allSatisfy { $0.state == .inProgress })
    }

    /// Every unfinished pair is re-probed every 200 ms with a fresh transaction until the
    /// 10 s timeout; then the check fails and nothing more is sent.
    @Test func pacingAndTimeout() throws {
        var c = checker("a", "b", controlling: true, locals: [hostA], remotes: [hostB, srflxB])
        let t0 = ContinuousClock.now
        var rounds: [Int: Int] = [0: c.start(now: t0).count]
        var ids = Set<TransactionID>()
        for ms in stride(from: 10, through: 11_000, by: 10) {
            let probes = c.tick(now: t0.after(ms: ms))
            if !probes.isEmpty { rounds[ms] = probes.count }
            for probe in probes { ids.insert(try StunMessage.decode(probe.bytes).transactionID) }
        }
        #expect(rounds.keys.sorted() == Array(stride(from: 0, to: 10_000, by: 200)))
        #expect(rounds.values.allSatisfy { $0 == 2 })
        #expect(ids.count == 49 * 2)
        #expect(c.state == .failed)
        #expect(c.pairs.allSatisfy { $0.state == .failed })
        #expect(c.nextDeadline == nil)
    }

    @Test func answersValidProbesAndMeasuresRTT() throws {
        var a = checker("a", "b", controlling: true, locals: [hostA], remotes: [hostB])
        var b = checker("b", "a", controlling: false, locals: [hostB], remotes: [hostA], seed: 2)
        let t0 = ContinuousClock.now
        let probe = try #require(a.start(now: t0).first)
        _ = b.start(now: t0)
        let replies = b.receive(probe.bytes, from: hostA.endpoint, path: .socket, now: t0.after(ms: 15))
        #expect(replies.count == 2)   // ack + triggered probe
        let ack = replies[0]
        #expect(ack.destination == hostA.endpoint)
        let decoded = try StunMessage.decode(ack.bytes)
        #expect(decoded.type == .bindingSuccess)
        #expect(decoded.mappedAddress == .ipv4(hostA.endpoint))
        #expect(StunMessage.checkIntegrity(ack.bytes, key: key) == .valid)
        // Ack from a different address than probed: ignored.
        #expect(a.receive(ack.bytes, from: ep("10.0.1.1:5801"), path: .socket, now: t0.after(ms: 30)).isEmpty)
        #expect(a.pairs[0].state == .inProgress)
        // Over the wrong path: ignored.
        _ = a.receive(ack.bytes, from: hostB.endpoint, path: .relay, now: t0.after(ms: 30))
        #expect(a.pairs[0].state == .inProgress)
        _ = a.receive(ack.bytes, from: hostB.endpoint, path: .socket, now: t0.after(ms: 30))
        #expect(a.pairs[0].state == .succeeded)
        #expect(a.pairs[0].rtt == .milliseconds(30))
        #expect(a.best == a.pairs[0])
        // Completes `settle` (1 s) after the first direct success.
        #expect(a.nextDeadline == t0.after(ms: 1030))
        _ = a.tick(now: t0.after(ms: 1030))
        #expect(a.selected == a.pairs[0])
        // Still answers the peer after completion.
        #expect(a.receive(replies[1].bytes, from: hostB.endpoint, path: .socket, now: t0.after(ms: 1100)).count == 1)
    }

    @Test func rejectsForeignOrForgedProbes() throws {
        var a = checker("a", "b", controlling: true, locals: [hostA], remotes: [hostB])
        var b = checker("b", "a", controlling: false, locals: [hostB], remotes: [hostA], seed: 2)
        var mallory = ConnectivityChecker(
            configuration: .init(localID: "a", remoteID: "b", key: .shortTerm(password: "guess"), controlling: true),
            local: [hostA], remote: [hostB], random: SplitMix64(seed: 3))
        var carol = checker("c", "b", controlling: true, locals: [hostA], remotes: [hostB], seed: 4)
        let t0 = ContinuousClock.now
        _ = b.start(now: t0)
        let forged = try #require(mallory.start(now: t0).first)
        #expect(b.receive(forged.bytes, from: hostA.endpoint, path: .socket, now: t0).isEmpty)
        let misaddressed = try #require(carol.start(now: t0).first)
        #expect(b.receive(misaddressed.bytes, from: hostA.endpoint, path: .socket, now: t0).isEmpty)
        var corrupted = try #require(a.start(now: t0).first).bytes
        corrupted[corrupted.count - 1] ^= 0xFF
        #expect(b.receive(corrupted, from: hostA.endpoint, path: .socket, now: t0).isEmpty)
        #expect(b.receive([1, 2, 3], from: hostA.endpoint, path: .socket, now: t0).isEmpty)
    }

    @Test func unknownComprehensionRequiredAttributeGets420() throws {
        var b = checker("b", "a", controlling: false, locals: [hostB], remotes: [hostA])
        _ = b.start(now: ContinuousClock.now)
        let request = StunMessage(type: .bindingRequest, transactionID: TransactionID(high: 1, low: 2), attributes: [
            .username("b:a"), .other(type: 0x7777, value: [1, 2, 3, 4]),
        ]).encode(integrity: key, fingerprint: true)
        let replies = b.receive(request, from: hostA.endpoint, path: .socket, now: ContinuousClock.now)
        let reply = try StunMessage.decode(try #require(replies.first).bytes)
        #expect(reply.type == .bindingError)
        #expect(reply.errorCode?.code == 420)
        #expect(reply.attributes.contains(.unknownAttributes([0x7777])))
    }

    @Test func peerReflexiveCandidateIsLearnedAndTriggered() throws {
        var b = checker("b", "a", controlling: false, locals: [hostB], remotes: [srflxA])
        let t0 = ContinuousClock.now
        _ = b.start(now: t0)
        let unseen = ep("203.0.113.1:40007")
        let probe = StunMessage(type: .bindingRequest, transactionID: TransactionID(high: 3, low: 4), attributes: [
            .username("b:a"), .priority(12345),
        ]).encode(integrity: key, fingerprint: true)
        let replies = b.receive(probe, from: unseen, path: .socket, now: t0.after(ms: 50))
        #expect(replies.map(\.destination) == [unseen, unseen])
        let learned = try #require(b.pairs.last)
        #expect(learned.remote == Candidate(type: .peerReflexive, endpoint: unseen, priority: 12345))
        #expect(learned.state == .inProgress)
    }

    @Test func trickledCandidatesAreProbed() {
        var a = checker("a", "b", controlling: true, locals: [hostA], remotes: [])
        let t0 = ContinuousClock.now
        #expect(a.start(now: t0).isEmpty)
        let probes = a.addRemoteCandidates([srflxB, srflxB], now: t0.after(ms: 10))
        #expect(probes.map(\.destination) == [srflxB.endpoint])
        #expect(a.pairs.count == 1)
    }

    @Test func relayOnlyCompletesAfterSettleWhenNoDirectPairExists() throws {
        var a = checker("a", "b", controlling: true, locals: [relayA], remotes: [relayB])
        var b = checker("b", "a", controlling: false, locals: [relayB], remotes: [relayA], seed: 2)
        let t0 = ContinuousClock.now
        let probe = try #require(a.start(now: t0).first)
        #expect(probe.path == .relay)
        _ = b.start(now: t0)
        let ack = try #require(b.receive(probe.bytes, from: relayA.endpoint, path: .relay, now: t0.after(ms: 40)).first)
        _ = a.receive(ack.bytes, from: relayB.endpoint, path: .relay, now: t0.after(ms: 80))
        _ = a.tick(now: t0.after(ms: 1080))
        #expect(a.selected?.path == .relay)
        #expect(a.selected?.rtt == .milliseconds(80))
    }
}

/// End-to-end checks through the fake NAT world (model documented in NATWorld.swift).
@Suite struct NATTraversalTests {
    private func summary(_ world: NATWorld, _ index: Int) -> String {
        world.nodes[index].checker?.pairs.map(\.description).joined(separator: "\n") ?? "no checker"
    }

    @Test func endpointIndependentNATsBothSidesConnectDirectly() throws {
        let world = NATWorld()
        let a = world.addNode("a", host: "10.1.0.2:5800", lan: 1, behavior: .portRestrictedCone, publicIP: "203.0.113.1")
        let b = world.addNode("b", host: "10.2.0.2:5800", lan: 2, behavior: .portRestrictedCone, publicIP: "203.0.113.2")
        world.connect(a, b)
        for (me, peer) in [(a, b), (b, a)] {
            let selected = try #require(world.nodes[me].checker?.selected, Comment(rawValue: summary(world, me)))
            #expect(selected.isDirect)
            #expect(selected.remote.endpoint == world.nodes[peer].binding.reflexiveAddress)
            #expect(selected.rtt == .milliseconds(20))
        }
        // Completed about `settle` after the first success, long before the 10 s timeout.
        #expect(world.elapsedMs < 2500)
    }

    @Test func symmetricNATsBothSidesFallBackToTheRelay() throws {
        let world = NATWorld()
        let a = world.addNode("a", host: "10.1.0.2:5800", lan: 1, behavior: .symmetric, publicIP: "203.0.113.1")
        let b = world.addNode("b", host: "10.2.0.2:5800", lan: 2, behavior: .symmetric, publicIP: "203.0.113.2")
        world.connect(a, b)
        for me in [a, b] {
            let checker = try #require(world.nodes[me].checker)
            #expect(!checker.pairs.contains { $0.isDirect && $0.state == .succeeded }, Comment(rawValue: summary(world, me)))
            let selected = try #require(checker.selected, Comment(rawValue: summary(world, me)))
            #expect(!selected.isDirect)
            #expect(selected.rtt == .milliseconds(40))
        }
    }

    @Test(arguments: [
        (NATBehavior.fullCone, true, true), (.restrictedCone, true, true), (.portRestrictedCone, true, false),
        (.fullCone, false, true), (.restrictedCone, false, true), (.portRestrictedCone, false, false),
    ])
    func coneAndSymmetric(cone: NATBehavior, coneControls: Bool, expectDirect: Bool) throws {
        let world = NATWorld()
        let c = world.addNode("cone", host: "10.1.0.2:5800", lan: 1, behavior: cone, publicIP: "203.0.113.1")
        let s = world.addNode("sym", host: "10.2.0.2:5800", lan: 2, behavior: .symmetric, publicIP: "203.0.113.2")
        if coneControls { world.connect(c, s) } else { world.connect(s, c) }
        for me in [c, s] {
            let selected = try #require(world.nodes[me].checker?.selected, Comment(rawValue: summary(world, me)))
            #expect(selected.isDirect == expectDirect, Comment(rawValue: summary(world, me)))
        }
        if expectDirect {
            // The symmetric side reaches the cone side's server-reflexive address; the cone
            // side reaches the symmetric side's peer-reflexive (per-destination) mapping.
            #expect(world.nodes[s].checker?.selected?.remote.type == .serverReflexive)
            #expect(world.nodes[c].checker?.selected?.remote.type == .peerReflexive)
            #expect(world.nodes[c].checker?.selected?.remote.endpoint != world.nodes[s].binding.reflexiveAddress)
        }
    }

    /// The same, with real TURN clients and servers on the shared socket: relayed probes
    /// go out as Send indications / ChannelData and need the permissions the TURN client
    /// installs for the peer's addresses.
    @Test func symmetricNATsUseRealTURNAllocations() throws {
        let world = NATWorld(useTurn: true)
        let a = world.addNode("a", host: "10.1.0.2:5800", lan: 1, behavior: .symmetric, publicIP: "203.0.113.1")
        let b = world.addNode("b", host: "10.2.0.2:5800", lan: 2, behavior: .symmetric, publicIP: "203.0.113.2")
        world.connect(a, b)
        for me in [a, b] {
            let node = world.nodes[me]
            #expect(node.turn?.relayedAddress == node.relay)
            #expect(node.candidates.contains { $0.type == .relayed })
            let selected = try #require(node.checker?.selected, Comment(rawValue: summary(world, me)))
            #expect(!selected.isDirect)
            let turn = try #require(node.turn)
            // Permissions exist for the peer's public IP; a channel is bound to some peer.
            #expect(turn.hasPermission(for: Endpoint.parseIPv4(me == a ? "203.0.113.2" : "203.0.113.1") ?? 0))
        }
        #expect(world.relayedCount > 0)
    }

    @Test func coneAndSymmetricStillGoDirectWithRealTURN() throws {
        let world = NATWorld(useTurn: true)
        let c = world.addNode("cone", host: "10.1.0.2:5800", lan: 1, behavior: .restrictedCone, publicIP: "203.0.113.1")
        let s = world.addNode("sym", host: "10.2.0.2:5800", lan: 2, behavior: .symmetric, publicIP: "203.0.113.2")
        world.connect(c, s)
        #expect(world.nodes[c].checker?.selected?.isDirect == true, Comment(rawValue: summary(world, c)))
        #expect(world.nodes[s].checker?.selected?.isDirect == true, Comment(rawValue: summary(world, s)))
    }

    @Test func publicNodeAndSymmetricNATConnectDirectly() throws {
        let world = NATWorld()
        let p = world.addNode("pub", host: "198.51.100.50:5800", lan: 9, behavior: nil)
        let s = world.addNode("sym", host: "10.2.0.2:5800", lan: 2, behavior: .symmetric, publicIP: "203.0.113.2")
        world.connect(p, s)
        #expect(world.nodes[p].checker?.selected?.isDirect == true)
        #expect(world.nodes[s].checker?.selected?.isDirect == true)
        #expect(world.nodes[s].checker?.selected?.remote.type == .host)
    }

    @Test func sameLANPrefersTheHostPair() throws {
        let world = NATWorld()
        let nat = SimNAT(publicIP: 0xCB00_7101, behavior: .portRestrictedCone)
        let a = world.addNode("a", host: "10.1.0.2:5800", lan: 1, behavior: nil, sharedNAT: nat)
        let b = world.addNode("b", host: "10.1.0.3:5800", lan: 1, behavior: nil, sharedNAT: nat)
        world.connect(a, b)
        for (me, peer) in [(a, b), (b, a)] {
            let selected = try #require(world.nodes[me].checker?.selected, Comment(rawValue: summary(world, me)))
            #expect(selected.remote.type == .host)
            #expect(selected.remote.endpoint == world.nodes[peer].host)
            #expect(selected.rtt == .milliseconds(10))   // 1 ms each way, handled at 5 ms steps
        }
    }

    /// All pairs are probed in the same instant at start (no ICE Ta pacing).
    @Test func firstProbesLeaveTogether() {
        let world = NATWorld()
        let a = world.addNode("a", host: "10.1.0.2:5800", lan: 1, behavior: .symmetric, publicIP: "203.0.113.1")
        let b = world.addNode("b", host: "10.2.0.2:5800", lan: 2, behavior: .symmetric, publicIP: "203.0.113.2")
        world.connect(a, b)
        let firstProbeTime = world.sent.filter { $0.node == a && $0.to != world.stunServer }.map(\.ms).min() ?? -1
        let firstRound = world.sent.filter { $0.node == a && $0.ms == firstProbeTime && $0.to != world.stunServer }
        #expect(firstRound.count == 6)   // (socket, relay) × (host, srflx, relay) of b
    }
}
