import Crypto
import Foundation
import WorkflowPrimitive

/// How an audited action ended.
public enum AuditOutcome: String, Sendable, Codable, CaseIterable {
    /// The action was carried out.
    case success
    /// The caller was not allowed (no or bad credentials, a missing permission, a refused self-approval).
    case denied
    /// The action was refused for another reason (invalid input, a conflict) or failed; nothing changed.
    case failed
}

/// Who asked, from where, in which request: what an audited action records besides what it did.
public struct AuditContext: Sendable, Hashable {
    /// The principal's id (`key:<id>`, `jwt:<subject>`), or nil when nobody was authenticated.
    public var actor: String?
    public var source: String?
    public var requestID: String?

    public init(actor: String?, source: String?, requestID: String?) {
        self.actor = actor
        self.source = source
        self.requestID = requestID
    }
}

/// An audit entry to append: the driver numbers it and links it into its tenant's chain in the same transaction as
/// the change it records.
public struct AuditRecord: Sendable, Hashable {
    public var tenantID: String
    public var at: Date
    public var actor: String?
    /// What was done, as `<object>.<verb>`: `run.start`, `definition.approve`, `api_key.revoke`, `auth.fail`, …
    public var action: String
    /// What it was done to (`run:<id>`, `definition:<name>@<version>`, `api_key:<id>`), if anything.
    public var target: String?
    public var outcome: AuditOutcome
    public var source: String?
    public var requestID: String?
    /// Anything else worth keeping (a reason, an error code, a decision's comment); never a payload or a secret.
    public var details: JSONValue

    public init(
        tenantID: String,
        at: Date,
        context: AuditContext?,
        action: String,
        target: String? = nil,
        outcome: AuditOutcome = .success,
        details: JSONValue = .object([:])
    ) {
        self.tenantID = tenantID
        self.at = at
        self.actor = context?.actor
        self.action = action
        self.target = target
        self.outcome = outcome
        self.source = context?.source
        self.requestID = context?.requestID
        self.details = details
    }
}

/// A stored audit entry: its place in its tenant's chain and the hashes that link it.
public struct AuditEntry: Sendable, Hashable {
    public var seq: Int64
    public var record: AuditRecord
    /// The hash of the entry before it (`AuditChain.genesis` for the first).
    public var previousHash: String
    public var hash: String

    public init(seq: Int64, record: AuditRecord, previousHash: String, hash: String) {
        self.seq = seq
        self.record = record
        self.previousHash = previousHash
        self.hash = hash
    }
}

extension AuditEntry {
    /// An entry as a driver or an export holds it. What cannot be read is kept visible rather than read as something
    /// valid, so the hash check fails on it: an unknown outcome, details that are not JSON.
    public static func stored(
        seq: Int64,
        tenantID: String,
        atMilliseconds: Int64,
        actor: String?,
        action: String,
        target: String?,
        outcome: String,
        source: String?,
        requestID: String?,
        details: JSONValue,
        previousHash: String,
        hash: String
    ) -> AuditEntry {
        let known = AuditOutcome(rawValue: outcome)
        let record = AuditRecord(
            tenantID: tenantID,
            at: Date(timeIntervalSince1970: Double(atMilliseconds) / 1000),
            context: AuditContext(actor: actor, source: source, requestID: requestID),
            action: action,
            target: target,
            outcome: known ?? .failed,
            details: known == nil ? ["unreadable_outcome": .string(outcome)] : details
        )
        return AuditEntry(seq: seq, record: record, previousHash: previousHash, hash: hash)
    }

    /// Stored details (text) read back; text that is not JSON is kept as it is, under `unreadable_details`.
    public static func details(stored text: String) -> JSONValue {
        (try? JSONValue.parse(text)) ?? ["unreadable_details": .string(text)]
    }
}

/// The newest entry of a tenant's chain, as the driver keeps it beside the log (so deleting the newest entries shows).
public struct AuditHead: Sendable, Hashable, Codable {
    public var seq: Int64
    public var hash: String

    public init(seq: Int64, hash: String) {
        self.seq = seq
        self.hash = hash
    }
}

/// The hash chain of the audit log, one per tenant. Each entry's hash is SHA-256 over the previous entry's hash and the
/// entry's canonical encoding (`canonical(seq:record:)`), so changing, removing or reordering an entry breaks every
/// link after it. Times are whole milliseconds, so both drivers encode an entry identically.
public enum AuditChain {
    /// The previous hash of a chain's first entry.
    public static let genesis = String(repeating: "0", count: 64)

    /// The entry as hashed: a JSON object with sorted keys and no insignificant whitespace.
    public static func canonical(seq: Int64, record r: AuditRecord) -> String {
        var fields: [String: JSONValue] = [
            "seq": .number(Double(seq)),
            "tenant": .string(r.tenantID),
            "at": .number(Double(milliseconds(r.at))),
            "action": .string(r.action),
            "outcome": .string(r.outcome.rawValue),
            "details": r.details,
        ]
        fields["actor"] = r.actor.map(JSONValue.string)
        fields["target"] = r.target.map(JSONValue.string)
        fields["source"] = r.source.map(JSONValue.string)
        fields["request_id"] = r.requestID.map(JSONValue.string)
        return JSONValue.object(fields).canonicalString()
    }

    public static func hash(previous: String, seq: Int64, record: AuditRecord) -> String {
        let digest = SHA256.hash(data: Data((previous + "\n" + canonical(seq: seq, record: record)).utf8))
        return hex(digest)
    }

    /// Links `records` after `head` (nil for an empty chain).
    public static func link(_ records: [AuditRecord], after head: AuditHead?) -> [AuditEntry] {
        var seq = head?.seq ?? 0
        var previous = head?.hash ?? genesis
        return records.map { record in
            var record = record
            record.at = Date(timeIntervalSince1970: Double(milliseconds(record.at)) / 1000)
            seq += 1
            let hash = hash(previous: previous, seq: seq, record: record)
            defer { previous = hash }
            return AuditEntry(seq: seq, record: record, previousHash: previous, hash: hash)
        }
    }

    /// Whole milliseconds since 1970, clamped to ±285,000 years (a hostile `since` must not trap).
    /// Lowercase hex, without `String(format:)` (which cost more than the hash itself on every start).
    static func hex(_ digest: SHA256.Digest) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(64)
        for byte in digest {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    public static func milliseconds(_ date: Date) -> Int64 {
        let limit = 9_000_000_000_000_000.0
        let value = (date.timeIntervalSince1970 * 1000).rounded()
        guard value.isFinite else { return value > 0 ? Int64(limit) : -Int64(limit) }
        return Int64(max(-limit, min(limit, value)))
    }

    /// The first broken link of a stretch of entries read in order, starting after `head` (nil: at the chain's
    /// start); nil when every link holds.
    public static func firstBreak(in entries: [AuditEntry], after head: AuditHead?) -> AuditBreak? {
        var expectedSeq = (head?.seq ?? 0) + 1
        var previous = head?.hash ?? genesis
        for entry in entries {
            if entry.seq != expectedSeq {
                return AuditBreak(
                    seq: expectedSeq,
                    reason: entry.seq > expectedSeq ? .missing : .outOfOrder,
                    message: "expected entry \(expectedSeq), found \(entry.seq): entries were removed or reordered"
                )
            }
            if entry.previousHash != previous {
                return AuditBreak(seq: entry.seq, reason: .previousHashMismatch, message: "entry \(entry.seq) does not point at the entry before it")
            }
            if hash(previous: previous, seq: entry.seq, record: entry.record) != entry.hash {
                return AuditBreak(seq: entry.seq, reason: .hashMismatch, message: "entry \(entry.seq) was changed after it was written")
            }
            previous = entry.hash
            expectedSeq += 1
        }
        return nil
    }
}

/// Where and why a chain does not verify.
public struct AuditBreak: Sendable, Hashable {
    public enum Reason: String, Sendable, Codable {
        case missing = "entry_missing"
        case outOfOrder = "entry_out_of_order"
        case previousHashMismatch = "previous_hash_mismatch"
        case hashMismatch = "hash_mismatch"
        case headMismatch = "head_mismatch"
        case truncated = "truncated"
        case checkpointMismatch = "checkpoint_mismatch"
    }

    public var seq: Int64
    public var reason: Reason
    public var message: String

    public init(seq: Int64, reason: Reason, message: String) {
        self.seq = seq
        self.reason = reason
        self.message = message
    }
}

/// Pages through a tenant's audit log in chain order.
public struct AuditListParams: Sendable {
    public var tenantID: String
    /// Entries after this sequence number.
    public var afterSeq: Int64
    public var limit: Int
    public var action: String?
    public var actor: String?
    public var target: String?
    public var outcome: AuditOutcome?
    public var since: Date?
    public var until: Date?
    /// Newest first (for people reading the log), instead of chain order (for verification and export).
    public var newestFirst: Bool
    /// With `newestFirst`: entries before this sequence number.
    public var beforeSeq: Int64?

    public init(
        tenantID: String,
        afterSeq: Int64 = 0,
        limit: Int,
        action: String? = nil,
        actor: String? = nil,
        target: String? = nil,
        outcome: AuditOutcome? = nil,
        since: Date? = nil,
        until: Date? = nil,
        newestFirst: Bool = false,
        beforeSeq: Int64? = nil
    ) {
        self.tenantID = tenantID
        self.afterSeq = afterSeq
        self.limit = limit
        self.action = action
        self.actor = actor
        self.target = target
        self.outcome = outcome
        self.since = since
        self.until = until
        self.newestFirst = newestFirst
        self.beforeSeq = beforeSeq
    }
}

/// The audit log: append-only, one hash chain per tenant.
public protocol AuditStore: Sendable {
    /// Appends entries on their own (an action that changed nothing: a refusal, a failed login, a read of the log).
    func auditAppend(_ records: [AuditRecord]) async throws
    func auditList(_ params: AuditListParams) async throws -> [AuditEntry]
    /// The newest entry of the tenant's chain as the driver recorded it; nil when the tenant has no entries.
    func auditHead(tenantID: String) async throws -> AuditHead?
    /// Every tenant with an audit chain.
    func auditTenants() async throws -> [String]
}
