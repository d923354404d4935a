package app.quant.clr;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;

/**
 * CoFlows' {@code app.quant.clr.CLRRuntime} for Java code of a workflow: classes and types of
 * the other languages by their full name ({@code QuantApp.Kernel.User}, {@code Cs.Base.csBase},
 * {@code javabase.javaBase}), resolved in the calling workflow; Python modules; delegates made
 * of Java lambdas.
 *
 * <pre>{@code
 * CLRObject user = (CLRObject) CLRRuntime.GetClass("QuantApp.Kernel.User").Invoke("GetContextUser");
 * CLRObject cs = CLRRuntime.CreateInstance("Cs.Base.csBase");
 * Double age = (Double) cs.GetProperty("getAge");
 * }</pre>
 *
 * Conversions of results: an integer is an {@code Integer} ({@code Long} when it does not fit),
 * a .NET or Java double a {@code Double}, a Python float a {@code Float}, text a {@code String},
 * an enum an {@code Integer}, None null, a Java object itself, anything else a {@link CLRObject}.
 * Arguments: boxed values and strings as values, a CLRObject as its object, a
 * {@code Function<Object[], Object>} lambda as a callable.
 */
public final class CLRRuntime {
    private CLRRuntime() {}

    private static volatile Bridge bridge;

    /** Called by the engine at start (and with null when the process exits). */
    public static void install(Bridge b) {
        bridge = b;
    }

    static Bridge bridge() {
        Bridge b = bridge;
        if (b == null) throw new IllegalStateException("app.quant.clr is not connected (the Java engine has stopped)");
        return b;
    }

    // Handles of collected proxies, queued by the proxies' Cleaner and drained in batches by a
    // Python-owned thread (takeReleased). No Java thread calls into Python on its own: JPype gives
    // such a thread a fresh Python thread state per call and leaks a type object with each one
    // (measured: ~0.5 KB per released proxy in a soak of Java holding .NET objects).
    private static final LinkedBlockingQueue<Long> PENDING = new LinkedBlockingQueue<>();
    private static final int BATCH = 1024;

    /** Called by a proxy's Cleaner action: queue the handle. */
    static void release(long handle) {
        PENDING.add(handle);
    }

    /** Up to 1024 released handles, waiting at most {@code waitMillis} for the first (none: empty). */
    public static long[] takeReleased(long waitMillis) throws InterruptedException {
        Long first = PENDING.poll(waitMillis, TimeUnit.MILLISECONDS);
        if (first == null) return new long[0];
        List<Long> batch = new ArrayList<>(BATCH);
        batch.add(first);
        PENDING.drainTo(batch, BATCH - 1);
        long[] handles = new long[batch.size()];
        for (int i = 0; i < handles.length; i++) handles[i] = batch.get(i);
        return handles;
    }

    /** A class or type as an object: {@code GetClass("QuantApp.Kernel.User").Invoke("GetContextUser")}. */
    public static CLRObject GetClass(String name) {
        return bridge().resolve(coflows.Host.workflowId(), name);
    }

    /** A new instance of {@code name}, made with {@code args}. */
    public static CLRObject CreateInstance(String name, Object... args) {
        CLRObject cls = bridge().resolve(coflows.Host.workflowId(), name);
        try {
            return (CLRObject) bridge().call(cls.getHandle(), args == null ? new Object[] {null} : args, true);
        } finally {
            cls.Release();
        }
    }

    public static CLRObject CreateInstanceArr(String name, Object[] args) {
        return CreateInstance(name, args == null ? new Object[0] : args);
    }

    /**
     * A delegate of type {@code delegateType} ({@code QuantApp.Engine.Body}, {@code QuantApp.Kernel.MCallback})
     * that calls {@code fn} with its arguments as an array.
     */
    public static CLRObject CreateDelegate(String delegateType, Function<Object[], Object> fn) {
        if (fn == null) throw new IllegalArgumentException("CreateDelegate(" + delegateType + "): the function is null");
        return bridge().delegate(delegateType, fn);
    }

    /** Call a delegate (or any callable object) with {@code args}. */
    public static Object InvokeDelegate(CLRObject fn, Object[] args) {
        return bridge().call(fn.getHandle(), args == null ? new Object[0] : args, false);
    }

    /** Run {@code fn} and return its result: CoFlows ran it holding Python's lock; here every call may use Python. */
    public static Object Python(Function<Object[], Object> fn) {
        return fn.apply(new Object[0]);
    }

    /** A Python module: {@code PyImport("Base.pyBase.pybase")} is the calling workflow's Base module. */
    public static CLRObject PyImport(String name) {
        return bridge().pyImport(coflows.Host.workflowId(), name);
    }
}
