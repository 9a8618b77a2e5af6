import Foundation
import Hummingbird
import Testing
import WorkflowEngine
import WorkflowPrimitive
import WorkflowStore
import WorkflowTestSupport

/// Issue #9, finding 7: one big run must not starve the others. A run that readies hundreds of steps at once used to
/// keep a node to itself (it leased them all locally) and, queued, held the queue until all of them ran.
@Suite struct FairnessTests {
    @Test(arguments: TestDriver.all) func aRunThatReadiesManyStepsDoesNotStarveANewcomer(_ driver: TestDriver) async throws {
        let steps = 300
        try await LocalHTTPServer.with({ router, _ in
            router.post("/work") { _, _ in
                try await Task.sleep(for: .milliseconds(15))
                return Response(status: .ok)
            }
        }) { remote in
            // Two workers: the wide run's backlog takes seconds to drain whatever the machine's speed.
            try await withEngine(driver, configure: { $0.maxConcurrentSteps = 2 }) { h in
                let wide = try await h.register(
                    """
                    {"name": "wide", "version": "1.0.0", "definition": {"steps": [
                    \((0..<steps).map { #"{"id": "s\#($0)", "type": "http_request", "config": {"url": "\#(remote.baseURL)/work", "method": "POST"}}"# }.joined(separator: ",\n"))
                    ]}}
                    """
                )
                let small = try await h.register(
                    """
                    {"name": "small", "version": "1.0.0", "definition": {"steps": [{"id": "a", "type": "noop"}]}}
                    """
                )
                let big = try await h.engine.start(definition: wide, input: [:])
                try await Task.sleep(for: .milliseconds(300))
                let newcomer = try await h.engine.start(definition: small, input: [:])
                let finished = try await h.waitForRun(newcomer.id, timeout: .seconds(60))
                #expect(finished.status == .completed)
                let done = try await h.store.stepList(runID: big.id).filter { $0.status == .success }.count
                #expect(done < steps / 2, "the newcomer waited for \(done) of the wide run's \(steps) steps")
                #expect(try await h.waitForRun(big.id, timeout: .seconds(120)).status == .completed, "the wide run still finishes")
            }
        }
    }

    /// The queue order itself: steps a transition queues are spread from the queue's head, a newcomer lands right
    /// behind the head, and a step that may not run yet waits at its own time.
    @Test func queuedStepsAreSpreadFromTheHead() {
        let now = Date(timeIntervalSince1970: 1_000_000)
        let head = now.addingTimeInterval(-30)
        var mutation = RunMutation()
        mutation.newTasks = [
            NewTask(stepID: "a", kind: .step, availableAt: now),
            NewTask(stepID: "b", kind: .step, availableAt: now, leaseOwner: "node", leaseExpiresAt: now),
            NewTask(stepID: "c", kind: .step, availableAt: now),
            NewTask(stepID: "d", kind: .step, availableAt: now.addingTimeInterval(5)),
            NewTask(stepID: nil, kind: .notifyParent, availableAt: now),
        ]
        let times = mutation.queueTimes(now: now, head: head)
        #expect(times[0] == head)
        #expect(times[1] == now, "a leased task is not queued")
        #expect(times[2] == head, "the first steps of a burst stay together")
        #expect(times[3] == now.addingTimeInterval(5), "a delayed step waits at its time")
        #expect(times[4] == now)
        #expect(mutation.queueTimes(now: now, head: nil)[0] == now, "an empty queue places at now")
        var wide = RunMutation()
        wide.newTasks = (0..<40).map { NewTask(stepID: "s\($0)", kind: .step, availableAt: now) }
        let spread = wide.queueTimes(now: now, head: head)
        #expect(spread[RunMutation.queueBurst - 1] == head)
        #expect(spread[RunMutation.queueBurst] == head.addingTimeInterval(RunMutation.queueSpacing), "a wide burst is spread")
        #expect(spread[39] == head.addingTimeInterval(Double(40 - RunMutation.queueBurst) * RunMutation.queueSpacing))
        #expect(mutation.queueTimes(now: now, head: now.addingTimeInterval(60))[0] == now, "a head in the future does not push back")
    }
}
