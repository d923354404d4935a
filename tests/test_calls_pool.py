"""The call pool in-process: stops never leak into later calls, nested calls stay on their thread,
the pool never shrinks, `remaining()` follows the deadline."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from coflows.calls import Calls
from coflows.errors import CallTimeout
from coflows.calls.deadline import remaining


@pytest.fixture
def calls():
    c = Calls(threads=2, call_timeout=5.0, workflow_concurrency=2, grace=0.3)
    yield c
    c.close()


def busy(seconds: float) -> int:
    end = time.monotonic() + seconds
    n = 0
    while time.monotonic() < end:
        n += 1
    return n


def test_stops_near_the_end_of_calls_never_hit_a_later_call(calls):
    """Deadlines that expire right around the time calls return: each stop lands in its own call
    or is withdrawn, so the calls after them all succeed."""
    outcomes = {"timeout": 0, "ok": 0}
    for i in range(150):
        try:
            calls.run(busy, 0.02, label=f"W/Q.py/Busy#{i}", timeout=0.012 + (i % 5) * 0.004)
            outcomes["ok"] += 1
        except CallTimeout:
            outcomes["timeout"] += 1
        for j in range(3):
            assert calls.run(lambda x: x * 2, j, label="W/Q.py/Double") == j * 2
    assert outcomes["timeout"] > 0 and outcomes["ok"] > 0  # the race was exercised
    assert calls.pool.written_off == 0


def test_nested_calls_run_on_the_same_thread_under_the_outer_deadline(calls):
    def outer() -> tuple[int, int, float | None]:
        inner_thread = calls.run(threading.get_ident, label="W/Q.py/Inner")
        return threading.get_ident(), inner_thread, remaining()

    here, inner, left = calls.run(outer, label="W/Q.py/Outer", timeout=3)
    assert here == inner
    assert left is not None and 2 < left <= 3
    assert remaining() is None  # outside a call


def test_unstoppable_calls_are_written_off_and_the_pool_never_shrinks(calls):
    for _ in range(3):  # more stuck calls than threads
        with pytest.raises(CallTimeout):
            calls.run(time.sleep, 3, label="W/Q.py/Sleep", timeout=0.2)
    time.sleep(0.8)  # past the grace of the last one
    assert calls.pool.written_off == 3
    assert calls.run(lambda: "still here", label="W/Q.py/Hello") == "still here"
    # two at once: the pool has its full size again
    async def both():
        return await asyncio.gather(calls.run_async(busy, 0.05, label="a"), calls.run_async(busy, 0.05, label="b"))

    assert len(asyncio.run(both())) == 2


def test_async_submit_hands_back_many_results(calls):
    async def many():
        return await asyncio.gather(*[calls.run_async(lambda i=i: i, label="W/Q.py/I") for i in range(500)])

    assert asyncio.run(many()) == list(range(500))
