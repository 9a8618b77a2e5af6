/// Every log metadata key the service uses, in one place: in JSON logs (`--log-format json`) they are the fields of
/// each line, beside `time`, `level`, `message` and `logger`.
public enum LogKey {
    public static let run = "run_id"
    public static let step = "step_id"
    public static let workflow = "workflow"
    public static let node = "node"
    public static let tenant = "tenant"
    public static let requestID = "request_id"
}
