package app.quant.clr;

import java.lang.ref.Cleaner;
import java.util.Iterator;
import java.util.NoSuchElementException;

/**
 * A live proxy for an object of another language (.NET, Python, or a class of the workflow), as
 * CoFlows' {@code app.quant.clr.CLRObject}: {@link #GetProperty}, {@link #SetProperty},
 * {@link #Invoke}. The object stays in Python behind a handle; when this proxy is collected a
 * {@link Cleaner} releases the handle. Iterable when the object is ({@code for (Object x : o)}).
 */
public class CLRObject implements Iterable<Object> {
    private static final Cleaner CLEANER = Cleaner.create();

    /** Releases a handle; holds no reference to its proxy (or the proxy would never be collected). */
    private static final class Release implements Runnable {
        private final long handle;

        Release(long handle) {
            this.handle = handle;
        }

        @Override
        public void run() {
            CLRRuntime.release(handle);
        }
    }

    private final long handle;
    private final Cleaner.Cleanable cleanable;
    /** The foreign type's name, as CoFlows' field had it. */
    public final String ClassName;

    /** Made by the bridge (Python) for a handle it has just taken. */
    public CLRObject(long handle, String className) {
        this.handle = handle;
        this.ClassName = className;
        this.cleanable = CLEANER.register(this, new Release(handle));
    }

    public long getHandle() {
        return handle;
    }

    /** The foreign type's name ({@code csBase}, {@code pybase}, {@code User}). */
    public String getClassName() {
        return ClassName;
    }

    public Object Invoke(String name, Object... args) {
        return CLRRuntime.bridge().invoke(handle, name, args == null ? new Object[] {null} : args);
    }

    public Object InvokeArr(String name, Object[] args) {
        return CLRRuntime.bridge().invoke(handle, name, args == null ? new Object[0] : args);
    }

    public Object GetProperty(String name) {
        return CLRRuntime.bridge().get(handle, name);
    }

    public void SetProperty(String name, Object value) {
        CLRRuntime.bridge().set(handle, name, value);
    }

    /** Call the object itself: a class makes an instance, a function or delegate runs. */
    public Object Call(Object... args) {
        return CLRRuntime.bridge().call(handle, args == null ? new Object[] {null} : args, false);
    }

    public long Length() {
        return CLRRuntime.bridge().length(handle);
    }

    /** {@code o[key]} (a list index, a dictionary key). */
    public Object Item(Object key) {
        return CLRRuntime.bridge().item(handle, key);
    }

    /** Release the handle now (the proxy is unusable after); otherwise the Cleaner does it. */
    public void Release() {
        cleanable.clean();
    }

    @Override
    public Iterator<Object> iterator() {
        CLRObject it = CLRRuntime.bridge().iterator(handle);
        return new Iterator<Object>() {
            private Object[] chunk = new Object[0];
            private int at;
            private boolean done;

            @Override
            public boolean hasNext() {
                if (at < chunk.length) return true;
                if (done) return false;
                chunk = CLRRuntime.bridge().next(it.handle);
                at = 0;
                if (chunk.length == 0) {
                    done = true;
                    it.Release();
                }
                return !done;
            }

            @Override
            public Object next() {
                if (!hasNext()) throw new NoSuchElementException();
                return chunk[at++];
            }
        };
    }

    /** The object as JSON text: a list's items, a .NET object's public members, a Python object's fields. */
    public String toJson() {
        return CLRRuntime.bridge().json(handle);
    }

    /** The object's own text: Python's {@code str()}, .NET's {@code ToString()}. */
    @Override
    public String toString() {
        return CLRRuntime.bridge().str(handle);
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof CLRObject && (((CLRObject) o).handle == handle
                || CLRRuntime.bridge().same(handle, ((CLRObject) o).handle));
    }

    @Override
    public int hashCode() {
        return ClassName == null ? 0 : ClassName.hashCode(); // equal objects may hold different handles
    }
}
