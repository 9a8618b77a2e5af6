import Foundation

/// The operators' tools some tests run against our output (`promtool`, `haproxy`): real tools, not our idea of them.
///
/// Without them those tests are skipped, so `swift test` works on a fresh machine, unless
/// `UWF_REQUIRE_OPS_TOOLS=1` (set by `.ci/run`, which installs them from Debian), which makes them run and fail.
public enum ExternalTools {
    public static var isRequired: Bool { ProcessInfo.processInfo.environment["UWF_REQUIRE_OPS_TOOLS"] == "1" }

    /// The tool's path on `PATH`, if it is installed.
    public static func path(_ name: String) -> String? {
        let directories = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":")
        for directory in directories {
            let candidate = "\(directory)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    /// Whether tests that need `name` run: it is installed, or CI requires it (and the test then fails without it).
    public static func enabled(_ name: String) -> Bool { isRequired || path(name) != nil }

    /// Runs a tool to completion on a thread of its own (waiting blocks), feeding it `input`; returns its status and
    /// output.
    public static func run(_ name: String, _ arguments: [String], input: Data? = nil) async throws -> (status: Int32, output: String) {
        guard let executable = path(name) else { throw ToolMissing(name: name) }
        return try await withCheckedThrowingContinuation { continuation in
            Thread.detachNewThread {
                continuation.resume(
                    with: Result {
                        let process = Process()
                        process.executableURL = URL(fileURLWithPath: executable)
                        process.arguments = arguments
                        let out = Pipe()
                        let stdin = Pipe()
                        process.standardOutput = out
                        process.standardError = out
                        process.standardInput = stdin
                        try process.run()
                        if let input { stdin.fileHandleForWriting.write(input) }
                        try stdin.fileHandleForWriting.close()
                        let text = out.fileHandleForReading.readDataToEndOfFile()
                        process.waitUntilExit()
                        return (process.terminationStatus, String(decoding: text, as: UTF8.self))
                    }
                )
            }
        }
    }

    public struct ToolMissing: Error, CustomStringConvertible {
        public var name: String
        public var description: String { "\(name) is not installed (CI installs it; see .ci/run)" }
    }
}
