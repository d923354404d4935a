package coflows;

/**
 * An agent's {@code Body} hook: a message ({@code POST /flow/agent/{id}}, and once at start
 * {@code {"Function":"Main","Data":"Initial Execution"}}). {@code data} is the message as JSON text
 * (a {@code String}, as in CoFlows: {@link Agent#parse} reads it); the result is answered as JSON.
 */
@FunctionalInterface
public interface Body {
    Object invoke(Object data) throws Exception;
}
