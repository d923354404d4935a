"""Running user code: the worker pool, call deadlines, the watchdog and per-workflow bulkheads."""
