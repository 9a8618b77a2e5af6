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
        /// `${secrets.NAME}`: rendered as `***` into what is stored, and as the secret's value only when the step
        /// executes (``secretFields``), so the value never reaches the database.
        case secret(String)
    }

    /// What a secret renders as wherever it could be stored or shown.
    public static let secretMask = "***"

    /// A secret's name: a letter or `_`, then up to 63 letters, digits or `_`.
    public static func isSecretName(_ name: String) -> Bool {
        guard let first = name.utf8.first, name.utf8.count <= 64 else { return false }
        func letter(_ c: UInt8) -> Bool { (0x41...0x5A).contains(c) || (0x61...0x7A).contains(c) || c == 0x5F }
        return letter(first) && name.utf8.allSatisfy { letter($0) || (0x30...0x39).contains($0) }
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
                let secrets = parts.filter { if case .secret = $0 { true } else { false } }
                if !secrets.isEmpty, parts.contains(where: { if case .expression = $0 { true } else { false } }) {
                    // Only text may sit beside a secret: a value from the run could otherwise smuggle in a reference.
                    issues.append(ValidationIssue(pointer: pointer, message: "a string that uses ${secrets.…} may combine it only with plain text"))
                }
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
                do throws(ExpressionError) {
                    let expression = try Expression.parse(source)
                    if !text.isEmpty {
                        parts.append(.text(String(text)))
                        text = String.UnicodeScalarView()
                    }
                    if case .member(.identifier("secrets"), let name) = expression {
                        guard isSecretName(name) else {
                            throw ExpressionError("a secret's name is a letter or '_' and up to 63 letters, digits or '_'", column: 1)
                        }
                        parts.append(.secret(name))
                    } else {
                        parts.append(.expression(expression))
                    }
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
                case .secret: out += Self.secretMask
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

    /// The strings that use secrets, by their place in the rendered value, with their parts (text and secrets only).
    public var secretFields: [(path: [String], parts: [Part])] {
        switch self {
        case .constant, .single: []
        case .interpolated(let parts): parts.contains { if case .secret = $0 { true } else { false } } ? [([], parts)] : []
        case .array(let items): items.enumerated().flatMap { i, item in item.secretFields.map { ([String(i)] + $0.path, $0.parts) } }
        case .object(let fields): fields.flatMap { key, field in field.secretFields.map { ([key] + $0.path, $0.parts) } }
        }
    }

    /// Whether any string of the template uses a secret (checked without allocating, on every step execution).
    public var usesSecrets: Bool {
        switch self {
        case .constant, .single: false
        case .interpolated(let parts): parts.contains { if case .secret = $0 { true } else { false } }
        case .array(let items): items.contains(where: \.usesSecrets)
        case .object(let fields): fields.values.contains(where: \.usesSecrets)
        }
    }

    /// The names of the secrets the template uses.
    public var secretNames: Set<String> {
        Set(secretFields.flatMap { $0.parts.compactMap { if case .secret(let name) = $0 { name } else { nil } } })
    }
}

extension JSONValue {
    /// This value with the string at `path` (object keys and array indices) replaced; unchanged when there is none.
    public func replacing(at path: ArraySlice<String>, with value: JSONValue) -> JSONValue {
        guard let key = path.first else { return value }
        switch self {
        case .object(var fields):
            guard let child = fields[key] else { return self }
            fields[key] = child.replacing(at: path.dropFirst(), with: value)
            return .object(fields)
        case .array(var items):
            guard let i = Int(key), items.indices.contains(i) else { return self }
            items[i] = items[i].replacing(at: path.dropFirst(), with: value)
            return .array(items)
        default:
            return self
        }
    }

    /// This value with every occurrence of each of `secrets` inside its strings (and object keys) replaced by `***`.
    public func masking(_ secrets: [String]) -> JSONValue {
        let secrets = secrets.filter { !$0.isEmpty }
        guard !secrets.isEmpty else { return self }
        func mask(_ s: String) -> String {
            var s = s
            for secret in secrets where s.contains(secret) { s = s.replacingOccurrences(of: secret, with: Template.secretMask) }
            return s
        }
        switch self {
        case .string(let s): return .string(mask(s))
        case .array(let items): return .array(items.map { $0.masking(secrets) })
        case .object(let fields):
            return .object(Dictionary(fields.map { (mask($0.key), $0.value.masking(secrets)) }, uniquingKeysWith: { a, _ in a }))
        default: return self
        }
    }
}
