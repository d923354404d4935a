"""How punctually does a Quartz schedule fire on APScheduler's BackgroundScheduler?

Schedules `* * * ? * *` (every second) with `QuartzTrigger`, records for each
firing the wall-clock time the job started against its scheduled time, and
prints p50/p99/max jitter against the target (p99 <= 50 ms). Figures only.

    .venv/bin/python bench/cron.py [--firings N]

Settings, chosen so the figure is honest rather than flattering:
`misfire_grace_time=None` and `coalesce=False` make every late firing run and
be measured (none silently dropped or merged); a 4-thread pool keeps the job
from waiting for a worker. The job only reads the clock, so what is measured is
scheduler wake-up + hand-off to the pool, plus our trigger's next-time search.
"""

from __future__ import annotations

import argparse
import math
import threading
import time
from datetime import datetime, timezone

import apscheduler
from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler

from coflows.agents.schedule import parse_schedule

EXPRESSION = "* * * ? * *"
TARGET_P99_MS = 50.0


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile (with 60 samples p99 is the largest value)."""
    return sorted_values[max(0, math.ceil(p / 100 * len(sorted_values)) - 1)]


def trigger_cost_us(text: str, calls: int = 2000) -> float:
    """Mean cost of one get_next_fire_time call, stepping forward from fire time to fire time."""
    trigger = parse_schedule(text).trigger()
    now = datetime(2025, 1, 1, tzinfo=timezone.utc)
    t = trigger.get_next_fire_time(None, now)
    t0 = time.perf_counter()
    for _ in range(calls):
        t = trigger.get_next_fire_time(t, now) or now
    return (time.perf_counter() - t0) / calls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--firings", type=int, default=60, help="firings to measure (default 60, one per second)")
    n = parser.parse_args().firings

    jitter_ms: list[float] = []
    problems: list[str] = []
    done = threading.Event()

    def job() -> float:
        return time.time()

    def listen(event: JobExecutionEvent) -> None:
        if event.code == EVENT_JOB_EXECUTED:
            jitter_ms.append((event.retval - event.scheduled_run_time.timestamp()) * 1000)
        else:
            problems.append(f"{event.code} at {event.scheduled_run_time}")
        if len(jitter_ms) >= n:
            done.set()

    scheduler = BackgroundScheduler(
        executors={"default": ThreadPoolExecutor(max_workers=4)},
        job_defaults={"coalesce": False, "misfire_grace_time": None, "max_instances": 1},
        timezone=timezone.utc,
    )
    scheduler.add_listener(listen, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR | EVENT_JOB_MISSED)
    scheduler.add_job(job, parse_schedule(EXPRESSION).trigger(), id="bench")
    print(f"coflows cron bench: {EXPRESSION!r} with QuartzTrigger on APScheduler {apscheduler.__version__} "
          "BackgroundScheduler")
    print("settings: ThreadPoolExecutor(max_workers=4), coalesce=False, misfire_grace_time=None, max_instances=1 "
          "(every firing runs and is measured; none dropped or merged)")
    print(f"measuring {n} firings (about {n} s)...", flush=True)
    scheduler.start()
    try:
        finished = done.wait(n + 10)
    finally:
        scheduler.shutdown(wait=True)

    if not jitter_ms:
        print("no firings recorded")
        return
    values = sorted(jitter_ms[:n])
    p50, p99, worst = percentile(values, 50), percentile(values, 99), values[-1]
    print(f"firings: {len(values)}{'' if finished else ' (timed out before all firings)'}, "
          f"errors/missed: {len(problems)}")
    print(f"jitter (job start - scheduled time), ms: p50 {p50:.2f}  p99 {p99:.2f}  max {worst:.2f}  "
          f"min {values[0]:.2f}")
    print(f"target: p99 <= {TARGET_P99_MS:.0f} ms -> {'met' if p99 <= TARGET_P99_MS else 'NOT met'}")
    for text in (EXPRESSION, "0 0 9 ? * MON-FRI @ America/New_York", "0 0 0 29 2 ?", "0 0 12 ? * 2#5"):
        print(f"trigger cost: {trigger_cost_us(text, 200 if '29 2' in text else 2000):7.1f} us per next time  {text!r}")


if __name__ == "__main__":
    main()
