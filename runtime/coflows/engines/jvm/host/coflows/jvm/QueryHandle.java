package coflows.jvm;

import java.lang.reflect.Constructor;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.lang.reflect.Parameter;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/**
 * A loaded query class: its public methods (static ones, and instance ones on one instance made
 * with the public no-argument constructor), described for Python as JSON, each with an
 * {@link Invoker}. Overloads are told apart by their number of parameters.
 */
public final class QueryHandle {
    private static final Set<String> OBJECT_METHODS = Set.of("equals", "hashCode", "toString", "getClass", "notify",
            "notifyAll", "wait", "clone", "finalize");

    private final Class<?> type;
    private final List<Invoker> invokers = new ArrayList<>();
    private final List<Map<String, Object>> functions = new ArrayList<>();
    private final List<String> warnings = new ArrayList<>();
    private boolean instance;

    private QueryHandle(Class<?> type) {
        this.type = type;
    }

    /** Pick the query's class among the top-level classes of its file, initialize it, list its functions. */
    public static QueryHandle open(WorkflowLoader loader, String[] candidates, String stem, String workflow,
                                   Compiler.Result compiled) throws ClassNotFoundException {
        Class<?> best = null;
        int bestScore = -1;
        for (String n : candidates) {
            Class<?> c = Class.forName(n, false, loader);
            int score = (Modifier.isPublic(c.getModifiers()) ? 2 : 0) + (c.getSimpleName().equals(stem) ? 1 : 0);
            if (score > bestScore) {
                best = c;
                bestScore = score;
            }
        }
        if (best == null) throw new IllegalArgumentException("the file defines no class");
        try {
            Class.forName(best.getName(), true, loader);
        } catch (ExceptionInInitializerError e) {
            throw UserFailure.of(e);
        } catch (LinkageError e) {
            throw UserFailure.of(e);
        }
        QueryHandle h = new QueryHandle(best);
        try {
            h.build(workflow, compiled == null ? new String[0] : compiled.declaredMethods(best.getName()));
        } catch (LinkageError e) {
            throw UserFailure.of(e);
        }
        return h;
    }

    private static boolean isObjectMethod(Method m) {
        if (!OBJECT_METHODS.contains(m.getName())) return false;
        try {
            Object.class.getDeclaredMethod(m.getName(), m.getParameterTypes());
            return true;
        } catch (NoSuchMethodException e) {
            return false;
        }
    }

    private static String signature(Method m) {
        StringBuilder sb = new StringBuilder(m.getName()).append('(');
        Class<?>[] p = m.getParameterTypes();
        for (int i = 0; i < p.length; i++) sb.append(i > 0 ? ", " : "").append(Types.name(m.getGenericParameterTypes()[i]));
        return sb.append(')').toString();
    }

    /** {@code name(Type, Type)} with erased simple type names, as the compiler's trees give them. */
    private static String erased(Method m) {
        StringBuilder sb = new StringBuilder(m.getName()).append('(');
        Class<?>[] p = m.getParameterTypes();
        for (int i = 0; i < p.length; i++) sb.append(i > 0 ? ", " : "").append(p[i].getSimpleName());
        return sb.append(')').toString();
    }

    private void build(String workflow, String[] declared) {
        Map<String, Integer> position = new java.util.HashMap<>();
        for (int i = 0; i < declared.length; i++) position.putIfAbsent(declared[i], i);
        TreeMap<String, List<Method>> byName = new TreeMap<>();
        List<Method> instanceMethods = new ArrayList<>();
        for (Method m : type.getMethods()) {
            if (m.getDeclaringClass() == Object.class || m.isSynthetic() || m.isBridge() || isObjectMethod(m)) continue;
            if (!Modifier.isStatic(m.getModifiers())) instanceMethods.add(m);
            byName.computeIfAbsent(m.getName(), k -> new ArrayList<>()).add(m);
        }
        Object target = null;
        if (!instanceMethods.isEmpty()) {
            Constructor<?> ctor = null;
            if (!Modifier.isAbstract(type.getModifiers()) && !type.isInterface()) {
                try {
                    ctor = type.getConstructor();
                } catch (NoSuchMethodException e) {
                    ctor = null;
                }
            }
            if (ctor == null) {
                List<String> names = new ArrayList<>();
                for (Method m : instanceMethods) names.add(m.getName());
                warnings.add("instance methods " + names + " are not served: " + type.getSimpleName()
                        + " has no public constructor without parameters");
            } else {
                try {
                    ctor.trySetAccessible();
                    target = ctor.newInstance();
                    instance = true;
                } catch (InvocationTargetException e) {
                    throw UserFailure.of(e.getCause());
                } catch (ReflectiveOperationException e) {
                    throw UserFailure.of(e);
                }
            }
        }
        for (Map.Entry<String, List<Method>> e : byName.entrySet()) {
            List<Method> group = e.getValue();
            // by parameter count; overloads of the same count: the one declared first in the file wins
            group.sort(Comparator.comparingInt(Method::getParameterCount)
                    .thenComparingInt((Method m) -> position.getOrDefault(erased(m), Integer.MAX_VALUE))
                    .thenComparing(QueryHandle::signature));
            Map<Integer, Method> byArity = new LinkedHashMap<>();
            for (Method m : group) {
                boolean isStatic = Modifier.isStatic(m.getModifiers());
                if (!isStatic && target == null) continue;
                Method kept = byArity.get(m.getParameterCount());
                if (kept != null) {
                    warnings.add("overload " + signature(m) + " is not served: " + signature(kept)
                            + " takes the same number of arguments");
                    continue;
                }
                byArity.put(m.getParameterCount(), m);
                add(m, isStatic ? null : target, workflow);
            }
        }
    }

    private static String wire(Class<?> c) {
        if (c == int.class || c == long.class || c == short.class || c == byte.class) return "J";
        if (c == double.class || c == float.class) return "D";
        return "O";
    }

    private static boolean direct(Class<?> c) {
        return c.isPrimitive() || c == String.class || c == CharSequence.class || c == Integer.class
                || c == Long.class || c == Short.class || c == Byte.class || c == Double.class || c == Float.class
                || c == Boolean.class || c == Character.class;
    }

    private static String returnWire(Class<?> c) {
        if (c == void.class) return "V";
        if (c == int.class || c == long.class || c == short.class || c == byte.class) return "J";
        if (c == double.class || c == float.class) return "D";
        if (c == boolean.class) return "Z";
        if (c == String.class || c == CharSequence.class || c == char.class || c == Character.class) return "S";
        return "O";
    }

    private void add(Method m, Object target, String workflow) {
        m.trySetAccessible();
        Parameter[] ps = m.getParameters();
        String[] names = new String[ps.length];
        boolean[] json = new boolean[ps.length];
        List<Map<String, Object>> params = new ArrayList<>();
        for (int i = 0; i < ps.length; i++) {
            names[i] = ps[i].getName();
            Class<?> c = ps[i].getType();
            json[i] = !direct(c);
            Map<String, Object> p = new LinkedHashMap<>();
            p.put("name", names[i]);
            p.put("wire", wire(c));
            p.put("json", json[i]);
            p.put("type", Types.describe(ps[i].getParameterizedType()));
            params.add(p);
        }
        Map<String, Object> ret = new LinkedHashMap<>();
        ret.put("wire", returnWire(m.getReturnType()));
        ret.put("type", m.getReturnType() == void.class ? Map.of("kind", "any", "name", "void")
                : Types.describe(m.getGenericReturnType()));
        Map<String, Object> f = new LinkedHashMap<>();
        f.put("name", m.getName());
        f.put("index", invokers.size());
        f.put("static", Modifier.isStatic(m.getModifiers()));
        f.put("varargs", m.isVarArgs());
        f.put("signature", signature(m));
        f.put("params", params);
        f.put("returns", ret);
        functions.add(f);
        invokers.add(new Invoker(m, target, names, json, workflow));
    }

    public String className() {
        return type.getName();
    }

    public String describe() {
        Map<String, Object> d = new LinkedHashMap<>();
        d.put("class", type.getName());
        d.put("instance", instance);
        d.put("functions", functions);
        d.put("warnings", warnings);
        return Json.write(d);
    }

    public Invoker invoker(int index) {
        return invokers.get(index);
    }
}
