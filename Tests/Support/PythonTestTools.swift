import Foundation

/// The Python tools some tests run (verifiers and servers nobody here wrote): `python3` with the `standardwebhooks`
/// and `aiosmtpd` packages from PyPI.
///
/// Without them those tests are skipped, so `swift test` works on a fresh machine, unless
/// `UWF_REQUIRE_PYTHON_TOOLS=1` (set by `.ci/run`, which installs them), which makes them run and fail.
public enum PythonTestTools {
    public static var isRequired: Bool { ProcessInfo.processInfo.environment["UWF_REQUIRE_PYTHON_TOOLS"] == "1" }

    public static let available: Bool = {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", "import standardwebhooks, aiosmtpd"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return false }
        process.waitUntilExit()
        return process.terminationStatus == 0
    }()

    public static var enabled: Bool { isRequired || available }
}
