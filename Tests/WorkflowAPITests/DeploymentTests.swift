import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Testing
import WorkflowClient
import WorkflowPrimitive
import WorkflowTestSupport
import Yams

#if canImport(Glibc)
import Glibc
#endif

/// The files under deploy/, checked by the tools that read them (no Docker engine runs here: the Dockerfile and the
/// compose file are linted and validated, not built), and HAProxy's configuration run for real.
@Suite struct DeploymentTests {
    static let deploy = UWFProcess.packageRoot.appendingPathComponent("deploy")

    static func text(_ path: String) throws -> String {
        try String(contentsOf: deploy.appendingPathComponent(path), encoding: .utf8)
    }

    @Test(.enabled(if: ExternalTools.enabled("hadolint"))) func theDockerfileIsMultiStageNonRootAndChecksHealth() async throws {
        let lint = try await ExternalTools.run("hadolint", [Self.deploy.appendingPathComponent("Dockerfile").path])
        #expect(lint.status == 0, "hadolint: \(lint.output)")
        let dockerfile = try Self.text("Dockerfile")
        #expect(dockerfile.components(separatedBy: "\nFROM ").count >= 3, "a build stage and a runtime stage")
        #expect(dockerfile.contains("\nUSER 10001:10001"), "runs as an unprivileged user")
        #expect(dockerfile.contains(#"HEALTHCHECK"#) && dockerfile.contains(#""health", "--ready""#))
        // The health check's command exists and fails when nothing answers.
        let probe = try await UWFProcess.cli(["health", "--ready", "--server", "http://127.0.0.1:1"], server: "")
        #expect(probe.status == 1)
    }

    @Test(.enabled(if: ExternalTools.enabled("check-jsonschema"))) func theComposeFileFollowsTheSpecificationAndTheOriginalPOC() async throws {
        let file = Self.deploy.appendingPathComponent("docker-compose.yml").path
        let validated = try await ExternalTools.run("check-jsonschema", ["--builtin-schema", "vendor.compose-spec", file])
        #expect(validated.status == 0, "compose specification: \(validated.output)")
        let compose = try #require(try Yams.load(yaml: Self.text("docker-compose.yml")) as? [String: Any])
        let services = try #require(compose["services"] as? [String: Any])
        #expect(Set(services.keys).isSuperset(of: ["postgres", "uwf1", "uwf2", "uwf3", "haproxy", "prometheus"]))
        // Each node's environment is a configuration uwf accepts (placeholders filled in).
        for name in ["uwf1", "uwf2", "uwf3"] {
            let node = try #require(services[name] as? [String: Any])
            let environment = try #require(node["environment"] as? [String: Any])
            var variables: [String: String] = [:]
            for (key, value) in environment {
                // As compose does: `${NAME:-default}` is the default, `${NAME:?message}` a required value.
                variables[key] = "\(value)".replacingOccurrences(of: #"\$\{[A-Z_]+:-([^}]*)\}"#, with: "$1", options: .regularExpression)
                    .replacingOccurrences(of: #"\$\{[A-Z_]+:\?[^}]*\}"#, with: "x", options: .regularExpression)
            }
            variables["UWF_MASTER_KEY"] = nil  // a placeholder: not read by config check
            variables["UWF_BOOTSTRAP_ADMIN_KEY"] = nil
            let command = (node["command"] as? [String]) ?? []
            let check = try await UWFProcess.cli(["config", "check"] + command.dropFirst(), server: "", environment: variables)
            #expect(check.status == 0, "\(name): \(check.stderr)")
        }
    }

    @Test(.enabled(if: ExternalTools.enabled("kubernetes-validate"))) func theKubernetesManifestsValidate() async throws {
        let directory = Self.deploy.appendingPathComponent("kubernetes")
        let files = ["configmap.yaml", "secret.example.yaml", "deployment.yaml", "service.yaml", "hpa.yaml", "pdb.yaml"]
        let validated = try await ExternalTools.run("kubernetes-validate", ["--strict"] + files.map { directory.appendingPathComponent($0).path })
        #expect(validated.status == 0, "kubernetes-validate: \(validated.output)")
        let deployment = try #require(try Yams.load(yaml: Self.text("kubernetes/deployment.yaml")) as? [String: Any])
        let spec = try #require(((deployment["spec"] as? [String: Any])?["template"] as? [String: Any])?["spec"] as? [String: Any])
        let container = try #require((spec["containers"] as? [[String: Any]])?.first)
        let liveness = (container["livenessProbe"] as? [String: Any])?["httpGet"] as? [String: Any]
        let readiness = (container["readinessProbe"] as? [String: Any])?["httpGet"] as? [String: Any]
        #expect(liveness?["path"] as? String == "/health" && readiness?["path"] as? String == "/health/ready")
        #expect((spec["securityContext"] as? [String: Any])?["runAsNonRoot"] as? Bool == true)
        // The ConfigMap's file is a configuration uwf accepts.
        let configMap = try #require(try Yams.load(yaml: Self.text("kubernetes/configmap.yaml")) as? [String: Any])
        let file = try #require((configMap["data"] as? [String: Any])?["uwf.yaml"] as? String)
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("uwf-k8s-\(UUID().uuidString).yaml")
        defer { try? FileManager.default.removeItem(at: scratch) }
        try Data(file.utf8).write(to: scratch)
        let check = try await UWFProcess.cli(["config", "check", "--config", scratch.path], server: "")
        #expect(check.status == 0, "\(check.stderr)")
    }

    @Test(.enabled(if: ExternalTools.enabled("haproxy"))) func theHAProxyConfigurationIsValid() async throws {
        let checked = try await ExternalTools.run("haproxy", ["-c", "-f", Self.deploy.appendingPathComponent("haproxy/haproxy.cfg").path])
        #expect(checked.status == 0, "\(checked.output)")
        let config = try Self.text("haproxy/haproxy.cfg")
        #expect(config.contains("option httpchk GET /health/ready"))
    }
}

/// A free TCP port on loopback (bound, read, released: another process could take it in between, rarely).
func freeLoopbackPort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
    }
    guard bound else { throw ProcessFailure(description: "no free port") }
    return Int(UInt16(bigEndian: address.sin_port))
}

extension ClusterTests {
    /// The shipped HAProxy configuration in front of three nodes on PostgreSQL: clients keep starting runs through it
    /// while one node is killed. A start the dead node had taken is retried by the client with its Idempotency-Key;
    /// every start is then accepted exactly once and every run completes.
    @Test(.enabled(if: ExternalTools.enabled("haproxy"))) func clientsThroughHAProxyKeepWorkingWhileANodeDies() async throws {
        try await withCluster(count: 3, extra: ["--lease-seconds", "3", "--heartbeat-seconds", "1", "--poll-interval-ms", "200"]) { nodes, _ in
            let port = try freeLoopbackPort()
            var config = try DeploymentTests.text("haproxy/haproxy.cfg")
            for (index, node) in nodes.enumerated() {
                let address = try #require(URL(string: node.baseURL).flatMap { url in url.port.map { "127.0.0.1:\($0)" } })
                config = config.replacingOccurrences(of: "uwf\(index + 1):8080", with: address)
            }
            config = config.replacingOccurrences(of: "bind :8080", with: "bind 127.0.0.1:\(port)")
            config = config.replacingOccurrences(of: "log stdout format raw local0 info", with: "log stdout format raw local0 err")
            let haproxy = try HAProxyProcess(config: config)
            defer { haproxy.stop() }
            let base = "http://127.0.0.1:\(port)"
            let client = WorkflowClient(baseURL: base, apiKey: testAdminKey)
            try await waitUntil(timeout: .seconds(20)) { (try? await client.health()) == true }
            let flow =
                #"{"name": "through-lb", "version": "1.0.0", "definition": {"steps": [{"id": "a", "type": "delay", "config": {"duration_ms": 50}}]}}"#
            _ = try await client.registerWorkflow(Data(flow.utf8), yaml: false)

            /// Starts a run with `key`, retrying what a dead node left unanswered (502/503, a reset) with the same key.
            @Sendable func start(_ key: String) async throws -> (runID: String, retries: Int) {
                var retries = 0
                while true {
                    var request = HTTPClientRequest(url: base + "/api/v1/workflows/through-lb/execute")
                    request.method = .POST
                    request.headers.add(name: "Authorization", value: "Bearer \(testAdminKey)")
                    request.headers.add(name: "Content-Type", value: "application/json")
                    request.headers.add(name: "Idempotency-Key", value: key)
                    request.body = .bytes(ByteBuffer(string: #"{"input": {}}"#))
                    do {
                        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(15))
                        let body = try await response.body.collect(upTo: 1 << 20)
                        if response.status == .accepted || response.status == .ok,
                            let id = try JSONValue.parse(Data(body.readableBytesView))["run_id"]?.stringValue
                        {
                            return (id, retries)
                        }
                        guard [502, 503, 504].contains(response.status.code), retries < 20 else {
                            throw ProcessFailure(description: "start \(key): \(response.status) \(String(buffer: body))")
                        }
                    } catch let error as HTTPClientError where retries < 20 {
                        _ = error
                    }
                    retries += 1
                    try await Task.sleep(for: .milliseconds(200))
                }
            }

            let stop = ContinuousClock.now + .seconds(8)
            let victim = nodes[1]
            let results = try await withThrowingTaskGroup(of: [(key: String, runID: String, retries: Int)].self) { group in
                for worker in 0..<4 {
                    group.addTask {
                        var mine: [(key: String, runID: String, retries: Int)] = []
                        var n = 0
                        while ContinuousClock.now < stop {
                            let key = "lb-\(worker)-\(n)"
                            let (runID, retries) = try await start(key)
                            mine.append((key, runID, retries))
                            n += 1
                        }
                        return mine
                    }
                }
                group.addTask {
                    try await Task.sleep(for: .seconds(3))
                    victim.kill9()
                    return []
                }
                var all: [(key: String, runID: String, retries: Int)] = []
                for try await part in group { all += part }
                return all
            }
            #expect(results.count > 20, "clients kept starting runs: \(results.count)")
            #expect(Set(results.map(\.runID)).count == results.count, "each key started one run")
            // Every accepted run completes, read through the balancer.
            for result in results {
                let run = try await client.wait(for: result.runID, timeout: .seconds(60))
                #expect(run.status == .completed, "\(result.key): \(run.status)")
            }
            // Once HAProxy has marked the dead node down, nothing more needs retrying.
            let after = try await start("lb-after")
            #expect(after.retries == 0)
        }
    }
}
