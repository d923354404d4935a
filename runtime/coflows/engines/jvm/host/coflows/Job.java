package coflows;

import java.time.ZonedDateTime;

/** An agent's {@code Job} hook: the scheduled time (in the schedule's time zone, UTC by default) and execution type. */
@FunctionalInterface
public interface Job {
    void invoke(ZonedDateTime timestamp, String executionType) throws Exception;
}
