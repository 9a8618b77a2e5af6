/// Every log metadata key the service uses, in one place.
public enum LogKey {
    public static let run = "uwf.run_id"
    public static let step = "uwf.step_id"
    public static let workflow = "uwf.workflow"
    public static let node = "uwf.node"
}
