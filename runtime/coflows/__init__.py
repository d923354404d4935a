"""coflows: a polyglot workflow runtime.

Python, C#, Java and JavaScript functions of a CoFlows-style workspace run in
one process and are served as URLs, agents and DAG flows.
"""

import os as _os

# Mono's default (hybrid) thread-suspend mode deadlocks when several Python
# threads call the CLR and the JVM at once (see ENGINES.md). Mono reads this
# once, when it loads, so it must be in the process environment before any
# engine starts: importing coflows is the earliest point we control.
_os.environ.setdefault("MONO_THREADS_SUSPEND", "preemptive")

__version__ = "0.1.0"
