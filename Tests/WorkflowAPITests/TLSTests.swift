import Foundation
import Testing
import WorkflowTestSupport

/// `uwf serve --tls-cert/--tls-key` with a certificate made for the test, and the CLI trusting it with --ca-cert.
/// Needs `openssl`: `.ci/run` installs it (and requires this suite); a plain `swift test` without it skips the suite.
@Suite(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/openssl") || PostgresTestDatabase.isRequired))
struct TLSTests {
    /// Runs a command, returning its exit status and combined output.
    func run(_ executable: String, _ arguments: [String], in directory: URL) async throws -> (Int32, String) {
        try await offThePool { try Self.runBlocking(executable, arguments, in: directory) }
    }

    /// A CA (`ca.pem`) and a certificate for 127.0.0.1 signed by it (`server.pem`, `server.key`) in `directory`.
    static func makeCertificates(in directory: URL) async throws {
        let openssl = "/usr/bin/openssl"
        try "subjectAltName=IP:127.0.0.1\n".write(to: directory.appendingPathComponent("san.ext"), atomically: true, encoding: .utf8)
        for step in [
            [
                "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
                "-subj", "/CN=uwf test CA",
            ],
            [
                "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj",
                "/CN=127.0.0.1",
            ],
            [
                "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", "server.pem", "-days", "2",
                "-extfile", "san.ext",
            ],
        ] {
            let (status, output) = try await offThePool { try runBlocking(openssl, step, in: directory) }
            try #require(status == 0, "openssl \(step[0]): \(output)")
        }
    }

    static func runBlocking(_ executable: String, _ arguments: [String], in directory: URL) throws -> (Int32, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.currentDirectoryURL = directory
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, output)
    }

    @Test func theServerSpeaksTLSAndTheCLITrustsItsCA() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("uwf-tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        // A CA, and a certificate for 127.0.0.1 signed by it.
        let openssl = "/usr/bin/openssl"
        for step in [
            [
                "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
                "-subj", "/CN=uwf test CA",
            ],
            [
                "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj",
                "/CN=127.0.0.1",
            ],
        ] {
            let (status, output) = try await run(openssl, step, in: directory)
            try #require(status == 0, "openssl \(step[0]): \(output)")
        }
        try "subjectAltName=IP:127.0.0.1\n".write(to: directory.appendingPathComponent("san.ext"), atomically: true, encoding: .utf8)
        let (signed, signOutput) = try await run(
            openssl,
            [
                "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", "server.pem", "-days", "2",
                "-extfile", "san.ext",
            ],
            in: directory
        )
        try #require(signed == 0, "\(signOutput)")

        let server = try await UWFProcess.serve(
            dataDirectory: directory.appendingPathComponent("data"),
            extra: [
                "--tls-cert", directory.appendingPathComponent("server.pem").path, "--tls-key", directory.appendingPathComponent("server.key").path,
            ]
        )
        defer { _ = server.terminate() }
        #expect(server.baseURL.hasPrefix("https://127.0.0.1:"))
        let ca = directory.appendingPathComponent("ca.pem").path
        let trusted = try await UWFProcess.cli(["runs", "list", "--ca-cert", ca], server: server.baseURL)
        #expect(trusted.status == 0, "\(trusted.stderr)")
        let untrusted = try await UWFProcess.cli(["runs", "list"], server: server.baseURL)
        #expect(untrusted.status != 0, "a certificate the client does not trust is refused")
        #expect(untrusted.stderr.contains("--ca-cert"), "and the error says what to do: \(untrusted.stderr)")
        // TLS 1.2 and 1.3 are spoken.
        let port = try #require(server.baseURL.split(separator: ":").last.map(String.init))
        for version in ["-tls1_2", "-tls1_3"] {
            let (status, output) = try await run(
                openssl,
                ["s_client", "-connect", "127.0.0.1:\(port)", version, "-CAfile", ca, "-brief"],
                in: directory
            )
            #expect(status == 0 && output.contains("Verification: OK"), "\(version): \(output)")
        }
    }
}
