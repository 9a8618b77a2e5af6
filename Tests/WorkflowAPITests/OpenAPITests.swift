import Foundation
import Testing
import WorkflowPrimitive
import WorkflowTestSupport

/// The OpenAPI document: served, valid 3.1 in shape, and describing exactly the routes the router has.
/// (schemathesis, run by .ci/run against a live server, checks the answers against it.)
@Suite struct OpenAPITests {
    @Test func theDocumentDescribesEveryRouteAndNothingElse() async throws {
        try await withAPIEnvironment { api, environment in
            let served = try await api.call(.get, "/openapi.json", headers: ["Authorization": ""])
            #expect(served.status == .ok, "public, like the probes")
            let document = served.json
            #expect(document["openapi"] == "3.1.0")
            let paths = try #require(document["paths"]?.objectValue)
            var documented: Set<String> = []
            let methods = ["get", "put", "post", "delete", "patch", "head", "options"]
            var operationIDs: [String] = []
            for (path, item) in paths {
                for method in methods {
                    guard let operation = item[method] else { continue }
                    documented.insert("\(method.uppercased()) \(path)")
                    operationIDs.append(operation["operationId"]?.stringValue ?? "")
                    #expect(operation["responses"]?.objectValue?.isEmpty == false, "\(method) \(path) documents its answers")
                    // Every path parameter is declared (on the operation or its path).
                    let declared = Set(
                        ((operation["parameters"]?.arrayValue ?? []) + (item["parameters"]?.arrayValue ?? [])).compactMap { p -> String? in
                            if let name = p["name"]?.stringValue { return p["in"] == "path" ? name : nil }
                            let ref = p["$ref"]?.stringValue?.split(separator: "/").last.map(String.init) ?? ""
                            let resolved = document["components"]?["parameters"]?[ref]
                            return resolved?["in"] == "path" ? resolved?["name"]?.stringValue : nil
                        }
                    )
                    let inPath = Set(path.matches(of: /\{([a-z_]+)\}/).map { String($0.output.1) })
                    #expect(declared == inPath, "\(method) \(path): path parameters \(declared) vs \(inPath)")
                }
            }
            let routed = Set(environment.routes)
            #expect(routed.count >= 80, "the router lists its routes: \(routed.count)")
            #expect(routed.subtracting(documented).isEmpty, "routes the document lacks: \(routed.subtracting(documented).sorted())")
            #expect(documented.subtracting(routed).isEmpty, "documented paths no route serves: \(documented.subtracting(routed).sorted())")
            #expect(Set(operationIDs).count == operationIDs.count && !operationIDs.contains(""), "operation ids are unique")
            // Every $ref points at something that exists.
            let text = document.canonicalString()
            for match in text.matches(of: /"#\/components\/([a-zA-Z]+)\/([A-Za-z]+)"/) {
                #expect(document["components"]?[String(match.output.1)]?[String(match.output.2)] != nil, "dangling \(match.output.0)")
            }
            let page = try await api.raw(.get, "/api-docs", headers: ["Authorization": ""])
            #expect(page.status == .ok && String(decoding: page.body, as: UTF8.self).contains("/openapi.json"))
            #expect(page.headers[.contentSecurityPolicy]?.contains("default-src 'none'") == true, "no third-party scripts")
        }
    }
}
