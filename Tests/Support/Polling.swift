/// Polls `condition` every 10 ms until it holds; throws ``PollTimeout`` after `timeout`.
public func waitUntil(
    _ what: String = "condition",
    timeout: Duration = .seconds(30),
    _ condition: () async throws -> Bool
) async throws {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return }
        try await Task.sleep(for: .milliseconds(10))
    }
    throw PollTimeout(description: "\(what) not met within \(timeout)")
}

public struct PollTimeout: Error, CustomStringConvertible {
    public var description: String
}

/// The admin API key of the default tenant in every test server: `uwf serve` processes get it through
/// `UWF_BOOTSTRAP_ADMIN_KEY`, in-process APIs have it inserted.
public let testAdminKey = "uwf_test-admin-key-for-the-test-suite-0123456789"
