import CompressNIO
import HTTPTypes
import Hummingbird
import NIOCore

/// Compresses answers larger than 1 KiB with gzip when the client asks (`Accept-Encoding: gzip`): JSON, problem
/// documents and the metrics text. Live streams (`text/event-stream`) are left alone (a compressor holds events back).
struct CompressionMiddleware: RouterMiddleware {
    typealias Context = APIRequestContext
    static let threshold = 1024

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var response = try await next(request, context)
        guard request.method != .head, Self.acceptsGzip(request.headers[values: .acceptEncoding]),
            response.headers[.contentEncoding] == nil, let length = response.body.contentLength, length > Self.threshold,
            let type = response.headers[.contentType], Self.compressible(type)
        else {
            if response.headers[.contentEncoding] == nil, let type = response.headers[.contentType], Self.compressible(type) {
                response.headers.append(HTTPField(name: .vary, value: "Accept-Encoding"))
            }
            return response
        }
        let body = response.body
        response.headers[.contentLength] = nil
        response.headers[.contentEncoding] = "gzip"
        response.headers.append(HTTPField(name: .vary, value: "Accept-Encoding"))
        response.body = ResponseBody { writer in
            let compressor = try ZlibCompressor(algorithm: .gzip)
            try await body.write(GzipWriter(parent: writer, compressor: compressor))
        }
        return response
    }

    static func compressible(_ type: String) -> Bool {
        let base = type.split(separator: ";")[0].trimmingCharacters(in: .whitespaces).lowercased()
        return base == "application/json" || base == "application/problem+json" || base == "text/plain" || base == "text/html"
            || base == "application/yaml"
    }

    /// Whether `Accept-Encoding` allows gzip (`gzip`, `x-gzip` or `*`, with a q-value above 0).
    static func acceptsGzip(_ values: [String]) -> Bool {
        for value in values {
            for item in value.split(separator: ",") {
                let parts = item.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
                guard let coding = parts.first, ["gzip", "x-gzip", "*"].contains(coding) else { continue }
                let q = parts.dropFirst().first { $0.hasPrefix("q=") }.flatMap { Double($0.dropFirst(2)) } ?? 1
                if q > 0 { return true }
            }
        }
        return false
    }
}

/// Writes what it is given through a gzip stream to the response.
struct GzipWriter: ResponseBodyWriter {
    var parent: any ResponseBodyWriter
    let compressor: ZlibCompressor

    mutating func write(_ buffer: ByteBuffer) async throws {
        var input = buffer
        var output = ByteBufferAllocator().buffer(capacity: compressor.maxSize(from: input))
        try compressor.deflate(from: &input, to: &output, flush: .sync)
        try await parent.write(output)
    }

    consuming func finish(_ trailingHeaders: HTTPFields?) async throws {
        var empty = ByteBuffer()
        var output = ByteBufferAllocator().buffer(capacity: compressor.maxSize(from: empty) + 64)
        try compressor.deflate(from: &empty, to: &output, flush: .finish)
        try await parent.write(output)
        try await parent.finish(trailingHeaders)
    }
}

/// Cross-origin requests from the web origins the operator allows (`--cors-origin`; none by default): answers
/// preflights without credentials, and lets those origins read answers and the headers clients need. Credentials are
/// bearer tokens, never cookies, so `Access-Control-Allow-Credentials` is not sent.
struct CORSMiddleware: RouterMiddleware {
    typealias Context = APIRequestContext
    let origins: Set<String>

    static let allowedHeaders = "Authorization, Content-Type, Idempotency-Key, X-API-Key, X-Request-ID, Last-Event-ID, traceparent"
    static let exposedHeaders = "Location, Retry-After, X-Request-ID"
    static let methods = "GET, POST, PUT, DELETE, OPTIONS"

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let origin = request.headers[.origin], origins.contains("*") || origins.contains(origin) else {
            return try await next(request, context)
        }
        let allowOrigin = origins.contains("*") ? "*" : origin
        if request.method == .options, request.headers[.accessControlRequestMethod] != nil {
            var headers: HTTPFields = [:]
            headers[.accessControlAllowOrigin] = allowOrigin
            headers[.accessControlAllowMethods] = Self.methods
            headers[.accessControlAllowHeaders] = Self.allowedHeaders
            headers[.accessControlMaxAge] = "600"
            headers[.vary] = "Origin"
            return Response(status: .noContent, headers: headers)
        }
        var response = try await next(request, context)
        response.headers[.accessControlAllowOrigin] = allowOrigin
        response.headers[.accessControlExposeHeaders] = Self.exposedHeaders
        response.headers.append(HTTPField(name: .vary, value: "Origin"))
        return response
    }
}
