import Foundation
import WorkflowPrimitive

/// `echo`: the output is the rendered config.
public struct EchoStepExecutor: StepExecutor {
    public init() {}
    public func execute(_ execution: StepExecution) async -> StepResult { .success(execution.input) }
}

/// `noop`: does nothing and outputs `{}`.
public struct NoopStepExecutor: StepExecutor {
    public init() {}
    public func execute(_ execution: StepExecution) async -> StepResult { .success(.object([:])) }
}

/// `transform`: the output is the rendered `config.output`.
public struct TransformStepExecutor: StepExecutor {
    public init() {}
    public func execute(_ execution: StepExecution) async -> StepResult { .success(execution.input["output"] ?? .null) }
}

/// `fail`: fails with `config.message`; `config.retriable` lets the retry policy apply.
public struct FailStepExecutor: StepExecutor {
    public init() {}
    public func execute(_ execution: StepExecution) async -> StepResult {
        .failure(
            StepFailure(
                code: "step_failed",
                message: execution.input["message"]?.stringValue ?? "step failed",
                retriable: execution.input["retriable"]?.boolValue ?? false
            )
        )
    }
}

/// `delay`: a durable timer. The first execution suspends the step until its wake-up time, which is stored with the
/// task, so the wait survives restarts and holds no worker while it lasts.
///
/// The wake-up time is a whole millisecond, and "reached" is judged in whole milliseconds, as the SQLite driver stores
/// a task's due time: a task the store finds due is never suspended again for the fraction of a millisecond left
/// (which on a clock that stands still, a test's, would repeat for ever).
public struct DelayStepExecutor: StepExecutor {
    public init() {}
    public func execute(_ execution: StepExecution) async -> StepResult {
        let nowMs = (execution.now.timeIntervalSince1970 * 1000).rounded()
        if let wakeMs = execution.state?["wake_at_ms"]?.numberValue {
            if nowMs >= wakeMs {
                return .success(["delayed_ms": execution.input["duration_ms"] ?? 0])
            }
            return .suspend(until: Date(timeIntervalSince1970: wakeMs / 1000), state: ["wake_at_ms": .number(wakeMs)])
        }
        // Checked against the configured maximum when the config was rendered; this bound only keeps the date sane.
        guard let duration = execution.input["duration_ms"]?.integer(in: 0...(1 << 42)) else {
            return .failure(StepFailure(code: "invalid_config", message: "duration_ms must be a non-negative integer", retriable: false))
        }
        if duration == 0 { return .success(["delayed_ms": 0]) }
        let wakeMs = nowMs + Double(duration)
        return .suspend(until: Date(timeIntervalSince1970: wakeMs / 1000), state: ["wake_at_ms": .number(wakeMs)])
    }
}

/// The executors the engine uses, by step type.
public struct StepExecutors: Sendable {
    private var executors: [StepType: any StepExecutor]

    public init(_ executors: [StepType: any StepExecutor]) {
        self.executors = executors
    }

    /// The built-in executors; `http_request` uses `httpExecutor`.
    public static func builtin(http httpExecutor: any StepExecutor, notify: (any StepExecutor)? = nil) -> StepExecutors {
        var executors: [StepType: any StepExecutor] = [
            .echo: EchoStepExecutor(), .noop: NoopStepExecutor(), .transform: TransformStepExecutor(),
            .fail: FailStepExecutor(), .delay: DelayStepExecutor(), .httpRequest: httpExecutor,
        ]
        executors[.notify] = notify
        return StepExecutors(executors)
    }

    public subscript(type: StepType) -> (any StepExecutor)? { executors[type] }
}
