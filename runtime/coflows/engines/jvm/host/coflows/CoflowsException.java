package coflows;

/** A {@link Host#call} that failed: the Function raised, was not found, or got bad arguments. */
public class CoflowsException extends RuntimeException {
    private static final long serialVersionUID = 1L;
    private final String type;
    private final String language;
    private final String errorMessage;
    private final String remoteStack;

    public CoflowsException(String type, String message, String language) {
        this(type, message, language, null);
    }

    public CoflowsException(String type, String message, String language, String remoteStack) {
        super(type + ": " + message);
        this.type = type;
        this.language = language;
        this.errorMessage = message;
        this.remoteStack = remoteStack;
    }

    /** The failing code's own exception type (e.g. {@code ValueError}) or a coflows error type. */
    public String getType() { return type; }

    /** The language of the Function that failed ({@code python}, {@code java}, …), or null. */
    public String getLanguage() { return language; }

    /** The failing code's message, without the type. */
    public String getErrorMessage() { return errorMessage; }

    /** The stack trace of the failure in the called Function's language, or null. */
    public String getRemoteStackTrace() { return remoteStack; }
}
