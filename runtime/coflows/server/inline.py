"""When a call may run on the event loop instead of hopping to a worker thread.

A hop to the thread pool costs about 70 µs on this kind of machine, about twice
a whole bare Starlette request, so for functions that take microseconds the hop
*is* the cost of the call. DESIGN.md's rule is that work that can block never
runs on the event loop; this policy keeps its spirit with evidence instead of
a blanket rule:

- every function starts on the pool, where its duration is measured;
- after `warmup` calls whose moving average is under `fast_s` and none over
  `budget_s`, it runs inline on the loop;
- an inline call that exceeds `budget_s` sends the function back to the pool
  for a back-off that doubles each time (1 s … 10 min), so a function that is
  sometimes slow stays on the pool;
- anything that needs a reload (a compile) always goes through the pool.

So the loop can be held up by at most one over-budget call per back-off
period per function. `Server.InlineCalls: false` turns the policy off.
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
    never: bool = False  # its engine forbids inline calls


class InlinePolicy:
    def __init__(self, enabled: bool = True, warmup: int = 20, fast_s: float = 0.0002,
                 budget_s: float = 0.002, max_backoff_s: float = 600.0) -> None:
        self.enabled = enabled
        self.warmup = warmup
        self.fast_s = fast_s
        self.budget_s = budget_s
        self.max_backoff_s = max_backoff_s
        self._stats: dict[tuple[str, str, str], _Stats] = {}

    def inline(self, key: tuple[str, str, str]) -> bool:
        if not self.enabled:
            return False
        s = self._stats.get(key)
        return (s is not None and not s.never and s.count >= self.warmup and s.ewma < self.fast_s
                and s.slow_until <= time.monotonic())

    def record(self, key: tuple[str, str, str], seconds: float, inline: bool, allowed: bool = True) -> None:
        s = self._stats.get(key)
        if s is None:
            s = self._stats[key] = _Stats()
        s.never = not allowed
        s.count += 1
        s.ewma = seconds if s.count == 1 else s.ewma * 0.9 + seconds * 0.1
        if seconds > self.budget_s:
            s.backoff = min(self.max_backoff_s, max(1.0, s.backoff * 2))
            s.slow_until = time.monotonic() + s.backoff
            s.count = 0  # re-earn the fast track after the back-off
        elif inline and s.backoff and s.slow_until <= time.monotonic():
            s.backoff = max(0.0, s.backoff / 2 if s.backoff > 1 else 0.0)
