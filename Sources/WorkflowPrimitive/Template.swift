/// A JSON value with `${…}` templates compiled in, ready to render against a scope.
///
/// A string that is exactly one template (`"${input.amount}"`) renders to the value's own JSON type;
/// a template inside a longer string is interpolated as text. `$${` writes a literal `${`.
public indirect enum Template: Sendable, Hashable {
    case constant(JSONValue)
    case single(Expression)
    case interpolated([Part])
    case array([Template])
    case object([String: Template])

    public enum Part: Sendable, Hashable {
        case text(String)
        case expression(Expression)
    }

    /// Compiles every string in `value`; returns the template and the problems found, each with its pointer.
    public static func compile(_ value: JSONValue, at pointer: JSONPointer) -> (Template, [ValidationIssue]) {
        var issues: [ValidationIssue] = []
        let template = compile(value, at: pointer, issues: &issues)
        return (template, issues)
    }

    private static func compile(_ value: JSONValue, at pointer: JSONPointer, issues: inout [ValidationIssue]) -> Template {
        switch value {
        case .string(let s):
            guard s.contains("${") else { return .constant(value) }
            do {
                let parts = try parseParts(s)
                if parts.count == 1, case .expression(let e) = parts[0] { return .single(e) }
                if parts.allSatisfy({ if case .text = $0 { true } else { false } }) {
                    return .constant(.string(parts.map { if case .text(let t) = $0 { t } else { "" } }.joined()))
                }
                return .interpolated(parts)
            } catch {
                issues.append(ValidationIssue(pointer: pointer, message: "invalid template: \(error.description)"))
                return .constant(value)
            }
        case .array(let items):
            let compiled = items.enumerated().map { compile($1, at: pointer.appending($0), issues: &issues) }
            if compiled.allSatisfy({ if case .constant = $0 { true } else { false } }) { return .constant(value) }
            return .array(compiled)
        case .object(let fields):
            var compiled: [String: Template] = [:]
            var allConstant = true
            for (key, field) in fields {
                let t = compile(field, at: pointer.appending(key), issues: &issues)
                if case .constant = t {} else { allConstant = false }
                compiled[key] = t
            }
            return allConstant ? .constant(value) : .object(compiled)
        default:
            return .constant(value)
        }
    }

    /// Splits a string into text and `${…}` expressions. Column numbers in errors count from the string's start.
    static func parseParts(_ s: String) throws(ExpressionError) -> [Part] {
        let scalars = Array(s.unicodeScalars)
        var parts: [Part] = []
        var text = String.UnicodeScalarView()
        var i = 0
        while i < scalars.count {
            if scalars[i] == "$", i + 2 < scalars.count, scalars[i + 1] == "$", scalars[i + 2] == "{" {
                text.append(contentsOf: ["$", "{"])
                i += 3
                continue
            }
            if scalars[i] == "$", i + 1 < scalars.count, scalars[i + 1] == "{" {
                // Find the closing brace, skipping braces inside quoted strings.
                var j = i + 2
                var quote: Unicode.Scalar?
                while j < scalars.count {
                    let c = scalars[j]
                    if let q = quote {
                        if c == "\\" { j += 1 } else if c == q { quote = nil }
                    } else if c == "'" || c == "\"" {
                        quote = c
                    } else if c == "}" {
                        break
                    }
                    j += 1
                }
                guard j < scalars.count else { throw ExpressionError("unterminated '${'", column: i + 1) }
                let source = String(String.UnicodeScalarView(scalars[(i + 2)..<j]))
                do {
                    let expression = try Expression.parse(source)
                    if !text.isEmpty {
                        parts.append(.text(String(text)))
                        text = String.UnicodeScalarView()
                    }
                    parts.append(.expression(expression))
                } catch {
                    throw ExpressionError(error.message, column: i + 2 + error.column)
                }
                i = j + 1
                continue
            }
            text.append(scalars[i])
            i += 1
        }
        if !text.isEmpty { parts.append(.text(String(text))) }
        return parts
    }

    /// Renders the template; throws when an embedded expression fails to evaluate.
    public func render(in scope: ExpressionScope) throws(EvaluationError) -> JSONValue {
        switch self {
        case .constant(let value):
            return value
        case .single(let expression):
            return try expression.evaluate(in: scope)
        case .interpolated(let parts):
            var out = ""
            for part in parts {
                switch part {
                case .text(let t): out += t
                case .expression(let e): out += try e.evaluate(in: scope).interpolationText
                }
            }
            return .string(out)
        case .array(let items):
            var values: [JSONValue] = []
            values.reserveCapacity(items.count)
            for item in items { values.append(try item.render(in: scope)) }
            return .array(values)
        case .object(let fields):
            var values: [String: JSONValue] = [:]
            values.reserveCapacity(fields.count)
            for (key, field) in fields { values[key] = try field.render(in: scope) }
            return .object(values)
        }
    }

    /// Every expression inside the template.
    public var expressions: [Expression] {
        switch self {
        case .constant: []
        case .single(let e): [e]
        case .interpolated(let parts): parts.compactMap { if case .expression(let e) = $0 { e } else { nil } }
        case .array(let items): items.flatMap(\.expressions)
        case .object(let fields): fields.values.flatMap(\.expressions)
        }
    }
}
