import Foundation
import WorkflowPrimitive

/// A registered workflow definition, as the API returns it.
public struct WorkflowInfo: Decodable, Sendable {
    public var id: String
    public var name: String
    public var version: String
    public var description: String?
    public var definition: JSONValue
    public var checksum: String?
    public var createdAt: String
}

/// The answer to starting a run.
public struct RunStarted: Decodable, Sendable {
    public var runId: String
    public var status: String
    public var workflowId: String?
    public var workflowName: String?
    public var workflowVersion: String?
}

/// A run, with its steps when fetched on its own.
public struct RunInfo: Decodable, Sendable {
    public var runId: String
    public var workflowId: String
    public var workflowName: String?
    public var workflowVersion: String?
    public var status: String
    public var input: JSONValue?
    public var output: JSONValue?
    public var error: JSONValue?
    public var steps: [StepInfo]?
    public var parentRunId: String?
    public var itemIndex: Int?
    public var compensated: Bool?
    public var createdAt: String?
    public var startedAt: String?
    public var completedAt: String?

    /// True once the run can change no more.
    public var isFinished: Bool { ["COMPLETED", "FAILED", "CANCELLED"].contains(status) }
}

/// A failed run waiting for an operator.
public struct DeadLetterInfo: Decodable, Sendable {
    public var runId: String
    public var workflowId: String
    public var workflowName: String?
    public var workflowVersion: String?
    public var failedStep: String?
    public var error: JSONValue?
    public var failedAt: String?
}

/// One step of a run.
public struct StepInfo: Decodable, Sendable {
    public var id: String
    public var status: String
    public var attempts: Int
    public var output: JSONValue?
    public var error: JSONValue?
    public var startedAt: String?
    public var completedAt: String?
}

/// One entry of a run's history.
public struct RunEventInfo: Decodable, Sendable {
    public var seq: Int
    public var type: String
    public var stepId: String?
    public var at: String
    public var data: JSONValue?
}

/// One page of a list, with the cursor of the next page.
public struct Page<Item: Sendable>: Sendable {
    public var items: [Item]
    public var nextCursor: String?
}
