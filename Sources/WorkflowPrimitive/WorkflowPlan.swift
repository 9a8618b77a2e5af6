/// A definition compiled for execution: steps in topological order with their edges,
/// parsed `when` expressions and compiled config templates. Immutable, so it can be cached forever.
public struct WorkflowPlan: Sendable {
    public struct Step: Sendable {
        public let index: Int
        public let id: String
        public let type: StepType
        public let dependencies: [Int]
        public let dependents: [Int]
        public let when: Expression?
        public let config: Template
        public let retry: RetryPolicy
        public let timeoutMs: Int?
        /// The steps whose outputs or statuses this step's `when` and config read.
        public let reads: [Int]
    }

    /// Steps in the order they were declared; `index` is the position here.
    public let steps: [Step]
    public let stepIndex: [String: Int]
    /// Declaration-order indices sorted so that every step comes after its dependencies.
    public let topologicalOrder: [Int]
    public let output: Template?
    /// Steps nothing depends on: their outputs form the run's output when no `output` template is given.
    public let sinks: [Int]
    public let timeoutMs: Int?

    /// Compiles and validates the DAG; throws ``ValidationError`` listing every problem.
    public init(spec: WorkflowSpec, pointer: JSONPointer = JSONPointer.root.appending("definition")) throws(ValidationError) {
        var issues: [ValidationIssue] = []
        let stepsPointer = pointer.appending("steps")
        var index: [String: Int] = [:]
        for (i, step) in spec.steps.enumerated() {
            if let first = index[step.id] {
                issues.append(ValidationIssue(pointer: stepsPointer.appending(i).appending("id"),
                                              message: "duplicate step id '\(step.id)' (first used by step \(first))"))
            } else {
                index[step.id] = i
            }
        }

        var dependencies: [[Int]] = Array(repeating: [], count: spec.steps.count)
        for (i, step) in spec.steps.enumerated() {
            var seen: Set<Int> = []
            for (j, dep) in step.dependsOn.enumerated() {
                let at = stepsPointer.appending(i).appending("depends_on").appending(j)
                guard let d = index[dep] else {
                    issues.append(ValidationIssue(pointer: at, message: "unknown step '\(dep)'"))
                    continue
                }
                if d == i {
                    issues.append(ValidationIssue(pointer: at, message: "step '\(step.id)' depends on itself"))
                } else if seen.insert(d).inserted {
                    dependencies[i].append(d)
                }
            }
        }

        let order = Self.topologicalSort(dependencies)
        if order.count < spec.steps.count {
            let cycle = Self.findCycle(dependencies, excluding: Set(order))
            let names = cycle.map { spec.steps[$0].id } + [spec.steps[cycle[0]].id]
            issues.append(ValidationIssue(pointer: stepsPointer.appending(cycle[0]).appending("depends_on"),
                                          message: "dependency cycle: \(names.joined(separator: " -> "))"))
        }
        let ancestors = Self.ancestors(dependencies, order: order)

        var steps: [Step] = []
        for (i, step) in spec.steps.enumerated() {
            let at = stepsPointer.appending(i)
            var expressions: [Expression] = []
            var when: Expression?
            if let source = step.when {
                do {
                    when = try Expression.parse(source)
                    expressions.append(when!)
                } catch {
                    issues.append(ValidationIssue(pointer: at.appending("when"), message: "invalid expression: \(error.description)"))
                }
            }
            let (config, configIssues) = Template.compile(step.config, at: at.appending("config"))
            issues += configIssues
            expressions += config.expressions
            var reads: Set<Int> = []
            for referenced in Self.check(expressions, at: at, issues: &issues) {
                guard let r = index[referenced] else {
                    issues.append(ValidationIssue(pointer: at, message: "reads unknown step '\(referenced)'"))
                    continue
                }
                if order.count == spec.steps.count, !ancestors[i].contains(r) {
                    issues.append(ValidationIssue(
                        pointer: at,
                        message: "reads step '\(referenced)', which is not among its dependencies (add it to depends_on)"))
                }
                reads.insert(r)
            }
            steps.append(Step(index: i, id: step.id, type: step.type, dependencies: dependencies[i], dependents: [],
                              when: when, config: config, retry: step.retry, timeoutMs: step.timeoutMs,
                              reads: reads.sorted()))
        }

        var output: Template?
        if let outputValue = spec.output {
            let (template, outputIssues) = Template.compile(outputValue, at: pointer.appending("output"))
            issues += outputIssues
            for referenced in Self.check(template.expressions, at: pointer.appending("output"), issues: &issues)
            where index[referenced] == nil {
                issues.append(ValidationIssue(pointer: pointer.appending("output"), message: "reads unknown step '\(referenced)'"))
            }
            output = template
        }

        guard issues.isEmpty else { throw ValidationError(issues: issues) }

        var dependents: [[Int]] = Array(repeating: [], count: steps.count)
        for step in steps { for d in step.dependencies { dependents[d].append(step.index) } }
        self.steps = steps.map {
            Step(index: $0.index, id: $0.id, type: $0.type, dependencies: $0.dependencies, dependents: dependents[$0.index],
                 when: $0.when, config: $0.config, retry: $0.retry, timeoutMs: $0.timeoutMs, reads: $0.reads)
        }
        self.stepIndex = index
        self.topologicalOrder = order
        self.output = output
        self.sinks = dependents.indices.filter { dependents[$0].isEmpty }
        self.timeoutMs = spec.timeoutMs
    }

    /// Checks the names expressions start from, and returns the step ids they read.
    private static func check(_ expressions: [Expression], at pointer: JSONPointer, issues: inout [ValidationIssue]) -> Set<String> {
        var referenced: Set<String> = []
        for e in expressions {
            for name in e.rootIdentifiers.sorted() where !Expression.rootNames.contains(name) {
                issues.append(ValidationIssue(
                    pointer: pointer,
                    message: "unknown name '\(name)' in expression; expected one of \(Expression.rootNames.sorted().joined(separator: ", "))"))
            }
            referenced.formUnion(e.referencedSteps)
        }
        return referenced
    }

    /// Kahn's algorithm; ties keep declaration order so plans are deterministic.
    private static func topologicalSort(_ dependencies: [[Int]]) -> [Int] {
        var remaining = dependencies.map(\.count)
        var dependents: [[Int]] = Array(repeating: [], count: dependencies.count)
        for (i, deps) in dependencies.enumerated() { for d in deps { dependents[d].append(i) } }
        var ready = remaining.indices.filter { remaining[$0] == 0 }
        var order: [Int] = []
        var head = 0
        while head < ready.count {
            let n = ready[head]
            head += 1
            order.append(n)
            for m in dependents[n] {
                remaining[m] -= 1
                if remaining[m] == 0 { ready.append(m) }
            }
        }
        return order
    }

    /// A cycle among the nodes left over by the topological sort, in dependency order.
    private static func findCycle(_ dependencies: [[Int]], excluding done: Set<Int>) -> [Int] {
        let start = dependencies.indices.first { !done.contains($0) }!
        var path: [Int] = []
        var position: [Int: Int] = [:]
        var node = start
        // Every leftover node has a leftover dependency, so walking them must revisit a node.
        while position[node] == nil {
            position[node] = path.count
            path.append(node)
            node = dependencies[node].first { !done.contains($0) }!
        }
        return Array(path[position[node]!...]).reversed()
    }

    private static func ancestors(_ dependencies: [[Int]], order: [Int]) -> [Set<Int>] {
        var result: [Set<Int>] = Array(repeating: [], count: dependencies.count)
        for n in order {
            for d in dependencies[n] {
                result[n].insert(d)
                result[n].formUnion(result[d])
            }
        }
        return result
    }
}
