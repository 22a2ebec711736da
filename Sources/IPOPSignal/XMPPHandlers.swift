import NIOCore
import NIOSSL

// The channel pipeline of one XMPP connection:
//
//   [NIOSSLClientHandler, after STARTTLS] -> XMPPFramingHandler -> [XMPPKeepaliveHandler, once
//   bound] -> XMPPBridgeHandler -> AsyncThrowingStream consumed by the control task.
//
// Outbound stanzas are ByteBuffers written on the channel; only TLS sits between them and the socket.

/// Bytes in, XML stream events out.
final class XMPPFramingHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = XMLStreamEvent

    private var reader: XMLStreamReader

    init(limits: XMLLimits = .default) {
        reader = XMLStreamReader(limits: limits)
    }

    /// A new stream starts (after `<proceed/>` or SASL `<success/>`).
    func resetStream() {
        reader.reset()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        reader.append(buffer.readableBytesView)
        do {
            while let event = try reader.next() {
                context.fireChannelRead(wrapInboundOut(event))
            }
        } catch {
            context.fireErrorCaught(XMPPError.xml(error))
            context.close(promise: nil)
        }
    }
}

/// XEP-0199: pings the server every `interval`, declares the connection dead when no reply
/// arrives within `timeout`, and answers the server's own pings.
final class XMPPKeepaliveHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = XMLStreamEvent
    typealias InboundOut = XMLStreamEvent
    typealias OutboundOut = ByteBuffer

    private let interval: TimeAmount
    private let timeout: TimeAmount
    private let server: String
    private var context: ChannelHandlerContext?
    private var repeated: RepeatedTask?
    private var deadline: Scheduled<Void>?
    private var outstanding: String?
    private var counter = 0

    init(interval: TimeAmount, timeout: TimeAmount, server: String) {
        self.interval = interval
        self.timeout = timeout
        self.server = server
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        let me = NIOLoopBound(self, eventLoop: context.eventLoop)
        repeated = context.eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { _ in
            me.value.sendPing()
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        stop()
        self.context = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        stop()
        context.fireChannelInactive()
    }

    private func stop() {
        repeated?.cancel()
        repeated = nil
        deadline?.cancel()
        deadline = nil
    }

    private func sendPing() {
        guard let context, outstanding == nil else { return }
        counter += 1
        let id = "ping-\(counter)"
        outstanding = id
        write(Stanza.ping(id: id, to: server), context: context)
        let me = NIOLoopBound(self, eventLoop: context.eventLoop)
        deadline = context.eventLoop.scheduleTask(in: timeout) {
            me.value.pingTimedOut()
        }
    }

    private func pingTimedOut() {
        guard let context, outstanding != nil else { return }
        stop()
        context.fireErrorCaught(XMPPError.pingTimeout)
        context.close(promise: nil)
    }

    private func write(_ e: XElement, context: ChannelHandlerContext) {
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: e.render())), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let event = unwrapInboundIn(data)
        if case .element(let e) = event, e.name == "iq", e.namespace == XMPPNamespace.client {
            let type = e.attribute("type")
            if let id = outstanding, e.attribute("id") == id, type == "result" || type == "error" {
                // Any answer, even an error (ping unsupported), proves the server is alive.
                outstanding = nil
                deadline?.cancel()
                deadline = nil
                return
            }
            if type == "get", e.child("ping", namespace: XMPPNamespace.ping) != nil {
                var reply = Stanza.iq(type: "result", id: e.attribute("id") ?? "")
                reply.setAttribute("to", e.attribute("from"))
                write(reply, context: context)
                return
            }
        }
        context.fireChannelRead(data)
    }
}

/// Hands events to the control task through an AsyncThrowingStream, and records why the
/// connection ended (the first error wins).
final class XMPPBridgeHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = XMLStreamEvent

    private let continuation: AsyncThrowingStream<XMLStreamEvent, Error>.Continuation
    private let serverName: String
    private var failure: XMPPError?
    private var finished = false

    init(continuation: AsyncThrowingStream<XMLStreamEvent, Error>.Continuation, serverName: String) {
        self.continuation = continuation
        self.serverName = serverName
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !finished else { return }
        if case .dropped = continuation.yield(unwrapInboundIn(data)) {
            fail(.inboundOverflow, context: context)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        fail(map(error), context: context)
    }

    func channelInactive(context: ChannelHandlerContext) {
        finish()
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        finish()
    }

    private func fail(_ e: XMPPError, context: ChannelHandlerContext) {
        if failure == nil { failure = e }
        context.close(promise: nil)
    }

    private func finish() {
        guard !finished else { return }
        finished = true
        continuation.finish(throwing: failure ?? XMPPError.connectionClosed)
    }

    private func map(_ error: Error) -> XMPPError {
        if let e = error as? XMPPError { return e }
        if error is NIOSSLError || error is BoringSSLError || error is NIOSSLExtraError {
            let text = String(describing: error)
            if text.contains("CERTIFICATE_VERIFY_FAILED") || text.contains("certificate verify failed") {
                return .tls("the certificate of \(serverName) is not trusted: set ca_file to the CA that signed it"
                            + " (or accept_untrusted_server for testing only) [\(text)]")
            }
            if case .uncleanShutdown = error as? NIOSSLError { return .connectionClosed }
            return .tls("handshake with \(serverName) failed: \(text)")
        }
        if let e = error as? IOError { return .io(String(describing: e)) }
        if let e = error as? ChannelError {
            if case .ioOnClosedChannel = e { return .connectionClosed }
            if case .eof = e { return .connectionClosed }
        }
        return .io(String(describing: error))
    }
}
