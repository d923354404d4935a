"""When a call may run on the event loop instead of hopping to a worker thread.

A hop to the thread pool costs about 70 µs on this kind of machine, about twice
a whole bare Starlette request, so for functions that take microseconds the hop
*is* the cost of the call. DESIGN.md's rule is that work that can block never
runs on the event loop; this policy keeps its spirit with evidence instead of
a blanket rule:

- every function starts on the pool, where its thread CPU time is measured
  (wall time on the pool mostly measures waiting for the GIL while the loop
  runs, which made C# and Java calls look slow);
- after `warmup` calls whose CPU-time moving average is under `fast_s`, and
  none over `budget_s`, it runs inline on the loop, where wall time is measured;
- an inline call whose wall time exceeds `block_s` (it blocked), or two
  inline calls in a row over `budget_s` (an isolated spike such as a GC pause
  is forgiven), send the function back to the pool for a back-off that starts
  at 30 s and doubles up to 10 min, so a function that sometimes blocks stays
  on the pool almost always;
- engines whose calls may wait for each other (V8: one thread per workflow)
  never run inline, and anything that needs a reload (a compile) always goes
  through the pool.

So the loop can be held up by at most one over-budget call per back-off
period per function: a function that blocks on I/O at every call costs the
loop one such wait at 0, 30 s, 90 s, 210 s, … then every 10 minutes.
`Server.InlineCalls: false` turns the policy off.
"""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass(slots=True)
class _Stats:
    count: int = 0
    ewma: float = 0.0
    slow_until: float = 0.0
    backoff: float = 0.0
    strikes: int = 0  # inline calls in a row over budget
    never: bool = False  # its engine forbids inline calls


class InlinePolicy:
    def __init__(self, enabled: bool = True, warmup: int = 20, fast_s: float = 0.0002,
                 budget_s: float = 0.002, block_s: float = 0.02, first_backoff_s: float = 30.0,
                 max_backoff_s: float = 600.0) -> None:
        self.enabled = enabled
        self.warmup = warmup
        self.fast_s = fast_s
        self.budget_s = budget_s
        self.block_s = block_s
        self.first_backoff_s = first_backoff_s
        self.max_backoff_s = max_backoff_s
        self._stats: dict[tuple[str, str, str], _Stats] = {}

    def inline(self, key: tuple[str, str, str]) -> bool:
        if not self.enabled:
            return False
        s = self._stats.get(key)
        return (s is not None and not s.never and s.count >= self.warmup and s.ewma < self.fast_s
                and s.slow_until <= time.monotonic())

    def record(self, key: tuple[str, str, str], wall: float, cpu: float, inline: bool,
               allowed: bool = True) -> None:
        """One call: `wall` and thread `cpu` seconds in user code, run `inline` or on the pool."""
        s = self._stats.get(key)
        if s is None:
            s = self._stats[key] = _Stats()
        s.never = not allowed
        cost = wall if inline else cpu
        s.count += 1
        s.ewma = cost if s.count == 1 else s.ewma * 0.9 + cost * 0.1
        over = cost > self.budget_s
        s.strikes = s.strikes + 1 if over else 0
        if over and (not inline or cost > self.block_s or s.strikes >= 2):
            s.strikes = 0
            s.backoff = min(self.max_backoff_s, max(self.first_backoff_s, s.backoff * 2))
            s.slow_until = time.monotonic() + s.backoff
            s.count = 0  # re-earn the fast track after the back-off
