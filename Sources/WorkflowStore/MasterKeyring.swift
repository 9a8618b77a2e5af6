import Crypto
import Foundation
import WorkflowPrimitive

/// The master keys that seal secrets at rest (AES-256-GCM). The first key seals; every key opens what it sealed, so a
/// new key is put first, nodes restarted one by one, secrets re-wrapped (`uwf secret rotate-master-key`), and then the
/// old key removed.
///
/// The key file holds one key per line, `<id>:<base64 of 32 bytes>`, newest first; `#` starts a comment.
public struct MasterKeyring: Sendable {
    public struct Key: Sendable {
        public let id: String
        let key: SymmetricKey
    }

    public let keys: [Key]

    public var activeKeyID: String { keys[0].id }

    public init(keys: [(id: String, bytes: Data)]) throws(WorkflowError) {
        guard !keys.isEmpty else { throw WorkflowError(.invalidRequest, "the master key file holds no key") }
        var seen: Set<String> = []
        for (id, bytes) in keys {
            guard Self.isKeyID(id) else {
                throw WorkflowError(.invalidRequest, "master key id '\(id.prefix(40))' must be 1-32 letters, digits, '-' or '_'")
            }
            guard bytes.count == 32 else { throw WorkflowError(.invalidRequest, "master key '\(id)' must be 32 bytes (base64 of 32 random bytes)") }
            guard seen.insert(id).inserted else { throw WorkflowError(.invalidRequest, "master key id '\(id)' appears twice") }
        }
        self.keys = keys.map { Key(id: $0.id, key: SymmetricKey(data: $0.bytes)) }
    }

    /// Reads `<id>:<base64>` lines.
    public init(text: String) throws(WorkflowError) {
        var parsed: [(String, Data)] = []
        for (number, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            let parts = line.split(separator: ":", maxSplits: 1).map(String.init)
            guard parts.count == 2, let bytes = Data(base64Encoded: parts[1]) else {
                throw WorkflowError(.invalidRequest, "master key file line \(number + 1): expected <id>:<base64 of 32 bytes>")
            }
            parsed.append((parts[0], bytes))
        }
        try self.init(keys: parsed)
    }

    /// A new key line: `<id>:<base64 of 32 random bytes>`.
    public static func generateLine(id: String) -> String {
        "\(id):" + SymmetricKey(size: .bits256).withUnsafeBytes { Data($0).base64EncodedString() }
    }

    static func isKeyID(_ id: String) -> Bool {
        (1...32).contains(id.utf8.count)
            && id.utf8.allSatisfy {
                $0 == 0x2D || $0 == 0x5F || (0x30...0x39).contains($0) || (0x41...0x5A).contains($0) || (0x61...0x7A).contains($0)
            }
    }

    /// Seals `plaintext` under the active key; the box is bound to `context` (a tenant and a name), so it cannot be
    /// moved to another row and opened there.
    public func seal(_ plaintext: Data, context: String) throws -> (keyID: String, box: String) {
        let sealed = try AES.GCM.seal(plaintext, using: keys[0].key, authenticating: Data(context.utf8))
        guard let combined = sealed.combined else { throw WorkflowError(.internalError, "AES-GCM gave no combined box") }
        return (keys[0].id, combined.base64EncodedString())
    }

    /// Opens a box sealed under `keyID` for `context`.
    /// - Throws: `master_key_missing` when this node lacks the key; `internal_error` when the box does not open.
    public func open(_ box: String, keyID: String, context: String) throws(WorkflowError) -> Data {
        guard let key = keys.first(where: { $0.id == keyID }) else {
            throw WorkflowError(.masterKeyMissing, "this node lacks master key '\(keyID)'; add it to the master key file")
        }
        do {
            guard let data = Data(base64Encoded: box) else { throw WorkflowError(.internalError, "not base64") }
            return try AES.GCM.open(try AES.GCM.SealedBox(combined: data), using: key.key, authenticating: Data(context.utf8))
        } catch {
            throw WorkflowError(.internalError, "a sealed value does not open under master key '\(keyID)': it was altered or moved")
        }
    }

    /// The context a tenant's secret is bound to.
    public static func secretContext(tenantID: String, name: String) -> String { "uwf-secret\u{0}\(tenantID)\u{0}\(name)" }
}
