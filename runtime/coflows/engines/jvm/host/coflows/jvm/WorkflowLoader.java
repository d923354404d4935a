package coflows.jvm;

import java.io.File;
import java.net.MalformedURLException;
import java.net.URL;
import java.net.URLClassLoader;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The class loader of one workflow (its jars and compiled Base classes) or of one query (its
 * compiled classes, with the workflow's loader as parent). Compiled classes are held in memory
 * and defined on first use; nothing is written to disk. Two workflows never see each other's
 * classes; a reloaded query gets a fresh loader and the old one is collected once unused.
 */
public final class WorkflowLoader extends URLClassLoader {
    static {
        registerAsParallelCapable();
    }

    private final Map<String, byte[]> classes;
    private final String label;

    public WorkflowLoader(String label, String[] jars, ClassLoader parent, Map<String, byte[]> classes)
            throws MalformedURLException {
        super(urls(jars), parent); // unnamed: stack frames read `at Q.f(Q.java:3)`
        this.label = label;
        this.classes = classes == null ? Collections.emptyMap() : Collections.unmodifiableMap(new HashMap<>(classes));
    }

    private static URL[] urls(String[] jars) throws MalformedURLException {
        if (jars == null) return new URL[0];
        URL[] out = new URL[jars.length];
        for (int i = 0; i < jars.length; i++) out[i] = new File(jars[i]).toURI().toURL();
        return out;
    }

    @Override
    protected Class<?> findClass(String name) throws ClassNotFoundException {
        byte[] b = classes.get(name);
        if (b != null) return defineClass(name, b, 0, b.length);
        return super.findClass(name);
    }

    /** The in-memory classes this loader and its WorkflowLoader parents define (for the compiler). */
    public Map<String, byte[]> visibleClasses() {
        Map<String, byte[]> out = new LinkedHashMap<>();
        if (getParent() instanceof WorkflowLoader) out.putAll(((WorkflowLoader) getParent()).visibleClasses());
        out.putAll(classes);
        return out;
    }

    public String[] classNames() {
        return classes.keySet().toArray(new String[0]);
    }

    /** Load (and initialize) a class of this loader, for interop from Python. */
    public Class<?> find(String name) throws ClassNotFoundException {
        return Class.forName(name, true, this);
    }

    @Override
    public String toString() {
        return "WorkflowLoader[" + label + "]";
    }
}
