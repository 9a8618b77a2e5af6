/// RFC 6901 JSON pointers, used to name the offending field in validation errors.
public struct JSONPointer: Sendable, Hashable, CustomStringConvertible {
    public private(set) var tokens: [String]

    public static let root = JSONPointer(tokens: [])

    public init(tokens: [String]) { self.tokens = tokens }

    public func appending(_ token: String) -> JSONPointer {
        JSONPointer(tokens: tokens + [token])
    }

    public func appending(_ index: Int) -> JSONPointer {
        appending(String(index))
    }

    public var description: String {
        tokens.map { "/" + $0.replacingOccurrences(of: "~", with: "~0").replacingOccurrences(of: "/", with: "~1") }
            .joined()
    }
}

/// One problem found while validating input, located by a JSON pointer.
public struct ValidationIssue: Sendable, Hashable, Codable, CustomStringConvertible {
    public var pointer: String
    public var message: String

    public init(pointer: JSONPointer, message: String) {
        self.pointer = pointer.description
        self.message = message
    }

    /// An issue at a pointer already written out (as received from the API).
    public init(pointerText: String, message: String) {
        self.pointer = pointerText
        self.message = message
    }

    public var description: String { "\(pointer.isEmpty ? "/" : pointer): \(message)" }
}

/// Thrown when a definition or input is invalid; carries every problem found, not just the first.
public struct ValidationError: Error, Sendable, CustomStringConvertible {
    public var issues: [ValidationIssue]

    public init(issues: [ValidationIssue]) { self.issues = issues }

    public var description: String {
        "\(issues.count) validation error(s): " + issues.map(\.description).joined(separator: "; ")
    }
}
