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


def __getattr__(name: str):  # noqa: ANN202 - lazy, so `import coflows` stays light
    """`coflows.M` (CoFlows' `M.Base(topic)`), `coflows.m(topic)`, `coflows.call(ref, …)`, `@coflows.timeout(s)`,
    `coflows.user()` (who is calling) and `coflows.permission(group_id)` (their level)."""
    if name in ("M", "m"):
        import coflows.m as _m  # the package itself is callable: coflows.m("orders")

        return _m.M if name == "M" else _m
    if name == "call":
        from coflows.runtime import call

        globals()["call"] = call  # later look-ups find it at once (an import statement costs ~1 µs)
        return call
    if name == "timeout":  # @coflows.timeout(seconds): a function's own time limit
        from coflows.calls.timeout import timeout

        return timeout
    if name in ("user", "permission", "User"):
        from coflows import caller

        return getattr(caller, name)
    raise AttributeError(f"module 'coflows' has no attribute {name!r}")
