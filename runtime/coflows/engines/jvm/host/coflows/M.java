package coflows;

import coflows.jvm.Bind;
import coflows.jvm.Json;

import java.util.List;
import java.util.Map;

/**
 * An M topic: a persistent set of JSON values shared by every language (Python's {@code coflows.m}).
 *
 * <pre>{@code
 * M orders = M.Base("orders");
 * String id = orders.add(Map.of("item", "tea", "qty", 2));
 * Map<?, ?> entry = (Map<?, ?>) orders.get(id);
 * }</pre>
 *
 * Values go as JSON values (maps, lists, strings, numbers, booleans, POJOs, java.time as ISO text)
 * and come back as {@code Map}, {@code List}, {@code String}, {@code Long}, {@code Double},
 * {@code Boolean} or null. A failure throws {@link CoflowsException}. CoFlows' capitalized names
 * ({@code Add}, {@code Exchange}, …) are aliases.
 */
public final class M {
    private final String topic;

    private M(String topic) {
        if (topic == null || topic.isEmpty()) throw new IllegalArgumentException("M.Base: the topic is empty");
        this.topic = topic;
    }

    public static M Base(String topic) { return new M(topic); }

    public static M base(String topic) { return new M(topic); }

    public String topic() { return topic; }

    /** Add a value; its id (adding a value equal to an entry returns that entry's id). */
    public String add(Object value) { return (String) op("add", value); }

    /** Replace the entry with this id (or this current value) by {@code newValue}: {@code {id, version, ...}}. */
    public Map<?, ?> exchange(Object idOrValue, Object newValue) { return (Map<?, ?>) op("exchange", idOrValue, newValue); }

    /** Remove the entry with this id (or this value); false when there was none. */
    public boolean remove(Object idOrValue) { return Boolean.TRUE.equals(op("remove", idOrValue)); }

    /** The value of an entry, or null. */
    public Object get(String id) { return op("get", id); }

    /** The value of an entry bound to {@code type} (a POJO, boxed type, List, …), or null. */
    @SuppressWarnings("unchecked")
    public <T> T get(String id, Class<T> type) {
        Object v = get(id);
        try {
            return (T) Bind.bind(v, type, "value");
        } catch (coflows.jvm.BindException e) {
            throw new CoflowsException("TypeError", e.getMessage(), "java");
        }
    }

    /** The entry {@code {id, value, version, ...}} holding this value, or null. */
    public Map<?, ?> find(Object value) { return (Map<?, ?>) op("find", value); }

    public long count() { return ((Number) op("count")).longValue(); }

    /** The values, oldest first. */
    public List<?> values() { return (List<?>) op("list"); }

    /** Every entry: {@code {id, value, version, ...}}. */
    public List<?> entries() { return (List<?>) op("entries"); }

    /** Remove every entry; how many were removed. */
    public long clear() { return ((Number) op("clear")).longValue(); }

    public String Add(Object value) { return add(value); }
    public Map<?, ?> Exchange(Object idOrValue, Object newValue) { return exchange(idOrValue, newValue); }
    public boolean Remove(Object idOrValue) { return remove(idOrValue); }
    public Object Get(String id) { return get(id); }
    public <T> T Get(String id, Class<T> type) { return get(id, type); }
    public Map<?, ?> Find(Object value) { return find(value); }
    public long Count() { return count(); }
    public List<?> Values() { return values(); }
    public long Clear() { return clear(); }

    private Object op(String op, Object... args) {
        return Host.reply(Host.callback().m(op, topic, Json.write(args)));
    }

    @Override
    public String toString() { return "M(" + topic + ")"; }
}
