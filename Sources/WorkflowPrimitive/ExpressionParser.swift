/// A precedence-climbing parser over a small hand-written lexer.
///
/// Precedence, lowest first: `||`, `&&`, `== !=`, `< <= > >= in`, `+ -`, `* / %`, unary `! -`,
/// then postfix `.name`, `[index]` and calls.
struct ExpressionParser {
    private enum Token: Equatable {
        case number(Double)
        case string(String)
        case identifier(String)
        case symbol(String)
        case end
    }

    private let scalars: [Unicode.Scalar]
    private var offset = 0
    private var token: Token = .end
    private var tokenColumn = 1
    /// Tokens read so far and subexpressions open now: both bounded, so no input can exhaust the stack.
    private var tokenCount = 0
    private var nesting = 0

    init(source: String) {
        scalars = Array(source.unicodeScalars)
    }

    mutating func parseComplete() throws(ExpressionError) -> Expression {
        guard scalars.count <= Expression.maximumLength else {
            throw ExpressionError("expression longer than \(Expression.maximumLength) characters", column: 1)
        }
        try advance()
        if token == .end { throw ExpressionError("empty expression", column: tokenColumn) }
        let expression = try parseBinary(minimumPrecedence: 1)
        guard token == .end else { throw ExpressionError("unexpected \(describe(token))", column: tokenColumn) }
        return expression
    }

    private static let precedence: [String: (Int, Expression.BinaryOperator)] = [
        "||": (1, .or), "&&": (2, .and),
        "==": (3, .equal), "!=": (3, .notEqual),
        "<": (4, .less), "<=": (4, .lessOrEqual), ">": (4, .greater), ">=": (4, .greaterOrEqual), "in": (4, .in),
        "+": (5, .add), "-": (5, .subtract),
        "*": (6, .multiply), "/": (6, .divide), "%": (6, .remainder),
    ]

    private func binaryOperator() -> (Int, Expression.BinaryOperator)? {
        switch token {
        case .symbol(let s): Self.precedence[s]
        case .identifier("in"): Self.precedence["in"]
        default: nil
        }
    }

    private mutating func enter() throws(ExpressionError) {
        nesting += 1
        guard nesting <= Expression.maximumDepth else {
            throw ExpressionError("expression nested deeper than \(Expression.maximumDepth) levels", column: tokenColumn)
        }
    }

    private mutating func parseBinary(minimumPrecedence: Int) throws(ExpressionError) -> Expression {
        try enter()
        defer { nesting -= 1 }
        var lhs = try parseUnary()
        while let (precedence, op) = binaryOperator(), precedence >= minimumPrecedence {
            try advance()
            let rhs = try parseBinary(minimumPrecedence: precedence + 1)
            lhs = .binary(op, lhs, rhs)
        }
        return lhs
    }

    private mutating func parseUnary() throws(ExpressionError) -> Expression {
        if token == .symbol("!") || token == .symbol("-") {
            let op: Expression.UnaryOperator = token == .symbol("!") ? .not : .negate
            try enter()
            defer { nesting -= 1 }
            try advance()
            return .unary(op, try parseUnary())
        }
        return try parsePostfix(try parsePrimary())
    }

    private mutating func parsePrimary() throws(ExpressionError) -> Expression {
        let column = tokenColumn
        switch token {
        case .number(let n):
            try advance()
            return .literal(.number(n))
        case .string(let s):
            try advance()
            return .literal(.string(s))
        case .identifier("true"):
            try advance()
            return .literal(.bool(true))
        case .identifier("false"):
            try advance()
            return .literal(.bool(false))
        case .identifier("null"):
            try advance()
            return .literal(.null)
        case .identifier(let name):
            try advance()
            if token == .symbol("(") {
                guard let arity = Expression.functions[name] else {
                    throw ExpressionError("unknown function '\(name)'", column: column)
                }
                try advance()
                var args: [Expression] = []
                if token != .symbol(")") {
                    args.append(try parseBinary(minimumPrecedence: 1))
                    while token == .symbol(",") {
                        try advance()
                        args.append(try parseBinary(minimumPrecedence: 1))
                    }
                }
                try expect(")")
                guard args.count == arity else {
                    throw ExpressionError("\(name)() takes \(arity) argument(s), got \(args.count)", column: column)
                }
                return .call(name, args)
            }
            return .identifier(name)
        case .symbol("("):
            try advance()
            let inner = try parseBinary(minimumPrecedence: 1)
            try expect(")")
            return inner
        case .symbol("["):
            try advance()
            var items: [Expression] = []
            if token != .symbol("]") {
                items.append(try parseBinary(minimumPrecedence: 1))
                while token == .symbol(",") {
                    try advance()
                    items.append(try parseBinary(minimumPrecedence: 1))
                }
            }
            try expect("]")
            return .array(items)
        default:
            throw ExpressionError("expected a value but found \(describe(token))", column: column)
        }
    }

    private mutating func parsePostfix(_ base: Expression) throws(ExpressionError) -> Expression {
        var expression = base
        while true {
            if token == .symbol(".") {
                try advance()
                guard case .identifier(let name) = token else {
                    throw ExpressionError("expected a field name after '.'", column: tokenColumn)
                }
                try advance()
                expression = .member(expression, name)
            } else if token == .symbol("[") {
                try advance()
                let index = try parseBinary(minimumPrecedence: 1)
                try expect("]")
                expression = .index(expression, index)
            } else {
                return expression
            }
        }
    }

    private mutating func expect(_ symbol: String) throws(ExpressionError) {
        guard token == .symbol(symbol) else {
            throw ExpressionError("expected '\(symbol)' but found \(describe(token))", column: tokenColumn)
        }
        try advance()
    }

    private func describe(_ token: Token) -> String {
        switch token {
        case .number(let n): "number \(n)"
        case .string: "a string"
        case .identifier(let name): "'\(name)'"
        case .symbol(let s): "'\(s)'"
        case .end: "end of expression"
        }
    }

    // MARK: lexer

    private mutating func advance() throws(ExpressionError) {
        tokenCount += 1
        guard tokenCount <= Expression.maximumTokens else {
            throw ExpressionError("expression has more than \(Expression.maximumTokens) tokens", column: offset + 1)
        }
        while offset < scalars.count, scalars[offset].properties.isWhitespace { offset += 1 }
        tokenColumn = offset + 1
        guard offset < scalars.count else {
            token = .end
            return
        }
        let c = scalars[offset]
        if c.properties.numericType != nil, ("0"..."9").contains(c) {
            token = .number(try lexNumber())
        } else if c == "\"" || c == "'" {
            token = .string(try lexString(quote: c))
        } else if c == "_" || c.properties.isAlphabetic {
            let start = offset
            while offset < scalars.count,
                scalars[offset] == "_" || scalars[offset].properties.isAlphabetic || ("0"..."9").contains(scalars[offset])
            {
                offset += 1
            }
            token = .identifier(String(String.UnicodeScalarView(scalars[start..<offset])))
        } else {
            let two = offset + 1 < scalars.count ? String(String.UnicodeScalarView([c, scalars[offset + 1]])) : ""
            if ["==", "!=", "<=", ">=", "&&", "||"].contains(two) {
                offset += 2
                token = .symbol(two)
            } else if "+-*/%<>!().[],".unicodeScalars.contains(c) {
                offset += 1
                token = .symbol(String(c))
            } else if c == "=" {
                throw ExpressionError("unexpected '=' (use '==' to compare)", column: tokenColumn)
            } else if c == "&" || c == "|" {
                throw ExpressionError("unexpected '\(c)' (use '\(c)\(c)')", column: tokenColumn)
            } else {
                throw ExpressionError("unexpected character '\(c)'", column: tokenColumn)
            }
        }
    }

    private mutating func lexNumber() throws(ExpressionError) -> Double {
        let start = offset
        func digits() { while offset < scalars.count, ("0"..."9").contains(scalars[offset]) { offset += 1 } }
        digits()
        if offset + 1 < scalars.count, scalars[offset] == ".", ("0"..."9").contains(scalars[offset + 1]) {
            offset += 1
            digits()
        }
        if offset < scalars.count, scalars[offset] == "e" || scalars[offset] == "E" {
            offset += 1
            if offset < scalars.count, scalars[offset] == "+" || scalars[offset] == "-" { offset += 1 }
            digits()
        }
        let text = String(String.UnicodeScalarView(scalars[start..<offset]))
        guard let value = Double(text) else { throw ExpressionError("malformed number '\(text)'", column: start + 1) }
        guard value.isFinite else { throw ExpressionError("number '\(text.prefix(32))' is out of range", column: start + 1) }
        return value
    }

    private mutating func lexString(quote: Unicode.Scalar) throws(ExpressionError) -> String {
        let start = offset
        offset += 1
        var out = String.UnicodeScalarView()
        while offset < scalars.count {
            let c = scalars[offset]
            if c == quote {
                offset += 1
                return String(out)
            }
            if c == "\\", offset + 1 < scalars.count {
                let next = scalars[offset + 1]
                switch next {
                case "n": out.append("\n")
                case "t": out.append("\t")
                default: out.append(next)
                }
                offset += 2
                continue
            }
            out.append(c)
            offset += 1
        }
        throw ExpressionError("unterminated string", column: start + 1)
    }
}
