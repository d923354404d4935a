package coflows.jvm;

import java.lang.reflect.Constructor;
import java.lang.reflect.Field;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.lang.reflect.RecordComponent;
import java.lang.reflect.Type;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * The JSON properties of a POJO or record, computed once per class (kept in a {@link ClassValue}).
 *
 * <p>Read: public getters ({@code getX}, {@code isX} for booleans) and public fields; records by
 * their components. Written: setters ({@code setX}) and public non-final fields; records through
 * the canonical constructor. Order: the declaration order of the fields, then other getters by name.
 */
final class Beans {
    static final class Prop {
        final String name;
        Method getter;
        Field field;
        Method setter;
        Type readType;
        Type writeType;

        Prop(String name) {
            this.name = name;
        }

        boolean readable() {
            return getter != null || (field != null && Modifier.isPublic(field.getModifiers()));
        }

        boolean writable() {
            return setter != null || (field != null && Modifier.isPublic(field.getModifiers())
                    && !Modifier.isFinal(field.getModifiers()));
        }

        Object read(Object o) {
            try {
                return getter != null ? getter.invoke(o) : field.get(o);
            } catch (InvocationTargetException e) {
                throw Beans.<RuntimeException>sneaky(e.getCause());
            } catch (IllegalAccessException e) {
                throw new IllegalStateException("cannot read property '" + name + "': " + e.getMessage(), e);
            }
        }

        void write(Object o, Object v) throws Throwable {
            try {
                if (setter != null) setter.invoke(o, v); else field.set(o, v);
            } catch (InvocationTargetException e) {
                throw e.getCause();
            }
        }
    }

    final Class<?> type;
    final Map<String, Prop> props = new LinkedHashMap<>();
    Constructor<?> noArg;
    boolean record;
    Constructor<?> canonical;
    String[] componentNames;
    Type[] componentTypes;

    private static final ClassValue<Beans> CACHE = new ClassValue<>() {
        @Override
        protected Beans computeValue(Class<?> c) {
            return new Beans(c);
        }
    };

    static Beans of(Class<?> c) {
        return CACHE.get(c);
    }

    @SuppressWarnings("unchecked")
    static <T extends Throwable> T sneaky(Throwable t) throws T {
        throw (T) t;
    }

    /** JDK and platform classes are not taken apart into properties. */
    static boolean isPlatform(Class<?> c) {
        String n = c.getName();
        return c.isPrimitive() || n.startsWith("java.") || n.startsWith("javax.") || n.startsWith("jdk.")
                || n.startsWith("sun.") || n.startsWith("com.sun.");
    }

    private Beans(Class<?> c) {
        this.type = c;
        if (isPlatform(c) || c.isInterface() || c.isArray()) return;
        if (c.isRecord()) {
            record = true;
            RecordComponent[] rc = c.getRecordComponents();
            componentNames = new String[rc.length];
            componentTypes = new Type[rc.length];
            Class<?>[] raw = new Class<?>[rc.length];
            for (int i = 0; i < rc.length; i++) {
                componentNames[i] = rc[i].getName();
                componentTypes[i] = rc[i].getGenericType();
                raw[i] = rc[i].getType();
                Prop p = new Prop(rc[i].getName());
                p.getter = accessible(rc[i].getAccessor());
                p.readType = rc[i].getGenericType();
                p.writeType = rc[i].getGenericType();
                props.put(p.name, p);
            }
            try {
                canonical = accessible(c.getDeclaredConstructor(raw));
            } catch (NoSuchMethodException e) {
                canonical = null;
            }
            return;
        }
        try {
            Constructor<?> k = c.getDeclaredConstructor();
            if (!Modifier.isAbstract(c.getModifiers()) && !Modifier.isPrivate(k.getModifiers())
                    && (c.getEnclosingClass() == null || Modifier.isStatic(c.getModifiers()))) {
                noArg = accessible(k);
            }
        } catch (NoSuchMethodException e) {
            noArg = null;
        }
        // fields, from the top of the hierarchy down, in declaration order
        List<Class<?>> chain = new ArrayList<>();
        for (Class<?> k = c; k != null && k != Object.class && !isPlatform(k); k = k.getSuperclass()) chain.add(k);
        Collections.reverse(chain);
        for (Class<?> k : chain) {
            for (Field f : k.getDeclaredFields()) {
                int m = f.getModifiers();
                if (Modifier.isStatic(m) || Modifier.isTransient(m) || f.isSynthetic()) continue;
                Prop p = props.computeIfAbsent(f.getName(), Prop::new);
                if (Modifier.isPublic(m)) {
                    p.field = accessible(f);
                    p.readType = f.getGenericType();
                    if (!Modifier.isFinal(m)) p.writeType = f.getGenericType();
                }
            }
        }
        TreeMap<String, Prop> extra = new TreeMap<>();
        for (Method m : c.getMethods()) {
            if (Modifier.isStatic(m.getModifiers()) || m.isBridge() || m.isSynthetic()
                    || m.getDeclaringClass() == Object.class) continue;
            String n = m.getName();
            int pc = m.getParameterCount();
            String prop = null;
            boolean getter = false;
            if (pc == 0 && m.getReturnType() != void.class) {
                if (n.length() > 3 && n.startsWith("get")) prop = decapitalize(n.substring(3));
                else if (n.length() > 2 && n.startsWith("is")
                        && (m.getReturnType() == boolean.class || m.getReturnType() == Boolean.class)) prop = decapitalize(n.substring(2));
                getter = prop != null;
            } else if (pc == 1 && n.length() > 3 && n.startsWith("set")) {
                prop = decapitalize(n.substring(3));
            }
            if (prop == null) continue;
            Prop p = props.get(prop);
            if (p == null) p = extra.computeIfAbsent(prop, Prop::new);
            if (getter) {
                if (p.getter == null || n.startsWith("get")) {
                    p.getter = accessible(m);
                    p.readType = m.getGenericReturnType();
                }
            } else if (p.setter == null) {
                p.setter = accessible(m);
                p.writeType = m.getGenericParameterTypes()[0];
            }
        }
        props.putAll(extra);
    }

    private static <T extends java.lang.reflect.AccessibleObject> T accessible(T o) {
        try {
            o.trySetAccessible();
        } catch (RuntimeException e) {
            // keep it: a public member of a public class works without
        }
        return o;
    }

    static String decapitalize(String s) {
        if (s.isEmpty()) return s;
        if (s.length() > 1 && Character.isUpperCase(s.charAt(0)) && Character.isUpperCase(s.charAt(1))) return s;
        return Character.toLowerCase(s.charAt(0)) + s.substring(1);
    }

    List<Prop> readable() {
        List<Prop> out = new ArrayList<>();
        for (Prop p : props.values()) if (p.readable()) out.add(p);
        return out;
    }

    List<Prop> writable() {
        List<Prop> out = new ArrayList<>();
        for (Prop p : props.values()) if (p.writable()) out.add(p);
        return out;
    }

    /** Can a JSON object be bound to this class? */
    boolean bindable() {
        return (record && canonical != null) || (noArg != null && !writable().isEmpty());
    }
}
