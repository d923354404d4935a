package coflows;

import coflows.jvm.Bind;
import coflows.jvm.InvokerBase;
import coflows.jvm.Json;

import java.util.Map;

/**
 * Java's view of the coflows runtime: call any registered Function, in any language.
 *
 * <pre>{@code
 * Object greeting = coflows.Host.call("PythonQuery.py", "Hello", "Java");
 * long sum = coflows.Host.callAs(Long.class, "Calc.js", "Add", 1, 2);
 * }</pre>
 *
 * Arguments are passed as JSON values (numbers, strings, booleans, lists, maps, POJOs, java.time
 * values as ISO 8601 text); results come back as {@code Long}, {@code Double}, {@code String},
 * {@code Boolean}, {@code List}, {@code Map} or null. A failure throws {@link CoflowsException}.
 */
public final class Host {
    private static volatile Callback callback;

    private Host() {}

    /** Engine use: install the bridge to the runtime. */
    public static void install(Callback cb) { callback = cb; }

    /** The ID of the workflow whose Function is running on this thread (inherited by threads it starts), or null. */
    public static String workflowId() { return InvokerBase.currentWorkflow(); }

    /** Call {@code function} of {@code query} in the calling code's workflow. */
    public static Object call(String query, String function, Object... args) {
        return invoke(workflowId(), query + "/" + function, args);
    }

    /** Call {@code function} of {@code query} in another workflow (by ID or Name). */
    public static Object callIn(String workflow, String query, String function, Object... args) {
        return invoke(workflow, query + "/" + function, args);
    }

    /** Call by reference: {@code "Query/function"} or {@code "Workflow/Query/function"}. */
    public static Object callRef(String ref, Object... args) {
        return invoke(workflowId(), ref, args);
    }

    /** {@link #call}, with the result converted to {@code type} (a class, boxed type, POJO, List, …). */
    @SuppressWarnings("unchecked")
    public static <T> T callAs(Class<T> type, String query, String function, Object... args) {
        Object r = call(query, function, args);
        try {
            return (T) Bind.bind(r, type, "result");
        } catch (coflows.jvm.BindException e) {
            throw new CoflowsException("TypeError", e.getMessage(), "java");
        }
    }

    private static Object invoke(String workflow, String ref, Object[] args) {
        Callback cb = callback;
        if (cb == null) throw new IllegalStateException("coflows.Host is not connected to a coflows runtime");
        return reply(cb.call(workflow, ref, Json.write(args == null ? new Object[0] : args)));
    }

    static Callback callback() {
        Callback cb = callback;
        if (cb == null) throw new IllegalStateException("coflows.Host is not connected to a coflows runtime");
        return cb;
    }

    /** A reply envelope → its value, or a thrown CoflowsException. */
    static Object reply(String out) {
        Object envelope = Json.parse(out, false);
        if (!(envelope instanceof Map)) throw new IllegalStateException("bad reply from the runtime: " + out);
        Map<?, ?> m = (Map<?, ?>) envelope;
        if (m.containsKey("ok")) return m.get("ok");
        Object err = m.get("error");
        if (err instanceof Map) {
            Map<?, ?> e = (Map<?, ?>) err;
            Object type = e.get("type"), message = e.get("message"), language = e.get("language");
            Object stack = e.get("stack");
            throw new CoflowsException(String.valueOf(type), message == null ? "" : String.valueOf(message),
                    language == null ? null : String.valueOf(language), stack == null ? null : String.valueOf(stack));
        }
        throw new IllegalStateException("bad reply from the runtime: " + out);
    }
}
