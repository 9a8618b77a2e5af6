/// An error a user of the service can act on, with a stable machine-readable code.
///
/// The API renders it as RFC 9457 `application/problem+json`; the client turns such responses back into it.
/// `message` never contains SQL, payloads or secrets.
public struct WorkflowError: Error, Sendable, CustomStringConvertible {
    /// A stable error code. New codes may be added; existing ones never change meaning.
    public struct Code: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        public let rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        public static let invalidDefinition = Code(rawValue: "invalid_definition")
        public static let invalidInput = Code(rawValue: "invalid_input")
        public static let invalidRequest = Code(rawValue: "invalid_request")
        public static let malformedBody = Code(rawValue: "malformed_body")
        public static let payloadTooLarge = Code(rawValue: "payload_too_large")
        public static let workflowNotFound = Code(rawValue: "workflow_not_found")
        public static let runNotFound = Code(rawValue: "run_not_found")
        public static let versionConflict = Code(rawValue: "version_conflict")
        public static let runNotCancellable = Code(rawValue: "run_not_cancellable")
        public static let notFound = Code(rawValue: "not_found")
        /// A signal, retry or other operation on a run that has finished (or, for retry, not finished).
        public static let runFinished = Code(rawValue: "run_finished")
        public static let runNotRetryable = Code(rawValue: "run_not_retryable")
        /// An `Idempotency-Key` reused with a different request body.
        public static let idempotencyKeyReused = Code(rawValue: "idempotency_key_reused")
        /// Another request with the same `Idempotency-Key` created its run first (internal: the caller looks it up).
        public static let idempotencyKeyTaken = Code(rawValue: "idempotency_key_taken")
        public static let tooManySignals = Code(rawValue: "too_many_signals")
        /// A request body in a media type the endpoint does not read (it needs JSON, or JSON or YAML).
        public static let unsupportedMediaType = Code(rawValue: "unsupported_media_type")
        /// A definition larger than the configured maximum once stored.
        public static let definitionTooLarge = Code(rawValue: "definition_too_large")
        /// A run input larger than the configured maximum.
        public static let inputTooLarge = Code(rawValue: "input_too_large")
        /// The definition version is retired: it starts no new runs.
        public static let workflowRetired = Code(rawValue: "workflow_retired")
        /// The definition version has runs and so can be retired but not deleted.
        public static let definitionInUse = Code(rawValue: "definition_in_use")
        /// The client did not send its request in time.
        public static let requestTimeout = Code(rawValue: "request_timeout")
        public static let unavailable = Code(rawValue: "unavailable")
        /// No credentials, or credentials that are not valid (which of the two is never said).
        public static let unauthenticated = Code(rawValue: "unauthenticated")
        /// The caller is known but its roles do not allow this.
        public static let forbidden = Code(rawValue: "forbidden")
        public static let tenantNotFound = Code(rawValue: "tenant_not_found")
        public static let tenantExists = Code(rawValue: "tenant_exists")
        /// The caller made more requests than its rate limit allows; `Retry-After` says when to try again.
        public static let rateLimited = Code(rawValue: "rate_limited")
        /// Too many failed authentications from this address; refused for a while whatever it presents.
        public static let lockedOut = Code(rawValue: "locked_out")
        /// The definition version is not active (a draft, or waiting for approval): it starts no runs yet.
        public static let workflowNotActive = Code(rawValue: "workflow_not_active")
        /// A lifecycle step the version's current state does not allow (approving a draft, deprecating a retired one).
        public static let lifecycleConflict = Code(rawValue: "lifecycle_conflict")
        /// An approver who may not decide this: the author of the version, or the initiator of the run.
        public static let selfApproval = Code(rawValue: "self_approval")
        /// This person has already decided this approval.
        public static let alreadyDecided = Code(rawValue: "already_decided")
        /// No approval is waiting on this step (it was decided, timed out, or the step is not an approval).
        public static let approvalNotPending = Code(rawValue: "approval_not_pending")
        /// Secrets need a master key, and this node has none.
        public static let masterKeyMissing = Code(rawValue: "master_key_missing")
        public static let secretNotFound = Code(rawValue: "secret_not_found")
        public static let scheduleNotFound = Code(rawValue: "schedule_not_found")
        /// The tenant already has a schedule with this id.
        public static let scheduleExists = Code(rawValue: "schedule_exists")
        /// The schedule changed while this request worked on it (another request, or the leader firing it): retry.
        public static let scheduleConflict = Code(rawValue: "schedule_conflict")
        /// The tenant already has a webhook with this id.
        public static let webhookExists = Code(rawValue: "webhook_exists")
        /// The tenant keeps as many of these as it may (`StoreQuotas`): delete one first, or raise the quota.
        public static let quotaExceeded = Code(rawValue: "quota_exceeded")
        public static let internalError = Code(rawValue: "internal_error")
    }

    public var code: Code
    public var message: String
    /// Field-level problems, each with a JSON pointer (validation errors only).
    public var issues: [ValidationIssue]

    public init(_ code: Code, _ message: String, issues: [ValidationIssue] = []) {
        self.code = code
        self.message = message
        self.issues = issues
    }

    public var description: String {
        issues.isEmpty ? "\(code): \(message)" : "\(code): \(message) (\(issues.map(\.description).joined(separator: "; ")))"
    }
}
