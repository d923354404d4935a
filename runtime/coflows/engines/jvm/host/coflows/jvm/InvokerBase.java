package coflows.jvm;

import java.lang.ref.WeakReference;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.lang.reflect.Type;
import java.util.concurrent.atomic.AtomicReferenceArray;

/**
 * Calls one user method on behalf of Python. The generated subclass {@code Invoker} has one static
 * entry point per argument wiring ({@code J} long, {@code D} double, {@code O} object; up to three
 * arguments, then {@code cN} with an array) and result kind ({@code _J} long, {@code _D} double,
 * {@code _Z} boolean, {@code _S} string, {@code _O} JSON text, {@code _V} void), taking the
 * invoker's {@link #id()} first: a call passes primitives through JPype without boxing, as a
 * static call (cheaper in JPype than an instance call), and never hands a user object to Python.
 *
 * <p>The id table holds invokers weakly: the Python side keeps each one alive while its Function
 * exists, so a reloaded query's invokers (and with them its class loader) can be collected.
 */
public abstract class InvokerBase {
    private static final InheritableThreadLocal<String> WORKFLOW = new InheritableThreadLocal<>();
    private static final Object TABLE_LOCK = new Object();
    private static volatile AtomicReferenceArray<WeakReference<InvokerBase>> table = new AtomicReferenceArray<>(256);
    private static int scan;

    private static int register(InvokerBase inv) {
        synchronized (TABLE_LOCK) {
            AtomicReferenceArray<WeakReference<InvokerBase>> t = table;
            int n = t.length();
            for (int k = 0; k < n; k++) {
                int i = (scan + k) % n;
                WeakReference<InvokerBase> r = t.get(i);
                if (r == null || r.get() == null) {
                    t.set(i, new WeakReference<>(inv));
                    scan = i + 1;
                    return i;
                }
            }
            AtomicReferenceArray<WeakReference<InvokerBase>> bigger = new AtomicReferenceArray<>(n * 2);
            for (int i = 0; i < n; i++) bigger.set(i, t.get(i));
            bigger.set(n, new WeakReference<>(inv));
            scan = n + 1;
            table = bigger;
            return n;
        }
    }

    protected static InvokerBase get(int id) {
        InvokerBase inv = table.get(id).get();
        if (inv == null) throw new IllegalStateException("invoker " + id + " was released");
        return inv;
    }

    /** The workflow whose Java code is running on this thread (threads it starts inherit it). */
    public static String currentWorkflow() {
        return WORKFLOW.get();
    }

    /** Set this thread's workflow; the previous one (for agents' hooks, run outside an Invoker). */
    static String swapWorkflow(String workflow) {
        String prev = WORKFLOW.get();
        WORKFLOW.set(workflow);
        return prev;
    }

    private final Method method;
    private final Object target;
    private final Type[] types;
    private final String[] names;
    private final boolean[] json;
    private final String workflow;
    private final ClassLoader loader;
    private final int arity;
    private final int id;

    protected InvokerBase(Method method, Object target, String[] names, boolean[] json, String workflow) {
        this.method = method;
        this.target = target;
        this.types = method.getGenericParameterTypes();
        this.names = names;
        this.json = json;
        this.workflow = workflow;
        this.loader = method.getDeclaringClass().getClassLoader();
        this.arity = types.length;
        this.id = register(this);
    }

    /** The number the static entry points of {@code Invoker} know this invoker by. */
    public final int id() {
        return id;
    }

    private Object coerce(int i, Object v) {
        try {
            if (json[i] && v instanceof String) v = Json.parse((String) v, true);
            return Bind.bind(v, types[i], names[i]);
        } catch (BindException e) {
            throw new ArgumentFailure(names[i], e.getMessage());
        } catch (IllegalArgumentException e) {
            throw new ArgumentFailure(names[i], names[i] + ": " + e.getMessage());
        }
    }

    /**
     * Call with {@code args} (an array the caller owns: it is converted in place), as a call that
     * {@link Calls} can stop: a stopped call ends with a {@code CallStopped} failure.
     */
    protected final Object invoke(Object[] args) {
        Calls.State cs = Calls.enter();
        boolean stopped = false;
        try {
            try {
                return call(args);
            } finally {
                stopped = Calls.leave(cs);
            }
        } catch (ThreadDeath d) {
            throw Calls.stopped(method.getName() + "()");
        } catch (UserFailure f) {
            if (stopped) throw Calls.stopped(method.getName() + "()");
            throw f;
        }
    }

    private Object call(Object[] args) {
        if (args.length != arity) {
            throw new ArgumentFailure(null, method.getName() + "() takes " + arity + " argument(s), got " + args.length);
        }
        for (int i = 0; i < arity; i++) args[i] = coerce(i, args[i]);
        Thread th = Thread.currentThread();
        ClassLoader prevLoader = th.getContextClassLoader();
        String prevWorkflow = WORKFLOW.get();
        th.setContextClassLoader(loader);
        WORKFLOW.set(workflow);
        try {
            return method.invoke(target, args);
        } catch (InvocationTargetException e) {
            throw UserFailure.of(e.getCause());
        } catch (IllegalAccessException | IllegalArgumentException e) {
            throw UserFailure.of(e);
        } finally {
            th.setContextClassLoader(prevLoader);
            WORKFLOW.set(prevWorkflow);
        }
    }

    protected static long retJ(Object r) {
        return r == null ? 0L : ((Number) r).longValue();
    }

    protected static double retD(Object r) {
        return r == null ? Double.NaN : ((Number) r).doubleValue();
    }

    protected static boolean retZ(Object r) {
        return r != null && (Boolean) r;
    }

    protected static String retS(Object r) {
        return r == null ? null : r.toString();
    }

    protected static String retO(Object r) {
        try {
            return Json.write(r);
        } catch (RuntimeException | StackOverflowError e) {
            throw UserFailure.of(e);
        }
    }

    public final String name() {
        return method.getName();
    }

    public final int arity() {
        return arity;
    }
}
