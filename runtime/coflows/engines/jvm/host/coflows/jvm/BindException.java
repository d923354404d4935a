package coflows.jvm;

/** A JSON value that does not fit the declared Java type; the message names where (e.g. {@code items[2].price}). */
public class BindException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public BindException(String message) {
        super(message, null, false, false);
    }
}
