// Stoppable calls of C# user code (not for user code).
//
// The engine calls every user method through a stub made by Calls.Stub: it records that the
// thread is inside a user call (Enter/Leave, under the thread's own lock), and turns a
// ThreadAbortException into CallStoppedException after Thread.ResetAbort(), so the abort never
// leaves the call it was meant for. Calls.Abort(ident) is what the engine's interrupt asks for:
// it aborts only a thread that is inside a call right now, under that same lock.
using System;
using System.Collections.Generic;
using System.Linq;
using System.Linq.Expressions;
using System.Reflection;
using System.Reflection.Emit;
using System.Runtime.InteropServices;
using System.Threading;

namespace Coflows
{
    /// <summary>A call was stopped: its time limit passed or its caller went away.</summary>
    public class CallStoppedException : Exception
    {
        public CallStoppedException(string message) : base(message) { }
    }

    public static class Calls
    {
        /// <summary>What the host knows of one thread (internal; public for the compiled wrappers).</summary>
        public sealed class State
        {
            internal Thread Thread;
            internal int Depth;  // nested user calls (C# → Host.Call → C#)
            internal int Out;  // C# called back into Python (Host.Call, M) and is not back yet
            internal bool Aborting;  // a stop was requested for the current outermost call
        }

        [ThreadStatic] private static State current;
        private static readonly Dictionary<ulong, State> byIdent = new Dictionary<ulong, State>();

        // Python's threading.get_ident() is pthread_self(): the key the engine's interrupt uses.
        [DllImport("libc", EntryPoint = "pthread_self")]
        private static extern UIntPtr pthread_self();

        private static readonly MethodInfo EnterMethod = typeof(Calls).GetMethod("Enter");
        private static readonly MethodInfo LeaveMethod = typeof(Calls).GetMethod("Leave");
        private static readonly MethodInfo StoppedMethod = typeof(Calls).GetMethod("Stopped");

        public static State Enter()
        {
            var s = current;
            if (s == null)
            {
                s = new State { Thread = Thread.CurrentThread };
                var ident = pthread_self().ToUInt64();
                lock (byIdent)
                    byIdent[ident] = s;
                current = s;
            }
            lock (s)
                s.Depth++;
            return s;
        }

        public static void Leave(State s)
        {
            if (s == null)
                return;  // aborted in Enter, before the call began
            lock (s)
            {
                if (--s.Depth == 0)
                    s.Aborting = false;
            }
        }

        /// <summary>In the wrapper's catch: cancel the abort, answer the error Python sees.</summary>
        public static Exception Stopped()
        {
            Thread.ResetAbort();
            return new CallStoppedException("the call was stopped (its time limit passed or its caller went away)");
        }

        /// <summary>C# calls back into Python (Host.Call, Coflows.M): no abort is delivered meanwhile.</summary>
        public static State GoOut()
        {
            var s = current;
            if (s == null)
                return null;
            lock (s)
                s.Out++;
            return s;
        }

        /// <summary>
        /// Back from Python: if the call was stopped meanwhile, abort it now, here, in C# code under
        /// the call's stub (its catch ends the call).
        /// </summary>
        public static void ComeBack(State s)
        {
            if (s == null)
                return;
            bool stop;
            lock (s)
            {
                s.Out--;
                stop = s.Aborting && s.Depth > 0 && s.Out == 0;
            }
            if (stop)
                Thread.CurrentThread.Abort();
        }

        /// <summary>Abort the user call running on the thread Python knows as <paramref name="ident"/>.</summary>
        public static bool Abort(ulong ident)
        {
            State s;
            lock (byIdent)
            {
                if (!byIdent.TryGetValue(ident, out s))
                    return false;
            }
            lock (s)
            {
                if (s.Depth == 0 || !s.Thread.IsAlive)
                    return false;
                s.Aborting = true;
                // Only C# code under a stub gets the abort. While the thread is out in Python (a
                // callback, maybe calling C# again), an abort landing in pythonnet's own frames
                // would escape into Python: ComeBack delivers it when the callback returns instead.
                if (s.Out == 0)
                    s.Thread.Abort();
                return true;
            }
        }

        /// <summary>True while the thread <paramref name="ident"/> is inside a user call.</summary>
        public static bool InCall(ulong ident)
        {
            State s;
            lock (byIdent)
            {
                if (!byIdent.TryGetValue(ident, out s))
                    return false;
            }
            lock (s)
                return s.Depth > 0;
        }

        // Agent hooks (Agents.cs delegates) as stoppable calls, like the stubs below.
        public static void Hook(Load hook, object[] data)
        {
            State s = null;
            try { s = Enter(); try { hook(data); } finally { Leave(s); } }
            catch (ThreadAbortException) { throw Stopped(); }
        }

        public static void Hook(MCallback hook, string id, object data)
        {
            State s = null;
            try { s = Enter(); try { hook(id, data); } finally { Leave(s); } }
            catch (ThreadAbortException) { throw Stopped(); }
        }

        public static object Hook(Body hook, object data)
        {
            State s = null;
            try { s = Enter(); try { return hook(data); } finally { Leave(s); } }
            catch (ThreadAbortException) { throw Stopped(); }
        }

        public static void Hook(Job hook, DateTime timestamp, string executionType)
        {
            State s = null;
            try { s = Enter(); try { hook(timestamp, executionType); } finally { Leave(s); } }
            catch (ThreadAbortException) { throw Stopped(); }
        }

        private static readonly ModuleBuilder stubs = AppDomain.CurrentDomain
            .DefineDynamicAssembly(new AssemblyName("Coflows.Stoppable"), AssemblyBuilderAccess.Run)
            .DefineDynamicModule("Coflows.Stoppable");
        private static int stubCount;

        /// <summary>
        /// A class with one static method <c>Call</c> of <paramref name="method"/>'s signature (a static
        /// method or property getter) that calls it as a stoppable call. A static method, not a
        /// delegate: pythonnet calls a static method about 3 µs faster than a delegate.
        /// </summary>
        public static Type Stub(MethodInfo method)
        {
            var ps = method.GetParameters();
            var types = ps.Select(p => p.ParameterType).ToArray();
            var ret = method.ReturnType;
            var delegateType = Expression.GetDelegateType(types.Concat(new[] { ret }).ToArray());
            TypeBuilder tb;
            lock (stubs)
                tb = stubs.DefineType("Coflows.Stoppable.Stub" + (++stubCount) + "_" + method.Name,
                                      TypeAttributes.Public | TypeAttributes.Sealed | TypeAttributes.Abstract);
            var target = tb.DefineField("Target", delegateType, FieldAttributes.Public | FieldAttributes.Static);
            var mb = tb.DefineMethod("Call", MethodAttributes.Public | MethodAttributes.Static, ret, types);
            for (int i = 0; i < ps.Length; i++)
                mb.DefineParameter(i + 1, ParameterAttributes.None, ps[i].Name);
            var il = mb.GetILGenerator();
            var s = il.DeclareLocal(typeof(State));
            var r = ret == typeof(void) ? null : il.DeclareLocal(ret);
            il.BeginExceptionBlock();  // try { s = Enter(); try { r = Target(args); } finally { Leave(s); } }
            il.Emit(OpCodes.Call, EnterMethod);
            il.Emit(OpCodes.Stloc, s);
            il.BeginExceptionBlock();
            // through the delegate, not a direct call: the JIT would inline a small user method here,
            // and its frame (file:line) would vanish from stack traces
            il.Emit(OpCodes.Ldsfld, target);
            for (int i = 0; i < ps.Length; i++)
                il.Emit(OpCodes.Ldarg, (short)i);
            il.Emit(OpCodes.Callvirt, delegateType.GetMethod("Invoke"));
            if (r != null)
                il.Emit(OpCodes.Stloc, r);
            il.BeginFinallyBlock();
            il.Emit(OpCodes.Ldloc, s);
            il.Emit(OpCodes.Call, LeaveMethod);
            il.EndExceptionBlock();
            il.BeginCatchBlock(typeof(ThreadAbortException));  // catch (ThreadAbortException) { throw Stopped(); }
            il.Emit(OpCodes.Pop);
            il.Emit(OpCodes.Call, StoppedMethod);
            il.Emit(OpCodes.Throw);
            il.EndExceptionBlock();
            if (r != null)
                il.Emit(OpCodes.Ldloc, r);
            il.Emit(OpCodes.Ret);
            var type = tb.CreateType();
            type.GetField("Target").SetValue(null, Delegate.CreateDelegate(delegateType, method));
            return type;
        }
    }
}
