import Foundation

/// A `uwf serve` child process on a free port.
public struct SpawnedServer {
    public let process: Process
    public let baseURL: String
    public let directory: URL

    public var pid: Int32 { process.processIdentifier }

    /// The bootstrap admin key the server wrote to its data directory (nil when it runs without authentication).
    public var adminKey: String? {
        (try? String(contentsOf: directory.appendingPathComponent("admin.key"), encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    public static func start(executable: URL, database: String?, extra: [String]) async throws -> SpawnedServer {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("uwf-bench-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let out = directory.appendingPathComponent("stdout.log")
        _ = FileManager.default.createFile(atPath: out.path, contents: nil)
        let process = Process()
        process.executableURL = executable
        // The benchmark is one key making thousands of requests a second: the rate limit stays on (its cost is
        // measured) but far above what one run makes.
        var arguments = ["serve", "--port", "0", "--data-dir", directory.path, "--log-level", "warning", "--rate-limit-per-minute", "100000000"]
        if let database { arguments += ["--database", database] }
        process.arguments = arguments + extra
        process.standardOutput = try FileHandle(forWritingTo: out)
        try process.run()
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline, process.isRunning {
            let text = (try? String(contentsOf: out, encoding: .utf8)) ?? ""
            if let line = text.split(separator: "\n").first(where: { $0.hasPrefix("uwf listening on ") }),
                let url = line.split(separator: " ").dropFirst(3).first
            {
                return SpawnedServer(process: process, baseURL: String(url), directory: directory)
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        process.terminate()
        throw BenchError("the benchmark server did not start")
    }

    public func stop() {
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(at: directory)
    }
}

/// Reads a process's CPU time and resident memory from /proc (Linux).
public enum ProcessStats {
    public static func cpuSeconds(_ pid: Int32) -> Double? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    public static func rssMiB(_ pid: Int32) -> Double? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
            let kb = line.split(separator: " ").dropFirst().first.flatMap({ Double($0) })
        else { return nil }
        return kb / 1024
    }
}

extension BenchReport {
    /// The report as pretty, key-sorted JSON.
    public var jsonText: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return String(decoding: (try? encoder.encode(self)) ?? Data(), as: UTF8.self)
    }
}
