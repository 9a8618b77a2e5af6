import Foundation
import WorkflowPrimitive

/// Plain-text tables and JSON for the client subcommands.
enum TableOutput {
    static func table(_ headers: [String], _ rows: [[String]]) -> String {
        var widths = headers.map(\.count)
        for row in rows { for (i, cell) in row.enumerated() where i < widths.count { widths[i] = max(widths[i], cell.count) } }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { i, c in i == cells.count - 1 ? c : c.padding(toLength: widths[i], withPad: " ", startingAt: 0) }
                .joined(separator: "  ")
        }
        return ([line(headers)] + rows.map(line)).joined(separator: "\n")
    }

    static func pretty(_ value: JSONValue) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return (try? String(decoding: encoder.encode(value), as: UTF8.self)) ?? value.canonicalString()
    }

    static func compact(_ value: JSONValue?) -> String {
        guard let value, !value.isNull else { return "" }
        let text = value.canonicalString()
        return text.count > 60 ? String(text.prefix(57)) + "..." : text
    }
}
