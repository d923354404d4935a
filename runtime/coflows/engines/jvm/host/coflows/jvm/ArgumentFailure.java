package coflows.jvm;

/** An argument that does not convert to its parameter's Java type (an HTTP 400, not a user-code error). */
public final class ArgumentFailure extends RuntimeException {
    private static final long serialVersionUID = 1L;
    private final String parameter;

    ArgumentFailure(String parameter, String message) {
        super(message, null, false, false);
        this.parameter = parameter;
    }

    public String getParameter() { return parameter; }
}
