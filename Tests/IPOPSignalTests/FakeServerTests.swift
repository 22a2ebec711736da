import Logging
import NIOCore
import NIOPosix
import Synchronization
import Testing
@testable import IPOPSignal

/// What the scripted server does.
struct FakeBehaviour: Sendable {
    var offerStartTLS = false          // we cannot do TLS here: <starttls/> is answered with <failure/>
    var mechanisms = ["SCRAM-SHA-1"]
    var password = "pw"
    var answerPings = true
    var badServerSignature = false
    var hostileAfterHeader: String?    // sent instead of the features
    var silent = false                 // accept TCP, never answer
}

/// A scripted in-process XMPP server on 127.0.0.1 without TLS, for the failure cases a real
/// server does not produce on demand. It uses the module's own XML reader, and computes the SCRAM
/// server signature with a mirror client (the computation is symmetric).
final class FakeServer: Sendable {
    let channel: Channel
    let port: Int
    let connections = Atomic<Int>(0)
    let received = Mutex<[String]>([])

    init(channel: Channel, port: Int) {
        self.channel = channel
        self.port = port
    }

    static func start(_ behaviour: FakeBehaviour) async throws -> FakeServer {
        let box = Mutex<FakeServer?>(nil)
        let ch = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { ch in
                let server = box.withLock { $0 }
                return ch.eventLoop.makeCompletedFuture {
                    try ch.pipeline.syncOperations.addHandler(FakeServerHandler(behaviour, server))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let port = try #require(ch.localAddress?.port)
        let s = FakeServer(channel: ch, port: port)
        box.withLock { $0 = s }
        return s
    }

    func stop() async {
        try? await channel.close().get()
    }

    func config(password: String = "pw", tls: TLSMode = .optional) -> XMPPConfig {
        var c = XMPPConfig(server: "127.0.0.1:\(port)", jid: "user@fake.test", password: password, tls: tls)
        c.reconnectMin = .milliseconds(100)
        c.reconnectMax = .milliseconds(400)
        c.negotiationTimeout = .seconds(5)
        return c
    }
}

final class FakeServerHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let behaviour: FakeBehaviour
    let server: FakeServer?
    var reader = XMLStreamReader()
    var authenticated = false
    var serverFirst = ""
    var clientNonce = ""

    init(_ behaviour: FakeBehaviour, _ server: FakeServer?) {
        self.behaviour = behaviour
        self.server = server
    }

    func channelActive(context: ChannelHandlerContext) {
        server?.connections.add(1, ordering: .relaxed)
    }

    func send(_ s: String, _ context: ChannelHandlerContext) {
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: s)), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !behaviour.silent else { return }
        reader.append(unwrapInboundIn(data).readableBytesView)
        do {
            while let e = try reader.next() { handle(e, context) }
        } catch {
            context.close(promise: nil)
        }
    }

    func handle(_ event: XMLStreamEvent, _ context: ChannelHandlerContext) {
        switch event {
        case .streamStart:
            send("<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' id='s1' from='fake.test' version='1.0'>", context)
            if let hostile = behaviour.hostileAfterHeader {
                send(hostile, context)
                return
            }
            if authenticated {
                send("<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>", context)
            } else {
                var f = "<stream:features>"
                if behaviour.offerStartTLS { f += "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>" }
                f += "<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"
                f += behaviour.mechanisms.map { "<mechanism>\($0)</mechanism>" }.joined()
                f += "</mechanisms></stream:features>"
                send(f, context)
            }
        case .streamEnd:
            send("</stream:stream>", context)
            context.close(promise: nil)
        case .element(let e):
            server?.received.withLock { $0.append(e.name) }
            handleElement(e, context)
        }
    }

    func handleElement(_ e: XElement, _ context: ChannelHandlerContext) {
        let saslFailure = "<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><not-authorized/></failure>"
        switch (e.name, e.namespace) {
        case ("starttls", XMPPNamespace.tls):
            send("<failure xmlns='urn:ietf:params:xml:ns:xmpp-tls'/></stream:stream>", context)
            context.close(promise: nil)
        case ("auth", XMPPNamespace.sasl):
            let initial = Base64.decode(e.text).map { String(decoding: $0, as: UTF8.self) } ?? ""
            if e.attribute("mechanism") == "PLAIN" {
                send(initial == "\0user\0\(behaviour.password)" ? "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>" : saslFailure, context)
                if initial == "\0user\0\(behaviour.password)" { authenticated = true; reader.reset() }
                return
            }
            guard initial.hasPrefix("n,,n=user,r=") else { send(saslFailure, context); return }
            clientNonce = String(initial.dropFirst("n,,n=user,r=".count))
            serverFirst = "r=\(clientNonce)srvnonce,s=\(Base64.encode("salt-salt")),i=4096"
            send("<challenge xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>\(Base64.encode(serverFirst))</challenge>", context)
        case ("response", XMPPNamespace.sasl):
            let clientFinal = Base64.decode(e.text).map { String(decoding: $0, as: UTF8.self) } ?? ""
            var mirror = SCRAMSHA1Client(username: "user", password: behaviour.password, clientNonce: clientNonce)
            guard let expected = try? mirror.respond(toServerFirst: serverFirst), expected == clientFinal else {
                send(saslFailure, context)
                return
            }
            var sig = mirror.serverSignature
            if behaviour.badServerSignature { sig[0] ^= 1 }
            send("<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>\(Base64.encode("v=" + Base64.encode(sig)))</success>", context)
            authenticated = true
            reader.reset()
        case ("iq", XMPPNamespace.client):
            let id = e.attribute("id") ?? ""
            if e.child("bind", namespace: XMPPNamespace.bind) != nil {
                let res = e.child("bind")?.child("resource")?.text ?? "r"
                send("<iq type='result' id='\(id)'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>user@fake.test/\(res)</jid></bind></iq>", context)
            } else if e.child("ping", namespace: XMPPNamespace.ping) != nil {
                if behaviour.answerPings { send("<iq type='result' id='\(id)' from='fake.test'/>", context) }
            }
        default:
            break
        }
    }
}

@Suite(.serialized) struct FakeServerTests {
    let group = MultiThreadedEventLoopGroup.singleton

    func connect(_ server: FakeServer, _ cfg: XMPPConfig, logs: LogCollector = LogCollector()) async throws(XMPPError) -> XMPPClient {
        try await XMPPClient.connect(config: cfg, resource: "res1", logger: logs.logger("t"), group: group)
    }

    func connectError(_ server: FakeServer, _ cfg: XMPPConfig) async -> XMPPError? {
        do {
            let c = try await connect(server, cfg)
            await c.close()
            return nil
        } catch {
            return error
        }
    }

    @Test func scramWithoutTLSWhenOptional() async throws {
        let server = try await FakeServer.start(FakeBehaviour())
        defer { Task { await server.stop() } }
        let logs = LogCollector()
        let c = try await connect(server, server.config(), logs: logs)
        #expect(c.boundJID.description == "user@fake.test/res1")
        #expect(!c.tlsActive)
        #expect(logs.count(level: .warning, containing: "WITHOUT TLS") == 1)
        await c.close()
        await server.stop()
    }

    @Test func plainIsNeverSentWithoutTLS() async throws {
        let server = try await FakeServer.start(FakeBehaviour(mechanisms: ["PLAIN"]))
        #expect(await connectError(server, server.config()) == .noUsableMechanism(offered: ["PLAIN"], tlsActive: false))
        #expect(!server.received.withLock { $0 }.contains("auth"))
        await server.stop()
    }

    @Test func tlsRequiredButNotOffered() async throws {
        let server = try await FakeServer.start(FakeBehaviour())
        #expect(await connectError(server, server.config(tls: .required)) == .tlsUnavailable(server: "fake.test"))
        #expect(server.received.withLock { $0 }.isEmpty)
        await server.stop()
    }

    @Test func refusedStartTLS() async throws {
        let server = try await FakeServer.start(FakeBehaviour(offerStartTLS: true))
        guard case .tls = await connectError(server, server.config(tls: .required)) else {
            Issue.record("expected a TLS error"); return
        }
        await server.stop()
    }

    @Test func wrongPasswordAndForgedServerSignature() async throws {
        let server = try await FakeServer.start(FakeBehaviour())
        let e = await connectError(server, server.config(password: "nope"))
        #expect(e == .authenticationFailed(jid: "user@fake.test", condition: "not-authorized", text: nil))
        #expect(e?.description == "xmpp: authentication failed for user@fake.test (not-authorized)")
        await server.stop()

        let forger = try await FakeServer.start(FakeBehaviour(badServerSignature: true))
        #expect(await connectError(forger, forger.config()) == .sasl(.serverSignatureMismatch))
        await forger.stop()
    }

    @Test func hostileServersGiveTypedErrors() async throws {
        let cases: [(String, XMPPError)] = [
            ("<!DOCTYPE x [<!ENTITY a 'b'>]>", .xml(.doctypeForbidden)),
            ("<stream:features>" + String(repeating: "<a>", count: 40), .xml(.tooDeep(limit: 32))),
            ("<message>" + String(repeating: "x", count: 300_000), .xml(.stanzaTooLarge(limit: 256 * 1024))),
            ("<m a='" + String(repeating: "x", count: 70_000), .xml(.tagTooLarge(limit: 64 * 1024))),
            ("<stream:error><host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>",
             .streamError(condition: "host-unknown", text: nil)),
            ("</stream:stream>", .streamClosed),
            ("<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>X-UNKNOWN</mechanism></mechanisms></stream:features>",
             .noUsableMechanism(offered: ["X-UNKNOWN"], tlsActive: false)),
            ("<message/>", .protocolViolation("expected <stream:features/>, got <message/>")),
        ]
        for (text, expected) in cases {
            let server = try await FakeServer.start(FakeBehaviour(hostileAfterHeader: text))
            let e = await connectError(server, server.config())
            #expect(e == expected, "for \(text.prefix(40))")
            await server.stop()
        }
    }

    @Test func negotiationTimeoutAndConnectFailure() async throws {
        let server = try await FakeServer.start(FakeBehaviour(silent: true))
        var cfg = server.config()
        cfg.negotiationTimeout = .milliseconds(300)
        #expect(await connectError(server, cfg) == .timeout("stream negotiation with fake.test"))
        let port = server.port
        await server.stop()
        guard case .connectFailed = await connectError(server, XMPPConfig(server: "127.0.0.1:\(port)", jid: "user@fake.test", password: "pw", tls: .optional)) else {
            Issue.record("expected connectFailed"); return
        }
    }

    @Test func missingPongMeansDeadConnectionThenReconnect() async throws {
        let server = try await FakeServer.start(FakeBehaviour(answerPings: false))
        var cfg = server.config()
        cfg.pingInterval = .milliseconds(200)
        cfg.pingTimeout = .milliseconds(300)
        let logs = LogCollector()
        let s = SignalClient(config: cfg, announcement: ("vm1", ["lab"], "AAAA"), logger: logs.logger("s"))
        let ev = EventCollector("s")
        s.start { ev.add($0) }
        let reason = try await ev.wait("disconnect", timeout: .seconds(10)) { e -> String? in
            if case .disconnected(let r) = e { r } else { nil }
        }
        #expect(reason == XMPPError.pingTimeout.description)
        // ...and it comes back.
        let start = ContinuousClock.now
        while ev.count({ if case .connected = $0 { true } else { false } }) < 2 && ContinuousClock.now - start < .seconds(10) {
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(ev.count { if case .connected = $0 { true } else { false } } >= 2)
        #expect(server.connections.load(ordering: .relaxed) >= 2)
        await s.stop()
        await server.stop()
    }

    @Test func authFailuresAreRetriedWithBackoffAndLogged() async throws {
        let server = try await FakeServer.start(FakeBehaviour(password: "other"))
        let logs = LogCollector()
        let s = SignalClient(config: server.config(), announcement: ("vm1", ["lab"], "AAAA"), logger: logs.logger("s"))
        let ev = EventCollector("s")
        s.start { ev.add($0) }
        try await logs.wait(level: .error, containing: "xmpp: authentication failed for user@fake.test (not-authorized)", count: 3, timeout: .seconds(10))
        await s.stop()
        #expect(ev.all.isEmpty)
        #expect(server.connections.load(ordering: .relaxed) >= 3)
        // Stopped means stopped.
        let n = server.connections.load(ordering: .relaxed)
        try await Task.sleep(for: .milliseconds(600))
        #expect(server.connections.load(ordering: .relaxed) == n)
        await server.stop()
    }

    @Test func invalidConfigStopsSignalling() async throws {
        let logs = LogCollector()
        let s = SignalClient(config: XMPPConfig(server: "h:99999", jid: "user@fake.test", password: "pw"),
                             announcement: ("vm1", ["lab"], "AAAA"), logger: logs.logger("s"))
        let ev = EventCollector("s")
        s.start { ev.add($0) }
        try await logs.wait(level: .error, containing: "signalling disabled", timeout: .seconds(5))
        await s.stop()
        #expect(ev.all.isEmpty)
    }

    @Test func sendQueueIsBoundedWhileDisconnected() async throws {
        var cfg = XMPPConfig(server: "127.0.0.1:1", jid: "user@fake.test", password: "pw", tls: .optional)
        cfg.outboundQueueLimit = 3
        let logs = LogCollector()
        let s = SignalClient(config: cfg, announcement: ("vm1", ["lab"], "AAAA"), logger: logs.logger("s"))
        for i in 0..<5 { s.send(to: "a@b/c", overlay: "lab", kind: "k", body: "\(i)") }
        #expect(logs.count(level: .warning, containing: "dropped 1 oldest") == 2)
        s.send(to: "not a jid@", overlay: "lab", kind: "k", body: "")
        #expect(logs.count(level: .warning, containing: "not a JID") == 1)
        await s.stop()
    }
}
