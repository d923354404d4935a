package coflows;

/** A {@link Host#call} that failed: the Function raised, was not found, or got bad arguments. */
public class CoflowsException extends RuntimeException {
    private static final long serialVersionUID = 1L;
    private final String type;
    private final String language;

    public CoflowsException(String type, String message, String language) {
        super(type + ": " + message);
        this.type = type;
        this.language = language;
    }

    /** The failing code's own exception type (e.g. {@code ValueError}) or a coflows error type. */
    public String getType() { return type; }

    /** The language of the Function that failed ({@code python}, {@code java}, …), or null. */
    public String getLanguage() { return language; }
}
