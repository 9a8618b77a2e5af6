import Foundation
import Hummingbird
import Mustache
import WorkflowPrimitive
import WorkflowStore
import WorkflowWire

extension WorkflowAPI {
    /// Message templates of `notify` steps: versioned per tenant; written by authors (`workflow:write`).
    func addTemplateRoutes(to v1: RouterGroup<APIRequestContext>) {
        v1.put("/templates/:name") { request, context in
            let principal = try context.authorize(.workflowWrite)
            _ = try queryParameters(request, allowed: [])
            let name = try templateName(context)
            var subject: String?
            var body = ""
            var description: String?
            _ = try await commentedBody(request, allowEmpty: false, extra: ["subject", "body", "description"]) { fields, issues in
                func text(_ key: String, required: Bool) -> String? {
                    guard let value = fields[key], !value.isNull else {
                        if required { issues.append(ValidationIssue(pointer: JSONPointer.root.appending(key), message: "is required")) }
                        return nil
                    }
                    guard let s = value.stringValue, s.utf8.count <= NotifyConfig.maxTemplateBytes else {
                        issues.append(ValidationIssue(pointer: JSONPointer.root.appending(key), message: "must be a string of at most 65536 bytes"))
                        return nil
                    }
                    return s
                }
                subject = text("subject", required: false)
                body = text("body", required: true) ?? ""
                description = text("description", required: false)
                for (key, value) in [("subject", subject), ("body", body as String?)] {
                    guard let value else { continue }
                    do {
                        _ = try MustacheTemplate(string: value)
                    } catch {
                        issues.append(ValidationIssue(pointer: JSONPointer.root.appending(key), message: "is not a Mustache template: \(error)"))
                    }
                }
            }
            let now = clock.now()
            let template = try await store.templateAdd(
                MessageTemplate(
                    tenantID: principal.tenantID,
                    name: name,
                    version: 0,
                    subject: subject,
                    body: body,
                    description: description,
                    createdAt: now,
                    createdBy: principal.subject
                ),
                audit: [
                    AuditRecord(tenantID: principal.tenantID, at: now, context: context.audit, action: "template.put", target: "template:\(name)")
                ],
                quotas: configuration.quotas
            )
            return try respond(Self.templateJSON(template), status: .created, location: "/api/v1/templates/\(name)?version=\(template.version)")
        }
        v1.get("/templates") { request, context in
            let principal = try context.authorize(.workflowRead)
            let query = try queryParameters(request, allowed: ["limit", "cursor"])
            let limit = try pageSize(request)
            let items = try await store.templateList(tenantID: principal.tenantID, after: query.get("cursor"), limit: limit)
            let next = items.count == limit ? items.last.map { JSONValue.string($0.name) } ?? .null : .null
            return try respond(["templates": JSONValue.array(items.map(Self.templateJSON)), "next_cursor": next] as JSONValue)
        }
        v1.get("/templates/:name") { request, context in
            let principal = try context.authorize(.workflowRead)
            let query = try queryParameters(request, allowed: ["version"])
            let name = try templateName(context)
            var version: Int?
            if let text = query.get("version") {
                guard let n = Int(text), n > 0 else { throw WorkflowError(.invalidRequest, "version must be a positive integer") }
                version = n
            }
            guard let template = try await store.templateGet(tenantID: principal.tenantID, name: name, version: version) else {
                throw WorkflowError(.notFound, "no template \(name)\(version.map { "@\($0)" } ?? "")")
            }
            return try respond(Self.templateJSON(template))
        }
    }

    func templateName(_ context: APIRequestContext) throws -> String {
        let name = try context.parameters.require("name")
        guard !name.isEmpty, name.utf8.count <= 100, !name.contains("@"),
            name.unicodeScalars.allSatisfy({ CharacterSet.alphanumerics.contains($0) && $0.isASCII || "-_.".unicodeScalars.contains($0) })
        else {
            throw WorkflowError(.invalidRequest, "a template name is 1-100 letters, digits, '-', '_' or '.'")
        }
        return name
    }

    static func templateJSON(_ t: MessageTemplate) -> JSONValue {
        [
            "name": .string(t.name), "version": .number(Double(t.version)), "subject": t.subject.map(JSONValue.string) ?? .null,
            "body": .string(t.body), "description": t.description.map(JSONValue.string) ?? .null,
            "created_at": .string(WireCoding.time(t.createdAt)), "created_by": t.createdBy.map(JSONValue.string) ?? .null,
        ]
    }
}
