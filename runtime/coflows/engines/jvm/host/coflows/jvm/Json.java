package coflows.jvm;

import java.lang.reflect.Array;
import java.math.BigDecimal;
import java.math.BigInteger;
import java.time.Duration;
import java.time.OffsetDateTime;
import java.time.ZonedDateTime;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Calendar;
import java.util.Date;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalDouble;
import java.util.OptionalInt;
import java.util.OptionalLong;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.stream.BaseStream;

/**
 * JSON text for any Java value, and a small JSON parser.
 *
 * <p>Writing: primitives and boxes, strings, BigDecimal/BigInteger (numbers), enums (names),
 * java.time values (ISO 8601 text; Duration as seconds), Date/Calendar (ISO instants), Optional,
 * arrays (byte[] as base64), Iterable/Iterator/Stream, Map (keys as text), JSON trees of gson,
 * org.json and Jackson (as their own text), records, and POJOs (getters and public fields).
 * NaN and infinities become null. The writer of each class is computed once and kept in a
 * {@link ClassValue}, which does not keep a workflow's class loader alive.
 *
 * <p>Parsing: objects become LinkedHashMap, arrays ArrayList, integers Long (BigInteger when
 * larger), other numbers Double, or BigDecimal when {@code exact}.
 */
public final class Json {
    private Json() {}

    static final int MAX_DEPTH = 200;

    @FunctionalInterface
    interface Writer {
        void write(StringBuilder sb, Object v, int depth);
    }

    private static final ClassValue<Writer> WRITERS = new ClassValue<>() {
        @Override
        protected Writer computeValue(Class<?> c) {
            return writerFor(c);
        }
    };

    public static String write(Object v) {
        StringBuilder sb = new StringBuilder(32);
        write(sb, v, 0);
        return sb.toString();
    }

    static void write(StringBuilder sb, Object v, int depth) {
        if (v == null) {
            sb.append("null");
            return;
        }
        if (depth > MAX_DEPTH) {
            throw new IllegalStateException("the result is nested more than " + MAX_DEPTH + " levels deep (a reference cycle?)");
        }
        WRITERS.get(v.getClass()).write(sb, v, depth);
    }

    private static final String[] JSON_TREES = {
        "com.google.gson.JsonElement", "org.json.JSONObject", "org.json.JSONArray",
        "com.fasterxml.jackson.databind.JsonNode",
    };

    static boolean isJsonTree(Class<?> c) {
        for (Class<?> k = c; k != null && k != Object.class; k = k.getSuperclass()) {
            String n = k.getName();
            for (String t : JSON_TREES) if (t.equals(n)) return true;
        }
        return false;
    }

    private static Writer writerFor(Class<?> c) {
        if (c == String.class) return (sb, v, d) -> string(sb, (String) v);
        if (app.quant.clr.CLRObject.class.isAssignableFrom(c)) { // a proxy: its object's JSON, written by Python
            return (sb, v, d) -> sb.append(((app.quant.clr.CLRObject) v).toJson());
        }
        if (c == Integer.class || c == Long.class || c == Short.class || c == Byte.class
                || c == BigInteger.class || c == java.util.concurrent.atomic.AtomicInteger.class
                || c == java.util.concurrent.atomic.AtomicLong.class) {
            return (sb, v, d) -> sb.append(v.toString());
        }
        if (c == Double.class || c == Float.class) return (sb, v, d) -> number(sb, ((Number) v).doubleValue());
        if (c == Boolean.class) return (sb, v, d) -> sb.append(((Boolean) v) ? "true" : "false");
        if (c == AtomicBoolean.class) return (sb, v, d) -> sb.append(((AtomicBoolean) v).get() ? "true" : "false");
        if (c == BigDecimal.class) return (sb, v, d) -> sb.append(((BigDecimal) v).toString());
        if (c == Character.class) return (sb, v, d) -> string(sb, v.toString());
        if (CharSequence.class.isAssignableFrom(c)) return (sb, v, d) -> string(sb, v.toString());
        if (Enum.class.isAssignableFrom(c)) return (sb, v, d) -> string(sb, ((Enum<?>) v).name());
        if (c == ZonedDateTime.class) {
            return (sb, v, d) -> string(sb, DateTimeFormatter.ISO_OFFSET_DATE_TIME.format((ZonedDateTime) v));
        }
        if (c == OffsetDateTime.class) {
            return (sb, v, d) -> string(sb, DateTimeFormatter.ISO_OFFSET_DATE_TIME.format((OffsetDateTime) v));
        }
        if (c == Duration.class) {
            return (sb, v, d) -> {
                Duration du = (Duration) v;
                sb.append(BigDecimal.valueOf(du.getSeconds()).add(BigDecimal.valueOf(du.getNano(), 9))
                        .stripTrailingZeros().toPlainString());
            };
        }
        if (java.time.temporal.TemporalAccessor.class.isAssignableFrom(c)
                || java.time.temporal.TemporalAmount.class.isAssignableFrom(c)
                || java.time.ZoneId.class.isAssignableFrom(c)) {
            return (sb, v, d) -> string(sb, v.toString());
        }
        if (c.getName().equals("java.sql.Date") || c.getName().equals("java.sql.Time")) {
            return (sb, v, d) -> string(sb, v.toString());
        }
        if (Date.class.isAssignableFrom(c)) {
            return (sb, v, d) -> string(sb, java.time.Instant.ofEpochMilli(((Date) v).getTime()).toString());
        }
        if (Calendar.class.isAssignableFrom(c)) {
            return (sb, v, d) -> string(sb, ((Calendar) v).toInstant().toString());
        }
        if (c == java.util.UUID.class || c == java.net.URI.class || c == java.net.URL.class
                || c == java.io.File.class || java.nio.file.Path.class.isAssignableFrom(c)
                || c == java.util.Locale.class || c == java.util.Currency.class || c == Class.class
                || c == java.util.regex.Pattern.class) {
            return (sb, v, d) -> string(sb, v instanceof Class ? ((Class<?>) v).getName() : v.toString());
        }
        if (c == Optional.class) {
            return (sb, v, d) -> write(sb, ((Optional<?>) v).orElse(null), d + 1);
        }
        if (c == OptionalInt.class) {
            return (sb, v, d) -> { OptionalInt o = (OptionalInt) v; sb.append(o.isPresent() ? Integer.toString(o.getAsInt()) : "null"); };
        }
        if (c == OptionalLong.class) {
            return (sb, v, d) -> { OptionalLong o = (OptionalLong) v; sb.append(o.isPresent() ? Long.toString(o.getAsLong()) : "null"); };
        }
        if (c == OptionalDouble.class) {
            return (sb, v, d) -> { OptionalDouble o = (OptionalDouble) v; if (o.isPresent()) number(sb, o.getAsDouble()); else sb.append("null"); };
        }
        if (c.isArray()) return arrayWriter(c.getComponentType());
        if (isJsonTree(c)) return (sb, v, d) -> sb.append(v.toString());
        if (Map.class.isAssignableFrom(c)) return Json::map;
        if (Iterable.class.isAssignableFrom(c)) return (sb, v, d) -> iterator(sb, ((Iterable<?>) v).iterator(), d);
        if (Iterator.class.isAssignableFrom(c)) return (sb, v, d) -> iterator(sb, (Iterator<?>) v, d);
        if (BaseStream.class.isAssignableFrom(c)) return (sb, v, d) -> iterator(sb, ((BaseStream<?, ?>) v).iterator(), d);
        if (Number.class.isAssignableFrom(c)) {
            return (sb, v, d) -> {
                Number n = (Number) v;
                double x = n.doubleValue();
                if (x == Math.rint(x) && Math.abs(x) < 9.0e15) sb.append(n.longValue()); else number(sb, x);
            };
        }
        if (Throwable.class.isAssignableFrom(c)) {
            return (sb, v, d) -> {
                Throwable t = (Throwable) v;
                sb.append("{\"type\":");
                string(sb, t.getClass().getName());
                sb.append(",\"message\":");
                write(sb, t.getMessage(), d + 1);
                sb.append('}');
            };
        }
        List<Beans.Prop> props = Beans.of(c).readable();
        if (props.isEmpty()) return (sb, v, d) -> string(sb, v.toString());
        Beans.Prop[] ps = props.toArray(new Beans.Prop[0]);
        String[] keys = new String[ps.length];
        for (int i = 0; i < ps.length; i++) {
            StringBuilder k = new StringBuilder();
            string(k, ps[i].name);
            keys[i] = k.append(':').toString();
        }
        return (sb, v, d) -> {
            sb.append('{');
            for (int i = 0; i < ps.length; i++) {
                if (i > 0) sb.append(',');
                sb.append(keys[i]);
                write(sb, ps[i].read(v), d + 1);
            }
            sb.append('}');
        };
    }

    private static Writer arrayWriter(Class<?> comp) {
        if (comp == byte.class) return (sb, v, d) -> string(sb, Base64.getEncoder().encodeToString((byte[]) v));
        if (comp == int.class) {
            return (sb, v, d) -> {
                int[] a = (int[]) v;
                sb.append('[');
                for (int i = 0; i < a.length; i++) { if (i > 0) sb.append(','); sb.append(a[i]); }
                sb.append(']');
            };
        }
        if (comp == long.class) {
            return (sb, v, d) -> {
                long[] a = (long[]) v;
                sb.append('[');
                for (int i = 0; i < a.length; i++) { if (i > 0) sb.append(','); sb.append(a[i]); }
                sb.append(']');
            };
        }
        if (comp == double.class) {
            return (sb, v, d) -> {
                double[] a = (double[]) v;
                sb.append('[');
                for (int i = 0; i < a.length; i++) { if (i > 0) sb.append(','); number(sb, a[i]); }
                sb.append(']');
            };
        }
        if (comp.isPrimitive()) { // boolean, char, short, float
            return (sb, v, d) -> {
                int n = Array.getLength(v);
                sb.append('[');
                for (int i = 0; i < n; i++) { if (i > 0) sb.append(','); write(sb, Array.get(v, i), d + 1); }
                sb.append(']');
            };
        }
        return (sb, v, d) -> {
            Object[] a = (Object[]) v;
            sb.append('[');
            for (int i = 0; i < a.length; i++) { if (i > 0) sb.append(','); write(sb, a[i], d + 1); }
            sb.append(']');
        };
    }

    private static void map(StringBuilder sb, Object v, int d) {
        sb.append('{');
        boolean first = true;
        for (Map.Entry<?, ?> e : ((Map<?, ?>) v).entrySet()) {
            if (!first) sb.append(',');
            first = false;
            Object k = e.getKey();
            string(sb, k instanceof Enum ? ((Enum<?>) k).name() : String.valueOf(k));
            sb.append(':');
            write(sb, e.getValue(), d + 1);
        }
        sb.append('}');
    }

    private static void iterator(StringBuilder sb, Iterator<?> it, int d) {
        sb.append('[');
        boolean first = true;
        while (it.hasNext()) {
            if (!first) sb.append(',');
            first = false;
            write(sb, it.next(), d + 1);
        }
        sb.append(']');
    }

    static void number(StringBuilder sb, double x) {
        if (Double.isNaN(x) || Double.isInfinite(x)) sb.append("null");
        else sb.append(Double.toString(x));
    }

    static void string(StringBuilder sb, String s) {
        sb.append('"');
        for (int i = 0, n = s.length(); i < n; i++) {
            char ch = s.charAt(i);
            switch (ch) {
                case '"': sb.append("\\\""); break;
                case '\\': sb.append("\\\\"); break;
                case '\n': sb.append("\\n"); break;
                case '\r': sb.append("\\r"); break;
                case '\t': sb.append("\\t"); break;
                case '\b': sb.append("\\b"); break;
                case '\f': sb.append("\\f"); break;
                default:
                    if (ch < 0x20 || ch == 0x2028 || ch == 0x2029) {
                        sb.append(String.format("\\u%04x", (int) ch));
                    } else {
                        sb.append(ch);
                    }
            }
        }
        sb.append('"');
    }

    // ---------------------------------------------------------------- parsing

    /** Parse JSON text; numbers with a fraction or exponent become BigDecimal when {@code exact}, else Double. */
    public static Object parse(String text, boolean exact) {
        Parser p = new Parser(text, exact);
        p.ws();
        Object v = p.value(0);
        p.ws();
        if (p.i != text.length()) throw p.error("unexpected text after the value");
        return v;
    }

    /** The plain JSON data model of a parsed value: BigDecimal → Double, recursively. */
    static Object plain(Object v) {
        if (v instanceof BigDecimal) return ((BigDecimal) v).doubleValue();
        if (v instanceof List) {
            List<?> l = (List<?>) v;
            ArrayList<Object> out = new ArrayList<>(l.size());
            for (Object x : l) out.add(plain(x));
            return out;
        }
        if (v instanceof Map) {
            Map<?, ?> m = (Map<?, ?>) v;
            LinkedHashMap<String, Object> out = new LinkedHashMap<>();
            for (Map.Entry<?, ?> e : m.entrySet()) out.put(String.valueOf(e.getKey()), plain(e.getValue()));
            return out;
        }
        return v;
    }

    private static final class Parser {
        final String s;
        final boolean exact;
        int i;

        Parser(String s, boolean exact) {
            this.s = s;
            this.exact = exact;
        }

        IllegalArgumentException error(String what) {
            return new IllegalArgumentException("invalid JSON at character " + i + ": " + what);
        }

        void ws() {
            while (i < s.length()) {
                char c = s.charAt(i);
                if (c == ' ' || c == '\t' || c == '\n' || c == '\r') i++; else break;
            }
        }

        Object value(int depth) {
            if (depth > MAX_DEPTH) throw error("nested too deeply");
            if (i >= s.length()) throw error("unexpected end");
            char c = s.charAt(i);
            switch (c) {
                case '{': return object(depth);
                case '[': return array(depth);
                case '"': return str();
                case 't': return literal("true", Boolean.TRUE);
                case 'f': return literal("false", Boolean.FALSE);
                case 'n': return literal("null", null);
                case 'N': return literal("NaN", Double.NaN);
                case 'I': return literal("Infinity", Double.POSITIVE_INFINITY);
                default:
                    if (c == '-' && s.startsWith("-Infinity", i)) return literal("-Infinity", Double.NEGATIVE_INFINITY);
                    if (c == '-' || (c >= '0' && c <= '9')) return number();
                    throw error("unexpected character '" + c + "'");
            }
        }

        Object literal(String word, Object v) {
            if (!s.startsWith(word, i)) throw error("expected " + word);
            i += word.length();
            return v;
        }

        Map<String, Object> object(int depth) {
            LinkedHashMap<String, Object> m = new LinkedHashMap<>();
            i++;
            ws();
            if (i < s.length() && s.charAt(i) == '}') { i++; return m; }
            while (true) {
                ws();
                if (i >= s.length() || s.charAt(i) != '"') throw error("expected a property name");
                String k = str();
                ws();
                if (i >= s.length() || s.charAt(i) != ':') throw error("expected ':'");
                i++;
                ws();
                m.put(k, value(depth + 1));
                ws();
                if (i >= s.length()) throw error("unexpected end");
                char c = s.charAt(i++);
                if (c == '}') return m;
                if (c != ',') throw error("expected ',' or '}'");
            }
        }

        List<Object> array(int depth) {
            ArrayList<Object> l = new ArrayList<>();
            i++;
            ws();
            if (i < s.length() && s.charAt(i) == ']') { i++; return l; }
            while (true) {
                ws();
                l.add(value(depth + 1));
                ws();
                if (i >= s.length()) throw error("unexpected end");
                char c = s.charAt(i++);
                if (c == ']') return l;
                if (c != ',') throw error("expected ',' or ']'");
            }
        }

        String str() {
            i++;
            StringBuilder sb = null;
            int start = i;
            while (true) {
                if (i >= s.length()) throw error("unterminated string");
                char c = s.charAt(i);
                if (c == '"') {
                    String out = sb == null ? s.substring(start, i) : sb.append(s, start, i).toString();
                    i++;
                    return out;
                }
                if (c == '\\') {
                    if (sb == null) sb = new StringBuilder();
                    sb.append(s, start, i);
                    i++;
                    if (i >= s.length()) throw error("unterminated string");
                    char e = s.charAt(i++);
                    switch (e) {
                        case '"': sb.append('"'); break;
                        case '\\': sb.append('\\'); break;
                        case '/': sb.append('/'); break;
                        case 'b': sb.append('\b'); break;
                        case 'f': sb.append('\f'); break;
                        case 'n': sb.append('\n'); break;
                        case 'r': sb.append('\r'); break;
                        case 't': sb.append('\t'); break;
                        case 'u':
                            if (i + 4 > s.length()) throw error("bad \\u escape");
                            sb.append((char) Integer.parseInt(s.substring(i, i + 4), 16));
                            i += 4;
                            break;
                        default: throw error("bad escape \\" + e);
                    }
                    start = i;
                } else {
                    i++;
                }
            }
        }

        Object number() {
            int start = i;
            boolean integral = true;
            if (s.charAt(i) == '-') i++;
            while (i < s.length()) {
                char c = s.charAt(i);
                if (c >= '0' && c <= '9') i++;
                else if (c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-') { integral = false; i++; }
                else break;
            }
            String t = s.substring(start, i);
            try {
                if (integral) {
                    if (t.length() < 18) return Long.parseLong(t);
                    BigInteger b = new BigInteger(t);
                    return b.bitLength() < 64 ? (Object) b.longValue() : b;
                }
                return exact ? new BigDecimal(t) : (Object) Double.parseDouble(t);
            } catch (NumberFormatException e) {
                throw error("bad number " + t);
            }
        }
    }
}
