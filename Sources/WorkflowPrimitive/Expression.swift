/// A parsed expression of the workflow language (see docs/dsl.md for the grammar).
///
/// Expressions are pure: evaluating one reads only the ``ExpressionScope`` it is given.
public indirect enum Expression: Sendable, Hashable {
    case literal(JSONValue)
    case identifier(String)
    case member(Expression, String)
    case index(Expression, Expression)
    case array([Expression])
    case unary(UnaryOperator, Expression)
    case binary(BinaryOperator, Expression, Expression)
    case call(String, [Expression])

    public enum UnaryOperator: String, Sendable {
        case not = "!"
        case negate = "-"
    }

    public enum BinaryOperator: String, Sendable {
        case or = "||"
        case and = "&&"
        case equal = "=="
        case notEqual = "!="
        case less = "<"
        case lessOrEqual = "<="
        case greater = ">"
        case greaterOrEqual = ">="
        case `in`
        case add = "+"
        case subtract = "-"
        case multiply = "*"
        case divide = "/"
        case remainder = "%"
    }

    /// The names that may start a path: `input`, `steps`, `run` (and, inside loops, `item` and `index`).
    public static let rootNames: Set<String> = ["input", "steps", "run"]

    /// The functions the language knows, with their arity.
    public static let functions: [String: Int] = ["len": 1, "exists": 1, "lower": 1, "upper": 1]

    /// Longest expression source, in characters.
    public static let maximumLength = 4_096
    /// Most tokens in one expression.
    public static let maximumTokens = 1_000
    /// Deepest nesting of one expression's syntax tree (parentheses, operators, operands chained left to right).
    /// Evaluation recurses once per level, so this bound is what keeps any accepted expression off the stack's edge.
    public static let maximumDepth = 64

    /// Parses `source`; throws ``ExpressionError`` with the 1-based column of the problem.
    public static func parse(_ source: String) throws(ExpressionError) -> Expression {
        var parser = ExpressionParser(source: source)
        let expression = try parser.parseComplete()
        // Long left-to-right chains (a + b + c …) nest without recursing in the parser: measure the tree itself.
        guard expression.depth <= maximumDepth else {
            throw ExpressionError("expression nested deeper than \(maximumDepth) levels", column: 1)
        }
        return expression
    }

    /// The depth of the syntax tree, measured without recursion.
    var depth: Int {
        var deepest = 0
        var pending: [(Expression, Int)] = [(self, 1)]
        while let (node, level) = pending.popLast() {
            deepest = max(deepest, level)
            switch node {
            case .literal, .identifier: break
            case .member(let base, _): pending.append((base, level + 1))
            case .index(let base, let index): pending.append(contentsOf: [(base, level + 1), (index, level + 1)])
            case .array(let items), .call(_, let items): pending.append(contentsOf: items.map { ($0, level + 1) })
            case .unary(_, let operand): pending.append((operand, level + 1))
            case .binary(_, let lhs, let rhs): pending.append(contentsOf: [(lhs, level + 1), (rhs, level + 1)])
            }
        }
        return deepest
    }

    /// The root identifiers this expression reads (`input`, `steps`, …).
    public var rootIdentifiers: Set<String> {
        var out: Set<String> = []
        visit { if case .identifier(let name) = $0 { out.insert(name) } }
        return out
    }

    /// The step ids this expression reads through `steps.<id>` or `steps['<id>']`.
    public var referencedSteps: Set<String> {
        var out: Set<String> = []
        visit { node in
            switch node {
            case .member(.identifier("steps"), let id): out.insert(id)
            case .index(.identifier("steps"), .literal(.string(let id))): out.insert(id)
            default: break
            }
        }
        return out
    }

    private func visit(_ body: (Expression) -> Void) {
        body(self)
        switch self {
        case .literal, .identifier: break
        case .member(let base, _): base.visit(body)
        case .index(let base, let index):
            base.visit(body)
            index.visit(body)
        case .array(let items):
            for item in items { item.visit(body) }
        case .unary(_, let operand): operand.visit(body)
        case .binary(_, let lhs, let rhs):
            lhs.visit(body)
            rhs.visit(body)
        case .call(_, let args):
            for arg in args { arg.visit(body) }
        }
    }
}

/// A parse error: what is wrong and the 1-based column where it was found.
public struct ExpressionError: Error, Sendable, Hashable, CustomStringConvertible {
    public var message: String
    public var column: Int

    public init(_ message: String, column: Int) {
        self.message = message
        self.column = column
    }

    public var description: String { "\(message) at column \(column)" }
}

/// An evaluation error, such as comparing a string with a number or dividing by zero.
public struct EvaluationError: Error, Sendable, Hashable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// The values an expression can read, by root name.
public struct ExpressionScope: Sendable {
    public var roots: [String: JSONValue]

    public init(roots: [String: JSONValue]) { self.roots = roots }
}

extension Expression {
    /// Evaluates the expression. Missing paths are `null`; type errors throw ``EvaluationError``.
    public func evaluate(in scope: ExpressionScope) throws(EvaluationError) -> JSONValue {
        switch self {
        case .literal(let value):
            return value
        case .identifier(let name):
            return scope.roots[name] ?? .null
        case .member(let base, let name):
            return try base.evaluate(in: scope)[name] ?? .null
        case .index(let base, let indexExpression):
            let container = try base.evaluate(in: scope)
            let index = try indexExpression.evaluate(in: scope)
            switch (container, index) {
            case (.object(let fields), .string(let key)):
                return fields[key] ?? .null
            case (.array(let items), .number(let n)):
                guard n.rounded() == n else { throw EvaluationError("array index must be an integer, got \(n)") }
                guard let whole = Int(exactly: n) else { return .null }  // beyond any array's bounds
                let i = whole < 0 ? items.count + whole : whole
                return items.indices.contains(i) ? items[i] : .null
            case (.null, _):
                return .null
            default:
                throw EvaluationError("cannot index \(container.typeName) with \(index.typeName)")
            }
        case .array(let items):
            var values: [JSONValue] = []
            values.reserveCapacity(items.count)
            for item in items { values.append(try item.evaluate(in: scope)) }
            return .array(values)
        case .unary(.not, let operand):
            return .bool(!(try operand.evaluate(in: scope).isTruthy))
        case .unary(.negate, let operand):
            let value = try operand.evaluate(in: scope)
            guard case .number(let n) = value else { throw EvaluationError("cannot negate \(value.typeName)") }
            return .number(-n)
        case .binary(.and, let lhs, let rhs):
            let left = try lhs.evaluate(in: scope)
            return left.isTruthy ? try rhs.evaluate(in: scope) : left
        case .binary(.or, let lhs, let rhs):
            let left = try lhs.evaluate(in: scope)
            return left.isTruthy ? left : try rhs.evaluate(in: scope)
        case .binary(let op, let lhs, let rhs):
            return try Self.apply(op, try lhs.evaluate(in: scope), try rhs.evaluate(in: scope))
        case .call(let name, let args):
            var values: [JSONValue] = []
            for arg in args { values.append(try arg.evaluate(in: scope)) }
            return try Self.call(name, values)
        }
    }

    /// Longest string (in UTF-8 bytes) and array that `+` builds: repeated doubling must fail, not fill the memory.
    public static let maximumStringBytes = 1 << 20
    public static let maximumValueCount = 100_000

    private static func finite(_ n: Double) throws(EvaluationError) -> JSONValue {
        guard n.isFinite else { throw EvaluationError("number out of range") }
        return .number(n)
    }

    private static func apply(_ op: BinaryOperator, _ l: JSONValue, _ r: JSONValue) throws(EvaluationError) -> JSONValue {
        switch op {
        case .equal: return .bool(l == r)
        case .notEqual: return .bool(l != r)
        case .less, .lessOrEqual, .greater, .greaterOrEqual:
            let order: Int
            switch (l, r) {
            case (.number(let a), .number(let b)): order = a < b ? -1 : (a == b ? 0 : 1)
            case (.string(let a), .string(let b)): order = a < b ? -1 : (a == b ? 0 : 1)
            default: throw EvaluationError("cannot compare \(l.typeName) with \(r.typeName) using \(op.rawValue)")
            }
            switch op {
            case .less: return .bool(order < 0)
            case .lessOrEqual: return .bool(order <= 0)
            case .greater: return .bool(order > 0)
            default: return .bool(order >= 0)
            }
        case .in:
            switch r {
            case .array(let items): return .bool(items.contains(l))
            case .object(let fields):
                guard case .string(let key) = l else { throw EvaluationError("'in' on an object needs a string key, got \(l.typeName)") }
                return .bool(fields[key] != nil)
            case .string(let haystack):
                guard case .string(let needle) = l else { throw EvaluationError("'in' on a string needs a string, got \(l.typeName)") }
                return .bool(haystack.contains(needle))
            case .null: return .bool(false)
            default: throw EvaluationError("'in' needs an array, object or string on the right, got \(r.typeName)")
            }
        case .add:
            switch (l, r) {
            case (.number(let a), .number(let b)): return try finite(a + b)
            case (.array(let a), .array(let b)):
                guard a.count + b.count <= maximumValueCount else { throw EvaluationError("array longer than \(maximumValueCount) items") }
                return .array(a + b)
            case (.string, _), (_, .string):
                let text = l.interpolationText + r.interpolationText
                guard text.utf8.count <= maximumStringBytes else { throw EvaluationError("string longer than \(maximumStringBytes) bytes") }
                return .string(text)
            default: throw EvaluationError("cannot add \(l.typeName) and \(r.typeName)")
            }
        case .subtract, .multiply, .divide, .remainder:
            guard case .number(let a) = l, case .number(let b) = r else {
                throw EvaluationError("operator \(op.rawValue) needs numbers, got \(l.typeName) and \(r.typeName)")
            }
            switch op {
            case .subtract: return try finite(a - b)
            case .multiply: return try finite(a * b)
            case .divide:
                guard b != 0 else { throw EvaluationError("division by zero") }
                return try finite(a / b)
            default:
                guard b != 0 else { throw EvaluationError("remainder by zero") }
                return .number(a.truncatingRemainder(dividingBy: b))
            }
        case .and, .or:
            preconditionFailure("short-circuit operators are evaluated before apply")
        }
    }

    private static func call(_ name: String, _ args: [JSONValue]) throws(EvaluationError) -> JSONValue {
        switch name {
        case "exists":
            return .bool(!args[0].isNull)
        case "len":
            switch args[0] {
            case .string(let s): return .number(Double(s.count))
            case .array(let a): return .number(Double(a.count))
            case .object(let o): return .number(Double(o.count))
            case .null: return .number(0)
            default: throw EvaluationError("len() needs a string, array or object, got \(args[0].typeName)")
            }
        case "lower", "upper":
            guard case .string(let s) = args[0] else {
                if args[0].isNull { return .null }
                throw EvaluationError("\(name)() needs a string, got \(args[0].typeName)")
            }
            return .string(name == "lower" ? s.lowercased() : s.uppercased())
        default:
            throw EvaluationError("unknown function \(name)()")
        }
    }
}
