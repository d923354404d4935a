"""Running user code: the worker pool, call deadlines, the watchdog and per-workflow bulkheads.

- `pool.py`: worker threads that never shrink (stuck threads are written off and replaced);
- `watchdog.py`: one thread that stops calls past their deadline or whose caller has gone;
- `deadline.py`: `remaining()` for the current thread's call;
- `bulkhead.py`: a cap on the calls one workflow runs at once (503 when full);
- `bridge.py`: finished calls handed back to the event loop in batches;
- `service.py`: `Calls`, the facade the runtime owns (`runtime.calls`).
"""

from coflows.calls.bulkhead import WorkflowBusy
from coflows.calls.call import Call, CallCancelled
from coflows.calls.service import Calls
from coflows.calls.stop import CallStopped
from coflows.calls.timeout import timeout

__all__ = ["Call", "CallCancelled", "CallStopped", "Calls", "WorkflowBusy", "timeout"]
