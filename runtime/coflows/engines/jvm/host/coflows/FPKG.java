package coflows;

/**
 * An agent package, as returned by an agent file's factory (package.json {@code Exe}, default
 * {@code pkg}: a public static method without parameters of the file's class).
 *
 * <pre>{@code
 * public static FPKG pkg() {
 *     return new FPKG("$WID$-Orders", "$WID$", "Orders", "watches orders", "orders",
 *         Orders::Load, Orders::Add, null, null, Orders::Body, "0 * * ? * *", Orders::Job);
 * }
 * // or
 * return FPKG.builder().id("$WID$-Orders").name("Orders").mid("orders").add(Orders::Add).build();
 * }</pre>
 *
 * Every field is optional: ID defaults to {@code <workflow>-<file stem>}, Name to the file stem.
 */
public final class FPKG {
    public String ID;
    public String WorkflowID;
    public String Name;
    public String Description;
    public String MID;
    public Load Load;
    public MCallback Add;
    public MCallback Exchange;
    public MCallback Remove;
    public Body Body;
    public String ScheduleCommand;
    public Job Job;

    public FPKG() {}

    /** CoFlows' positional order. */
    public FPKG(String id, String workflowId, String name, String description, String mid, Load load,
                MCallback add, MCallback exchange, MCallback remove, Body body, String scheduleCommand, Job job) {
        ID = id;
        WorkflowID = workflowId;
        Name = name;
        Description = description;
        MID = mid;
        Load = load;
        Add = add;
        Exchange = exchange;
        Remove = remove;
        Body = body;
        ScheduleCommand = scheduleCommand;
        Job = job;
    }

    public static Builder builder() { return new Builder(); }

    /** A fluent way to fill an FPKG. */
    public static final class Builder {
        private final FPKG p = new FPKG();

        public Builder id(String v) { p.ID = v; return this; }
        public Builder workflowId(String v) { p.WorkflowID = v; return this; }
        public Builder name(String v) { p.Name = v; return this; }
        public Builder description(String v) { p.Description = v; return this; }
        public Builder mid(String v) { p.MID = v; return this; }
        public Builder load(Load v) { p.Load = v; return this; }
        public Builder add(MCallback v) { p.Add = v; return this; }
        public Builder exchange(MCallback v) { p.Exchange = v; return this; }
        public Builder remove(MCallback v) { p.Remove = v; return this; }
        public Builder body(Body v) { p.Body = v; return this; }
        public Builder schedule(String v) { p.ScheduleCommand = v; return this; }
        public Builder job(Job v) { p.Job = v; return this; }
        public FPKG build() { return p; }
    }
}
