package coflows;

/** An agent's {@code Load} hook: called once at start with the values of its topic (null without a topic). */
@FunctionalInterface
public interface Load {
    void invoke(Object[] data) throws Exception;
}
