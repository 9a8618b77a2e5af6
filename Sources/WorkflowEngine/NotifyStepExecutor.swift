import Foundation
import Mustache
import NIOCore
import NIOPosix
import NIOSSL
import WorkflowPrimitive
import WorkflowStore

/// Where email goes: the bank's SMTP relay, in clear on the node's network, or over TLS (STARTTLS on the submission
/// port, or TLS from the first byte), with a login when the relay wants one.
public struct SMTPConfiguration: Sendable {
    public enum Security: String, Sendable, CaseIterable {
        /// Plain SMTP: a relay on the node's own network.
        case off
        /// Upgrade with STARTTLS before anything is sent; a server that does not offer it is refused.
        case starttls
        /// TLS from the first byte (port 465).
        case tls
    }

    public var host: String
    public var port: Int
    public var from: String
    public var heloName: String
    public var timeout: Duration
    public var security: Security
    /// AUTH PLAIN with these, only ever over TLS.
    public var username: String?
    public var password: String?
    /// The CAs the relay's certificate must chain to (PEM); nil trusts the system's.
    public var trustRoots: [NIOSSLCertificate]?

    public init(
        host: String,
        port: Int = 25,
        from: String,
        heloName: String = "uwf",
        timeout: Duration = .seconds(30),
        security: Security = .off,
        username: String? = nil,
        password: String? = nil,
        trustRoots: [NIOSSLCertificate]? = nil
    ) {
        self.host = host
        self.port = port
        self.from = from
        self.heloName = heloName
        self.timeout = timeout
        self.security = security
        self.username = username
        self.password = password
        self.trustRoots = trustRoots
    }

    /// A client TLS handler for the relay: TLS 1.2 or later, its certificate checked against `trustRoots` (or the
    /// system's) and its name (SNI and verification; an IP address is checked against the certificate's IP names).
    func tlsHandler() throws -> NIOSSLClientHandler {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.minimumTLSVersion = .tlsv12
        if let trustRoots { tls.trustRoots = .certificates(trustRoots) }
        let isAddress = (try? SocketAddress(ipAddress: host, port: 0)) != nil
        return try NIOSSLClientHandler(context: try NIOSSLContext(configuration: tls), serverHostname: isAddress ? nil : host)
    }
}

/// An SMTP reply that was not the one expected.
struct SMTPError: Error, CustomStringConvertible {
    var code: Int
    var line: String
    var description: String { "the mail server answered \(line.prefix(200))" }
}

/// Sends one plain-text message over SMTP (RFC 5321): EHLO, [STARTTLS, EHLO,] [AUTH PLAIN,] MAIL FROM, RCPT TO, DATA,
/// QUIT.
struct SMTPClient: Sendable {
    let configuration: SMTPConfiguration

    func send(to recipients: [String], subject: String, body: String, messageID: String) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await self.exchange(recipients, subject: subject, body: body, messageID: messageID) }
            group.addTask {
                try await Task.sleep(for: configuration.timeout)
                throw SMTPError(code: 0, line: "no answer within \(configuration.timeout)")
            }
            defer { group.cancelAll() }
            try await group.next()
        }
    }

    static func message(from: String, to: [String], subject: String, body: String, messageID: String, date: Date) -> String {
        let encodedSubject = "=?UTF-8?B?\(Data(subject.utf8).base64EncodedString())?="
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(secondsFromGMT: 0)
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss '+0000'"
        let encoded = Data(body.utf8).base64EncodedString(options: [.lineLength76Characters, .endLineWithCarriageReturn, .endLineWithLineFeed])
        return [
            "From: <\(from)>", "To: \(to.map { "<\($0)>" }.joined(separator: ", "))", "Subject: \(encodedSubject)",
            "Date: \(formatter.string(from: date))", "Message-ID: <\(messageID)>", "MIME-Version: 1.0",
            "Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: base64", "", encoded,
        ].joined(separator: "\r\n")
    }

    private func exchange(_ recipients: [String], subject: String, body: String, messageID: String) async throws {
        let configuration = configuration
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(.seconds(10))
            .connect(host: configuration.host, port: configuration.port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    if configuration.security == .tls { try channel.pipeline.syncOperations.addHandler(try configuration.tlsHandler()) }
                    return try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        let raw = channel.channel
        try await channel.executeThenClose { inbound, outbound in
            var iterator = inbound.makeAsyncIterator()
            var pending = ""
            func reply() async throws -> (Int, String) {
                while true {
                    if let end = pending.range(of: "\r\n") {
                        let line = String(pending[..<end.lowerBound])
                        pending.removeSubrange(..<end.upperBound)
                        guard line.utf8.count >= 3, let code = Int(line.prefix(3)) else { throw SMTPError(code: 0, line: line) }
                        // "250-…" continues a multi-line reply; "250 …" ends it.
                        if line.utf8.count == 3 || line.dropFirst(3).first == " " { return (code, line) }
                        continue
                    }
                    guard let buffer = try await iterator.next() else { throw SMTPError(code: 0, line: "the mail server closed the connection") }
                    pending += String(buffer: buffer)
                    guard pending.utf8.count < 64 * 1024 else { throw SMTPError(code: 0, line: "the mail server's reply is too long") }
                }
            }
            func expect(_ codes: ClosedRange<Int>, after command: String?) async throws {
                if let command { try await outbound.write(ByteBuffer(string: command + "\r\n")) }
                let (code, line) = try await reply()
                guard codes.contains(code) else { throw SMTPError(code: code, line: line) }
            }
            try await expect(220...220, after: nil)
            try await expect(250...250, after: "EHLO \(configuration.heloName)")
            if configuration.security == .starttls {
                // The server's "220 ready" is the last plain-text byte: TLS goes beneath everything, then EHLO again.
                try await expect(220...220, after: "STARTTLS")
                guard pending.isEmpty else { throw SMTPError(code: 0, line: "the mail server sent data before the TLS handshake") }
                let handler = try configuration.tlsHandler()
                try await raw.eventLoop.submit { try raw.pipeline.syncOperations.addHandler(handler, position: .first) }.get()
                try await expect(250...250, after: "EHLO \(configuration.heloName)")
            }
            if let username = configuration.username, configuration.security != .off {
                let credentials = Data("\u{0}\(username)\u{0}\(configuration.password ?? "")".utf8).base64EncodedString()
                try await expect(235...235, after: "AUTH PLAIN \(credentials)")
            }
            try await expect(250...250, after: "MAIL FROM:<\(configuration.from)>")
            for recipient in recipients { try await expect(250...251, after: "RCPT TO:<\(recipient)>") }
            try await expect(354...354, after: "DATA")
            let message = Self.message(from: configuration.from, to: recipients, subject: subject, body: body, messageID: messageID, date: Date())
            try await expect(250...250, after: message + "\r\n.")
            try? await expect(221...221, after: "QUIT")
        }
    }
}

/// The `notify` step: renders a message from a tenant template (or an inline one) with Mustache and sends it by
/// webhook (through the `http_request` executor: egress policy, timeouts, `Idempotency-Key`) or by email (SMTP,
/// with the step's idempotency key as the `Message-ID`, so a resent mail can be recognised).
public struct NotifyStepExecutor: StepExecutor {
    let store: any WorkflowStore
    let http: any StepExecutor
    let smtp: SMTPConfiguration?

    public init(store: any WorkflowStore, http: any StepExecutor, smtp: SMTPConfiguration?) {
        self.store = store
        self.http = http
        self.smtp = smtp
    }

    static func invalid(_ message: String) -> StepResult {
        .failure(StepFailure(code: "invalid_config", message: message, retriable: false))
    }

    /// JSON as the plain values Mustache walks (whole numbers without a fraction).
    static func mustacheValue(_ value: JSONValue) -> Any {
        switch value {
        case .null: return ""
        case .bool(let b): return b
        case .number(let n): return n.rounded() == n && abs(n) < 1e15 ? Int(n) as Any : n as Any
        case .string(let s): return s
        case .array(let a): return a.map(mustacheValue)
        case .object(let o): return o.mapValues(mustacheValue)
        }
    }

    public func execute(_ e: StepExecution) async -> StepResult {
        let config = e.input
        if let (field, message) = (NotifyConfig.missing(config) + NotifyConfig.problems(config)).first {
            return Self.invalid("\(field): \(message)")
        }
        var subject = config["subject"]?.stringValue
        var body = config["body"]?.stringValue ?? ""
        var templateRef: String?
        if let reference = config["template"]?.stringValue {
            let parts = reference.split(separator: "@", maxSplits: 1).map(String.init)
            let version = parts.count == 2 ? Int(parts[1]) : nil
            if parts.count == 2 && version == nil { return Self.invalid("template: '\(reference)' is not name or name@version") }
            do {
                guard let template = try await store.templateGet(tenantID: e.tenantID, name: parts[0], version: version) else {
                    return .failure(StepFailure(code: "template_not_found", message: "no template \(reference)", retriable: false))
                }
                subject = subject ?? template.subject
                body = template.body
                templateRef = "\(template.name)@\(template.version)"
            } catch {
                return .failure(StepFailure(code: "unavailable", message: "the template could not be read", retriable: true))
            }
        }
        var context = (Self.mustacheValue(config["data"] ?? .object([:])) as? [String: Any]) ?? [:]
        context["run_id"] = e.runID
        context["step_id"] = e.stepID
        func render(_ text: String) throws -> String {
            try MustacheTemplate(string: "{{% CONTENT_TYPE: TEXT}}" + text).render(context)
        }
        let renderedSubject: String
        let renderedBody: String
        do {
            renderedSubject = try render(subject ?? "").replacingOccurrences(of: "\r", with: " ").replacingOccurrences(of: "\n", with: " ")
            renderedBody = try render(body)
        } catch {
            return .failure(StepFailure(code: "template_error", message: "the template does not parse: \(error)", retriable: false))
        }
        var output: [String: JSONValue] = ["channel": config["channel"] ?? .null, "subject": .string(renderedSubject)]
        if let templateRef { output["template"] = .string(templateRef) }
        switch config["channel"]?.stringValue {
        case "webhook":
            var headers = config["headers"]?.objectValue ?? [:]
            headers["Content-Type"] = "application/json"
            var request = e
            request.type = .httpRequest
            request.input = [
                "url": config["url"] ?? .null, "method": "POST", "headers": .object(headers),
                "body": [
                    "subject": .string(renderedSubject), "body": .string(renderedBody), "data": config["data"] ?? .object([:]),
                    "run_id": .string(e.runID),
                ],
                "timeout_ms": config["timeout_ms"] ?? .number(30_000),
            ]
            let result = await http.execute(request)
            guard case .success(let response) = result else { return result }
            output["status"] = response["status"] ?? .null
            return .success(.object(output))
        case "email":
            guard let smtp else {
                return .failure(
                    StepFailure(code: "notify_not_configured", message: "this node has no mail server (uwf serve --smtp-host)", retriable: false)
                )
            }
            let recipients = (config["to"]?.arrayValue ?? config["to"].map { [$0] } ?? []).compactMap(\.stringValue)
            let messageID = e.idempotencyKey.replacingOccurrences(of: "/", with: ".") + "@uwf"
            do {
                try await SMTPClient(configuration: smtp).send(to: recipients, subject: renderedSubject, body: renderedBody, messageID: messageID)
            } catch let error as SMTPError {
                // 5xx is the server's final no; anything else (4xx, the connection, a timeout) may pass on retry.
                return .failure(StepFailure(code: "smtp_error", message: error.description, retriable: !(500...599).contains(error.code)))
            } catch {
                return .failure(StepFailure(code: "connection_error", message: "\(smtp.host):\(smtp.port): \(error)", retriable: true))
            }
            output["to"] = .array(recipients.map(JSONValue.string))
            output["message_id"] = .string(messageID)
            return .success(.object(output))
        default:
            return Self.invalid("channel must be one of \(NotifyConfig.channels.joined(separator: ", "))")
        }
    }
}
