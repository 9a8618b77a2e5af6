import Foundation
import Testing
import WorkflowTestSupport

#if canImport(Glibc)
import Glibc
#endif

/// The built `uwf` binary, run as a user would run it.
final class UWFProcess: @unchecked Sendable {
    let process: Process
    let baseURL: String
    let stderrURL: URL
    var stdoutURL: URL?

    /// What the server printed on standard output so far.
    func stdout() throws -> String { try stdoutURL.map { try String(contentsOf: $0, encoding: .utf8) } ?? "" }

    /// The `uwf` executable next to the test bundle (`swift test` and `swift build --build-tests` build every product),
    /// or `$UWF_BINARY`.
    static var binary: URL {
        if let path = ProcessInfo.processInfo.environment["UWF_BINARY"] { return URL(fileURLWithPath: path) }
        var directory = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        for _ in 0..<4 {
            let candidate = directory.appendingPathComponent("uwf")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
            directory = directory.deletingLastPathComponent()
        }
        return packageRoot.appendingPathComponent(".build/debug/uwf")
    }

    static var packageRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    private init(process: Process, baseURL: String, stderrURL: URL) {
        self.process = process
        self.baseURL = baseURL
        self.stderrURL = stderrURL
    }

    /// Starts `uwf serve` on a free port over `dataDirectory` and waits until it listens.
    static func serve(
        dataDirectory: URL,
        extra: [String] = [],
        port: Int = 0,
        environment overrides: [String: String] = [:]
    ) async throws
        -> UWFProcess
    {
        try FileManager.default.createDirectory(at: dataDirectory, withIntermediateDirectories: true)
        let stdoutURL = dataDirectory.appendingPathComponent("stdout-\(UUID().uuidString).log")
        let stderrURL = dataDirectory.appendingPathComponent("stderr-\(UUID().uuidString).log")
        FileManager.default.createFile(atPath: stdoutURL.path, contents: nil)
        FileManager.default.createFile(atPath: stderrURL.path, contents: nil)
        let process = Process()
        process.executableURL = binary
        // Load tests make thousands of requests a minute with one key: the default rate limit would refuse them.
        let rate = extra.contains("--rate-limit-per-minute") ? [] : ["--rate-limit-per-minute", "10000000"]
        process.arguments = ["serve", "--port", "\(port)", "--data-dir", dataDirectory.path, "--log-level", "notice"] + rate + extra
        var environment = ProcessInfo.processInfo.environment
        environment["UWF_BOOTSTRAP_ADMIN_KEY"] = environment["UWF_BOOTSTRAP_ADMIN_KEY"] ?? testAdminKey
        environment.merge(overrides) { _, new in new }
        process.environment = environment
        process.standardOutput = try FileHandle(forWritingTo: stdoutURL)
        process.standardError = try FileHandle(forWritingTo: stderrURL)
        try process.run()
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            let text = (try? String(contentsOf: stdoutURL, encoding: .utf8)) ?? ""
            if let line = text.split(separator: "\n").first(where: { $0.hasPrefix("uwf listening on ") }),
                let url = line.split(separator: " ").dropFirst(3).first
            {
                let server = UWFProcess(process: process, baseURL: String(url), stderrURL: stderrURL)
                server.stdoutURL = stdoutURL
                return server
            }
            if !process.isRunning {
                let log = (try? String(contentsOf: stderrURL, encoding: .utf8)) ?? ""
                throw ProcessFailure(description: "uwf serve exited with \(process.terminationStatus): \(log)")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        process.terminate()
        throw ProcessFailure(description: "uwf serve did not start listening in time")
    }

    /// `kill -9`: no shutdown handler runs, nothing is flushed.
    func kill9() {
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    /// SIGTERM, then waits for the exit status.
    func terminate() -> Int32 {
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
        return process.terminationStatus
    }

    var log: String { (try? String(contentsOf: stderrURL, encoding: .utf8)) ?? "" }

    var isRunning: Bool { process.isRunning }

    /// Resident memory of the server process, in KiB (from /proc).
    var residentKiB: Int {
        let status = (try? String(contentsOfFile: "/proc/\(process.processIdentifier)/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
        return Int(line.split(separator: " ").dropFirst().first ?? "0") ?? 0
    }

    /// Runs a client subcommand of the binary and returns its exit status and output.
    /// `stdin`, when given, is what the command reads on standard input (as `printf … | uwf …` would give it).
    static func cli(
        _ arguments: [String],
        server: String,
        environment overrides: [String: String] = [:],
        stdin: String? = nil
    ) async throws -> (status: Int32, stdout: String, stderr: String) {
        // Waiting for a child blocks a thread: never one of the few threads every async test shares.
        try await offThePool { try cliBlocking(arguments, server: server, environment: overrides, stdin: stdin) }
    }

    private static func cliBlocking(
        _ arguments: [String],
        server: String,
        environment overrides: [String: String],
        stdin: String?
    ) throws -> (status: Int32, stdout: String, stderr: String) {
        let process = Process()
        process.executableURL = binary
        process.arguments = arguments
        var environment = ProcessInfo.processInfo.environment
        environment["UWF_SERVER"] = server
        environment["UWF_API_KEY"] = environment["UWF_API_KEY"] ?? testAdminKey
        environment.merge(overrides) { _, new in new }
        process.environment = environment
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        let input = Pipe()
        if stdin != nil { process.standardInput = input }
        try process.run()
        if let stdin {
            input.fileHandleForWriting.write(Data(stdin.utf8))
            try input.fileHandleForWriting.close()
        }
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: stdout, as: UTF8.self), String(decoding: stderr, as: UTF8.self))
    }
}

struct ProcessFailure: Error, CustomStringConvertible {
    var description: String
}

/// Runs blocking work (waiting for a child process, reading its pipes) on a thread of its own, so that it cannot
/// starve Swift concurrency's cooperative pool: on a two-core machine, two tests blocking at once stalled every
/// other test of the process.
func offThePool<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread.detachNewThread {
            continuation.resume(with: Result { try work() })
        }
    }
}

/// Runs a bash script of the repository and returns its standard output. The exit status travels as the output's
/// last line rather than through `Process.waitUntilExit`, which was seen to wait for ever on Linux once a script had
/// started PostgreSQL.
@discardableResult
func runScript(_ script: String, _ arguments: [String], environment: [String: String] = [:]) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/bin/bash")
    let name = URL(fileURLWithPath: script).deletingPathExtension().lastPathComponent
    let stderrURL = FileManager.default.temporaryDirectory.appendingPathComponent("\(name)-\(UUID().uuidString).err")
    defer { try? FileManager.default.removeItem(at: stderrURL) }
    process.arguments = ["-c", #"bash "$0" "$@" 2>"$UWF_SCRIPT_STDERR"; echo "exit=$?""#, script] + arguments
    process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }.merging(["UWF_SCRIPT_STDERR": stderrURL.path]) { $1 }
    let out = Pipe()
    process.standardOutput = out
    process.standardError = FileHandle.nullDevice
    try process.run()
    let stdout = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    let lines = stdout.split(separator: "\n")
    guard lines.last == "exit=0" else {
        let stderr = (try? String(contentsOf: stderrURL, encoding: .utf8)) ?? ""
        throw ProcessFailure(description: "\(name) \(arguments) failed (\(lines.last ?? "no status")): \(stderr)")
    }
    return lines.dropLast().joined(separator: "\n")
}

/// HAProxy (Debian's) running `config`, written to a directory of its own; `stop()` kills it and removes the directory.
final class HAProxyProcess: @unchecked Sendable {
    private let process = Process()
    private let directory: URL

    init(config: String) throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("uwf-haproxy-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let file = directory.appendingPathComponent("haproxy.cfg")
        try Data(config.utf8).write(to: file)
        guard let binary = ExternalTools.path("haproxy") else { throw ProcessFailure(description: "haproxy is not installed") }
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["-f", file.path, "-db"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
    }

    func stop() {
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        try? FileManager.default.removeItem(at: directory)
    }
}
