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
        public var continueOnError: Bool = false
        /// The step that undoes this one (`<id>.compensate`).
        public var compensation: StepBox? = nil
        /// For a `switch`: each case's condition and the steps it leads to, then the default branch.
        public var switchCases: [(when: Expression, next: [String])] = []
        public var switchDefault: [String] = []
        /// For a `foreach`: the plan of its nested steps, run once per item.
        public var body: PlanBox? = nil

        /// The steps a `switch` names in its branches other than `taken` (an index into the cases, or nil for default).
        public func untakenTargets(taken: Int?) -> Set<String> {
            let chosen = Set(taken.map { switchCases[$0].next } ?? switchDefault)
            var all = Set(switchDefault)
            for c in switchCases { all.formUnion(c.next) }
            return all.subtracting(chosen)
        }
    }

    /// Where a plan runs: a workflow, or the nested steps of a `foreach` (which also see `item` and `index`).
    public enum Context: Sendable {
        case workflow
        case foreachBody

        var rootNames: Set<String> {
            switch self {
            case .workflow: Expression.rootNames
            case .foreachBody: ["item", "index", "input", "steps", "run"]
            }
        }
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
    /// Run once when the run fails, after compensation (id `on_failure`).
    public let onFailure: Step?
    public let context: Context
    /// Whether any expression of this plan reads `input` (a `foreach` copies it into its items only then).
    public let readsInput: Bool
    /// The bounds rendered configs and step results are held to (set by whoever compiled the plan).
    public var limits: WorkflowLimits = .default

    /// The executable step with this id: a step of the DAG, a compensation (`<id>.compensate`) or `on_failure`.
    public func step(for id: String) -> Step? { step(for: StepRef(id)) }

    /// The executable step `ref` names.
    public func step(for ref: StepRef) -> Step? {
        switch ref {
        case .step(let id): stepIndex[id].map { steps[$0] }
        case .compensation(let of): stepIndex[of].flatMap { steps[$0].compensation?.step }
        case .onFailure: onFailure
        }
    }

    /// The plan of the nested steps at `path` (`foreach` step ids joined by `/`); this plan for an empty path.
    public func body(at path: String?) -> WorkflowPlan? {
        guard let path, !path.isEmpty else { return self }
        var plan = self
        for id in path.split(separator: "/") {
            guard var next = plan.stepIndex[String(id)].flatMap({ plan.steps[$0].body?.plan }) else { return nil }
            next.limits = limits
            plan = next
        }
        return plan
    }

    /// Compiles and validates the DAG; throws ``ValidationError`` listing every problem.
    public init(
        spec: WorkflowSpec,
        pointer: JSONPointer = JSONPointer.root.appending("definition"),
        context: Context = .workflow
    ) throws(ValidationError) {
        var issues: [ValidationIssue] = []
        let roots = context.rootNames
        let stepsPointer = pointer.appending("steps")
        var index: [String: Int] = [:]
        for (i, step) in spec.steps.enumerated() {
            if let first = index[step.id] {
                issues.append(
                    ValidationIssue(
                        pointer: stepsPointer.appending(i).appending("id"),
                        message: "duplicate step id '\(step.id)' (first used by step \(first))"
                    )
                )
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
            issues.append(
                ValidationIssue(
                    pointer: stepsPointer.appending(cycle[0]).appending("depends_on"),
                    message: "dependency cycle: \(names.joined(separator: " -> "))"
                )
            )
        }
        let ancestors = Self.ancestors(dependencies, order: order)

        var steps: [Step] = []
        var readsInput = false
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
            // A foreach's nested steps are compiled into their own plan; a switch's conditions are expressions.
            var configValue = step.config
            if step.type == .foreach, case .object(var fields) = configValue {
                fields["steps"] = nil
                configValue = .object(fields)
            }
            let (config, configIssues) = Template.compile(configValue, at: at.appending("config"))
            issues += configIssues
            expressions += config.expressions
            var switchCases: [(when: Expression, next: [String])] = []
            var switchDefault: [String] = []
            if step.type == .switch {
                for (c, item) in (step.config["cases"]?.arrayValue ?? []).enumerated() {
                    guard let source = item["when"]?.stringValue else { continue }
                    let next = (item["next"]?.arrayValue ?? []).compactMap(\.stringValue)
                    do {
                        let e = try Expression.parse(source)
                        expressions.append(e)
                        switchCases.append((e, next))
                    } catch {
                        issues.append(
                            ValidationIssue(
                                pointer: at.appending("config").appending("cases").appending(c).appending("when"),
                                message: "invalid expression: \(error.description)"
                            )
                        )
                    }
                }
                switchDefault = (step.config["default"]?.arrayValue ?? []).compactMap(\.stringValue)
            }
            var body: PlanBox?
            if let nested = step.body {
                do {
                    body = PlanBox(
                        try WorkflowPlan(
                            spec: WorkflowSpec(steps: nested),
                            pointer: at.appending("config"),
                            context: .foreachBody
                        )
                    )
                } catch {
                    issues += error.issues
                }
            }
            var compensation: StepBox?
            if let attached = step.compensate?.step {
                compensation = Self.attached(attached, at: at.appending("compensate"), index: index, roots: roots, issues: &issues)
                    .map(StepBox.init)
            }
            readsInput = readsInput || expressions.contains { $0.rootIdentifiers.contains("input") }
            var reads: Set<Int> = []
            for referenced in Self.check(expressions, at: at, roots: roots, issues: &issues) {
                guard let r = index[referenced] else {
                    issues.append(ValidationIssue(pointer: at, message: "reads unknown step '\(referenced)'"))
                    continue
                }
                if order.count == spec.steps.count, !ancestors[i].contains(r) {
                    issues.append(
                        ValidationIssue(
                            pointer: at,
                            message: "reads step '\(referenced)', which is not among its dependencies (add it to depends_on)"
                        )
                    )
                }
                reads.insert(r)
            }
            var planned = Step(
                index: i,
                id: step.id,
                type: step.type,
                dependencies: dependencies[i],
                dependents: [],
                when: when,
                config: config,
                retry: step.retry,
                timeoutMs: step.timeoutMs,
                reads: reads.sorted()
            )
            planned.continueOnError = step.continueOnError
            planned.compensation = compensation
            planned.switchCases = switchCases
            planned.switchDefault = switchDefault
            planned.body = body
            steps.append(planned)
        }

        // A switch's branches name steps that depend on it: those are the steps it can skip.
        for (i, step) in steps.enumerated() where step.type == .switch {
            let branches =
                step.switchCases.enumerated().map { c, branch in
                    (branch.next, stepsPointer.appending(i).appending("config").appending("cases").appending(c).appending("next"))
                } + [(step.switchDefault, stepsPointer.appending(i).appending("config").appending("default"))]
            for (targets, at) in branches {
                for (j, target) in targets.enumerated() {
                    guard let t = index[target] else {
                        issues.append(ValidationIssue(pointer: at.appending(j), message: "unknown step '\(target)'"))
                        continue
                    }
                    if !dependencies[t].contains(i) {
                        issues.append(
                            ValidationIssue(
                                pointer: at.appending(j),
                                message: "step '\(target)' must depend on '\(step.id)' to be one of its branches"
                            )
                        )
                    }
                }
            }
        }

        var onFailure: Step?
        if let attached = spec.onFailure {
            onFailure = Self.attached(attached, at: pointer.appending("on_failure"), index: index, roots: roots, issues: &issues)
        }

        var output: Template?
        if let outputValue = spec.output {
            let (template, outputIssues) = Template.compile(outputValue, at: pointer.appending("output"))
            issues += outputIssues
            for referenced in Self.check(template.expressions, at: pointer.appending("output"), roots: roots, issues: &issues)
            where index[referenced] == nil {
                issues.append(ValidationIssue(pointer: pointer.appending("output"), message: "reads unknown step '\(referenced)'"))
            }
            output = template
        }

        guard issues.isEmpty else { throw ValidationError(issues: issues) }

        var dependents: [[Int]] = Array(repeating: [], count: steps.count)
        for step in steps { for d in step.dependencies { dependents[d].append(step.index) } }
        self.steps = steps.map {
            var step = Step(
                index: $0.index,
                id: $0.id,
                type: $0.type,
                dependencies: $0.dependencies,
                dependents: dependents[$0.index],
                when: $0.when,
                config: $0.config,
                retry: $0.retry,
                timeoutMs: $0.timeoutMs,
                reads: $0.reads
            )
            step.continueOnError = $0.continueOnError
            step.compensation = $0.compensation
            step.switchCases = $0.switchCases
            step.switchDefault = $0.switchDefault
            step.body = $0.body
            return step
        }
        self.onFailure = onFailure
        self.context = context
        self.readsInput = readsInput || (output?.expressions.contains { $0.rootIdentifiers.contains("input") } ?? false)
        self.stepIndex = index
        self.topologicalOrder = order
        self.output = output
        self.sinks = dependents.indices.filter { dependents[$0].isEmpty }
        self.timeoutMs = spec.timeoutMs
    }

    /// Compiles a step attached to the workflow or to another step (a compensation, `on_failure`): it may read any step.
    private static func attached(
        _ definition: StepDefinition,
        at pointer: JSONPointer,
        index: [String: Int],
        roots: Set<String>,
        issues: inout [ValidationIssue]
    ) -> Step? {
        if definition.type.isEngineManaged {
            issues.append(
                ValidationIssue(
                    pointer: pointer.appending("type"),
                    message: "a \(definition.type.rawValue) step cannot be used here"
                )
            )
            return nil
        }
        let (config, configIssues) = Template.compile(definition.config, at: pointer.appending("config"))
        issues += configIssues
        var reads: Set<Int> = []
        for referenced in check(config.expressions, at: pointer, roots: roots, issues: &issues) {
            if let r = index[referenced] {
                reads.insert(r)
            } else {
                issues.append(ValidationIssue(pointer: pointer, message: "reads unknown step '\(referenced)'"))
            }
        }
        return Step(
            index: -1,
            id: definition.id,
            type: definition.type,
            dependencies: [],
            dependents: [],
            when: nil,
            config: config,
            retry: definition.retry,
            timeoutMs: definition.timeoutMs,
            reads: reads.sorted()
        )
    }

    /// Checks the names expressions start from, and returns the step ids they read.
    private static func check(
        _ expressions: [Expression],
        at pointer: JSONPointer,
        roots: Set<String>,
        issues: inout [ValidationIssue]
    ) -> Set<String> {
        var referenced: Set<String> = []
        for e in expressions {
            for name in e.rootIdentifiers.sorted() where !roots.contains(name) {
                let hint = ""
                issues.append(
                    ValidationIssue(
                        pointer: pointer,
                        message: "unknown name '\(name)' in expression; expected one of \(roots.sorted().joined(separator: ", "))\(hint)"
                    )
                )
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

/// A plan held by reference (a `foreach` step holds the plan of its nested steps).
public final class PlanBox: Sendable {
    public let plan: WorkflowPlan
    public init(_ plan: WorkflowPlan) { self.plan = plan }
}

/// A plan step held by reference (a step holds its compensation).
public final class StepBox: Sendable {
    public let step: WorkflowPlan.Step
    public init(_ step: WorkflowPlan.Step) { self.step = step }
}
