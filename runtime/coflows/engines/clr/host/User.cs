// Who is calling the running C# code (CoFlows' User.ContextUser / User.Permission).
//
//     var me = Coflows.User.Current;          // Id, Email, Name, IsAdmin, IsAnonymous, Groups
//     int level = Coflows.User.Permission("$WID$");   // -2 none, -1 denied, 0 view, 1 read, 2 write
//
// The identity follows the call: the HTTP caller, the original caller of a cross-language call,
// the writer of the M change an agent hook handles, the submitter of a flow run. Anonymous outside
// a call. C# runs on the calling Python thread, so the runtime reads the thread's call there.
using System;
using System.Collections.Generic;

namespace Coflows
{
    /// <summary>The caller of the running code (read-only).</summary>
    public sealed class User
    {
        /// <summary>The principal id: the user's email (lower case), "root" for the admin key, "anonymous".</summary>
        public string Id { get; private set; }
        /// <summary>The user's email, or null for the admin key and anonymous callers.</summary>
        public string Email { get; private set; }
        public string Name { get; private set; }
        public bool IsAdmin { get; private set; }
        public bool IsAnonymous { get; private set; }
        /// <summary>Group id -> level (unexpired memberships); a copy, changing it changes nothing.</summary>
        public Dictionary<string, long> Groups { get; private set; }

        private User() { }

        /// <summary>The caller of the running call.</summary>
        public static User Current
        {
            get
            {
                var d = RuntimeBridge.Invoke("caller.user", null) as Dictionary<string, object>;
                if (d == null)
                    throw new InvalidOperationException("the runtime did not describe the caller");
                var groups = new Dictionary<string, long>();
                var g = d.ContainsKey("groups") ? d["groups"] as Dictionary<string, object> : null;
                if (g != null)
                    foreach (var kv in g)
                        groups[kv.Key] = Convert.ToInt64(kv.Value);
                return new User
                {
                    Id = d["id"] as string,
                    Email = d["email"] as string,
                    Name = (d["name"] as string) ?? "",
                    IsAdmin = true.Equals(d["admin"]),
                    IsAnonymous = true.Equals(d["anonymous"]),
                    Groups = groups,
                };
            }
        }

        /// <summary>CoFlows' name for <see cref="Current"/>.</summary>
        public static User ContextUser { get { return Current; } }

        /// <summary>
        /// The caller's level in a group: the running workflow's ID (or "$WID$") gives the level on the
        /// workflow, "Public" Read, another group the membership's level; admin Write; nothing -2.
        /// </summary>
        public static int Permission(string groupId)
        {
            if (string.IsNullOrEmpty(groupId))
                throw new ArgumentException("a group id is needed", "groupId");
            return Convert.ToInt32(RuntimeBridge.Invoke("caller.permission", null, groupId));
        }

        public override string ToString() { return "User(" + Id + ")"; }
    }
}
