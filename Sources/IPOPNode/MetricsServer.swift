import IPOPWire
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// The latest metrics text: the node's loop publishes a snapshot once a second, the HTTP server's
/// thread reads it. The data path never waits for a scraper.
final class MetricsBoard: Sendable {
    private let text = Mutex<String>("")

    func publish(_ s: String) { text.withLock { $0 = s } }
    var current: String { text.withLock { $0 } }
}

/// `GET /metrics` (Prometheus text format) over HTTP/1.1 on `metrics_listen`, on SwiftNIO's event
/// loop. Anything else is 404; every connection closes after its answer, or after 10 s of silence.
public final class MetricsServer {
    public enum Failure: Error, CustomStringConvertible {
        case bind(Endpoint, String)

        public var description: String {
            switch self {
            case .bind(let e, let why):
                return "metrics_listen \(e): cannot listen (\(why)); is another program on that port?"
            }
        }
    }

    let board = MetricsBoard()
    let endpoint: Endpoint
    private let channel: Channel

    init(endpoint: Endpoint, group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton) throws(Failure) {
        self.endpoint = endpoint
        let board = self.board
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.backlog, value: 16)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(MetricsHandler(board: board))
                }
            }
        do {
            channel = try bootstrap.bind(host: Endpoint.formatIPv4(endpoint.address), port: Int(endpoint.port)).wait()
        } catch {
            throw .bind(endpoint, "\(error)")
        }
    }

    func close() { try? channel.close().wait() }
}

final class MetricsHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    /// A scraper that connects and says nothing is dropped after this long.
    static let idleTimeout: TimeAmount = .seconds(10)

    private let board: MetricsBoard
    private var head: HTTPRequestHead?

    init(board: MetricsBoard) { self.board = board }

    func handlerAdded(context: ChannelHandlerContext) {
        let channel = context.channel
        context.eventLoop.scheduleTask(in: Self.idleTimeout) { channel.close(promise: nil) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h):
            head = h
        case .body:
            break
        case .end:
            guard let h = head else { return }
            head = nil
            respond(context: context, to: h)
        }
    }

    private func respond(context: ChannelHandlerContext, to request: HTTPRequestHead) {
        let path = request.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? request.uri
        let status: HTTPResponseStatus
        let body: String
        let type: String
        if path == "/metrics", request.method == .GET || request.method == .HEAD {
            (status, body, type) = (.ok, board.current, "text/plain; version=0.0.4; charset=utf-8")
        } else {
            (status, body, type) = (.notFound, "ipop serves GET /metrics only\n", "text/plain; charset=utf-8")
        }
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: type)
        headers.add(name: "Content-Length", value: String(body.utf8.count))
        headers.add(name: "Connection", value: "close")
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: request.version, status: status, headers: headers))),
                      promise: nil)
        if request.method != .HEAD {
            var buffer = context.channel.allocator.buffer(capacity: body.utf8.count)
            buffer.writeString(body)
            context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
        }
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
    }
}
