/// The differences between two definitions, as JSON-pointer changes. Steps are matched by id rather than by position,
/// so moving a step or inserting one does not report every later step as changed.
public enum DefinitionDiffer {
    public struct Change: Sendable, Hashable {
        public var op: String
        public var path: String
        public var from: JSONValue?
        public var to: JSONValue?
    }

    /// At most this many changes are reported (a diff of two unrelated huge definitions stays small).
    public static let maximumChanges = 1_000

    public static func diff(from a: JSONValue, to b: JSONValue) -> [Change] {
        var changes: [Change] = []
        walk(a, b, path: JSONPointer.root, into: &changes)
        return changes
    }

    private static func walk(_ a: JSONValue, _ b: JSONValue, path: JSONPointer, into changes: inout [Change]) {
        guard changes.count < maximumChanges, a != b else { return }
        switch (a, b) {
        case (.object(let x), .object(let y)):
            for key in Set(x.keys).union(y.keys).sorted() {
                let child = path.appending(key)
                switch (x[key], y[key]) {
                case (let old?, let new?) where isStepList(key, old, new):
                    walkSteps(old.arrayValue ?? [], new.arrayValue ?? [], path: child, into: &changes)
                case (let old?, let new?): walk(old, new, path: child, into: &changes)
                case (let old?, nil): changes.append(Change(op: "remove", path: child.description, from: old, to: nil))
                case (nil, let new?): changes.append(Change(op: "add", path: child.description, from: nil, to: new))
                case (nil, nil): break
                }
            }
        case (.array(let x), .array(let y)) where x.count == y.count:
            for (i, (old, new)) in zip(x, y).enumerated() { walk(old, new, path: path.appending(i), into: &changes) }
        default:
            changes.append(Change(op: "replace", path: path.description, from: a, to: b))
        }
    }

    /// `steps` arrays whose items all have distinct string ids.
    private static func isStepList(_ key: String, _ a: JSONValue, _ b: JSONValue) -> Bool {
        guard key == "steps", let x = a.arrayValue, let y = b.arrayValue else { return false }
        for list in [x, y] {
            let ids = list.compactMap { $0["id"]?.stringValue }
            if ids.count != list.count || Set(ids).count != ids.count { return false }
        }
        return true
    }

    private static func walkSteps(_ a: [JSONValue], _ b: [JSONValue], path: JSONPointer, into changes: inout [Change]) {
        let old = Dictionary(uniqueKeysWithValues: a.compactMap { s in s["id"]?.stringValue.map { ($0, s) } })
        let new = Dictionary(uniqueKeysWithValues: b.compactMap { s in s["id"]?.stringValue.map { ($0, s) } })
        for id in a.compactMap({ $0["id"]?.stringValue }) {
            if let n = new[id] {
                walk(old[id]!, n, path: path.appending(id), into: &changes)
            } else {
                changes.append(Change(op: "remove", path: path.appending(id).description, from: old[id], to: nil))
            }
        }
        for id in b.compactMap({ $0["id"]?.stringValue }) where old[id] == nil {
            changes.append(Change(op: "add", path: path.appending(id).description, from: nil, to: new[id]))
        }
    }
}
