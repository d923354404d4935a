package coflows.jvm;

import coflows.FPKG;

import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.time.OffsetDateTime;
import java.time.ZoneId;
import java.time.ZonedDateTime;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A Java agent for Python: the {@link FPKG} its factory returned, with its hooks called here.
 *
 * <p>Python holds only this host object; values cross as JSON text and failures as
 * {@link UserFailure}, so no object of the agent's class loader reaches Python.
 */
public final class AgentHandle {
    private interface Call {
        Object run() throws Throwable;
    }

    private final FPKG pkg;
    private final String workflow;
    private final ClassLoader loader;
    private app.quant.clr.CLRObject clr; // the package the factory made in Python, when it did

    private AgentHandle(FPKG pkg, String workflow, ClassLoader loader) {
        this.pkg = pkg;
        this.workflow = workflow;
        this.loader = loader;
    }

    /**
     * Call the public static method {@code exe} (no parameters) of {@code className}; it must return an FPKG.
     * A wrong factory throws IllegalArgumentException; one that throws, a {@link UserFailure}.
     */
    public static AgentHandle open(ClassLoader loader, String className, String exe, String workflow)
            throws ClassNotFoundException {
        Class<?> c = Class.forName(className, true, loader);
        Method m;
        try {
            m = c.getMethod(exe);
        } catch (NoSuchMethodException e) {
            m = null;
        }
        if (m == null || !Modifier.isStatic(m.getModifiers())) {
            throw new IllegalArgumentException("no public static method '" + exe + "()' in " + c.getSimpleName()
                    + " (the agent's factory, package.json 'Exe')");
        }
        final Method factory = m;
        factory.trySetAccessible();
        AgentHandle probe = new AgentHandle(null, workflow, loader);
        Object r = probe.run(() -> factory.invoke(null));
        if (r == null) throw new IllegalArgumentException(exe + "() returned null; expected a coflows.FPKG");
        if (r instanceof app.quant.clr.CLRObject) { // CoFlows' form: CLRRuntime.CreateInstance("QuantApp.Engine.FPKG", ...)
            AgentHandle h = new AgentHandle(null, workflow, loader);
            h.clr = (app.quant.clr.CLRObject) r;
            return h;
        }
        if (!(r instanceof FPKG)) {
            throw new IllegalArgumentException(exe + "() returned a " + r.getClass().getName()
                    + "; expected a coflows.FPKG");
        }
        return new AgentHandle((FPKG) r, workflow, loader);
    }

    /** A hook (or the factory) as a call {@link Calls} can stop: a stopped one ends with a CallStopped failure. */
    private Object run(Call call) {
        Calls.State cs = Calls.enter();
        boolean stopped = false;
        try {
            try {
                return runIn(call);
            } finally {
                stopped = Calls.leave(cs);
            }
        } catch (ThreadDeath d) {
            throw Calls.stopped("agent hook");
        } catch (UserFailure f) {
            if (stopped) throw Calls.stopped("agent hook");
            throw f;
        }
    }

    private Object runIn(Call call) {
        Thread th = Thread.currentThread();
        ClassLoader prevLoader = th.getContextClassLoader();
        String prevWorkflow = InvokerBase.swapWorkflow(workflow);
        th.setContextClassLoader(loader);
        try {
            return call.run();
        } catch (InvocationTargetException e) {
            throw UserFailure.of(e.getCause());
        } catch (Throwable t) {
            throw UserFailure.of(t);
        } finally {
            th.setContextClassLoader(prevLoader);
            InvokerBase.swapWorkflow(prevWorkflow);
        }
    }

    /** The package the factory made through {@code app.quant.clr} (a Python FPKG), or null for a coflows.FPKG. */
    public app.quant.clr.CLRObject clrPackage() {
        return clr;
    }

    /** Run a CoFlows delegate's lambda as this agent's hook: stoppable, in the agent's loader and workflow. */
    public Object apply(java.util.function.Function<Object[], Object> fn, Object[] args) {
        return run(() -> fn.apply(args));
    }

    /** The FPKG's text fields and the names of the hooks it sets, as JSON. */
    public String describe() {
        Map<String, Object> d = new LinkedHashMap<>();
        d.put("ID", pkg.ID);
        d.put("WorkflowID", pkg.WorkflowID);
        d.put("Name", pkg.Name);
        d.put("Description", pkg.Description);
        d.put("MID", pkg.MID);
        d.put("ScheduleCommand", pkg.ScheduleCommand);
        List<String> hooks = new ArrayList<>();
        if (pkg.Load != null) hooks.add("Load");
        if (pkg.Add != null) hooks.add("Add");
        if (pkg.Exchange != null) hooks.add("Exchange");
        if (pkg.Remove != null) hooks.add("Remove");
        if (pkg.Body != null) hooks.add("Body");
        if (pkg.Job != null) hooks.add("Job");
        d.put("Hooks", hooks);
        return Json.write(d);
    }

    /** Load: {@code valuesJson} a JSON array, or null. */
    public void load(String valuesJson) {
        Object[] values = valuesJson == null ? null : ((List<?>) Json.parse(valuesJson, false)).toArray();
        run(() -> {
            pkg.Load.invoke(values);
            return null;
        });
    }

    /** Add, Exchange or Remove with the entry's id and value (JSON text). */
    public void m(String hook, String id, String valueJson) {
        coflows.MCallback cb = "Add".equals(hook) ? pkg.Add : "Exchange".equals(hook) ? pkg.Exchange : pkg.Remove;
        Object value = valueJson == null ? null : Json.parse(valueJson, false);
        run(() -> {
            cb.invoke(id, value);
            return null;
        });
    }

    /** Body with the message as JSON text; the result as JSON text. */
    public String body(String dataJson) {
        return (String) run(() -> Json.write(pkg.Body.invoke(dataJson)));
    }

    /** Job at {@code isoTime} (ISO 8601 with an offset), in {@code zone} when given (else the offset). */
    public void job(String isoTime, String zone, String executionType) {
        ZonedDateTime t = OffsetDateTime.parse(isoTime).toZonedDateTime();
        if (zone != null && !zone.isEmpty()) {
            try {
                t = t.withZoneSameInstant(ZoneId.of(zone));
            } catch (RuntimeException e) {
                // an unknown zone name: keep the offset
            }
        }
        ZonedDateTime at = t;
        run(() -> {
            pkg.Job.invoke(at, executionType);
            return null;
        });
    }
}
