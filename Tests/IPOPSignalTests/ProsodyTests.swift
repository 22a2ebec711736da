import Logging
import Testing
@testable import IPOPSignal

// Against a real server: enabled only when IPOP_PROSODY=host:port is set (and IPOP_PROSODY_CA
// to the CA file). scripts/e2e/xmpp/signal_unit_with_prosody.sh starts a private prosody,
// registers the accounts below, and runs these tests.
//
// Accounts (domain $IPOP_PROSODY_DOMAIN, default xmpp.ipop.test):
//   ipop / ipop-shared-pw   the shared account
//   node1 / node1-pw, node2 / node2-pw   separate accounts that meet in a MUC room

let prosodyServer = env("IPOP_PROSODY")
let prosodyCA = env("IPOP_PROSODY_CA")
let prosodyDomain = env("IPOP_PROSODY_DOMAIN") ?? "xmpp.ipop.test"

func prosodyConfig(_ user: String, _ password: String, room: String? = nil) -> XMPPConfig {
    var c = XMPPConfig(server: prosodyServer ?? "", jid: "\(user)@\(prosodyDomain)", password: password,
                       room: room, tls: .required, caFile: prosodyCA, acceptUntrustedServer: false)
    c.reconnectMin = .milliseconds(200)
    c.reconnectMax = .seconds(2)
    return c
}

let key1 = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="
let key2b = "AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI="

@Suite(.serialized, .enabled(if: prosodyServer != nil, "set IPOP_PROSODY=host:port (see scripts/e2e/xmpp/signal_unit_with_prosody.sh)"))
struct ProsodyTests {
    /// Starts two clients, waits until each sees the other, exchanges messages, stops them.
    func pair(_ c1: XMPPConfig, _ c2: XMPPConfig, overlays: [String] = ["lab"]) async throws {
        let logs = LogCollector()
        let a = SignalClient(config: c1, announcement: ("vm1", overlays, key1), logger: logs.logger("vm1"))
        let b = SignalClient(config: c2, announcement: ("vm2", overlays + ["extra"], key2b), logger: logs.logger("vm2"))
        let ea = EventCollector("vm1"), eb = EventCollector("vm2")
        a.start { ea.add($0) }
        b.start { eb.add($0) }

        let boundA = try await ea.wait("connected") { if case .connected(let j) = $0 { j } else { nil } }
        let boundB = try await eb.wait("connected") { if case .connected(let j) = $0 { j } else { nil } }
        #expect(boundA != boundB)
        let seenByA = try await ea.wait("vm2 online") { e -> PeerAnnouncement? in
            if case .peerOnline(let p) = e, p.nodeName == "vm2" { p } else { nil }
        }
        let seenByB = try await eb.wait("vm1 online") { e -> PeerAnnouncement? in
            if case .peerOnline(let p) = e, p.nodeName == "vm1" { p } else { nil }
        }
        #expect(seenByA.overlays == overlays + ["extra"] && seenByA.publicKey == key2b)
        #expect(seenByB.overlays == overlays && seenByB.publicKey == key1)
        #expect(ea.count { if case .peerOnline(let p) = $0 { p.nodeName == "vm1" } else { false } } == 0, "sees itself")

        let body = "candidates: udp 10.0.0.1:5800 <&> 'quoted' \"double\" \u{1F600}\nline 2"
        a.send(to: seenByA.address, overlay: "lab", kind: "con_req", body: body)
        let got = try await eb.wait("message from vm1") { e -> (String, String, String, String)? in
            if case .message(let f, let o, let k, let b) = e { (f, o, k, b) } else { nil }
        }
        #expect(got.0 == seenByB.address)
        #expect(got.1 == "lab" && got.2 == "con_req" && got.3 == body)
        b.send(to: got.0, overlay: "lab", kind: "con_resp", body: "")
        let reply = try await ea.wait("reply from vm2") { e -> String? in
            if case .message(_, _, let k, let b) = e, k == "con_resp" { b } else { nil }
        }
        #expect(reply == "")

        await b.stop()
        let off = try await ea.wait("vm2 offline") { e -> String? in
            if case .peerOffline(let addr) = e { addr } else { nil }
        }
        #expect(off == seenByA.address)
        await a.stop()
        #expect(ea.count { if case .disconnected = $0 { true } else { false } } == 1)
        #expect(logs.count(level: .error, containing: "") == 0, "errors: \(logs.all.filter { $0.0 == .error })")
    }

    @Test func sharedAccountDifferentResources() async throws {
        try await pair(prosodyConfig("ipop", "ipop-shared-pw"), prosodyConfig("ipop", "ipop-shared-pw"))
    }

    @Test func separateAccountsInAMUCRoom() async throws {
        let room = "lab-\(DiscoveryState.randomHex(6))"
        try await pair(prosodyConfig("node1", "node1-pw", room: room), prosodyConfig("node2", "node2-pw", room: room))
    }

    @Test func sameNodeNameTwiceInARoomGetsASuffix() async throws {
        let room = "dup-\(DiscoveryState.randomHex(6))"
        let logs = LogCollector()
        let a = SignalClient(config: prosodyConfig("node1", "node1-pw", room: room), announcement: ("twin", ["lab"], key1), logger: logs.logger("a"))
        let b = SignalClient(config: prosodyConfig("node2", "node2-pw", room: room), announcement: ("twin", ["lab"], key2b), logger: logs.logger("b"))
        let ea = EventCollector("a"), eb = EventCollector("b")
        a.start { ea.add($0) }
        let _: String = try await ea.wait("connected") { if case .connected(let j) = $0 { j } else { nil } }
        try await logs.wait(containing: "joined room")
        b.start { eb.add($0) }
        let pb = try await eb.wait("twin online") { e -> PeerAnnouncement? in if case .peerOnline(let p) = e { p } else { nil } }
        let pa = try await ea.wait("twin online") { e -> PeerAnnouncement? in if case .peerOnline(let p) = e { p } else { nil } }
        #expect(pb.publicKey == key1 && pa.publicKey == key2b)
        #expect(pa.address.hasPrefix("\(room)@conference.\(prosodyDomain)/twin-"))
        await a.stop()
        await b.stop()
    }

    @Test func wrongPasswordGivesAClearErrorAndRetries() async throws {
        let logs = LogCollector()
        // Directly: the typed error.
        do {
            let c = try await XMPPClient.connect(config: prosodyConfig("node1", "wrong"), resource: "t",
                                                 logger: logs.logger("t"), group: .singletonMultiThreadedEventLoopGroup)
            await c.close()
            Issue.record("logged in with a wrong password")
        } catch {
            #expect(error == .authenticationFailed(jid: "node1@\(prosodyDomain)", condition: "not-authorized", text: nil)
                    || error.description == "xmpp: authentication failed for node1@\(prosodyDomain) (not-authorized)")
            #expect(error.description == "xmpp: authentication failed for node1@\(prosodyDomain) (not-authorized)")
        }
        // Through SignalClient: logged at error level, retried with backoff, never connected.
        let s = SignalClient(config: prosodyConfig("node1", "wrong"), announcement: ("vm1", ["lab"], key1), logger: logs.logger("s"))
        let ev = EventCollector("s")
        s.start { ev.add($0) }
        try await logs.wait(level: .error, containing: "xmpp: authentication failed for node1@\(prosodyDomain) (not-authorized)", count: 2)
        await s.stop()
        #expect(ev.all.isEmpty)
    }

    @Test func untrustedCertificateIsRefusedUnlessAccepted() async throws {
        let logs = LogCollector()
        var cfg = prosodyConfig("node1", "node1-pw")
        cfg.caFile = nil
        do {
            let c = try await XMPPClient.connect(config: cfg, resource: "t", logger: logs.logger("t"), group: .singletonMultiThreadedEventLoopGroup)
            await c.close()
            Issue.record("connected to a server with an untrusted certificate")
        } catch {
            guard case .tls(let text) = error else { Issue.record("expected a TLS error, got \(error)"); return }
            #expect(text.contains("not trusted"))
        }
        cfg.acceptUntrustedServer = true
        let c = try await XMPPClient.connect(config: cfg, resource: "t", logger: logs.logger("t"), group: .singletonMultiThreadedEventLoopGroup)
        #expect(c.tlsActive)
        #expect(c.boundJID.bare.description == "node1@\(prosodyDomain)")
        await c.close()
        #expect(logs.count(level: .warning, containing: "NOT verified") == 1)
    }

    @Test func keepalivePingsAreAnswered() async throws {
        let logs = LogCollector()
        var cfg = prosodyConfig("node1", "node1-pw")
        cfg.pingInterval = .milliseconds(300)
        cfg.pingTimeout = .seconds(2)
        let s = SignalClient(config: cfg, announcement: ("vm1", ["lab"], key1), logger: logs.logger("s"))
        let ev = EventCollector("s")
        s.start { ev.add($0) }
        let _: String = try await ev.wait("connected") { if case .connected(let j) = $0 { j } else { nil } }
        try await Task.sleep(for: .seconds(2))
        #expect(ev.count { if case .disconnected = $0 { true } else { false } } == 0)
        await s.stop()
    }

    @Test func messagesQueuedWhileDisconnectedAreSentAfterConnecting() async throws {
        let logs = LogCollector()
        let room = "q-\(DiscoveryState.randomHex(6))"
        let b = SignalClient(config: prosodyConfig("node2", "node2-pw", room: room), announcement: ("vm2", ["lab"], key2b), logger: logs.logger("b"))
        let eb = EventCollector("b")
        b.start { eb.add($0) }
        try await logs.wait(containing: "joined room")
        let a = SignalClient(config: prosodyConfig("node1", "node1-pw", room: room), announcement: ("vm1", ["lab"], key1), logger: logs.logger("a"))
        // Sent before start: queued, then flushed once logged in.
        a.send(to: "\(room)@conference.\(prosodyDomain)/vm2", overlay: "lab", kind: "early", body: "queued")
        a.start { _ in }
        let body = try await eb.wait("queued message") { e -> String? in
            if case .message(_, _, "early", let b) = e { b } else { nil }
        }
        #expect(body == "queued")
        await a.stop()
        await b.stop()
    }
}
