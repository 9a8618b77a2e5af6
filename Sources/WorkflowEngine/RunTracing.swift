import Foundation
import Tracing
import WorkflowStore

/// Distributed tracing of runs (swift-distributed-tracing; exported by swift-otel when `uwf serve` has an OTLP
/// endpoint, a no-op otherwise). A run's trace is a W3C `traceparent` stored with the run: its start span (a child
/// of the API request that started it, when the caller sent one), then a span per step attempt on whichever node
/// executes it, each `http_request` carrying the attempt's `traceparent`, and a span for the whole run when it ends.
enum RunTracing {
    struct DictionaryInjector: Injector {
        func inject(_ value: String, forKey key: String, into carrier: inout [String: String]) { carrier[key] = value }
    }

    struct DictionaryExtractor: Extractor {
        func extract(key: String, from carrier: [String: String]) -> String? { carrier[key] }
    }

    /// The `traceparent` of `context`, or nil when no tracer is installed (or the context holds no span).
    static func traceParent(of context: ServiceContext) -> String? {
        var carrier: [String: String] = [:]
        InstrumentationSystem.instrument.inject(context, into: &carrier, using: DictionaryInjector())
        return carrier["traceparent"]
    }

    /// A context whose parent span is the stored `traceparent`.
    static func context(traceParent: String?) -> ServiceContext {
        var context = ServiceContext.topLevel
        if let traceParent {
            InstrumentationSystem.instrument.extract(["traceparent": traceParent], into: &context, using: DictionaryExtractor())
        }
        return context
    }

    /// Opens and closes the run's start span (a child of the caller's span, if any); its context becomes the run's.
    static func started(_ run: inout RunRecord) {
        let span = startSpan("workflow.start \(run.workflowName)", context: ServiceContext.current ?? .topLevel, ofKind: .producer)
        span.attributes["uwf.run_id"] = run.id
        span.attributes["uwf.workflow"] = run.workflowName
        span.attributes["uwf.workflow_version"] = run.workflowVersion
        span.attributes["uwf.tenant"] = run.tenantID
        run.traceParent = traceParent(of: span.context)
        span.end()
    }

    /// A span over a run that just ended, from its start to its end.
    static func finished(_ run: RunRecord, status: String) {
        guard let traceParent = run.traceParent else { return }
        let began = run.startedAt ?? run.createdAt
        let span = startSpan(
            "workflow.run \(run.workflowName)",
            at: DefaultTracerClock.Timestamp(nanosecondsSinceEpoch: UInt64(max(0, began.timeIntervalSince1970) * 1e9)),
            context: context(traceParent: traceParent),
            ofKind: .internal
        )
        span.attributes["uwf.run_id"] = run.id
        span.attributes["uwf.workflow"] = run.workflowName
        span.attributes["uwf.status"] = status
        if status != "completed" { span.setStatus(SpanStatus(code: .error, message: status)) }
        let ended = run.completedAt ?? Date()
        span.end(at: DefaultTracerClock.Timestamp(nanosecondsSinceEpoch: UInt64(max(0, ended.timeIntervalSince1970) * 1e9)))
    }
}
