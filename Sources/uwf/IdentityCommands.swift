import ArgumentParser
import Foundation
import WorkflowClient
import WorkflowPrimitive

/// `uwf apikey …`: API keys of service accounts.
struct APIKeyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "apikey",
        abstract: "Create, list and revoke API keys (needs the admin role).",
        subcommands: [Create.self, List.self, Revoke.self]
    )

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a key; its secret is printed once.")
        @OptionGroup var options: ClientOptions
        @Option(help: "A name that says who uses the key.") var name: String
        @Option(help: "Comma-separated roles: viewer, operator, author, approver, auditor, monitor, admin.") var roles: String
        @Option(help: "When the key stops working (RFC 3339, e.g. 2027-01-01T00:00:00Z).") var expiresAt: String?
        @Option(help: "Create it in this tenant (admins of the default tenant only).") var tenant: String?
        @Option(help: "Requests a minute this key may make on each node (default: the server's --rate-limit-per-minute).")
        var rateLimitPerMinute: Int?
        @Option(help: "Comma-separated workflow names the key is limited to (default: every workflow of the tenant).")
        var workflows: String?

        func run() async throws {
            let request = CreateAPIKeyRequest(
                name: name,
                roles: roles.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) },
                expiresAt: expiresAt,
                tenantId: tenant,
                rateLimitPerMinute: rateLimitPerMinute,
                workflows: workflows.map { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }
            )
            let created = try await reportingErrors { try await try options.client.createAPIKey(request) }
            if options.json {
                print(TableOutput.pretty(["id": .string(created.info.id), "key": .string(created.key), "tenant_id": .string(created.info.tenantId)]))
            } else {
                print(created.key)
                FileHandle.standardError.write(
                    Data("key \(created.info.id) for tenant \(created.info.tenantId); store it now, it is not shown again\n".utf8)
                )
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the keys of your tenant (never their secrets), newest first.")
        @OptionGroup var options: ClientOptions
        @Option(help: "Page size.") var limit: Int?
        @Option(help: "The next_cursor of the previous page.") var cursor: String?

        func run() async throws {
            let page = try await reportingErrors { try await try options.client.apiKeys(limit: limit, cursor: cursor) }
            let keys = page.items
            defer { if let next = page.nextCursor { print("more: --cursor \(next)") } }
            print(
                TableOutput.table(
                    ["ID", "NAME", "PREFIX", "ROLES", "CREATED", "EXPIRES", "REVOKED", "LAST USED"],
                    keys.map {
                        [
                            $0.id, $0.name, $0.prefix, $0.roles.joined(separator: ","), $0.createdAt, $0.expiresAt ?? "", $0.revokedAt ?? "",
                            $0.lastUsedAt ?? "",
                        ]
                    }
                )
            )
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke a key: every node refuses it within seconds.")
        @OptionGroup var options: ClientOptions
        @Argument(help: "Key id.") var id: String

        func run() async throws {
            try await reportingErrors { try await try options.client.revokeAPIKey(id) }
            print("revoked \(id)")
        }
    }
}

/// `uwf tenant …`: tenants (admins of the default tenant).
struct TenantCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tenant",
        abstract: "Create and list tenants (admins of the default tenant), and show or change your tenant's policies.",
        subcommands: [Create.self, List.self, Settings.self]
    )

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a tenant; then give it an admin key with `uwf apikey create --tenant`.")
        @OptionGroup var options: ClientOptions
        @Argument(help: "Tenant id: lowercase letters, digits and '-'.") var id: String
        @Option(help: "Display name.") var name: String?

        func run() async throws {
            let tenant = try await reportingErrors { try await try options.client.createTenant(CreateTenantRequest(id: id, name: name)) }
            print("created tenant \(tenant.id)")
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List tenants.")
        @OptionGroup var options: ClientOptions
        @Option(help: "Page size.") var limit: Int?
        @Option(help: "The next_cursor of the previous page.") var cursor: String?

        func run() async throws {
            let page = try await reportingErrors { try await try options.client.tenants(limit: limit, cursor: cursor) }
            print(TableOutput.table(["ID", "NAME", "CREATED"], page.items.map { [$0.id, $0.name, $0.createdAt] }))
            if let next = page.nextCursor { print("more: --cursor \(next)") }
        }
    }
}
