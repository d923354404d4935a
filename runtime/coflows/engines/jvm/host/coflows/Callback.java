package coflows;

/**
 * The engine's side of {@link Host}: calls a registered Function of any language.
 *
 * <p>Installed once by the coflows JVM engine at start (a Python object implementing this
 * interface through JPype). Arguments and the result travel as JSON text, so no Java object of
 * a workflow's class loader crosses into Python.
 */
public interface Callback {
    /**
     * @param workflow the workflow ID (or name) to resolve {@code ref} in, or null for the caller's
     * @param ref      {@code Query/function} or {@code Workflow/Query/function}
     * @param argsJson the positional arguments as a JSON array
     * @return a JSON envelope: {@code {"ok": result}} or {@code {"error": {"type", "message", "language"}}}
     */
    String call(String workflow, String ref, String argsJson);

    /**
     * An M operation ({@code coflows.M}): {@code op} ({@code add}, {@code get}, …) on {@code topic}
     * with the positional arguments as a JSON array; answers with the same envelope as {@link #call}.
     */
    String m(String op, String topic, String argsJson);

    /**
     * Who is calling ({@link User}): {@code op} is {@code user} (no arguments) or {@code permission}
     * (the group id); answers with the same envelope as {@link #call}.
     */
    String caller(String op, String argsJson);
}
