import Crypto
import Foundation
import Synchronization
import WorkflowPrimitive

/// Encrypts payloads at rest for the tenants that ask for it (`encrypt_payloads`): run inputs, outputs and errors,
/// kept signals, step configs as rendered, outputs and errors, and history entries. Each tenant has a data key
/// (AES-256-GCM), stored wrapped by the master key in the tenant's settings; a sealed value is the JSON object
/// `{"$uwf_sealed": "v1:<tenant>:<base64 box>"}`, so both drivers store it like any other JSON.
///
/// Which tenants encrypt, and their data keys, are held in memory and read again every `refreshInterval`, so the
/// transitions the drivers run inside their transactions can seal and open without I/O.
public final class PayloadSealer: Sendable {
    public static let marker = "$uwf_sealed"

    struct Tenant {
        var encrypt: Bool
        var key: SymmetricKey?
    }

    private let keys: MasterKeyring
    private let tenants = Mutex<(byID: [String: Tenant], readAt: ContinuousClock.Instant?, anyKey: Bool)>(([:], nil, false))
    let refreshInterval: Duration

    public init(keys: MasterKeyring, refreshInterval: Duration = .seconds(2)) {
        self.keys = keys
        self.refreshInterval = refreshInterval
    }

    /// A new data key for a tenant, wrapped by the master key (what `TenantSettings.dataKey` holds).
    public func newWrappedDataKey(tenantID: String) throws -> String {
        let key = SymmetricKey(size: .bits256).withUnsafeBytes { Data($0) }
        let sealed = try keys.seal(key, context: Self.dataKeyContext(tenantID))
        return "\(sealed.keyID):\(sealed.box)"
    }

    /// The same data key wrapped by the newest master key (master-key rotation); nil when it already is.
    public func rewrap(_ wrapped: String, tenantID: String) throws -> String? {
        let parts = wrapped.split(separator: ":", maxSplits: 1).map(String.init)
        guard parts.count == 2, parts[0] != keys.activeKeyID else { return nil }
        let plain = try keys.open(parts[1], keyID: parts[0], context: Self.dataKeyContext(tenantID))
        let sealed = try keys.seal(plain, context: Self.dataKeyContext(tenantID))
        return "\(sealed.keyID):\(sealed.box)"
    }

    static func dataKeyContext(_ tenantID: String) -> String { "uwf-data-key\u{0}\(tenantID)" }

    /// Reads the tenants again when the last read is older than `refreshInterval`.
    func refresh(from store: any IdentityStore, force: Bool = false) async throws {
        let stale = tenants.withLock { state in
            force || state.readAt.map { ContinuousClock.now - $0 >= refreshInterval } ?? true
        }
        guard stale else { return }
        var byID: [String: Tenant] = [:]
        for tenant in try await store.tenantList() {
            var key: SymmetricKey?
            if let wrapped = tenant.settings.dataKey {
                let parts = wrapped.split(separator: ":", maxSplits: 1).map(String.init)
                if parts.count == 2,
                    let data = try? keys.open(parts[1], keyID: parts[0], context: Self.dataKeyContext(tenant.id))
                {
                    key = SymmetricKey(data: data)
                }
            }
            byID[tenant.id] = Tenant(encrypt: tenant.settings.encryptPayloads && key != nil, key: key)
        }
        let anyKey = byID.values.contains { $0.key != nil }
        tenants.withLock { $0 = (byID, ContinuousClock.now, anyKey) }
    }

    func tenant(_ id: String) -> Tenant? { tenants.withLock { $0.byID[id] } }

    /// Whether any tenant has a data key (else nothing is sealed or to be opened, and records pass as they are).
    var isActive: Bool { tenants.withLock { $0.anyKey } }

    // MARK: values

    /// `value` sealed for `tenantID` when the tenant encrypts; unchanged otherwise.
    func seal(_ value: JSONValue, tenantID: String) -> JSONValue {
        guard let tenant = tenant(tenantID), tenant.encrypt, let key = tenant.key, !Self.isSealed(value) else { return value }
        guard let box = try? AES.GCM.seal(value.canonicalData(), using: key, authenticating: Data(tenantID.utf8)).combined else {
            return value
        }
        return [Self.marker: .string("v1:\(tenantID):\(box.base64EncodedString())")]
    }

    func seal(_ value: JSONValue?, tenantID: String) -> JSONValue? { value.map { seal($0, tenantID: tenantID) } }

    /// `value` opened when it is sealed and its tenant's key is known; unchanged otherwise.
    func open(_ value: JSONValue) -> JSONValue {
        guard case .object(let fields) = value, fields.count == 1, let text = fields[Self.marker]?.stringValue else { return value }
        let parts = text.split(separator: ":", maxSplits: 2).map(String.init)
        guard parts.count == 3, parts[0] == "v1", let key = tenant(parts[1])?.key, let data = Data(base64Encoded: parts[2]),
            let box = try? AES.GCM.SealedBox(combined: data),
            let plain = try? AES.GCM.open(box, using: key, authenticating: Data(parts[1].utf8)),
            let opened = try? JSONValue.parse(plain)
        else { return value }
        return opened
    }

    func open(_ value: JSONValue?) -> JSONValue? { value.map(open) }

    static func isSealed(_ value: JSONValue) -> Bool {
        if case .object(let fields) = value, fields.count == 1, fields[marker] != nil { return true }
        return false
    }

    // MARK: records

    func seal(_ run: RunRecord) -> RunRecord {
        guard tenant(run.tenantID)?.encrypt == true else { return run }
        var run = run
        run.input = seal(run.input, tenantID: run.tenantID)
        run.output = seal(run.output, tenantID: run.tenantID)
        run.error = seal(run.error, tenantID: run.tenantID)
        for i in run.pendingSignals.indices { run.pendingSignals[i].payload = seal(run.pendingSignals[i].payload, tenantID: run.tenantID) }
        return run
    }

    func open(_ run: RunRecord) -> RunRecord {
        guard tenant(run.tenantID)?.key != nil else { return run }
        var run = run
        run.input = open(run.input)
        run.output = open(run.output)
        run.error = open(run.error)
        for i in run.pendingSignals.indices { run.pendingSignals[i].payload = open(run.pendingSignals[i].payload) }
        return run
    }

    func seal(_ step: StepRunRecord, tenantID: String) -> StepRunRecord {
        var step = step
        step.input = seal(step.input, tenantID: tenantID)
        step.output = seal(step.output, tenantID: tenantID)
        step.error = seal(step.error, tenantID: tenantID)
        return step
    }

    func open(_ step: StepRunRecord) -> StepRunRecord {
        var step = step
        step.input = open(step.input)
        step.output = open(step.output)
        step.error = open(step.error)
        return step
    }

    func open(_ event: RunEventRecord) -> RunEventRecord {
        var event = event
        event.data = open(event.data)
        return event
    }

    func open(_ snapshot: RunSnapshot) -> RunSnapshot {
        var snapshot = snapshot
        snapshot.run = open(snapshot.run)
        snapshot.steps = snapshot.steps.mapValues(open)
        return snapshot
    }

    /// The mutation with every payload sealed for `tenantID` (its spawned runs for their own tenant).
    func seal(_ mutation: RunMutation, tenantID: String) -> RunMutation {
        guard tenant(tenantID)?.encrypt == true else { return mutation }
        var m = mutation
        m.run = m.run.map(seal)
        m.steps = m.steps.map { seal($0, tenantID: tenantID) }
        m.events = m.events.map {
            var e = $0
            e.data = seal(e.data, tenantID: tenantID)
            return e
        }
        m.spawn = m.spawn.map(seal)
        return m
    }

    func seal(_ params: RunInsertParams) -> RunInsertParams {
        RunInsertParams(run: seal(params.run), initial: seal(params.initial, tenantID: params.run.tenantID))
    }
}
