/// <info version="1.0.0">
///   <title>C# Base of the example workflow</title>
///   <description>Shared C# code: compiled first, into one assembly that every C# query references.</description>
/// </info>
using System;
using System.Collections.Generic;
using System.Linq;

// Python code of the workflow can use it too: `import CsBase` then `CsBase.Text.Greet("py")`.
namespace CsBase
{
    /// <summary>Text helpers shared by the C# queries.</summary>
    public static class Text
    {
        public const string Greeting = "Hello from the C# Base";

        public static string Greet(string name)
        {
            return Greeting + ", " + name + "!";
        }
    }

    /// <summary>Small statistics helpers.</summary>
    public static class Stats
    {
        public static double Mean(IEnumerable<double> values)
        {
            var list = values.ToList();
            if (list.Count == 0)
                throw new ArgumentException("no values");
            return list.Average();
        }
    }

    /// <summary>A row of a price table (returned to callers as a JSON object).</summary>
    public class Price
    {
        public DateTime Date { get; set; }
        public decimal Value { get; set; }
        public long Volume { get; set; }
    }
}
