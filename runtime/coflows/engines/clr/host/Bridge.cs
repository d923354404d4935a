// Helpers the coflows C# engine needs from pythonnet (not for user code).
//
// pythonnet releases the GIL while a .NET method runs; these methods build
// Python objects, so they take the GIL back first (Py.GIL()).
using System;
using System.Collections;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Globalization;
using System.Linq.Expressions;
using System.Reflection;
using Python.Runtime;

namespace Coflows.Bridge
{
    public static class Classes
    {
        /// <summary>The Python class pythonnet uses for a .NET type (of any assembly, even a reloaded one).</summary>
        public static PyObject Of(Type type)
        {
            using (Py.GIL())
            {
                return PyType.Get(type);
            }
        }
    }

    /// <summary>
    /// .NET results as plain Python values, built in one call: primitives and strings, null -> None,
    /// DateTime/DateTimeOffset -> datetime, TimeSpan -> timedelta, decimal -> Decimal, Guid and enums ->
    /// str, dictionaries -> dict (keys as text), other enumerables -> list, other objects -> dict of
    /// their public properties and fields. Member getters are compiled once per type.
    /// </summary>
    public static class Values
    {
        private const int MaxDepth = 64;

        private sealed class Member
        {
            public PyObject Key;
            public Func<object, object> Get;
        }

        private static readonly ConcurrentDictionary<Type, Member[]> members = new ConcurrentDictionary<Type, Member[]>();
        private static PyObject datetimeType, timedeltaType, decimalType, timezoneType, utc;

        public static PyObject ToPython(object value)
        {
            using (Py.GIL())
            {
                if (datetimeType == null)
                    Init();
                return Convert(value, 0);
            }
        }

        private static void Init()
        {
            using (var dt = Py.Import("datetime"))
            using (var dec = Py.Import("decimal"))
            {
                timedeltaType = dt.GetAttr("timedelta");
                timezoneType = dt.GetAttr("timezone");
                utc = timezoneType.GetAttr("utc");
                decimalType = dec.GetAttr("Decimal");
                datetimeType = dt.GetAttr("datetime");  // last: the "initialised" flag
            }
        }

        private static PyObject Convert(object v, int depth)
        {
            if (v == null || v is DBNull)
                return ConverterExtension.ToPython(null);
            if (depth > MaxDepth)
                throw new InvalidOperationException("the result is nested more than " + MaxDepth + " levels deep (a reference cycle?)");
            var t = v.GetType();
            if (t.IsEnum)
                return new PyString(v.ToString());
            switch (Type.GetTypeCode(t))
            {
                case TypeCode.Double:
                    return new PyFloat((double)v);
                case TypeCode.Int32:
                    return new PyInt((int)v);
                case TypeCode.Int64:
                    return new PyInt((long)v);
                case TypeCode.String:
                    return new PyString((string)v);
                case TypeCode.Boolean:
                case TypeCode.Char:
                case TypeCode.SByte:
                case TypeCode.Byte:
                case TypeCode.Int16:
                case TypeCode.UInt16:
                case TypeCode.UInt32:
                case TypeCode.UInt64:
                case TypeCode.Single:
                    return ConverterExtension.ToPython(v);
                case TypeCode.Decimal:
                    using (var s = new PyString(((decimal)v).ToString(CultureInfo.InvariantCulture)))
                        return decimalType.Invoke(s);
                case TypeCode.DateTime:
                    return DateTimeToPython((DateTime)v, ((DateTime)v).Kind == DateTimeKind.Utc ? utc : null);
            }
            if (v is DateTimeOffset)
            {
                var o = (DateTimeOffset)v;
                using (var minutes = new PyFloat(o.Offset.TotalMinutes))
                using (var kw = new PyDict())
                {
                    kw.SetItem("minutes", minutes);
                    using (var delta = timedeltaType.Invoke(new PyObject[0], kw))
                    using (var tz = timezoneType.Invoke(delta))
                        return DateTimeToPython(o.DateTime, tz);
                }
            }
            if (v is TimeSpan)
            {
                using (var us = new PyInt(((TimeSpan)v).Ticks / 10))
                using (var kw = new PyDict())
                {
                    kw.SetItem("microseconds", us);
                    return timedeltaType.Invoke(new PyObject[0], kw);
                }
            }
            if (v is Guid)
                return new PyString(v.ToString());
            var dict = v as IDictionary;
            if (dict != null)
            {
                var d = new PyDict();
                foreach (DictionaryEntry e in dict)
                    using (var item = Convert(e.Value, depth + 1))
                        d.SetItem(System.Convert.ToString(e.Key, CultureInfo.InvariantCulture), item);
                return d;
            }
            var seq = v as IEnumerable;
            if (seq != null)
            {
                if (IsGenericDictionary(t))
                    return GenericDictionary(seq, depth);
                var l = new PyList();
                foreach (var e in seq)
                    using (var item = Convert(e, depth + 1))
                        l.Append(item);
                return l;
            }
            var obj = new PyDict();
            foreach (var m in members.GetOrAdd(t, MembersOf))
                using (var item = Convert(m.Get(v), depth + 1))
                    obj.SetItem(m.Key, item);
            return obj;
        }

        private static PyObject DateTimeToPython(DateTime d, PyObject tz)
        {
            var args = new PyObject[tz == null ? 7 : 8];
            args[0] = new PyInt(d.Year);
            args[1] = new PyInt(d.Month);
            args[2] = new PyInt(d.Day);
            args[3] = new PyInt(d.Hour);
            args[4] = new PyInt(d.Minute);
            args[5] = new PyInt(d.Second);
            args[6] = new PyInt((int)(d.Ticks % TimeSpan.TicksPerSecond / 10));
            if (tz != null)
                args[7] = tz;
            try
            {
                return datetimeType.Invoke(args);
            }
            finally
            {
                for (int i = 0; i < 7; i++)
                    args[i].Dispose();
            }
        }

        private static bool IsGenericDictionary(Type t)
        {
            foreach (var i in t.GetInterfaces())
                if (i.IsGenericType && (i.GetGenericTypeDefinition() == typeof(IDictionary<,>)
                                        || i.GetGenericTypeDefinition() == typeof(IReadOnlyDictionary<,>)))
                    return true;
            return false;
        }

        private static PyObject GenericDictionary(IEnumerable pairs, int depth)
        {
            var d = new PyDict();
            foreach (var kv in pairs)
            {
                var kt = kv.GetType();
                var key = kt.GetProperty("Key").GetValue(kv, null);
                var value = kt.GetProperty("Value").GetValue(kv, null);
                using (var item = Convert(value, depth + 1))
                    d.SetItem(System.Convert.ToString(key, CultureInfo.InvariantCulture), item);
            }
            return d;
        }

        private static Member[] MembersOf(Type t)
        {
            var list = new List<Member>();
            foreach (var p in t.GetProperties(BindingFlags.Public | BindingFlags.Instance))
            {
                if (!p.CanRead || p.GetGetMethod() == null || p.GetIndexParameters().Length > 0)
                    continue;
                list.Add(new Member { Key = new PyString(p.Name), Get = Getter(t, p) });
            }
            foreach (var f in t.GetFields(BindingFlags.Public | BindingFlags.Instance))
                list.Add(new Member { Key = new PyString(f.Name), Get = Getter(t, f) });
            return list.ToArray();
        }

        private static Func<object, object> Getter(Type t, MemberInfo member)
        {
            try
            {
                var obj = Expression.Parameter(typeof(object), "o");
                var typed = t.IsValueType ? Expression.Unbox(obj, t) : (Expression)Expression.Convert(obj, t);
                var access = Expression.MakeMemberAccess(typed, member);
                return Expression.Lambda<Func<object, object>>(Expression.Convert(access, typeof(object)), obj).Compile();
            }
            catch (Exception)
            {
                var p = member as PropertyInfo;
                if (p != null)
                    return o => p.GetValue(o, null);
                var f = (FieldInfo)member;
                return o => f.GetValue(o);
            }
        }
    }
}
