package coflows.jvm;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;

/**
 * {@code System.out} while an agent's hook runs: what the hook's thread prints goes to its run
 * record (the engine calls {@link #begin} and {@link #end} around the hook); other threads' output
 * goes to the process's stdout as before. At most 64 KiB per run are kept.
 */
public final class HookOutput extends OutputStream {
    private static final int MAX = 64 * 1024;
    private static final ThreadLocal<ByteArrayOutputStream> BUFFER = new ThreadLocal<>();
    private static boolean installed;

    private final OutputStream inner;

    private HookOutput(OutputStream inner) {
        this.inner = inner;
    }

    public static synchronized void install() {
        if (installed) return;
        installed = true;
        System.setOut(new PrintStream(new HookOutput(System.out), true, StandardCharsets.UTF_8));
    }

    public static void begin() {
        BUFFER.set(new ByteArrayOutputStream());
    }

    public static String end() {
        ByteArrayOutputStream b = BUFFER.get();
        BUFFER.remove();
        return b == null ? "" : b.toString(StandardCharsets.UTF_8);
    }

    @Override
    public void write(int b) throws IOException {
        ByteArrayOutputStream buf = BUFFER.get();
        if (buf == null) inner.write(b);
        else if (buf.size() < MAX) buf.write(b);
    }

    @Override
    public void write(byte[] b, int off, int len) throws IOException {
        ByteArrayOutputStream buf = BUFFER.get();
        if (buf == null) inner.write(b, off, len);
        else buf.write(b, off, Math.max(0, Math.min(len, MAX - buf.size())));
    }

    @Override
    public void flush() throws IOException {
        if (BUFFER.get() == null) inner.flush();
    }
}
