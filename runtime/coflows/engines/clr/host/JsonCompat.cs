// What C# code written against a newer Json.NET calls and Debian's Json.NET 6.0.8 lacks.
//
// Compiled (into QuantApp.Json.dll) against Debian's Newtonsoft.Json and referenced by every C#
// compilation that uses it, only when the workflow brings no Newtonsoft.Json of its own (NuGet or
// Bins): a newer Json.NET has these members itself, and its instance methods win anyway.
using System.Collections.Generic;

namespace Newtonsoft.Json.Linq
{
    public static class CoflowsJsonCompat
    {
        /// <summary>JObject.ContainsKey (public from Json.NET 11; CoFlows' CsAgent.cs calls it).</summary>
        public static bool ContainsKey(this JObject o, string propertyName)
        {
            return ((IDictionary<string, JToken>)o).ContainsKey(propertyName);
        }
    }
}
