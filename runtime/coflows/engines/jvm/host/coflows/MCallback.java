package coflows;

/** An agent's {@code Add}, {@code Exchange} or {@code Remove} hook: the entry's id and (new or removed) value. */
@FunctionalInterface
public interface MCallback {
    void invoke(String id, Object data) throws Exception;
}
