// CoFlows' C# API (QuantApp.Kernel, QuantApp.Engine) for C# code written against CoFlows.
//
// Compiled into Coflows.Host with Host.cs, Agents.cs and User.cs, and thin over them and over the
// Python API of the same names (coflows/compat/kernel.py): the caller's UserData is the one Python,
// Java and JavaScript see (through Coflows.RuntimeBridge), levels come from Coflows.User, M is
// Coflows.M, agents are Coflows.FPKG. Nothing here keeps state.
//
//     var user = QuantApp.Kernel.User.ContextUser;                 // UserData: ID, Email, FirstName, LastName
//     switch (QuantApp.Kernel.User.PermissionContext("$WID$")) { case AccessType.Write: ... }
//     return new FPKG(id, wid, name, description, mid, Utils.SetFunction("Load", new Load(...)), ...);
//
// FirstName is the user's name up to its first space ("Anonymous" for anonymous callers); strings
// are never null.
using System;
using System.Collections.Generic;

namespace QuantApp.Kernel
{
    /// <summary>CoFlows' permission levels (what <see cref="User.PermissionContext(string)"/> answers).</summary>
    public enum AccessType
    {
        Invited = -2, Denied = -1, View = 0, Read = 1, Write = 2
    }

    /// <summary>CoFlows' UserData: the caller as code sees it.</summary>
    public struct UserData
    {
        public string ID;
        public string Email;
        public string FirstName;
        public string LastName;

        public override string ToString() { return ID; }
    }

    /// <summary>CoFlows' User: static members only (who is calling, and at which level).</summary>
    public static class User
    {
        /// <summary>The caller of the running call (anonymous outside a call).</summary>
        public static UserData ContextUser
        {
            get { return ToUserData(Coflows.RuntimeBridge.Invoke("quantapp.user", null)); }
        }

        /// <summary>The same as <see cref="ContextUser"/> (the name other languages call).</summary>
        public static UserData GetContextUser()
        {
            return ContextUser;
        }

        /// <summary>The user whose API key is <paramref name="secret"/> (empty fields when none is).</summary>
        public static UserData ContextUserBySecret(string secret)
        {
            return ToUserData(Coflows.RuntimeBridge.Invoke("quantapp.user", null, secret));
        }

        /// <summary>
        /// The caller's level in a group: the workflow's ID (or "$WID$") gives the level on the
        /// workflow; no grant is <see cref="AccessType.Invited"/> (-2), as in the other languages.
        /// </summary>
        public static AccessType PermissionContext(string groupID)
        {
            return (AccessType)Coflows.User.Permission(groupID);
        }

        /// <summary>The level in a group of the user whose API key is <paramref name="secret"/> (Denied when none is).</summary>
        public static AccessType PermissionContext(string secret, string groupID)
        {
            return (AccessType)Convert.ToInt32(Coflows.RuntimeBridge.Invoke("quantapp.permission", null, secret, groupID));
        }

        private static UserData ToUserData(object value)
        {
            var d = value as IDictionary<string, object>;
            if (d == null)
                throw new InvalidOperationException("the runtime did not describe the user");
            return new UserData { ID = Text(d, "ID"), Email = Text(d, "Email"), FirstName = Text(d, "FirstName"),
                                  LastName = Text(d, "LastName") };
        }

        private static string Text(IDictionary<string, object> d, string key)
        {
            object v;
            return d.TryGetValue(key, out v) && v != null ? v.ToString() : "";
        }
    }

    /// <summary>Called when an entry of an agent's M topic is added, exchanged or removed.</summary>
    public delegate void MCallback(string id, object data);

    /// <summary>CoFlows' M: <c>M.Base(topic)</c> is coflows' M set of that topic (Coflows.MSet).</summary>
    public static class M
    {
        public static Coflows.MSet Base(string id) { return Coflows.M.Base(id); }

        /// <summary>CoFlows' M.Base(topic, type): values are JSON here, the type is not needed.</summary>
        public static Coflows.MSet Base(string id, Type type) { return Coflows.M.Base(id); }

        /// <summary>CoFlows' M.V&lt;T&gt;(entry, field): a field of an M value (a JSON object), converted.</summary>
        public static T V<T>(object entry, string field)
        {
            var d = entry as IDictionary<string, object>;
            if (d == null)
                throw new ArgumentException("M.V: the entry is a " + (entry == null ? "null" : entry.GetType().FullName)
                                            + ", not a JSON object", "entry");
            object value;
            if (!d.TryGetValue(field, out value))
                throw new KeyNotFoundException("M.V: the entry has no field '" + field + "'");
            return Coflows.Host.ConvertTo<T>(value);
        }
    }
}

namespace QuantApp.Engine
{
    using QuantApp.Kernel;

    /// <summary>Called once at start with every value of the agent's topic (null without a topic).</summary>
    public delegate void Load(object[] data);

    /// <summary>A message to the agent (POST /flow/agent/{id}) as JSON text; its result is the answer.</summary>
    public delegate object Body(object data);

    /// <summary>The agent's schedule fired: the time and the execution type.</summary>
    public delegate void Job(DateTime date, string command);

    /// <summary>CoFlows' agent package: a Coflows.FPKG built from CoFlows' twelve positional arguments.</summary>
    public class FPKG : Coflows.FPKG
    {
        public FPKG()
        {
        }

        public FPKG(string id, string workflowID, string name, string description, string mid,
                    Load load, MCallback add, MCallback exchange, MCallback remove, Body body,
                    string scheduleCommand, Job job)
            : base(id, workflowID, name, description, mid,
                   As<Coflows.Load>(load), As<Coflows.MCallback>(add), As<Coflows.MCallback>(exchange),
                   As<Coflows.MCallback>(remove), As<Coflows.Body>(body), scheduleCommand, As<Coflows.Job>(job))
        {
        }

        /// <summary>The same method as a coflows delegate (so errors and logs name the user's method).</summary>
        private static T As<T>(Delegate d) where T : class
        {
            if (d == null)
                return null;
            if (d.GetInvocationList().Length == 1)
            {
                try
                {
                    return (T)(object)Delegate.CreateDelegate(typeof(T), d.Target, d.Method);
                }
                catch (ArgumentException)
                {
                    // e.g. a delegate closed over its first argument: wrap it instead
                }
            }
            return (T)(object)Delegate.CreateDelegate(typeof(T), d, d.GetType().GetMethod("Invoke"));
        }
    }

    /// <summary>CoFlows' Utils.SetFunction(name, function): the function itself here.</summary>
    public static class Utils
    {
        public static T SetFunction<T>(string name, T function) where T : class
        {
            return function;
        }
    }
}
