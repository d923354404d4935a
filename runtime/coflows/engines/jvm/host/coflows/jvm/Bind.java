package coflows.jvm;

import java.lang.reflect.Array;
import java.lang.reflect.Constructor;
import java.lang.reflect.GenericArrayType;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.lang.reflect.ParameterizedType;
import java.lang.reflect.Type;
import java.lang.reflect.TypeVariable;
import java.lang.reflect.WildcardType;
import java.math.BigDecimal;
import java.math.BigInteger;
import java.time.Duration;
import java.time.Instant;
import java.time.LocalDate;
import java.time.LocalDateTime;
import java.time.LocalTime;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.time.ZonedDateTime;
import java.time.format.DateTimeParseException;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Date;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Queue;
import java.util.Set;
import java.util.SortedMap;
import java.util.SortedSet;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.UUID;

/**
 * A JSON value (as {@link Json#parse} makes it, or a boxed value passed from Python) → a value of a
 * declared Java type: primitives and boxes (ranges checked), String, char, BigDecimal, BigInteger,
 * java.time, Date, UUID, enums (by name), arrays, collections, maps, Optional, gson trees, records
 * and POJOs (no-argument constructor, then setters or public fields).
 */
public final class Bind {
    private Bind() {}

    public static Object bind(Object v, Type t, String where) {
        if (t instanceof Class) return bindClass(v, (Class<?>) t, null, where);
        if (t instanceof ParameterizedType) {
            ParameterizedType pt = (ParameterizedType) t;
            return bindClass(v, (Class<?>) pt.getRawType(), pt.getActualTypeArguments(), where);
        }
        if (t instanceof GenericArrayType) {
            Type comp = ((GenericArrayType) t).getGenericComponentType();
            return array(v, raw(comp), comp, where);
        }
        if (t instanceof WildcardType) return bind(v, ((WildcardType) t).getUpperBounds()[0], where);
        if (t instanceof TypeVariable) {
            Type[] b = ((TypeVariable<?>) t).getBounds();
            return bind(v, b.length > 0 ? b[0] : Object.class, where);
        }
        return Json.plain(v);
    }

    static Class<?> raw(Type t) {
        if (t instanceof Class) return (Class<?>) t;
        if (t instanceof ParameterizedType) return (Class<?>) ((ParameterizedType) t).getRawType();
        if (t instanceof GenericArrayType) return Array.newInstance(raw(((GenericArrayType) t).getGenericComponentType()), 0).getClass();
        if (t instanceof WildcardType) return raw(((WildcardType) t).getUpperBounds()[0]);
        if (t instanceof TypeVariable) {
            Type[] b = ((TypeVariable<?>) t).getBounds();
            return b.length > 0 ? raw(b[0]) : Object.class;
        }
        return Object.class;
    }

    static BindException fail(String where, String expected, Object v) {
        String shown;
        if (v == null) shown = "null";
        else if (v instanceof String) shown = "\"" + v + "\"";
        else if (v instanceof Map) shown = "an object";
        else if (v instanceof List) shown = "an array";
        else shown = String.valueOf(v);
        if (shown.length() > 60) shown = shown.substring(0, 57) + "...";
        return new BindException((where == null || where.isEmpty() ? "" : where + ": ") + "expected " + expected + ", got " + shown);
    }

    private static Object bindClass(Object v, Class<?> c, Type[] args, String where) {
        if (c == Object.class) return Json.plain(v);
        if (c.isPrimitive()) {
            if (v == null) throw fail(where, c.getName(), null);
            return scalar(v, c, where);
        }
        if (v == null) {
            if (c == Optional.class) return Optional.empty();
            return null;
        }
        if (c == String.class || c == CharSequence.class) {
            if (v instanceof String) return v;
            if (v instanceof Map || v instanceof List) return Json.write(v);
            if (v instanceof BigDecimal) return ((BigDecimal) v).toPlainString();
            return String.valueOf(v);
        }
        if (c == Integer.class || c == Long.class || c == Double.class || c == Float.class || c == Short.class
                || c == Byte.class || c == Boolean.class || c == Character.class) {
            return scalar(v, c, where);
        }
        if (c == BigDecimal.class) {
            if (v instanceof BigDecimal) return v;
            if (v instanceof Long || v instanceof Integer) return BigDecimal.valueOf(((Number) v).longValue());
            if (v instanceof BigInteger) return new BigDecimal((BigInteger) v);
            if (v instanceof Double) {
                double d = (Double) v;
                if (Double.isNaN(d) || Double.isInfinite(d)) throw fail(where, "a decimal", v);
                return BigDecimal.valueOf(d);
            }
            if (v instanceof String) {
                try {
                    return new BigDecimal(((String) v).trim());
                } catch (NumberFormatException e) {
                    throw fail(where, "a decimal", v);
                }
            }
            throw fail(where, "a decimal", v);
        }
        if (c == BigInteger.class) {
            try {
                if (v instanceof BigInteger) return v;
                if (v instanceof Long || v instanceof Integer) return BigInteger.valueOf(((Number) v).longValue());
                if (v instanceof BigDecimal) return ((BigDecimal) v).toBigIntegerExact();
                if (v instanceof Double) return new BigDecimal((Double) v).toBigIntegerExact();
                if (v instanceof String) return new BigInteger(((String) v).trim());
            } catch (ArithmeticException | NumberFormatException e) {
                throw fail(where, "an integer", v);
            }
            throw fail(where, "an integer", v);
        }
        if (c.isEnum()) return enumValue(v, c, where);
        if (c.isArray()) return array(v, c.getComponentType(), c.getComponentType(), where);
        if (java.time.temporal.Temporal.class.isAssignableFrom(c) || c == Duration.class || c == Date.class) {
            return time(v, c, where);
        }
        if (c == UUID.class) {
            try {
                return UUID.fromString(String.valueOf(v).trim());
            } catch (IllegalArgumentException e) {
                throw fail(where, "a UUID", v);
            }
        }
        if (c == Optional.class) return Optional.ofNullable(bind(v, args != null ? args[0] : Object.class, where));
        if (Collection.class.isAssignableFrom(c) || c == Iterable.class) {
            if (!(v instanceof List)) throw fail(where, "an array", v);
            Collection<Object> out = newCollection(c, where);
            Type item = args != null ? args[0] : Object.class;
            List<?> l = (List<?>) v;
            for (int i = 0; i < l.size(); i++) out.add(bind(l.get(i), item, where + "[" + i + "]"));
            return out;
        }
        if (Map.class.isAssignableFrom(c)) {
            if (!(v instanceof Map)) throw fail(where, "an object", v);
            Map<Object, Object> out = newMap(c, where);
            Type kt = args != null ? args[0] : String.class;
            Type vt = args != null ? args[1] : Object.class;
            for (Map.Entry<?, ?> e : ((Map<?, ?>) v).entrySet()) {
                String k = String.valueOf(e.getKey());
                out.put(bind(k, kt, where + "." + k), bind(e.getValue(), vt, where + "." + k));
            }
            return out;
        }
        if (Json.isJsonTree(c)) return jsonTree(v, c, where);
        if (c.isInstance(v) && !(v instanceof Map)) return v;
        Beans b = Beans.of(c);
        if (b.record && b.canonical != null) return record(v, b, where);
        if (b.noArg != null && !Beans.isPlatform(c)) return pojo(v, b, where);
        if (v instanceof String) {
            Object fromText = fromText((String) v, c);
            if (fromText != null) return fromText;
        }
        throw fail(where, c.getSimpleName(), v);
    }

    /** Numbers, booleans and chars; integer kinds are range-checked. */
    private static Object scalar(Object v, Class<?> c, String where) {
        if (c == boolean.class || c == Boolean.class) {
            if (v instanceof Boolean) return v;
            if (v instanceof String) {
                String s = ((String) v).trim().toLowerCase();
                if (s.equals("true") || s.equals("1") || s.equals("yes")) return Boolean.TRUE;
                if (s.equals("false") || s.equals("0") || s.equals("no")) return Boolean.FALSE;
            }
            if (v instanceof Long || v instanceof Integer) return ((Number) v).longValue() != 0;
            throw fail(where, "a boolean", v);
        }
        if (c == char.class || c == Character.class) {
            if (v instanceof Character) return v;
            if (v instanceof String && ((String) v).length() == 1) return ((String) v).charAt(0);
            throw fail(where, "one character", v);
        }
        if (c == double.class || c == Double.class || c == float.class || c == Float.class) {
            double d;
            if (v instanceof Number) d = ((Number) v).doubleValue();
            else if (v instanceof String) {
                try {
                    d = Double.parseDouble(((String) v).trim());
                } catch (NumberFormatException e) {
                    throw fail(where, "a number", v);
                }
            } else throw fail(where, "a number", v);
            return (c == float.class || c == Float.class) ? (Object) (float) d : (Object) d;
        }
        // integer kinds
        long x;
        if (v instanceof Long || v instanceof Integer || v instanceof Short || v instanceof Byte) {
            x = ((Number) v).longValue();
        } else if (v instanceof Double || v instanceof Float || v instanceof BigDecimal || v instanceof BigInteger
                || v instanceof String) {
            try {
                BigDecimal d = v instanceof String ? new BigDecimal(((String) v).trim())
                        : v instanceof BigDecimal ? (BigDecimal) v
                        : v instanceof BigInteger ? new BigDecimal((BigInteger) v)
                        : new BigDecimal(((Number) v).doubleValue());
                x = d.longValueExact();
            } catch (ArithmeticException | NumberFormatException e) {
                throw fail(where, "an integer (" + c.getSimpleName().toLowerCase() + ")", v);
            }
        } else {
            throw fail(where, "an integer", v);
        }
        if (c == long.class || c == Long.class) return x;
        if (c == int.class || c == Integer.class) {
            if (x < Integer.MIN_VALUE || x > Integer.MAX_VALUE) throw range(where, "int", v);
            return (int) x;
        }
        if (c == short.class || c == Short.class) {
            if (x < Short.MIN_VALUE || x > Short.MAX_VALUE) throw range(where, "short", v);
            return (short) x;
        }
        if (c == byte.class || c == Byte.class) {
            if (x < Byte.MIN_VALUE || x > Byte.MAX_VALUE) throw range(where, "byte", v);
            return (byte) x;
        }
        throw fail(where, c.getName(), v);
    }

    private static BindException range(String where, String type, Object v) {
        return new BindException((where == null || where.isEmpty() ? "" : where + ": ") + v + " is out of range for " + type);
    }

    private static Object enumValue(Object v, Class<?> c, String where) {
        if (c.isInstance(v)) return v;
        Object[] constants = c.getEnumConstants();
        if (v instanceof String) {
            String s = ((String) v).trim();
            for (Object k : constants) if (((Enum<?>) k).name().equals(s)) return k;
            for (Object k : constants) if (((Enum<?>) k).name().equalsIgnoreCase(s)) return k;
        }
        StringBuilder names = new StringBuilder();
        for (Object k : constants) names.append(names.length() > 0 ? ", " : "").append(((Enum<?>) k).name());
        throw fail(where, "one of " + names, v);
    }

    private static Object array(Object v, Class<?> comp, Type compType, String where) {
        if (v == null) return null;
        if (comp == byte.class && v instanceof String) {
            try {
                return java.util.Base64.getDecoder().decode((String) v);
            } catch (IllegalArgumentException e) {
                throw fail(where, "base64 text", v);
            }
        }
        if (!(v instanceof List)) throw fail(where, "an array", v);
        List<?> l = (List<?>) v;
        Object out = Array.newInstance(comp, l.size());
        for (int i = 0; i < l.size(); i++) Array.set(out, i, bind(l.get(i), compType, where + "[" + i + "]"));
        return out;
    }

    @SuppressWarnings("unchecked")
    private static Collection<Object> newCollection(Class<?> c, String where) {
        if (!c.isInterface() && !Modifier.isAbstract(c.getModifiers())) {
            try {
                return (Collection<Object>) c.getDeclaredConstructor().newInstance();
            } catch (ReflectiveOperationException e) {
                throw new BindException(where + ": cannot create a " + c.getName());
            }
        }
        if (SortedSet.class.isAssignableFrom(c)) return new TreeSet<>();
        if (Set.class.isAssignableFrom(c)) return new LinkedHashSet<>();
        if (Queue.class.isAssignableFrom(c)) return new ArrayDeque<>();
        return new ArrayList<>();
    }

    @SuppressWarnings("unchecked")
    private static Map<Object, Object> newMap(Class<?> c, String where) {
        if (!c.isInterface() && !Modifier.isAbstract(c.getModifiers())) {
            try {
                return (Map<Object, Object>) c.getDeclaredConstructor().newInstance();
            } catch (ReflectiveOperationException e) {
                throw new BindException(where + ": cannot create a " + c.getName());
            }
        }
        if (SortedMap.class.isAssignableFrom(c)) return new TreeMap<>();
        return new LinkedHashMap<>();
    }

    private static OffsetDateTime offsetDateTime(String s) {
        try {
            return OffsetDateTime.parse(s);
        } catch (DateTimeParseException e) {
            try {
                return ZonedDateTime.parse(s).toOffsetDateTime();
            } catch (DateTimeParseException e2) {
                if (s.length() == 10) return LocalDate.parse(s).atStartOfDay().atOffset(ZoneOffset.UTC);
                return LocalDateTime.parse(s).atOffset(ZoneOffset.UTC); // no offset: UTC
            }
        }
    }

    private static Object time(Object v, Class<?> c, String where) {
        if (c.isInstance(v)) return v;
        if (c == Duration.class && v instanceof Number) {
            BigDecimal secs = v instanceof BigDecimal ? (BigDecimal) v : new BigDecimal(v.toString());
            return Duration.ofSeconds(secs.longValue(), secs.remainder(BigDecimal.ONE).movePointRight(9).longValue());
        }
        if (!(v instanceof String)) throw fail(where, c.getSimpleName() + " (ISO 8601 text)", v);
        String s = ((String) v).trim();
        if (s.endsWith("Z") || s.endsWith("z")) s = s.substring(0, s.length() - 1) + "+00:00";
        try {
            if (c == LocalDate.class) return s.length() > 10 ? offsetOrLocal(s).toLocalDate() : LocalDate.parse(s);
            if (c == LocalDateTime.class) return offsetOrLocal(s);
            if (c == LocalTime.class) return LocalTime.parse(s);
            if (c == OffsetDateTime.class) return offsetDateTime(s);
            if (c == ZonedDateTime.class) {
                try {
                    return ZonedDateTime.parse(s);
                } catch (DateTimeParseException e) {
                    return offsetDateTime(s).toZonedDateTime();
                }
            }
            if (c == Instant.class) return offsetDateTime(s).toInstant();
            if (c == Date.class) return Date.from(offsetDateTime(s).toInstant());
            if (c == Duration.class) return Duration.parse(s);
            if (c == java.time.Year.class) return java.time.Year.parse(s);
            if (c == java.time.YearMonth.class) return java.time.YearMonth.parse(s);
        } catch (DateTimeParseException e) {
            throw fail(where, c.getSimpleName() + " (ISO 8601 text)", v);
        }
        throw fail(where, c.getSimpleName(), v);
    }

    /** Local wall time: an offset, if given, is dropped (the time is kept as written). */
    private static LocalDateTime offsetOrLocal(String s) {
        try {
            return LocalDateTime.parse(s);
        } catch (DateTimeParseException e) {
            if (s.length() == 10) return LocalDate.parse(s).atStartOfDay();
            return offsetDateTime(s).toLocalDateTime();
        }
    }

    private static Object jsonTree(Object v, Class<?> c, String where) {
        String text = Json.write(v);
        try {
            ClassLoader cl = c.getClassLoader();
            if (c.getName().startsWith("com.google.gson.")) {
                Class<?> parser = Class.forName("com.google.gson.JsonParser", true, cl);
                Object tree = parser.getMethod("parseString", String.class).invoke(null, text);
                if (c.isInstance(tree)) return tree;
            } else if (c.getName().startsWith("org.json.")) {
                return c.getConstructor(String.class).newInstance(text);
            }
        } catch (InvocationTargetException e) {
            throw fail(where, c.getSimpleName() + " (" + e.getCause().getMessage() + ")", v);
        } catch (ReflectiveOperationException | RuntimeException e) {
            throw fail(where, c.getSimpleName(), v);
        }
        throw fail(where, c.getSimpleName(), v);
    }

    private static Object record(Object v, Beans b, String where) {
        if (!(v instanceof Map)) throw fail(where, "an object (" + b.type.getSimpleName() + ")", v);
        Map<?, ?> m = (Map<?, ?>) v;
        unknownKeys(m, b, where);
        Object[] a = new Object[b.componentNames.length];
        for (int i = 0; i < a.length; i++) {
            String n = b.componentNames[i];
            String at = where + "." + n;
            Object x = m.get(n);
            Class<?> r = raw(b.componentTypes[i]);
            if (x == null && r.isPrimitive()) {
                if (m.containsKey(n)) throw fail(at, r.getName(), null);
                a[i] = r == boolean.class ? (Object) false : r == char.class ? (Object) '\0' : scalar(0L, r, at);
            } else {
                a[i] = bind(x, b.componentTypes[i], at);
            }
        }
        try {
            return b.canonical.newInstance(a);
        } catch (InvocationTargetException e) {
            throw new BindException(where + ": " + b.type.getSimpleName() + ": " + e.getCause());
        } catch (ReflectiveOperationException e) {
            throw new BindException(where + ": cannot create a " + b.type.getName() + ": " + e);
        }
    }

    private static void unknownKeys(Map<?, ?> m, Beans b, String where) {
        for (Object k : m.keySet()) {
            Beans.Prop p = b.props.get(String.valueOf(k));
            if (p == null || !(b.record || p.writable())) {
                StringBuilder known = new StringBuilder();
                for (Beans.Prop q : b.props.values()) {
                    if (b.record || q.writable()) known.append(known.length() > 0 ? ", " : "").append(q.name);
                }
                throw new BindException((where.isEmpty() ? "" : where + ": ") + "unknown property '" + k + "' of "
                        + b.type.getSimpleName() + " (known: " + known + ")");
            }
        }
    }

    private static Object pojo(Object v, Beans b, String where) {
        if (!(v instanceof Map)) throw fail(where, "an object (" + b.type.getSimpleName() + ")", v);
        Map<?, ?> m = (Map<?, ?>) v;
        unknownKeys(m, b, where);
        Object o;
        try {
            o = b.noArg.newInstance();
        } catch (InvocationTargetException e) {
            throw new BindException(where + ": " + b.type.getSimpleName() + "(): " + e.getCause());
        } catch (ReflectiveOperationException e) {
            throw new BindException(where + ": cannot create a " + b.type.getName() + ": " + e);
        }
        for (Map.Entry<?, ?> e : m.entrySet()) {
            Beans.Prop p = b.props.get(String.valueOf(e.getKey()));
            String at = where + "." + p.name;
            Object x = bind(e.getValue(), p.writeType, at);
            try {
                p.write(o, x);
            } catch (Throwable t) {
                throw new BindException(at + ": " + t);
            }
        }
        return o;
    }

    /** {@code static valueOf(String)}, {@code static parse(CharSequence)} or a {@code (String)} constructor. */
    private static Object fromText(String s, Class<?> c) {
        try {
            for (String name : new String[] {"valueOf", "parse", "fromString", "of"}) {
                for (Class<?> p : new Class<?>[] {String.class, CharSequence.class}) {
                    try {
                        Method m = c.getMethod(name, p);
                        if (Modifier.isStatic(m.getModifiers()) && c.isAssignableFrom(m.getReturnType())) return m.invoke(null, s);
                    } catch (NoSuchMethodException e) {
                        // next
                    }
                }
            }
            Constructor<?> k = c.getConstructor(String.class);
            return k.newInstance(s);
        } catch (ReflectiveOperationException | RuntimeException e) {
            return null;
        }
    }
}
