import Testing
import WorkflowPrimitive

@Suite struct ExpressionTests {
    let scope = ExpressionScope(roots: [
        "input": ["amount": 15000, "name": "Ada", "tags": ["vip", "new"], "nested": ["deep": ["x": true]]],
        "steps": ["check": ["status": "SUCCESS", "output": ["status": 200, "score": 0.75]]],
        "run": ["id": "r-1"],
    ])

    func eval(_ source: String) throws -> JSONValue {
        try Expression.parse(source).evaluate(in: scope)
    }

    @Test(
        arguments: [
            ("1 + 2 * 3", JSONValue.number(7)),
            ("(1 + 2) * 3", 9),
            ("10 - 4 - 3", 3),
            ("7 % 4", 3),
            ("-2 * 3", -6),
            ("1 < 2 && 2 < 3", true),
            ("1 < 2 && 3 < 2", false),
            ("false || 'x'", "x"),
            ("!true || !false", true),
            ("1 == 1.0", true),
            ("'a' != \"a\"", false),
            ("input.amount > 10000", true),
            ("input.amount >= 15000 && input.name == 'Ada'", true),
            ("steps.check.output.status == 200", true),
            ("steps.check.status == 'SUCCESS'", true),
            ("steps['check'].output['score'] * 100", 75),
            ("'vip' in input.tags", true),
            ("'old' in input.tags", false),
            ("'name' in input", true),
            ("'da' in input.name", true),
            ("3 in [1, 2, 3]", true),
            ("len(input.tags)", 2),
            ("len(input.name) + 1", 4),
            ("exists(input.missing)", false),
            ("exists(input.nested.deep.x)", true),
            ("upper(input.name) + lower('X')", "ADAx"),
            ("input.missing.deeper", nil),
            ("input.tags[0]", "vip"),
            ("input.tags[-1]", "new"),
            ("run.id", "r-1"),
            ("'n=' + 2", "n=2"),
            ("1 + 2 == 3 && !(2 > 3)", true),
        ] as [(String, JSONValue)]
    )
    func evaluates(_ source: String, _ expected: JSONValue) throws {
        #expect(try eval(source) == expected)
    }

    @Test(arguments: [
        ("", "empty expression", 1),
        ("1 +", "expected a value but found end of expression", 4),
        ("(1 + 2", "expected ')' but found end of expression", 7),
        ("a = 1", "unexpected '=' (use '==' to compare)", 3),
        ("a & b", "unexpected '&' (use '&&')", 3),
        ("'open", "unterminated string", 1),
        ("1 2", "unexpected number 2.0", 3),
        ("nosuch(1)", "unknown function 'nosuch'", 1),
        ("len(1, 2)", "len() takes 1 argument(s), got 2", 1),
        ("input.", "expected a field name after '.'", 7),
        ("#", "unexpected character '#'", 1),
    ])
    func reportsParseErrorsWithPosition(_ source: String, _ message: String, _ column: Int) {
        #expect(throws: ExpressionError(message, column: column)) { try Expression.parse(source) }
    }

    @Test func typeErrorsAreReported() {
        #expect(throws: EvaluationError("cannot compare string with number using <")) { try eval("'a' < 1") }
        #expect(throws: EvaluationError("division by zero")) { try eval("1 / 0") }
        #expect(throws: EvaluationError("operator * needs numbers, got string and number")) { try eval("'a' * 2") }
    }

    @Test func findsReferencedSteps() throws {
        let e = try Expression.parse("steps.a.output.x > 1 && steps['b'].status == 'SUCCESS' || input.steps.c")
        #expect(e.referencedSteps == ["a", "b"])
        #expect(e.rootIdentifiers == ["steps", "input"])
    }
}

@Suite struct TemplateTests {
    let scope = ExpressionScope(roots: ["input": ["n": 5, "customer": ["name": "Ada"], "list": [1, 2]]])

    func render(_ value: JSONValue) throws -> JSONValue {
        let (template, issues) = Template.compile(value, at: .root)
        #expect(issues.isEmpty)
        return try template.render(in: scope)
    }

    @Test func singleTemplateKeepsItsType() throws {
        #expect(try render("${input.n}") == 5)
        #expect(try render("${input.customer}") == ["name": "Ada"])
        #expect(try render("${input.list}") == [1, 2])
        #expect(try render("${ input.missing }") == nil)
    }

    @Test func embeddedTemplatesInterpolateAsText() throws {
        #expect(try render("n=${input.n}!") == "n=5!")
        #expect(try render("${input.customer.name} has ${input.list}") == "Ada has [1,2]")
        #expect(try render("cost: $${input.n}") == "cost: ${input.n}")
        #expect(try render("${'}'}") == "}")
    }

    @Test func rendersNestedStructures() throws {
        #expect(try render(["a": ["b": "${input.n * 2}"], "c": ["x${input.n}", 1]]) == ["a": ["b": 10], "c": ["x5", 1]])
    }

    @Test func reportsTemplateErrorsWithPointerAndColumn() {
        let (_, issues) = Template.compile(["body": ["x": "ab ${input.n +}"]], at: JSONPointer(tokens: ["config"]))
        #expect(
            issues == [
                ValidationIssue(
                    pointer: JSONPointer(tokens: ["config", "body", "x"]),
                    message: "invalid template: expected a value but found end of expression at column 15"
                )
            ]
        )
        let (_, unterminated) = Template.compile("${input.n", at: .root)
        #expect(unterminated.first?.message == "invalid template: unterminated '${' at column 1")
    }
}
