package coflows.jvm;

import java.io.PrintWriter;
import java.io.StringWriter;

/**
 * An exception thrown by user code, as text: its class name, message and stack trace.
 *
 * <p>Only this host class crosses into Python, never the user's exception object, so an
 * exception class defined in a workflow does not keep that workflow's class loader alive.
 */
public final class UserFailure extends RuntimeException {
    private static final long serialVersionUID = 1L;
    private final String typeName;
    private final String userMessage;
    private final String stackText;
    private final String language;

    UserFailure(String typeName, String userMessage, String stackText) {
        this(typeName, userMessage, stackText, "java");
    }

    UserFailure(String typeName, String userMessage, String stackText, String language) {
        super(typeName + ": " + userMessage, null, false, false);
        this.typeName = typeName;
        this.userMessage = userMessage;
        this.stackText = stackText;
        this.language = language;
    }

    public String getTypeName() { return typeName; }

    public String getUserMessage() { return userMessage; }

    public String getStackText() { return stackText; }

    /** The language of the code that failed: "java", or the callee's for an uncaught {@code Host.call} failure. */
    public String getLanguage() { return language; }

    static UserFailure of(Throwable t) {
        if (t instanceof UserFailure) return (UserFailure) t;
        Throwable shown = t;
        if (t instanceof ExceptionInInitializerError && t.getCause() != null) shown = t.getCause();
        if (shown instanceof coflows.CoflowsException) {
            // a Host.call that failed and Java did not catch: report the cause (as C# does), both stacks
            coflows.CoflowsException c = (coflows.CoflowsException) shown;
            String remote = c.getRemoteStackTrace();
            String text = stack(t) + (remote == null || remote.isEmpty() ? "" : "--- in the called function ---\n" + remote);
            return new UserFailure(c.getType(), c.getErrorMessage() == null ? "" : c.getErrorMessage(), text,
                    c.getLanguage() == null ? "coflows" : c.getLanguage());
        }
        String msg = shown.getMessage();
        return new UserFailure(shown.getClass().getName(), msg == null ? "" : msg, stack(t));
    }

    /** The stack trace without the frames of reflection, JPype and this engine. */
    static String stack(Throwable t) {
        StringWriter sw = new StringWriter();
        t.printStackTrace(new PrintWriter(sw));
        StringBuilder out = new StringBuilder();
        for (String line : sw.toString().split("\r?\n")) {
            String s = line.trim();
            if (s.startsWith("at ")) {
                String frame = s.substring(3);
                int slashes = frame.lastIndexOf("//");
                if (slashes >= 0) frame = frame.substring(slashes + 2);      // loader//class
                else if (frame.indexOf('/') >= 0 && frame.indexOf('/') < frame.indexOf('(')) {
                    frame = frame.substring(frame.indexOf('/') + 1);         // module/class
                }
                if (frame.startsWith("coflows.jvm.") || frame.startsWith("jdk.internal.reflect.")
                        || frame.startsWith("org.jpype.") || frame.startsWith("java.lang.reflect.Method.invoke")) {
                    continue;
                }
            }
            out.append(line).append('\n');
        }
        return out.toString();
    }
}
