// CoFlows' JVM bridge for C#: Java objects (and any other object of the process) as `dynamic`.
//
//     dynamic javabase = JVM.Runtime.CreateInstance("javabase.javaBase");
//     var age = javabase.Add((int)javabase.getAge, 5);          // fields, methods, (int)/(double)/(string)
//     foreach (var interest in javabase.getInterests()) ...      // any Java Iterable
//
// The object lives in Python (a JPype object) behind an integer handle of coflows.objects; a
// JVMObject holds the handle and asks Python, through Coflows.RuntimeBridge, to act on it
// (coflows/engines/clr/objects.py). Names resolve in the calling workflow (its Java Base, jars and
// queries; any "jvm", "python" or "clr" name coflows.objects knows). Results that are values
// (null, bool, numbers, strings) come back as .NET values; anything else as another JVMObject.
// A JVMObject releases its handle when it is collected (or disposed).
using System;
using System.Collections;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Dynamic;

namespace Coflows
{
    /// <summary>What the runtime answers when a foreign iterator is exhausted (internal).</summary>
    public sealed class IterationEnd
    {
        public static readonly IterationEnd Value = new IterationEnd();

        private IterationEnd() { }
    }
}

namespace JVM
{
    /// <summary>CoFlows' JVM.Runtime: classes and instances by full name, in the calling workflow.</summary>
    public static class Runtime
    {
        /// <summary>A new instance of <paramref name="className"/> (a Java class of the workflow).</summary>
        public static dynamic CreateInstance(string className, params object[] args)
        {
            if (string.IsNullOrEmpty(className))
                throw new ArgumentException("a class name is needed", "className");
            return JVMObject.Call("obj.new", className, null, args ?? new object[0]);
        }

        /// <summary>The class <paramref name="className"/> itself: its static members, or call it to make an instance.</summary>
        public static dynamic GetClass(string className)
        {
            if (string.IsNullOrEmpty(className))
                throw new ArgumentException("a class name is needed", "className");
            return JVMObject.Call("obj.resolve", className, null, new object[0]);
        }
    }

    /// <summary>A foreign object held by coflows (see the file's comment). Not made by user code.</summary>
    public sealed class JVMObject : DynamicObject, IEnumerable, IDisposable
    {
        // handles of collected proxies, released on the next call into Python (never from the
        // finalizer thread, which must not wait for Python's lock)
        private static readonly ConcurrentQueue<long> released = new ConcurrentQueue<long>();

        /// <summary>The coflows.objects handle (for the runtime).</summary>
        public readonly long CoflowsHandle;
        private int disposed;

        public JVMObject(long handle)
        {
            CoflowsHandle = handle;
        }

        ~JVMObject()
        {
            if (disposed == 0)
                released.Enqueue(CoflowsHandle);
        }

        public void Dispose()
        {
            if (System.Threading.Interlocked.Exchange(ref disposed, 1) == 0)
            {
                released.Enqueue(CoflowsHandle);
                GC.SuppressFinalize(this);
            }
        }

        internal static object Call(string op, string name, JVMObject target, object[] args)
        {
            ReleaseCollected();
            var all = new object[args.Length + 1];
            all[0] = target == null ? (object)null : target.CoflowsHandle;
            Array.Copy(args, 0, all, 1, args.Length);
            var result = Coflows.RuntimeBridge.Invoke(op, name, all);
            GC.KeepAlive(target);  // the handle stays valid until Python is done with it
            return result;
        }

        private static void ReleaseCollected()
        {
            if (released.IsEmpty)
                return;
            var ids = new List<object>();
            long id;
            while (ids.Count < 4096 && released.TryDequeue(out id))
                ids.Add(id);
            if (ids.Count > 0)
                Coflows.RuntimeBridge.Invoke("obj.release", null, ids.ToArray());
        }

        public override bool TryGetMember(GetMemberBinder binder, out object result)
        {
            result = Call("obj.get", binder.Name, this, new object[0]);
            return true;
        }

        public override bool TrySetMember(SetMemberBinder binder, object value)
        {
            Call("obj.set", binder.Name, this, new[] { value });
            return true;
        }

        public override bool TryInvokeMember(InvokeMemberBinder binder, object[] args, out object result)
        {
            result = Call("obj.call", binder.Name, this, args);
            return true;
        }

        public override bool TryInvoke(InvokeBinder binder, object[] args, out object result)
        {
            result = Call("obj.invoke", null, this, args);
            return true;
        }

        public override bool TryGetIndex(GetIndexBinder binder, object[] indexes, out object result)
        {
            if (indexes.Length != 1)
                throw new ArgumentException("one index at a time: x[i]");
            result = Call("obj.item", null, this, indexes);
            return true;
        }

        public override bool TrySetIndex(SetIndexBinder binder, object[] indexes, object value)
        {
            if (indexes.Length != 1)
                throw new ArgumentException("one index at a time: x[i] = v");
            Call("obj.setitem", null, this, new[] { indexes[0], value });
            return true;
        }

        /// <summary>(int), (long), (double), (bool), (string) and the like: the object's value, converted.</summary>
        public override bool TryConvert(ConvertBinder binder, out object result)
        {
            var t = Nullable.GetUnderlyingType(binder.Type) ?? binder.Type;
            if (t == typeof(string))
            {
                result = ToString();
                return true;
            }
            string kind;
            switch (Type.GetTypeCode(t))
            {
                case TypeCode.Boolean: kind = "bool"; break;
                case TypeCode.Single:
                case TypeCode.Double:
                case TypeCode.Decimal: kind = "float"; break;
                case TypeCode.SByte:
                case TypeCode.Byte:
                case TypeCode.Int16:
                case TypeCode.UInt16:
                case TypeCode.Int32:
                case TypeCode.UInt32:
                case TypeCode.Int64:
                case TypeCode.UInt64:
                case TypeCode.Char: kind = "int"; break;
                default:
                    result = null;
                    return false;  // the binder says which conversion is missing
            }
            var value = Call("obj.convert", kind, this, new object[0]);
            result = t == typeof(char) ? (object)Convert.ToChar(value) : Convert.ChangeType(value, t, System.Globalization.CultureInfo.InvariantCulture);
            return true;
        }

        /// <summary>The object's text (Java's toString(), Python's str()).</summary>
        public override string ToString()
        {
            return (string)Call("obj.str", null, this, new object[0]);
        }

        public IEnumerator GetEnumerator()
        {
            return new Enumerator((JVMObject)Call("obj.iter", null, this, new object[0]));
        }

        private sealed class Enumerator : IEnumerator, IDisposable
        {
            private readonly JVMObject iterator;
            private object current;

            public Enumerator(JVMObject iterator) { this.iterator = iterator; }

            public object Current { get { return current; } }

            public bool MoveNext()
            {
                var step = Call("obj.next", null, iterator, new object[0]);
                if (step is Coflows.IterationEnd)
                {
                    current = null;
                    return false;
                }
                current = step;
                return true;
            }

            public void Reset() { throw new NotSupportedException("a foreign iterator cannot restart"); }

            public void Dispose() { iterator.Dispose(); }
        }
    }
}
