import Foundation
import Hummingbird
import Synchronization
import Testing
import WorkflowEngine
import WorkflowPrimitive
import WorkflowStore
import WorkflowTestSupport

/// A core-banking stand-in with a ledger and an idempotency store, as real banks have: a repeated `Idempotency-Key`
/// gets the stored answer back and moves no money. `replaysFailures` decides whether refusals are stored too.
final class LedgerBank: Sendable {
    let replaysFailures: Bool
    private let balances = Mutex<[String: Int]>([:])
    private let answers = Mutex<[String: (HTTPResponse.Status, String)]>([:])
    let keys = Mutex<[(path: String, key: String)]>([])

    init(replaysFailures: Bool) { self.replaysFailures = replaysFailures }

    func balance(_ account: String) -> Int { balances.withLock { $0[account] ?? 1000 } }

    @Sendable func routes(_ router: Router<BasicRequestContext>, _ server: LocalHTTPServer) {
        for operation in ["debit", "credit", "refund"] {
            router.post("/accounts/:account/\(operation)") { request, context in
                var request = request
                let body = try await request.collectBody(upTo: 1 << 16)
                let account = context.parameters.get("account") ?? ""
                let key = request.headers[.init("Idempotency-Key")!] ?? ""
                let amount = (try? JSONValue.parse(String(buffer: body)))?["amount"]?.integer(in: 0...1_000_000) ?? 0
                self.keys.withLock { $0.append((request.uri.path, key)) }
                if let (status, text) = self.answers.withLock({ $0[key] }) {
                    return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: text)))
                }
                let (status, text): (HTTPResponse.Status, String)
                if operation == "credit", account == "flaky", !server.isSet("credit-open") {
                    (status, text) = (.unprocessableContent, #"{"error":"account blocked"}"#)
                } else {
                    self.balances.withLock { $0[account, default: 1000] += operation == "debit" ? -amount : amount }
                    (status, text) = (.ok, #"{"id":"\#(key)"}"#)
                }
                if status == .ok || self.replaysFailures { self.answers.withLock { $0[key] = (status, text) } }
                return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: text)))
            }
        }
    }
}

@Suite struct SagaRetryTests {
    static let transfer = """
        {"name": "transfer", "version": "1.0.0", "definition": {"steps": [
          {"id": "debit", "type": "http_request",
           "config": {"url": "${input.bank}/accounts/${input.from}/debit", "method": "POST", "body": {"amount": "${input.amount}"}},
           "compensate": {"type": "http_request",
             "config": {"url": "${input.bank}/accounts/${input.from}/refund", "method": "POST", "body": {"amount": "${input.amount}"}}}},
          {"id": "credit", "type": "http_request", "depends_on": ["debit"],
           "config": {"url": "${input.bank}/accounts/${input.to}/credit", "method": "POST", "body": {"amount": "${input.amount}"}}}
        ]}}
        """

    /// Issue #9, finding 1: a retry in place after the debit was refunded must debit again under a new key, so that
    /// money is conserved whether the bank replays only successes or every answer.
    @Test(arguments: [false, true]) func retryAfterACompensatedSagaMovesMoneyOnce(_ replaysFailures: Bool) async throws {
        let bank = LedgerBank(replaysFailures: replaysFailures)
        try await LocalHTTPServer.with(bank.routes) { remote in
            try await withEngine { h in
                let definition = try await h.register(Self.transfer)
                let run = try await h.engine.start(
                    definition: definition,
                    input: ["bank": .string(remote.baseURL), "from": "acc-1", "to": "flaky", "amount": 250]
                )
                let failed = try await h.waitForRun(run.id)
                #expect(failed.status == .failed)
                #expect(failed.compensated == true)
                #expect(bank.balance("acc-1") == 1000, "the debit was refunded")
                #expect(bank.balance("flaky") == 1000)

                remote.set("credit-open")
                _ = try await h.engine.retry(runID: run.id)
                let done = try await h.waitForRun(run.id)
                #expect(done.status == .completed, "\(done.error?.canonicalString() ?? "")")
                #expect(bank.balance("acc-1") == 750, "the payer pays once")
                #expect(bank.balance("flaky") == 1250, "the payee is paid once")

                let keys = bank.keys.withLock { $0.map { "\($0.path.split(separator: "/").last!) \($0.key)" } }
                #expect(
                    keys == [
                        "debit \(run.id)/debit", "credit \(run.id)/credit", "refund \(run.id)/debit.compensate",
                        "debit \(run.id)/debit/1", "credit \(run.id)/credit/1",
                    ]
                )
                let resumed = try await h.events(run.id).first { $0.type == "run_resumed" }
                #expect(resumed?.data["new_idempotency_keys"] == ["credit", "debit"])
            }
        }
    }

    /// An outcome that is unknown (the remote answered 503, so it may or may not have acted) keeps its key on retry.
    @Test func retryAfterAnUnknownOutcomeKeepsTheKey() async throws {
        try await LocalHTTPServer.with({ router, server in
            router.post("/flaky") { _, _ in
                server.isSet("up") ? Response(status: .ok) : Response(status: .serviceUnavailable)
            }
        }) { remote in
            try await withEngine { h in
                let definition = try await h.register(
                    """
                    {"name": "unknown", "version": "1.0.0", "definition": {"steps": [
                      {"id": "call", "type": "http_request", "config": {"url": "\(remote.baseURL)/flaky", "method": "POST"}}]}}
                    """
                )
                let run = try await h.engine.start(definition: definition, input: [:])
                #expect(try await h.waitForRun(run.id).status == .failed)
                remote.set("up")
                _ = try await h.engine.retry(runID: run.id)
                #expect(try await h.waitForRun(run.id).status == .completed)
                let keys = remote.requests(path: "/flaky").map { $0.headers["idempotency-key"] ?? "" }
                #expect(keys == ["\(run.id)/call", "\(run.id)/call"])
            }
        }
    }
}
