import Foundation
import Logging
import ServiceLifecycle
import WorkflowIdentity

/// Runs `service` once `prepare` (a schema migration) has finished, inside the same `ServiceGroup` as what it needs.
struct AfterPreparation<Wrapped: Service>: Service {
    let prepare: @Sendable () async throws -> Void
    let service: Wrapped

    func run() async throws {
        try await prepare()
        try await service.run()
    }
}

/// Writes the `last_used_at` of API keys every five seconds (not on every request).
struct KeyUsageRecorder: Service {
    let keys: APIKeyAuthenticator

    func run() async throws {
        // Shutdown stops the wait at once (not after the next five seconds), then the last uses are written.
        try? await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try await Task.sleep(for: .seconds(5))
                await keys.flushUsage(now: Date())
            }
        }
        await keys.flushUsage(now: Date())
    }
}

/// Refetches the identity provider's keys every `refreshInterval` (rotation; an unknown key id also refetches).
struct KeyRefresher: Service {
    let tokens: JWTAuthenticator
    let logger: Logger

    func run() async throws {
        try? await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try await Task.sleep(for: tokens.configuration.refreshInterval)
                do {
                    try await tokens.refresh()
                } catch {
                    logger.warning("refreshing the identity provider's keys failed; keeping the previous ones", metadata: ["error": "\(error)"])
                }
            }
        }
    }
}
