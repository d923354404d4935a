"""The inline-call policy: fast functions earn the event loop, blocking ones lose it."""

from coflows.server.inline import InlinePolicy

KEY = ("wf", "q.py", "f")


def warm(policy, cpu=0.00001, n=20):
    for _ in range(n):
        policy.record(KEY, wall=0.01, cpu=cpu, inline=False)  # GIL waits inflate pool wall time


def test_fast_function_runs_inline_after_warmup():
    p = InlinePolicy()
    warm(p, n=19)
    assert not p.inline(KEY)
    warm(p, n=1)
    assert p.inline(KEY)


def test_cpu_heavy_function_stays_on_the_pool():
    p = InlinePolicy()
    warm(p, cpu=0.005)
    assert not p.inline(KEY)


def test_blocking_inline_call_demotes_for_a_growing_back_off():
    p = InlinePolicy()
    warm(p)
    p.record(KEY, wall=0.1, cpu=0.00001, inline=True)  # blocked 100 ms on the loop
    assert not p.inline(KEY)
    first = p._stats[KEY].backoff
    assert first == 30.0
    p._stats[KEY].slow_until = 0  # the back-off has passed
    warm(p)
    p.record(KEY, wall=0.1, cpu=0.00001, inline=True)
    assert p._stats[KEY].backoff == 60.0


def test_an_isolated_spike_is_forgiven_two_in_a_row_are_not():
    p = InlinePolicy()
    warm(p)
    p.record(KEY, wall=0.003, cpu=0.003, inline=True)  # e.g. a GC pause: no back-off
    assert p._stats[KEY].backoff == 0
    warm(p, n=5)  # a few calls on the pool while the average settles
    assert p.inline(KEY)
    p.record(KEY, wall=0.003, cpu=0.003, inline=True)
    p.record(KEY, wall=0.003, cpu=0.003, inline=True)
    assert p._stats[KEY].backoff == 30.0 and not p.inline(KEY)


def test_engines_that_forbid_inline_calls_never_get_them():
    p = InlinePolicy()
    for _ in range(50):
        p.record(KEY, wall=0.00001, cpu=0.00001, inline=False, allowed=False)
    assert not p.inline(KEY)


def test_disabled_policy():
    p = InlinePolicy(enabled=False)
    warm(p)
    assert not p.inline(KEY)
