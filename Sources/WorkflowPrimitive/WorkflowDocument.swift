import Foundation
import Yams

/// Entry points for turning request bodies and files into validated definitions.
public enum WorkflowDocument {
    /// The document formats accepted for definitions.
    public enum Format: Sendable {
        case json
        case yaml
    }

    /// Decodes JSON or YAML text into a ``JSONValue``; throws ``DocumentError`` when the text is malformed.
    public static func decode(_ data: Data, format: Format) throws(DocumentError) -> JSONValue {
        switch format {
        case .json:
            do {
                return try JSONValue.parse(data)
            } catch {
                throw DocumentError(message: "malformed JSON: \(error)")
            }
        case .yaml:
            do {
                guard let text = String(data: data, encoding: .utf8) else { throw DocumentError(message: "YAML must be UTF-8") }
                guard let node = try Yams.compose(yaml: text) else { return .null }
                return try Self.json(from: node)
            } catch let error as DocumentError {
                throw error
            } catch {
                throw DocumentError(message: "malformed YAML: \(error)")
            }
        }
    }

    /// Validates a decoded document and compiles its plan, reporting every problem at once.
    public static func validate(_ document: JSONValue) throws(ValidationError) -> (WorkflowDefinition, WorkflowPlan) {
        var parser = DefinitionParser()
        let parsed = parser.parseDocument(document)
        var issues = parser.issues
        var plan: WorkflowPlan?
        if let parsed {
            do { plan = try WorkflowPlan(spec: parsed.spec) } catch { issues += error.issues }
        }
        guard let parsed, let plan, issues.isEmpty else {
            throw ValidationError(issues: issues.isEmpty ? [ValidationIssue(pointer: .root, message: "is invalid")] : issues)
        }
        return (parsed, plan)
    }

    private static func json(from node: Node) throws -> JSONValue {
        switch node {
        case .scalar(let scalar):
            if scalar.style == .plain {
                if let _ = NSNull.construct(from: scalar) { return .null }
                if let b = Bool.construct(from: scalar) { return .bool(b) }
                if let i = Int.construct(from: scalar) { return .number(Double(i)) }
                if let d = Double.construct(from: scalar) { return .number(d) }
            }
            return .string(scalar.string)
        case .sequence(let sequence):
            return .array(try sequence.map { try json(from: $0) })
        case .mapping(let mapping):
            var fields: [String: JSONValue] = [:]
            for (key, value) in mapping {
                guard case .scalar(let k) = key else { throw DocumentError(message: "malformed YAML: mapping keys must be scalars") }
                fields[k.string] = try json(from: value)
            }
            return .object(fields)
        case .alias:
            throw DocumentError(message: "YAML aliases are not supported")
        }
    }
}

/// The request body could not be decoded at all (malformed JSON or YAML).
public struct DocumentError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(message: String) { self.message = message }
    public var description: String { message }
}
