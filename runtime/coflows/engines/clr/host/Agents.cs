// C# agents and the M set, for user code (compiled into Coflows.Host with Host.cs).
//
// An agent file has a public static factory (package.json `Exe`, default `pkg`) returning an FPKG:
//
//     public static FPKG pkg()
//     {
//         return new FPKG("$WID$-Orders", "$WID$", "Orders", "watches orders", "orders",
//             Utils.SetFunction("Load", new Load(Load)), new MCallback(Add), null, null,
//             new Body(Body), "0 * * ? * *", new Job(Job));
//     }
//
// or, with an object initializer: new FPKG { ID = "$WID$-Orders", MID = "orders", Add = Add, ... }.
//
// M: Coflows.M.Base("orders").Add(new Dictionary<string, object> { { "item", "book" } }) returns the
// entry id. Values go to the store as JSON (primitives, strings, DateTime, arrays, lists,
// dictionaries, objects by their public properties and fields); they come back as long, double,
// string, bool, null, List<object> and Dictionary<string, object>.
using System;
using System.Collections.Generic;
using System.IO;
using System.Text;

namespace Coflows
{
    /// <summary>Called once at start with every value of the agent's topic (null without a topic).</summary>
    public delegate void Load(object[] data);

    /// <summary>Called when an entry of the agent's topic is added, exchanged (new value) or removed (old value).</summary>
    public delegate void MCallback(string id, object data);

    /// <summary>A message (POST /flow/agent/{id}), as JSON text; at start {"Function":"Main","Data":"Initial Execution"}.</summary>
    public delegate object Body(object data);

    /// <summary>The agent's schedule fired: the time (rounded to the second) and the execution type ("All" by default).</summary>
    public delegate void Job(DateTime timestamp, string executionType);

    /// <summary>An agent: what the factory (`pkg`) returns. Every hook is optional (null).</summary>
    public class FPKG
    {
        public string ID { get; set; }
        public string WorkflowID { get; set; }
        public string Name { get; set; }
        public string Description { get; set; }
        /// <summary>The M topic whose changes call Add, Exchange and Remove.</summary>
        public string MID { get; set; }
        public Load Load { get; set; }
        public MCallback Add { get; set; }
        public MCallback Exchange { get; set; }
        public MCallback Remove { get; set; }
        public Body Body { get; set; }
        /// <summary>"[ExecutionType|]&lt;quartz cron&gt; [@ TimeZone]", several separated by ';'.</summary>
        public string ScheduleCommand { get; set; }
        public Job Job { get; set; }

        public FPKG()
        {
        }

        /// <summary>CoFlows' positional order.</summary>
        public FPKG(string id, string workflowID, string name, string description, string mid,
                    Load load, MCallback add, MCallback exchange, MCallback remove, Body body,
                    string scheduleCommand, Job job)
        {
            ID = id;
            WorkflowID = workflowID;
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
    }

    /// <summary>CoFlows' Utils.SetFunction(name, delegate): here it returns the delegate.</summary>
    public static class Utils
    {
        public static T SetFunction<T>(string name, T function) where T : class
        {
            return function;
        }
    }

    /// <summary>The runtime side of M and Json (internal: set by coflows when the CLR engine starts).</summary>
    public static class RuntimeBridge
    {
        // (operation, topic, args) -> result or HostError
        private static Func<string, string, object[], object> handler;

        public static void Connect(Func<string, string, object[], object> callback)
        {
            handler = callback;
        }

        internal static object Invoke(string op, string topic, params object[] args)
        {
            var h = handler;
            if (h == null)
                throw new InvalidOperationException("Coflows.M is not connected to a coflows runtime");
            object result;
            var state = Calls.GoOut();
            try
            {
                result = h(op, topic, args ?? new object[0]);
            }
            finally
            {
                Calls.ComeBack(state);  // stopped meanwhile: end the call now
            }
            var err = result as HostError;
            if (err != null)
                throw new CallException(err.Type, err.Message, err.Language, err.Stack);
            return result;
        }
    }

    /// <summary>
    /// Console output of agent hooks (internal): coflows installs it as Console.Out. On a thread that
    /// called Begin, what C# writes is kept (and handed to the run record by End); elsewhere it goes
    /// to the previous Console.Out unchanged.
    /// </summary>
    public sealed class HookOutput : TextWriter
    {
        private const int Max = 64 * 1024;
        [ThreadStatic] private static StringBuilder buffer;
        private readonly TextWriter inner;
        private static bool installed;

        private HookOutput(TextWriter inner) { this.inner = inner; }

        public override Encoding Encoding { get { return inner.Encoding; } }

        public static void Install()
        {
            lock (typeof(HookOutput))
            {
                if (installed)
                    return;
                installed = true;
                var stdout = Console.Out;
                Console.SetOut(new HookOutput(stdout));
            }
        }

        public static void Begin() { buffer = new StringBuilder(); }

        public static string End()
        {
            var b = buffer;
            buffer = null;
            return b == null ? "" : b.ToString();
        }

        public override void Write(char value)
        {
            var b = buffer;
            if (b == null) inner.Write(value);
            else if (b.Length < Max) b.Append(value);
        }

        public override void Write(string value)
        {
            var b = buffer;
            if (b == null) inner.Write(value);
            else if (b.Length < Max) b.Append(value);
        }

        public override void Write(char[] chars, int index, int count)
        {
            var b = buffer;
            if (b == null) inner.Write(chars, index, count);
            else if (b.Length < Max) b.Append(chars, index, count);
        }

        public override void WriteLine(string value)
        {
            var b = buffer;
            if (b == null) inner.WriteLine(value);
            else if (b.Length < Max) b.Append(value).Append(CoreNewLine);
        }

        public override void Flush()
        {
            if (buffer == null) inner.Flush();
        }
    }

    /// <summary>JSON text from and to the values coflows hands C# (Dictionary&lt;string, object&gt;, List&lt;object&gt;, ...).</summary>
    public static class Json
    {
        public static object Parse(string json)
        {
            return RuntimeBridge.Invoke("json.parse", null, json);
        }

        public static string Serialize(object value)
        {
            return (string)RuntimeBridge.Invoke("json.dump", null, value);
        }
    }

    /// <summary>The entries of one M topic: a persistent set of JSON values, each with an id.</summary>
    public sealed class MSet
    {
        public string Topic { get; private set; }

        internal MSet(string topic)
        {
            if (string.IsNullOrEmpty(topic))
                throw new ArgumentException("an M topic is needed", "topic");
            Topic = topic;
        }

        /// <summary>Adds a value; returns its id (an equal value already there returns that entry's id).</summary>
        public string Add(object value) { return (string)RuntimeBridge.Invoke("add", Topic, value); }

        /// <summary>Replaces an entry (by id, or by its current value) with newValue, keeping its id; returns {id, version, value}.</summary>
        public Dictionary<string, object> Exchange(object idOrOldValue, object newValue)
        {
            return (Dictionary<string, object>)RuntimeBridge.Invoke("exchange", Topic, idOrOldValue, newValue);
        }

        /// <summary>Replaces the entry with this id.</summary>
        public Dictionary<string, object> ExchangeID(string id, object newValue)
        {
            return (Dictionary<string, object>)RuntimeBridge.Invoke("exchange_id", Topic, id, newValue);
        }

        /// <summary>Removes an entry by id or by value; false when there is no such entry.</summary>
        public bool Remove(object idOrValue) { return (bool)RuntimeBridge.Invoke("remove", Topic, idOrValue); }

        public bool RemoveID(string id) { return (bool)RuntimeBridge.Invoke("remove_id", Topic, id); }

        /// <summary>The value of an entry, or null.</summary>
        public object Get(string id) { return RuntimeBridge.Invoke("get", Topic, id); }

        /// <summary>Like Get, converted to T (see Host.ConvertTo).</summary>
        public T Get<T>(string id) { return Host.ConvertTo<T>(Get(id)); }

        /// <summary>{id, value, version} of the entry equal to value, or null.</summary>
        public Dictionary<string, object> Find(object value)
        {
            return (Dictionary<string, object>)RuntimeBridge.Invoke("find", Topic, value);
        }

        public long Count() { return Convert.ToInt64(RuntimeBridge.Invoke("count", Topic)); }

        /// <summary>Every value, in insertion order.</summary>
        public List<object> List() { return (List<object>)RuntimeBridge.Invoke("list", Topic); }

        /// <summary>Every value, in insertion order (the same as List()).</summary>
        public List<object> Values() { return List(); }

        /// <summary>Every entry as {id, value, version}.</summary>
        public List<object> Entries() { return (List<object>)RuntimeBridge.Invoke("entries", Topic); }

        /// <summary>Values whose top-level fields equal those of where.</summary>
        public List<object> Query(object where) { return (List<object>)RuntimeBridge.Invoke("query", Topic, where); }

        /// <summary>Values for which predicate is true (a scan).</summary>
        public List<object> Query(Func<object, bool> predicate)
        {
            return List().FindAll(v => predicate(v));
        }

        /// <summary>{id: value} for every entry.</summary>
        public Dictionary<string, object> KeyValues()
        {
            return (Dictionary<string, object>)RuntimeBridge.Invoke("key_values", Topic);
        }

        /// <summary>Removes every entry; returns how many were removed.</summary>
        public long Clear() { return Convert.ToInt64(RuntimeBridge.Invoke("clear", Topic)); }

        /// <summary>No-op: every write is already durable (CoFlows needed Save()).</summary>
        public void Save() { }

        public override string ToString() { return "M(" + Topic + ")"; }
    }

    /// <summary>CoFlows' M.Base(topic).</summary>
    public static class M
    {
        public static MSet Base(string topic) { return new MSet(topic); }

        /// <summary>CoFlows' M.Base(topic, type): the type is ignored (values are JSON).</summary>
        public static MSet Base(string topic, Type type) { return new MSet(topic); }
    }
}
