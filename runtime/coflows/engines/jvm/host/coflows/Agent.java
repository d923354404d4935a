package coflows;

import coflows.jvm.Json;

/** Helpers for agent code: JSON text (a {@link Body}'s message) to values and back. */
public final class Agent {
    private Agent() {}

    /** JSON text → {@code Map}, {@code List}, {@code String}, {@code Long}, {@code Double}, {@code Boolean} or null. */
    public static Object parse(Object json) {
        return json == null ? null : Json.parse(json.toString(), false);
    }

    /** A value (maps, lists, POJOs, java.time, …) → JSON text. */
    public static String json(Object value) {
        return Json.write(value);
    }
}
