package app.quant.clr;

/** A failure on the other side of the bridge: the message names the member, the type and the reason. */
public class CLRException extends RuntimeException {
    private final String typeName;

    public CLRException(String typeName, String message) {
        super(typeName == null || typeName.isEmpty() ? message : typeName + ": " + message);
        this.typeName = typeName;
    }

    /** The foreign error's type ({@code KeyError}, {@code ForeignError}, …). */
    public String getTypeName() {
        return typeName;
    }
}
