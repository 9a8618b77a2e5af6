import Foundation

/// The config of a `notify` step, checked where it is constant (at registration) and once rendered (at run time).
///
/// ```yaml
/// - id: tell_ops
///   type: notify
///   config:
///     channel: email                  # or webhook (SMS providers are webhooks)
///     to: ["ops@bank.example"]        # email
///     template: payment-released      # a tenant template (its latest version), or payment-released@2
///     subject: "Released {{amount}}"  # or inline Mustache instead of a template
///     body: "Payment {{id}} for {{amount}} left at {{time}}."
///     data: {amount: "${input.amount}", id: "${run.id}"}
/// ```
public enum NotifyConfig {
    public static let channels = ["webhook", "email"]
    public static let maxRecipients = 50
    public static let maxTemplateBytes = 64 * 1024

    /// A mail address without anything that could end a header line.
    public static func isAddress(_ text: String) -> Bool {
        guard text.utf8.count <= 254, !text.contains(where: { $0.isNewline || $0 == "<" || $0 == ">" || $0 == "," || $0.isWhitespace }) else {
            return false
        }
        let parts = text.split(separator: "@", omittingEmptySubsequences: false)
        return parts.count == 2 && !parts[0].isEmpty && parts[1].contains(".") && !parts[1].hasPrefix(".") && !parts[1].hasSuffix(".")
    }

    static func isTemplate(_ v: JSONValue) -> Bool { v.stringValue?.contains("${") ?? false }

    /// What a complete config (templated values count as present) lacks.
    public static func missing(_ config: JSONValue) -> [(String, String)] {
        var problems: [(String, String)] = []
        if config["template"] == nil && config["body"] == nil { problems.append(("body", "a notify step needs a template or a body")) }
        switch config["channel"]?.stringValue {
        case "webhook" where config["url"] == nil: problems.append(("url", "the webhook channel needs a url"))
        case "email" where config["to"] == nil: problems.append(("to", "the email channel needs recipients"))
        default: break
        }
        return problems
    }

    public static func problems(_ config: JSONValue) -> [(String, String)] {
        var problems: [(String, String)] = []
        let channel = config["channel"]
        if let channel, !isTemplate(channel), !(channel.stringValue.map(channels.contains) ?? false) {
            problems.append(("channel", "must be one of \(channels.joined(separator: ", "))"))
        }
        let hasTemplate = config["template"].map { !$0.isNull } ?? false
        let hasBody = config["body"].map { !$0.isNull } ?? false
        if hasTemplate && hasBody { problems.append(("template", "give a template or an inline body, not both")) }
        for key in ["subject", "body"] {
            if let v = config[key], !v.isNull {
                if let s = v.stringValue {
                    if s.utf8.count > maxTemplateBytes { problems.append((key, "must be at most \(maxTemplateBytes) bytes")) }
                } else {
                    problems.append((key, "must be a string"))
                }
            }
        }
        if let t = config["template"], !t.isNull, !isTemplate(t), t.stringValue == nil { problems.append(("template", "must be a template name")) }
        switch channel?.stringValue {
        case "webhook":
            if let url = config["url"], !isTemplate(url) {
                if !(url.stringValue.map { $0.hasPrefix("http://") || $0.hasPrefix("https://") } ?? false) {
                    problems.append(("url", "must be an http:// or https:// URL"))
                }
            }
        case "email":
            if let to = config["to"] {
                let list = to.arrayValue ?? (to.stringValue.map { [.string($0)] } ?? [])
                if list.isEmpty || list.count > maxRecipients {
                    problems.append(("to", "must be 1 to \(maxRecipients) addresses"))
                } else if list.contains(where: { v in !isTemplate(v) && !(v.stringValue.map(isAddress) ?? false) }) {
                    problems.append(("to", "must hold mail addresses (name@domain)"))
                }
            }
        default: break
        }
        return problems
    }
}
