package app.quant.clr;

import java.util.function.Function;

/**
 * How {@link CLRRuntime} and {@link CLRObject} reach Python, where every foreign object lives
 * behind an integer handle ({@code coflows.objects.HANDLES}). Implemented in Python
 * ({@code coflows.engines.jvm.bridge}) and installed once when the Java engine starts.
 *
 * <p>Results are converted by Python: numbers, strings, booleans and null arrive as Java values,
 * Java objects as themselves, anything else as a {@link CLRObject}. Failures arrive as
 * {@link CLRException}.
 */
public interface Bridge {
    /**
     * The class, type or module {@code name} of the calling workflow, always as a CLRObject.
     * {@code workflow}: the Java code's own ({@code coflows.Host.workflowId()}), for threads it
     * started (Python knows the workflow of a call's own thread).
     */
    CLRObject resolve(String workflow, String name);

    /** A Python module by its dotted name ({@code Base.pyBase.pybase}), as a CLRObject. */
    CLRObject pyImport(String workflow, String name);

    /** Call the object itself (a class makes an instance); {@code wrap}: the result is always a CLRObject. */
    Object call(long target, Object[] args, boolean wrap);

    Object invoke(long target, String name, Object[] args);

    Object get(long target, String name);

    void set(long target, String name, Object value);

    /** A handle on an iterator over the object (released by the caller's {@link CLRObject}). */
    CLRObject iterator(long target);

    /** The iterator's next values (a few at a time: one crossing per chunk), or an empty array at the end. */
    Object[] next(long iterator);

    long length(long target);

    Object item(long target, Object key);

    /** A Python callable over {@code fn}, made into {@code delegateType} when that type is known. */
    CLRObject delegate(String delegateType, Function<Object[], Object> fn);

    String str(long target);

    /** The object as JSON text (a query returning a CLRObject answers with this). */
    String json(long target);

    boolean same(long a, long b);
}
