package coflows.jvm;

import java.util.Map;
import java.util.WeakHashMap;

/**
 * Which threads are inside a user call right now, so a stop (a call's time limit, a gone client)
 * reaches only the call it is meant for, never a later call on the same thread.
 *
 * <p>{@link InvokerBase#invoke} enters and leaves; the Python engine's {@code interrupt} asks
 * {@link #interrupt} first ({@code Thread.interrupt()}: a call blocked in {@code sleep}, {@code wait}
 * or I/O ends with {@code InterruptedException}) and, if the same call still runs after a grace,
 * {@link #kill} ({@code Thread.stop()}, deprecated but working on JDK 17: a {@code ThreadDeath} at
 * the next safepoint, which ends a busy loop). Both act under the thread's state lock, and
 * {@code leave} takes that lock too: a stop is only ever requested while the call is in.
 */
public final class Calls {
    private Calls() {}

    static final class State {
        int depth;  // nested user calls on this thread (Host.call from Java back into Java)
        long seq;  // counts outermost calls: a kill names the call it was meant for
        boolean interrupted;  // this call was interrupted: clear the flag when it leaves
        boolean killed;  // this call was stopped: its ThreadDeath is absorbed on the way out
    }

    private static final ThreadLocal<State> STATE = new ThreadLocal<>();
    private static final Map<Thread, State> BY_THREAD = new WeakHashMap<>();

    static State enter() {
        State s = STATE.get();
        if (s == null) {
            s = new State();
            STATE.set(s);
            synchronized (BY_THREAD) {
                BY_THREAD.put(Thread.currentThread(), s);
            }
        }
        synchronized (s) {
            if (s.depth++ == 0) s.seq++;
        }
        return s;
    }

    /** Leave a call; true when it was stopped (interrupted or killed) while in. */
    static boolean leave(State s) {
        boolean stopped;
        synchronized (s) {
            stopped = s.interrupted || s.killed;
            if (--s.depth > 0) return stopped;
            if (s.interrupted) {
                Thread.interrupted();  // never leave the flag set for the thread's next call
                s.interrupted = false;
            }
            if (!s.killed) return stopped;
            s.killed = false;
        }
        try {
            Thread.sleep(0);  // a ThreadDeath still pending is delivered here, inside the call
        } catch (ThreadDeath | InterruptedException e) {
            // absorbed: the call already counts as stopped
        }
        return true;
    }

    private static State of(Thread t) {
        synchronized (BY_THREAD) {
            return BY_THREAD.get(t);
        }
    }

    /** Interrupt the user call running on {@code t}; its number, or 0 when {@code t} is not in a call. */
    public static long interrupt(Thread t) {
        State s = of(t);
        if (s == null) return 0;
        synchronized (s) {
            if (s.depth == 0) return 0;
            s.interrupted = true;
            t.interrupt();
            return s.seq;
        }
    }

    /** {@code Thread.stop()} the call number {@code seq} on {@code t} if it still runs; true when done. */
    @SuppressWarnings({"deprecation", "removal"})
    public static boolean kill(Thread t, long seq) {
        State s = of(t);
        if (s == null) return false;
        synchronized (s) {
            if (s.depth == 0 || s.seq != seq) return false;
            s.killed = true;
            t.stop();
            return true;
        }
    }

    /** True while {@code t} is inside a user call (for tests and diagnostics). */
    public static boolean inCall(Thread t) {
        State s = of(t);
        if (s == null) return false;
        synchronized (s) {
            return s.depth > 0;
        }
    }

    static UserFailure stopped(String what) {
        return new UserFailure("CallStopped", what + " was stopped (its time limit passed or its caller went away)",
                "", "coflows");
    }
}
