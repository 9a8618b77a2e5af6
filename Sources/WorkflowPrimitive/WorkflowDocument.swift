import Foundation
import Yams

/// Entry points for turning request bodies and files into validated definitions.
public enum WorkflowDocument {
    /// The document formats accepted for definitions.
    public enum Format: Sendable {
        case json
        case yaml
    }

    /// Decodes JSON or YAML text into a ``JSONValue``; throws ``DocumentError`` when the text is malformed, nests
    /// deeper than `maxDepth` or (YAML) expands to more than `limits.maxDocumentNodes` nodes through its aliases.
    public static func decode(
        _ data: Data,
        format: Format,
        maxDepth: Int? = nil,
        limits: WorkflowLimits = .default
    )
        throws(DocumentError) -> JSONValue
    {
        let value: JSONValue
        switch format {
        case .json:
            do {
                value = try JSONValue.parse(data)
            } catch {
                throw DocumentError(message: "malformed JSON: \(error)")
            }
        case .yaml:
            do {
                guard let text = String(data: data, encoding: .utf8) else { throw DocumentError(message: "YAML must be UTF-8") }
                // libyaml's composer nests one native frame per level: refuse deep documents before it sees them.
                guard Self.yamlNesting(text) <= (maxDepth ?? 512) else {
                    throw DocumentError(message: "YAML nested deeper than \(maxDepth ?? 512) levels")
                }
                guard let node = try Yams.compose(yaml: text) else { return .null }
                var budget = YAMLBudget(nodes: limits.maxDocumentNodes, depth: maxDepth ?? 512, maxNodes: limits.maxDocumentNodes)
                value = try Self.json(from: node, depth: 1, budget: &budget)
            } catch let error as DocumentError {
                throw error
            } catch {
                throw DocumentError(message: "malformed YAML: \(error)")
            }
        }
        if let maxDepth, value.nests(deeperThan: maxDepth) {
            throw DocumentError(message: "the document nests deeper than \(maxDepth) levels")
        }
        return value
    }

    private struct YAMLBudget {
        var nodes: Int
        let depth: Int
        let maxNodes: Int
    }

    /// An upper bound of how deep a YAML text nests: the deepest indentation in spaces plus flow brackets open at
    /// once. Cheap, conservative, and enough to keep a hostile document away from the recursive composer.
    static func yamlNesting(_ text: String) -> Int {
        var deepest = 0
        var flow = 0
        var indent = 0
        var atLineStart = true
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\n"):
                atLineStart = true
                indent = 0
            case UInt8(ascii: " ") where atLineStart:
                indent += 1
            case UInt8(ascii: "["), UInt8(ascii: "{"):
                atLineStart = false
                flow += 1
                deepest = max(deepest, flow + indent / 2)
            case UInt8(ascii: "]"), UInt8(ascii: "}"):
                atLineStart = false
                flow = max(0, flow - 1)
            case UInt8(ascii: "-") where atLineStart:
                indent += 1  // "- - - x" nests a sequence per dash
            default:
                if atLineStart { deepest = max(deepest, flow + indent / 2) }
                atLineStart = false
            }
        }
        return deepest
    }

    /// Validates a decoded document and compiles its plan, reporting every problem at once.
    public static func validate(
        _ document: JSONValue,
        limits: WorkflowLimits = .default
    ) throws(ValidationError)
        -> (WorkflowDefinition, WorkflowPlan)
    {
        var parser = DefinitionParser(limits: limits)
        let parsed = parser.parseDocument(document)
        var issues = parser.issues
        var plan: WorkflowPlan?
        if let parsed {
            do {
                plan = try WorkflowPlan(spec: parsed.spec)
                plan?.limits = limits
            } catch { issues += error.issues }
        }
        guard let parsed, let plan, issues.isEmpty else {
            throw ValidationError(issues: issues.isEmpty ? [ValidationIssue(pointer: .root, message: "is invalid")] : issues)
        }
        return (parsed, plan)
    }

    private static func json(from node: Node, depth: Int, budget: inout YAMLBudget) throws -> JSONValue {
        budget.nodes -= 1
        guard budget.nodes >= 0 else {
            throw DocumentError(message: "the YAML document expands to more than \(budget.maxNodes) nodes (aliases included)")
        }
        guard depth <= budget.depth else { throw DocumentError(message: "YAML nested deeper than \(budget.depth) levels") }
        switch node {
        case .scalar(let scalar):
            if scalar.style == .plain {
                if let _ = NSNull.construct(from: scalar) { return .null }
                if let b = Bool.construct(from: scalar) { return .bool(b) }
                if let i = Int.construct(from: scalar) { return .number(Double(i)) }
                if let d = Double.construct(from: scalar) {
                    guard d.isFinite else { throw DocumentError(message: "malformed YAML: number '\(scalar.string.prefix(32))' is out of range") }
                    return .number(d)
                }
            }
            return .string(scalar.string)
        case .sequence(let sequence):
            var items: [JSONValue] = []
            for item in sequence { items.append(try json(from: item, depth: depth + 1, budget: &budget)) }
            return .array(items)
        case .mapping(let mapping):
            var fields: [String: JSONValue] = [:]
            for (key, value) in mapping {
                guard case .scalar(let k) = key else { throw DocumentError(message: "malformed YAML: mapping keys must be scalars") }
                guard fields[k.string] == nil else { throw DocumentError(message: "malformed YAML: duplicate key '\(k.string.prefix(64))'") }
                fields[k.string] = try json(from: value, depth: depth + 1, budget: &budget)
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
