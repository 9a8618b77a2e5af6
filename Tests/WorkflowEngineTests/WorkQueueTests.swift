import Testing

@testable import WorkflowEngine

@Suite struct WorkQueueTests {
    @Test func deliversInOrderInBatches() async {
        let queue = WorkQueue<Int>()
        queue.push(Array(1...5))
        #expect(await queue.next(max: 2) == [1, 2])
        #expect(await queue.next(max: 10) == [3, 4, 5])
    }

    @Test func wakesAWaitingConsumer() async {
        let queue = WorkQueue<Int>()
        async let taken = queue.next(max: 10)
        try? await Task.sleep(for: .milliseconds(20))
        queue.push(7)
        #expect(await taken == [7])
    }

    @Test func closeRefusesAndReturnsLeftovers() async {
        let queue = WorkQueue<Int>()
        queue.push([1, 2])
        #expect(queue.close() == [1, 2])
        #expect(!queue.push(3))
        #expect(await queue.next(max: 1) == nil)
    }

    @Test func finishLetsConsumersDrain() async {
        let queue = WorkQueue<Int>()
        queue.push([1, 2])
        queue.finish()
        #expect(!queue.push(3))
        #expect(await queue.next(max: 1) == [1])
        #expect(await queue.next(max: 5) == [2])
        #expect(await queue.next(max: 5) == nil)
    }

    /// Cancellation at any moment, even before the waiter registers, must end the wait (the claimer relies on it).
    @Test func everyCancelledWaiterReturns() async {
        let queue = WorkQueue<Int>()
        await withTaskGroup(of: Void.self) { group in
            for i in 0..<2000 {
                let waiter = Task { await queue.next(max: 1) }
                if i % 2 == 0 { await Task.yield() }
                waiter.cancel()
                group.addTask { _ = await waiter.value }
            }
        }
        queue.push(1)
        #expect(await queue.next(max: 1) == [1], "no cancelled waiter swallowed the element")
    }

    @Test func wakeSignalReturnsOnSignalOrTimeout() async {
        let signal = WakeSignal()
        let clock = ContinuousClock()
        let timedOut = await clock.measure { await signal.wait(timeout: .milliseconds(30)) }
        #expect(timedOut >= .milliseconds(25))
        signal.signal()
        let signalled = await clock.measure { await signal.wait(timeout: .seconds(30)) }
        #expect(signalled < .seconds(5))
    }
}
