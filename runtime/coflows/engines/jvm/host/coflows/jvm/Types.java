package coflows.jvm;

import java.lang.reflect.GenericArrayType;
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
import java.time.ZonedDateTime;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Date;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.UUID;

/**
 * Java types → the runtime's parameter types ({@code ParamType} on the Python side): a map with
 * {@code kind} (any, str, int, float, bool, decimal, datetime, date, time, list, dict, object),
 * {@code name}, {@code item}, {@code enum}, {@code props} (POJOs and records) and {@code nullable}.
 */
final class Types {
    private Types() {}

    static Map<String, Object> describe(Type t) {
        return describe(t, new HashSet<>());
    }

    private static Map<String, Object> kind(String kind, Type t) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("kind", kind);
        m.put("name", name(t));
        return m;
    }

    private static Map<String, Object> describe(Type t, Set<Class<?>> seen) {
        Class<?> c = Bind.raw(t);
        if (t instanceof TypeVariable || t instanceof WildcardType) {
            Map<String, Object> m = kind("any", t);
            return m;
        }
        if (c == int.class || c == long.class || c == short.class || c == byte.class) return kind("int", t);
        if (c == Integer.class || c == Long.class || c == Short.class || c == Byte.class || c == BigInteger.class) {
            return nullable(kind("int", t));
        }
        if (c == double.class || c == float.class) return kind("float", t);
        if (c == Double.class || c == Float.class) return nullable(kind("float", t));
        if (c == boolean.class) return kind("bool", t);
        if (c == Boolean.class) return nullable(kind("bool", t));
        if (c == char.class) return kind("str", t);
        if (c == Character.class || c == String.class || c == CharSequence.class || c == UUID.class
                || c == Duration.class) {
            return nullable(kind("str", t));
        }
        if (c == BigDecimal.class) return nullable(kind("decimal", t));
        if (c == LocalDate.class) return nullable(kind("date", t));
        if (c == LocalTime.class) return nullable(kind("time", t));
        if (c == LocalDateTime.class || c == OffsetDateTime.class || c == ZonedDateTime.class || c == Instant.class
                || c == Date.class) {
            return nullable(kind("datetime", t));
        }
        if (c.isEnum()) {
            Map<String, Object> m = nullable(kind("object", t));
            List<String> names = new ArrayList<>();
            for (Object k : c.getEnumConstants()) names.add(((Enum<?>) k).name());
            m.put("enum", names);
            return m;
        }
        if (c == byte[].class) return nullable(kind("str", t));
        if (c.isArray()) {
            Type comp = t instanceof GenericArrayType ? ((GenericArrayType) t).getGenericComponentType() : c.getComponentType();
            Map<String, Object> m = nullable(kind("list", t));
            m.put("item", describe(comp, seen));
            return m;
        }
        Type[] args = t instanceof ParameterizedType ? ((ParameterizedType) t).getActualTypeArguments() : null;
        if (c == Optional.class) {
            Map<String, Object> m = args != null ? describe(args[0], seen) : kind("any", t);
            return nullable(m);
        }
        if (Collection.class.isAssignableFrom(c) || c == Iterable.class) {
            Map<String, Object> m = nullable(kind("list", t));
            m.put("item", args != null ? describe(args[0], seen) : kind("any", Object.class));
            return m;
        }
        if (Map.class.isAssignableFrom(c)) {
            Map<String, Object> m = nullable(kind("dict", t));
            m.put("item", args != null ? describe(args[1], seen) : kind("any", Object.class));
            return m;
        }
        if (c == Object.class || Json.isJsonTree(c) || Beans.isPlatform(c)) return kind("any", t);
        Beans b = Beans.of(c);
        if (b.bindable()) {
            Map<String, Object> m = nullable(kind("object", t));
            if (seen.add(c)) {
                Map<String, Object> props = new LinkedHashMap<>();
                for (Beans.Prop p : b.record ? new ArrayList<>(b.props.values()) : b.writable()) {
                    props.put(p.name, describe(p.writeType, seen));
                }
                m.put("props", props);
                seen.remove(c);
            }
            return m;
        }
        return kind("any", t);
    }

    private static Map<String, Object> nullable(Map<String, Object> m) {
        m.put("nullable", Boolean.TRUE);
        return m;
    }

    /** {@code List<Integer>}, {@code int[]}, {@code Item}: the type as written, without packages. */
    static String name(Type t) {
        if (t instanceof Class) {
            Class<?> c = (Class<?>) t;
            if (c.isArray()) return name(c.getComponentType()) + "[]";
            String n = c.getSimpleName();
            return n.isEmpty() ? c.getName() : n;
        }
        if (t instanceof ParameterizedType) {
            ParameterizedType p = (ParameterizedType) t;
            StringBuilder sb = new StringBuilder(name(p.getRawType())).append('<');
            Type[] a = p.getActualTypeArguments();
            for (int i = 0; i < a.length; i++) sb.append(i > 0 ? ", " : "").append(name(a[i]));
            return sb.append('>').toString();
        }
        if (t instanceof GenericArrayType) return name(((GenericArrayType) t).getGenericComponentType()) + "[]";
        if (t instanceof WildcardType) return "?";
        if (t instanceof TypeVariable) return ((TypeVariable<?>) t).getName();
        return t.getTypeName();
    }
}
