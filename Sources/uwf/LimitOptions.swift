import ArgumentParser
import WorkflowPrimitive
import WorkflowStore

/// The bounds of `uwf serve` on what input and tenants can grow (docs/limits.md).
struct LimitOptions: ParsableArguments {
    @Option(help: "Largest stored definition, in bytes.") var maxDefinitionBytes = WorkflowLimits.default.maxDefinitionBytes
    @Option(help: "Largest run input, in bytes.") var maxInputBytes = WorkflowLimits.default.maxInputBytes
    @Option(help: "Largest output of a step or a run, in bytes.") var maxOutputBytes = WorkflowLimits.default.maxOutputBytes
    @Option(help: "Longest delay step, in milliseconds.") var maxDelayMs = WorkflowLimits.default.maxDelayMs
    @Option(help: "Longest run, step, signal-wait or HTTP timeout, in milliseconds.") var maxTimeoutMs = WorkflowLimits.default.maxTimeoutMs
    @Option(help: "Most runs one run tree (a run with its sub_workflow and foreach descendants) may create.")
    var maxRunsPerTree = WorkflowLimits.default.maxRunsPerTree
    @Option(help: "Most tenants, the default one included.") var maxTenants = StoreQuotas.default.tenants
    @Option(help: "Most unrevoked API keys of a tenant.") var maxApiKeysPerTenant = StoreQuotas.default.apiKeysPerTenant
    @Option(help: "Most webhooks of a tenant (every event fans out to each).") var maxWebhooksPerTenant = StoreQuotas.default.webhooksPerTenant
    @Option(help: "Most message template names of a tenant.") var maxTemplatesPerTenant = StoreQuotas.default.templatesPerTenant
    @Option(help: "Most versions of one message template.") var maxVersionsPerTemplate = StoreQuotas.default.versionsPerTemplate
    @Option(help: "Most schedules of a tenant.") var maxSchedulesPerTenant = StoreQuotas.default.schedulesPerTenant
    @Option(help: "Most secrets of a tenant.") var maxSecretsPerTenant = StoreQuotas.default.secretsPerTenant
    @Option(help: "Most workflow names of a tenant.") var maxWorkflowsPerTenant = StoreQuotas.default.workflowsPerTenant
    @Option(help: "Most versions of one workflow.") var maxVersionsPerWorkflow = StoreQuotas.default.versionsPerWorkflow

    var limits: WorkflowLimits {
        var limits = WorkflowLimits()
        limits.maxDefinitionBytes = maxDefinitionBytes
        limits.maxInputBytes = maxInputBytes
        limits.maxOutputBytes = maxOutputBytes
        limits.maxDelayMs = maxDelayMs
        limits.maxTimeoutMs = maxTimeoutMs
        limits.maxRunsPerTree = maxRunsPerTree
        return limits
    }

    var quotas: StoreQuotas {
        StoreQuotas(
            tenants: maxTenants,
            apiKeysPerTenant: maxApiKeysPerTenant,
            webhooksPerTenant: maxWebhooksPerTenant,
            templatesPerTenant: maxTemplatesPerTenant,
            versionsPerTemplate: maxVersionsPerTemplate,
            schedulesPerTenant: maxSchedulesPerTenant,
            secretsPerTenant: maxSecretsPerTenant,
            workflowsPerTenant: maxWorkflowsPerTenant,
            versionsPerWorkflow: maxVersionsPerWorkflow
        )
    }

    func validate() throws {
        for (name, value, maximum) in [
            ("--max-definition-bytes", maxDefinitionBytes, 64 << 20), ("--max-input-bytes", maxInputBytes, 64 << 20),
            ("--max-output-bytes", maxOutputBytes, 64 << 20), ("--max-delay-ms", maxDelayMs, 1 << 42),
            ("--max-timeout-ms", maxTimeoutMs, 1 << 42), ("--max-runs-per-tree", maxRunsPerTree, 10_000_000),
            ("--max-tenants", maxTenants, 10_000_000), ("--max-api-keys-per-tenant", maxApiKeysPerTenant, 1_000_000),
            ("--max-webhooks-per-tenant", maxWebhooksPerTenant, 1_000), ("--max-templates-per-tenant", maxTemplatesPerTenant, 1_000_000),
            ("--max-versions-per-template", maxVersionsPerTemplate, 1_000_000),
            ("--max-schedules-per-tenant", maxSchedulesPerTenant, 10_000_000), ("--max-secrets-per-tenant", maxSecretsPerTenant, 1_000_000),
            ("--max-workflows-per-tenant", maxWorkflowsPerTenant, 10_000_000), ("--max-versions-per-workflow", maxVersionsPerWorkflow, 1_000_000),
        ] where !(1...maximum).contains(value) {
            throw ValidationError("\(name) must be from 1 to \(maximum)")
        }
    }
}
