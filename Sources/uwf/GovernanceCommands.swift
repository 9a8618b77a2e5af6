import ArgumentParser
import Foundation
import WorkflowClient
import WorkflowPrimitive
import WorkflowStore

/// Options of a lifecycle step of a definition version.
struct LifecycleOptions: ParsableArguments {
    @OptionGroup var options: ClientOptions
    @Argument(help: "Workflow name (or a version's id).") var workflow: String
    @Option(help: "The version (needed with a name).") var version: String?
    @Option(help: "A comment kept in the audit log.") var comment: String?

    func perform(_ action: String) async throws {
        let info = try await reportingErrors {
            try await try options.client.lifecycle(action, workflow: workflow, version: version, comment: comment)
        }
        if options.json {
            print(
                TableOutput.pretty([
                    "id": .string(info.id), "name": .string(info.name), "version": .string(info.version), "status": .string(info.status.rawValue),
                ])
            )
        } else {
            let approvals = info.approvals.isEmpty ? "" : " (approved by \(info.approvals.map(\.actor).joined(separator: ", ")))"
            print("\(info.name) \(info.version) is \(info.status.rawValue)\(approvals)")
        }
    }
}

extension WorkflowCommand {
    struct Submit: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Submit a draft version for approval (active at once without a policy).")
        @OptionGroup var lifecycle: LifecycleOptions
        func run() async throws { try await lifecycle.perform("submit") }
    }

    struct Approve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Approve a version's activation (an approver who is not its author).")
        @OptionGroup var lifecycle: LifecycleOptions
        func run() async throws { try await lifecycle.perform("approve") }
    }

    struct Reject: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Send a version waiting for approval back to draft.")
        @OptionGroup var lifecycle: LifecycleOptions
        func run() async throws { try await lifecycle.perform("reject") }
    }

    struct Deprecate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Deprecate an active version: it runs when named, but is no longer the latest.")
        @OptionGroup var lifecycle: LifecycleOptions
        func run() async throws { try await lifecycle.perform("deprecate") }
    }

    struct Retire: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Retire a version: it starts no new runs.")
        @OptionGroup var lifecycle: LifecycleOptions
        func run() async throws { try await lifecycle.perform("retire") }
    }

    struct Activate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Activate a deprecated or retired (and approved) version again.")
        @OptionGroup var lifecycle: LifecycleOptions
        func run() async throws { try await lifecycle.perform("activate") }
    }

    struct Diff: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show what changed between two versions of a workflow.")
        @OptionGroup var options: ClientOptions
        @Argument(help: "Workflow name.") var workflow: String
        @Argument(help: "The older version.") var from: String
        @Argument(help: "The newer version.") var to: String

        func run() async throws {
            let diff = try await reportingErrors { try await try options.client.diff(workflow: workflow, from: from, to: to) }
            if options.json {
                print(String(decoding: try WireCoding.encoder().encode(diff), as: UTF8.self))
                return
            }
            if diff.changes.isEmpty { print("\(diff.name): \(diff.from) and \(diff.to) define the same workflow") }
            for change in diff.changes {
                switch change.op {
                case "add": print("+ \(change.path): \(change.to?.canonicalString() ?? "")")
                case "remove": print("- \(change.path): \(change.from?.canonicalString() ?? "")")
                default: print("~ \(change.path): \(change.from?.canonicalString() ?? "") -> \(change.to?.canonicalString() ?? "")")
                }
            }
        }
    }
}

/// `uwf approve RUN STEP`, `uwf reject RUN STEP`: decide an approval step.
struct ApproveCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "approve", abstract: "Approve a run's approval step (four eyes: not your own run).")
    @OptionGroup var options: ClientOptions
    @Argument(help: "Run id.") var run: String
    @Argument(help: "The approval step's id.") var step: String
    @Option(help: "A comment kept in the run's history.") var comment: String?

    func run() async throws { try await decide(options, run, step, approve: true, comment: comment) }
}

struct RejectCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "reject", abstract: "Reject a run's approval step (the step fails).")
    @OptionGroup var options: ClientOptions
    @Argument(help: "Run id.") var run: String
    @Argument(help: "The approval step's id.") var step: String
    @Option(help: "A comment kept in the run's history.") var comment: String?

    func run() async throws { try await decide(options, run, step, approve: false, comment: comment) }
}

private func decide(_ options: ClientOptions, _ run: String, _ step: String, approve: Bool, comment: String?) async throws {
    let detail = try await reportingErrors { try await try options.client.decide(runID: run, stepID: step, approve: approve, comment: comment) }
    let state = detail.steps.first(where: { $0.id == step })?.status.rawValue ?? "?"
    print("\(approve ? "approved" : "rejected") \(run) \(step): step \(state), run \(detail.status.rawValue)")
}

/// `uwf approvals`: the caller's inbox.
struct ApprovalsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "approvals", abstract: "List approval steps waiting for you.")
    @OptionGroup var options: ClientOptions
    @Option(help: "Most approvals to show.") var limit = 50

    func run() async throws {
        let page = try await reportingErrors { try await try options.client.pendingApprovals(limit: limit) }
        if options.json {
            print(String(decoding: try WireCoding.encoder().encode(page), as: UTF8.self))
            return
        }
        print(
            TableOutput.table(
                ["RUN", "STEP", "WORKFLOW", "APPROVALS", "STARTED BY", "REQUESTED", "MESSAGE"],
                page.items.map {
                    [
                        $0.runId, $0.stepId, "\($0.workflowName) \($0.workflowVersion)", "\($0.approvals.count)/\($0.approversRequired)",
                        $0.initiator ?? "", $0.requestedAt, $0.message ?? "",
                    ]
                }
            )
        )
    }
}

/// `uwf audit …`: read, verify and export the audit log (auditors).
struct AuditCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "Read, verify and export the tamper-evident audit log (needs the auditor role).",
        subcommands: [List.self, Verify.self, Export.self]
    )

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show audit entries, newest first.")
        @OptionGroup var options: ClientOptions
        @Option(help: "Only this action (run.start, definition.approve, auth.fail, …).") var action: String?
        @Option(help: "Only this actor (key:<id> or a token subject).") var actor: String?
        @Option(help: "Only this outcome: success, denied, failed.") var outcome: String?
        @Option(help: "Most entries to show.") var limit = 50

        func run() async throws {
            var filters: [String: String] = [:]
            filters["action"] = action
            filters["actor"] = actor
            filters["outcome"] = outcome
            let page = try await reportingErrors { try await try options.client.audit(limit: limit, filters: filters) }
            if options.json {
                print(String(decoding: try WireCoding.encoder().encode(page), as: UTF8.self))
                return
            }
            print(
                TableOutput.table(
                    ["SEQ", "AT", "ACTOR", "ACTION", "TARGET", "OUTCOME", "SOURCE"],
                    page.items.map { [String($0.seq), $0.at, $0.actor ?? "", $0.action, $0.target ?? "", $0.outcome, $0.source ?? ""] }
                )
            )
        }
    }

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check every link of the chain (on the server, or offline in an export file); exits 1 at the first broken link."
        )
        @OptionGroup var options: ClientOptions
        @Option(help: "A checkpoint kept elsewhere, <seq>:<hash>: fails if that entry is gone or different (catches truncation).")
        var checkpoint: String?
        @Option(help: "Another tenant's log (auditors of the default tenant).") var tenant: String?
        @Option(help: "Verify a file written by `uwf audit export` instead of asking the server.") var file: String?

        func run() async throws {
            var point: (Int64, String)?
            if let checkpoint {
                let parts = checkpoint.split(separator: ":").map(String.init)
                guard parts.count == 2, let seq = Int64(parts[0]), parts[1].count == 64 else {
                    throw ValidationError("--checkpoint is <seq>:<64 hex digits>")
                }
                point = (seq, parts[1].lowercased())
            }
            let result: AuditVerification
            if let file {
                result = try OfflineAudit.verify(file: file, checkpoint: point)
            } else {
                result = try await reportingErrors { try await try options.client.verifyAudit(tenant: tenant, checkpoint: point) }
            }
            if options.json {
                print(String(decoding: try WireCoding.encoder().encode(result), as: UTF8.self))
            } else if let broken = result.firstBreak {
                print("BROKEN at entry \(broken.seq) (\(broken.reason)): \(broken.message); \(result.entries) entries before it verify")
            } else {
                print("ok: \(result.entries) entries of tenant \(result.tenantId) verify; head \(result.headSeq):\(result.headHash)")
            }
            if !result.valid { throw ExitCode(1) }
        }
    }

    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Write the whole log, oldest first, as JSON lines (verifiable offline).")
        @OptionGroup var options: ClientOptions
        @Option(name: .shortAndLong, help: "Write to this file instead of standard output.") var output: String?

        func run() async throws {
            let client = try options.client
            var out = ""
            var after: Int64 = 0
            let encoder = WireCoding.encoder()
            while true {
                let page = try await reportingErrors { try await client.audit(chainOrder: true, after: after, limit: 500) }
                for entry in page.items { out += String(decoding: try encoder.encode(entry), as: UTF8.self) + "\n" }
                guard let last = page.items.last, page.items.count == 500 else { break }
                after = last.seq
            }
            if let output {
                guard FileManager.default.createFile(atPath: output, contents: Data(out.utf8), attributes: [.posixPermissions: 0o600]) else {
                    throw ValidationError("cannot write \(output)")
                }
            } else {
                print(out, terminator: "")
            }
        }
    }
}

/// Verifies an export without the server: the same chain rules (`AuditChain`), entry by entry.
enum OfflineAudit {
    static func verify(file: String, checkpoint: (Int64, String)?) throws -> AuditVerification {
        guard let data = FileManager.default.contents(atPath: file) else { throw ValidationError("cannot read \(file)") }
        var entries: [AuditEntry] = []
        for (number, line) in String(decoding: data, as: UTF8.self).split(separator: "\n").enumerated() {
            guard let info = try? WireCoding.decode(AuditEntryInfo.self, from: Data(line.utf8)), let at = WireCoding.date(info.at) else {
                throw ValidationError("\(file) line \(number + 1) is not an audit entry")
            }
            entries.append(
                .stored(
                    seq: info.seq,
                    tenantID: info.tenantId,
                    atMilliseconds: AuditChain.milliseconds(at),
                    actor: info.actor,
                    action: info.action,
                    target: info.target,
                    outcome: info.outcome,
                    source: info.source,
                    requestID: info.requestId,
                    details: info.details,
                    previousHash: info.prevHash,
                    hash: info.hash
                )
            )
        }
        var broken = AuditChain.firstBreak(in: entries, after: nil)
        if broken == nil, let (seq, hash) = checkpoint {
            if let entry = entries.first(where: { $0.seq == seq }) {
                if entry.hash != hash {
                    broken = AuditBreak(seq: seq, reason: .checkpointMismatch, message: "entry \(seq) is not the one checkpointed")
                }
            } else {
                broken = AuditBreak(seq: seq, reason: .truncated, message: "the checkpointed entry \(seq) is not in the export")
            }
        }
        let good = broken.map { b in entries.prefix { $0.seq < b.seq } } ?? entries[...]
        return AuditVerification(
            tenantId: entries.first?.record.tenantID ?? "",
            valid: broken == nil,
            entries: Int64(good.count),
            headSeq: entries.last?.seq ?? 0,
            headHash: entries.last?.hash ?? AuditChain.genesis,
            firstBreak: broken.map { .init(seq: $0.seq, reason: $0.reason.rawValue, message: $0.message) }
        )
    }
}

/// `uwf secret …`: the tenant's secrets (admins).
struct SecretCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "secret",
        abstract: "Set, list and delete the tenant's secrets (write-only; steps use them as ${secrets.NAME}).",
        subcommands: [Set.self, List.self, Delete.self, RotateMasterKey.self]
    )

    struct Set: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Set a secret; its value is read from standard input unless --value is given.")
        @OptionGroup var options: ClientOptions
        @Argument(help: "Name: a letter or '_', then letters, digits or '_'.") var name: String
        @Option(help: "The value (visible in your shell history and process list: prefer standard input).") var value: String?

        func run() async throws {
            var text = value ?? String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
            if value == nil, text.hasSuffix("\n") { text.removeLast() }
            let info = try await reportingErrors { try await try options.client.setSecret(name, value: text) }
            print("set \(info.name)")
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the secrets' names (never their values).")
        @OptionGroup var options: ClientOptions
        @Option(help: "Page size.") var limit: Int?
        @Option(help: "The next_cursor of the previous page.") var cursor: String?

        func run() async throws {
            let page = try await reportingErrors { try await try options.client.secrets(limit: limit, cursor: cursor) }
            print(TableOutput.table(["NAME", "UPDATED", "BY"], page.items.map { [$0.name, $0.updatedAt, $0.updatedBy ?? ""] }))
            if let next = page.nextCursor { print("more: --cursor \(next)") }
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete a secret.")
        @OptionGroup var options: ClientOptions
        @Argument(help: "Name.") var name: String

        func run() async throws {
            try await reportingErrors { try await try options.client.deleteSecret(name) }
            print("deleted \(name)")
        }
    }

    struct RotateMasterKey: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "rotate-master-key",
            abstract: "Re-wrap every secret under the server's newest master key (after adding it first in every node's key file)."
        )
        @OptionGroup var options: ClientOptions

        func run() async throws {
            let result = try await reportingErrors { try await try options.client.rotateMasterKey() }
            print(
                "re-wrapped \(result["rewrapped"]?.numberValue.map { Int($0) } ?? 0) secret(s) under \(result["active_key_id"]?.stringValue ?? "?")"
            )
        }
    }
}

extension TenantCommand {
    struct Settings: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show or change your tenant's policies (changing needs the admin role).")
        @OptionGroup var options: ClientOptions
        @Option(help: "Approvals a definition version needs before it runs (0: none; versions are active at once).")
        var activationApprovals: Int?
        @Option(help: "Comma-separated hosts, *.suffix patterns or CIDRs http_request steps may call despite the node's refusals.")
        var egressAllow: String?
        @Option(help: "Comma-separated hosts, *.suffix patterns or CIDRs http_request steps may never call.") var egressDeny: String?
        @Option(help: "Encrypt run payloads at rest from now on: true or false (needs a master key on the server).")
        var encryptPayloads: Bool?

        func run() async throws {
            let client = try options.client
            var settings = try await reportingErrors { try await client.tenantSettings() }
            if activationApprovals != nil || egressAllow != nil || egressDeny != nil || encryptPayloads != nil {
                func list(_ text: String) -> [String] {
                    text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
                }
                if let activationApprovals { settings.activationApprovals = activationApprovals }
                if let egressAllow { settings.egressAllow = list(egressAllow) }
                if let egressDeny { settings.egressDeny = list(egressDeny) }
                if let encryptPayloads { settings.encryptPayloads = encryptPayloads }
                settings = try await reportingErrors { try await client.setTenantSettings(settings) }
            }
            print(String(decoding: try WireCoding.encoder().encode(settings), as: UTF8.self))
        }
    }
}
