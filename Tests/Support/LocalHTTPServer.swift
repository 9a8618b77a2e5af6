import Foundation
import Hummingbird
import Logging
import ServiceLifecycle
import Synchronization

/// A real HTTP server on an ephemeral loopback port, standing in for the remote systems `http_request` steps call.
///
/// Every request is recorded (path, headers, arrival and completion time) so tests can check what the engine sent.
public final class LocalHTTPServer: Sendable {
    /// One request as the server saw it.
    public struct Received: Sendable {
        public var method: String
        public var path: String
        public var headers: [String: String]
        public var body: String
        public var arrivedAt: ContinuousClock.Instant
        public var finishedAt: ContinuousClock.Instant?
        /// True when the client went away before the handler finished (cancellation).
        public var abandoned: Bool
    }

    private let log = Mutex<[Received]>([])
    private let counters = Mutex<[String: Int]>([:])
    private let port = Mutex(0)
    private let flags = Mutex<Set<String>>([])

    /// Raises a named flag that route handlers can watch (e.g. to stop holding a request).
    public func set(_ flag: String) { _ = flags.withLock { $0.insert(flag) } }

    public func isSet(_ flag: String) -> Bool { flags.withLock { $0.contains(flag) } }

    /// `http://127.0.0.1:<port>`.
    public var baseURL: String { "http://127.0.0.1:\(port.withLock { $0 })" }

    private init() {}

    public var requests: [Received] { log.withLock { $0 } }

    public func requests(path: String) -> [Received] { requests.filter { $0.path == path } }

    /// Counts calls per key; returns the new count (1 for the first call).
    public func count(_ key: String) -> Int {
        counters.withLock { c in
            c[key, default: 0] += 1
            return c[key]!
        }
    }

    /// Runs `body` with a server whose routes `routes` adds; every request is recorded before its handler runs.
    public static func with<T: Sendable>(
        _ routes: @Sendable (Router<BasicRequestContext>, LocalHTTPServer) -> Void,
        _ body: (LocalHTTPServer) async throws -> T
    ) async throws -> T {
        let (ports, portContinuation) = AsyncStream<Int>.makeStream()
        let server = LocalHTTPServer()
        let router = Router(context: BasicRequestContext.self)
        router.add(middleware: RecordingMiddleware(server: server))
        routes(router, server)
        var logger = Logger(label: "local-http")
        logger.logLevel = .warning
        let app = Application(
            router: router,
            configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { channel in portContinuation.yield(channel.localAddress?.port ?? 0) },
            logger: logger
        )
        let group = ServiceGroup(configuration: .init(services: [app], logger: logger))
        return try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            var iterator = ports.makeAsyncIterator()
            guard let port = await iterator.next() else { throw CancellationError() }
            server.port.withLock { $0 = port }
            do {
                let result = try await body(server)
                await group.triggerGracefulShutdown()
                try await tasks.waitForAll()
                return result
            } catch {
                await group.triggerGracefulShutdown()
                tasks.cancelAll()
                throw error
            }
        }
    }

    fileprivate func begin(_ request: Request, body: String) -> Int {
        var headers: [String: String] = [:]
        for field in request.headers { headers[field.name.canonicalName] = field.value }
        return log.withLock { log in
            log.append(
                Received(
                    method: request.method.rawValue,
                    path: request.uri.path,
                    headers: headers,
                    body: body,
                    arrivedAt: .now,
                    finishedAt: nil,
                    abandoned: false
                )
            )
            return log.count - 1
        }
    }

    fileprivate func end(_ index: Int, abandoned: Bool) {
        log.withLock { log in
            log[index].finishedAt = .now
            log[index].abandoned = abandoned
        }
    }
}

private struct RecordingMiddleware: RouterMiddleware {
    typealias Context = BasicRequestContext
    let server: LocalHTTPServer

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var request = request
        let buffer = try await request.collectBody(upTo: 1 << 20)
        let index = server.begin(request, body: String(buffer: buffer))
        do {
            let response = try await next(request, context)
            server.end(index, abandoned: false)
            return response
        } catch {
            server.end(index, abandoned: error is CancellationError)
            throw error
        }
    }
}
