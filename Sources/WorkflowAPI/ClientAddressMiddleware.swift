import HTTPTypes
import Hummingbird
import WorkflowEngine

/// Behind a trusted load balancer, the caller is the client it names, not the balancer: when the TCP peer is one of
/// `trusted`, the source becomes the right-most address of `X-Forwarded-For` that is not itself a trusted proxy (the
/// left-most entries are whatever the client sent, and could be forged). A peer that is not trusted is the source,
/// whatever it sends.
struct ClientAddressMiddleware: RouterMiddleware {
    typealias Context = APIRequestContext
    let trusted: [IPNetwork]

    static let header = HTTPField.Name("X-Forwarded-For")!

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        context.source = Self.client(peer: context.source, forwardedFor: request.headers[values: Self.header], trusted: trusted)
        return try await next(request, context)
    }

    static func client(peer: String, forwardedFor: [String], trusted: [IPNetwork]) -> String {
        func isTrusted(_ text: String) -> Bool {
            guard let address = IPAddress(text) else { return false }
            return trusted.contains { $0.contains(address) }
        }
        guard isTrusted(peer) else { return peer }
        // Every hop, in order; at most 32 looked at (a header is bounded by the request head anyway).
        let hops = forwardedFor.flatMap { $0.split(separator: ",") }.suffix(32).map { $0.trimmingCharacters(in: .whitespaces) }
        for hop in hops.reversed() {
            guard let address = IPAddress(hop) else { return peer }  // not an address: believe nothing further left
            if !isTrusted(hop) { return address.description }
        }
        return peer
    }
}
