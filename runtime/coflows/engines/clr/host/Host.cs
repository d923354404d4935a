// The coflows host API for C# code (queries, Base, Bins compiled against it).
//
// Compiled in-process when the CLR engine starts and referenced by every C#
// compilation, so any C# file can write:
//
//     var greeting = (string)Coflows.Host.Call("PythonQuery.py", "Hello", "C#");
//     long sum = Coflows.Host.Call<long>("Calc.py", "Add", 1, 2);
//
// Arguments go to the called function as JSON-like values; results come back
// as long, double, decimal, string, bool, DateTime, null,
// List<object> and Dictionary<string, object> (nested).
using System;
using System.Collections;
using System.Collections.Generic;
using System.Globalization;

namespace Coflows
{
    /// <summary>A function called through <see cref="Host.Call"/> failed.</summary>
    public class CallException : Exception
    {
        /// <summary>The error type in the called function's language (e.g. "ValueError").</summary>
        public string ErrorType { get; private set; }
        /// <summary>The error message, without the type.</summary>
        public string ErrorMessage { get; private set; }
        /// <summary>The language of the function that failed (python, csharp, java, javascript) or "coflows".</summary>
        public string Language { get; private set; }
        /// <summary>The stack trace of the failure in the called function's language.</summary>
        public string RemoteStackTrace { get; private set; }

        public CallException(string errorType, string message, string language, string stack)
            : base(errorType + ": " + message)
        {
            ErrorType = errorType;
            ErrorMessage = message;
            Language = language;
            RemoteStackTrace = stack;
        }
    }

    /// <summary>What the runtime hands back instead of a result when a call failed (internal).</summary>
    public sealed class HostError
    {
        public readonly string Type;
        public readonly string Message;
        public readonly string Language;
        public readonly string Stack;

        public HostError(string type, string message, string language, string stack)
        {
            Type = type;
            Message = message;
            Language = language;
            Stack = stack;
        }
    }

    /// <summary>Calls into the coflows runtime: any registered function of any language.</summary>
    public static class Host
    {
        // Set by the runtime when the CLR engine starts: (query, function, args) -> result or HostError.
        private static Func<string, string, object[], object> caller;

        /// <summary>Connects the host to a runtime (done by coflows at start; not for user code).</summary>
        public static void Connect(Func<string, string, object[], object> callback)
        {
            caller = callback;
        }

        /// <summary>True once a coflows runtime is connected.</summary>
        public static bool Connected
        {
            get { return caller != null; }
        }

        /// <summary>
        /// Calls function <paramref name="function"/> of query <paramref name="query"/> (its ID, e.g.
        /// "PythonQuery.py") in the calling workflow, or "Workflow/Query" in another workflow.
        /// </summary>
        public static object Call(string query, string function, params object[] args)
        {
            var cb = caller;
            if (cb == null)
                throw new InvalidOperationException("Coflows.Host is not connected to a coflows runtime");
            object result;
            var state = Calls.GoOut();
            try
            {
                result = cb(query, function, args ?? new object[0]);
            }
            finally
            {
                Calls.ComeBack(state);  // this call was stopped while the called function ran: end it now
            }
            var err = result as HostError;
            if (err != null)
                throw new CallException(err.Type, err.Message, err.Language, err.Stack);
            return result;
        }

        /// <summary>Like <see cref="Call"/>, converting the result to <typeparamref name="T"/>.</summary>
        public static T Call<T>(string query, string function, params object[] args)
        {
            return ConvertTo<T>(Call(query, function, args));
        }

        /// <summary>Converts a result of <see cref="Call"/> (long, double, List&lt;object&gt;, …) to T.</summary>
        public static T ConvertTo<T>(object value)
        {
            if (value == null)
            {
                if (default(T) == null)
                    return default(T);
                throw new InvalidCastException("cannot convert null to " + typeof(T).FullName);
            }
            if (value is T)
                return (T)value;
            var target = Nullable.GetUnderlyingType(typeof(T)) ?? typeof(T);
            if (target.IsEnum)
            {
                var s = value as string;
                return (T)(s != null ? Enum.Parse(target, s, true) : Enum.ToObject(target, value));
            }
            if (value is IConvertible && typeof(IConvertible).IsAssignableFrom(target))
                return (T)System.Convert.ChangeType(value, target, CultureInfo.InvariantCulture);
            throw new InvalidCastException("cannot convert " + value.GetType().FullName + " to " + typeof(T).FullName);
        }
    }
}
