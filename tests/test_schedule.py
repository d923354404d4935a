"""Quartz-dialect agent schedules (coflows.agents.schedule).

Every expected fire time below was worked out by hand against a printed
calendar (weekdays) and the published DST rules (New York 2025: spring forward
Sun 9 Mar 02:00 EST -> 03:00 EDT, fall back Sun 2 Nov 02:00 EDT -> 01:00 EST;
Sydney 2025: fall back Sun 6 Apr 03:00 AEDT -> 02:00 AEST, spring forward
Sun 5 Oct 02:00 AEST -> 03:00 AEDT). Results are compared as ISO strings with
their UTC offset, so a wrong DST fold cannot compare equal by accident.
On top of the hand-checked tables, two tests compare against brute-force scans
written from the definitions (day rules over four years; DST days minute by minute).
"""

from __future__ import annotations

import calendar
import pickle
import threading
import time
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger

from coflows.agents.schedule import (
    DEFAULT_EXECUTION_TYPE,
    QuartzTrigger,
    ScheduleError,
    parse_schedule,
)
from coflows.errors import CoflowsError

UTC = timezone.utc


def fires(text: str, start: str, n: int) -> list[str]:
    got = parse_schedule(text).next_fire_times(datetime.fromisoformat(start), n)
    return [t.isoformat(sep=" ") for t, _ in got]


def days(*dates: str, at: str = "00:00:00", offset: str = "+00:00") -> list[str]:
    return [f"{d} {at}{offset}" for d in dates]


# (expression, start, expected fire times) -- UTC unless the expression says otherwise.
CASES = [
    # the CoFlows template default: every minute (not every hour, as its tutorial said)
    ("0 * * ? * *", "2025-01-01 00:00:30+00:00",
     ["2025-01-01 00:01:00+00:00", "2025-01-01 00:02:00+00:00", "2025-01-01 00:03:00+00:00"]),
    ("* * * ? * *", "2025-01-01 00:00:00.500000+00:00",
     ["2025-01-01 00:00:01+00:00", "2025-01-01 00:00:02+00:00", "2025-01-01 00:00:03+00:00"]),
    # steps
    ("*/15 * * ? * *", "2025-01-01 00:00:01+00:00",
     ["2025-01-01 00:00:15+00:00", "2025-01-01 00:00:30+00:00", "2025-01-01 00:00:45+00:00",
      "2025-01-01 00:01:00+00:00"]),
    ("10/20 * * ? * *", "2025-01-01 00:00:00+00:00",
     ["2025-01-01 00:00:10+00:00", "2025-01-01 00:00:30+00:00", "2025-01-01 00:00:50+00:00",
      "2025-01-01 00:01:10+00:00"]),
    ("/20 * * ? * *", "2025-01-01 00:00:01+00:00",
     ["2025-01-01 00:00:20+00:00", "2025-01-01 00:00:40+00:00", "2025-01-01 00:01:00+00:00"]),
    ("0 1-30/10 * ? * *", "2025-01-01 00:00:00+00:00",
     ["2025-01-01 00:01:00+00:00", "2025-01-01 00:11:00+00:00", "2025-01-01 00:21:00+00:00",
      "2025-01-01 01:01:00+00:00"]),
    # wrapping hour range (Quartz allows it)
    ("0 0 22-2 ? * *", "2025-01-01 03:00:00+00:00",
     ["2025-01-01 22:00:00+00:00", "2025-01-01 23:00:00+00:00", "2025-01-02 00:00:00+00:00",
      "2025-01-02 01:00:00+00:00", "2025-01-02 02:00:00+00:00", "2025-01-02 22:00:00+00:00"]),
    # start is inclusive
    ("15 30 10 ? * WED", "2025-01-01 10:30:15+00:00",
     ["2025-01-01 10:30:15+00:00", "2025-01-08 10:30:15+00:00"]),
    # L, L-n, LW
    ("0 0 0 L * ?", "2025-01-01 00:00:00+00:00", days("2025-01-31", "2025-02-28", "2025-03-31", "2025-04-30")),
    ("0 0 0 L * ?", "2024-02-01 00:00:00+00:00", days("2024-02-29", "2024-03-31")),
    ("0 0 0 L-2 * ?", "2025-01-01 00:00:00+00:00", days("2025-01-29", "2025-02-26", "2025-03-29", "2025-04-28")),
    # May 31 is a Saturday -> Fri 30; Aug 31 is a Sunday -> Fri 29
    ("0 0 12 LW * ?", "2025-05-01 00:00:00+00:00",
     days("2025-05-30", "2025-06-30", "2025-07-31", "2025-08-29", at="12:00:00")),
    # nW: 15 Feb and 15 Mar 2025 are Saturdays -> Friday 14; 15 Jun is a Sunday -> Monday 16
    ("0 0 12 15W * ?", "2025-02-01 00:00:00+00:00",
     days("2025-02-14", "2025-03-14", "2025-04-15", "2025-05-15", "2025-06-16", at="12:00:00")),
    # 1W never leaves the month: Sat 1 Feb/1 Mar -> Monday 3; Sun 1 Jun -> Monday 2
    ("0 0 12 1W * ?", "2025-02-01 00:00:00+00:00",
     days("2025-02-03", "2025-03-03", "2025-04-01", "2025-05-01", "2025-06-02", at="12:00:00")),
    # 31W: Sun 31 Aug -> Fri 29 (not Mon 1 Sep); September and November have no 31st
    ("0 0 12 31W * ?", "2025-08-01 00:00:00+00:00", days("2025-08-29", "2025-10-31", "2025-12-31", at="12:00:00")),
    # a list mixing a plain day, W and L (Sat 1 Feb still fires: plain 1 is not W)
    ("0 0 12 1,15W,L * ?", "2025-02-01 00:00:00+00:00",
     days("2025-02-01", "2025-02-14", "2025-02-28", "2025-03-01", "2025-03-14", "2025-03-31", at="12:00:00")),
    # # and nL, Quartz numbering (1=SUN, 2=MON, 5=THU, 6=FRI)
    ("0 0 9 ? * 6#3", "2025-01-01 00:00:00+00:00",
     days("2025-01-17", "2025-02-21", "2025-03-21", "2025-04-18", at="09:00:00")),
    ("0 0 9 ? * fri#3", "2025-01-01 00:00:00+00:00",
     days("2025-01-17", "2025-02-21", "2025-03-21", "2025-04-18", at="09:00:00")),
    # fifth Monday: only March, June, September and December 2025 have one
    ("0 0 9 ? * 2#5", "2025-01-01 00:00:00+00:00",
     days("2025-03-31", "2025-06-30", "2025-09-29", "2025-12-29", at="09:00:00")),
    ("0 0 9 ? * 6L", "2025-01-01 00:00:00+00:00",
     days("2025-01-31", "2025-02-28", "2025-03-28", "2025-04-25", at="09:00:00")),
    ("0 0 9 ? * 5L", "2025-01-01 00:00:00+00:00",
     days("2025-01-30", "2025-02-27", "2025-03-27", "2025-04-24", at="09:00:00")),
    # names, numbers and the Sunday=1 translation
    ("0 0 9 ? * MON-FRI", "2025-01-03 10:00:00+00:00",
     days("2025-01-06", "2025-01-07", "2025-01-08", "2025-01-09", "2025-01-10", "2025-01-13", at="09:00:00")),
    ("0 0 9 ? * 2-6", "2025-01-03 10:00:00+00:00",
     days("2025-01-06", "2025-01-07", "2025-01-08", "2025-01-09", "2025-01-10", "2025-01-13", at="09:00:00")),
    ("0 0 8 ? * SUN,SAT", "2025-01-01 00:00:00+00:00",
     days("2025-01-04", "2025-01-05", "2025-01-11", "2025-01-12", at="08:00:00")),
    ("0 0 8 ? * 1", "2025-01-01 00:00:00+00:00", days("2025-01-05", "2025-01-12", "2025-01-19", at="08:00:00")),
    ("0 0 8 ? * L", "2025-01-01 00:00:00+00:00", days("2025-01-04", "2025-01-11", "2025-01-18", at="08:00:00")),
    ("0 0 8 ? * fri-MON", "2025-01-01 00:00:00+00:00",
     days("2025-01-03", "2025-01-04", "2025-01-05", "2025-01-06", "2025-01-10", at="08:00:00")),
    ("0 0 0 1 JAN,jul ?", "2025-01-02 00:00:00+00:00", days("2025-07-01", "2026-01-01", "2026-07-01")),
    ("0 0 0 1 */3 ?", "2025-01-02 00:00:00+00:00", days("2025-04-01", "2025-07-01", "2025-10-01", "2026-01-01")),
    # leap days, including across 2100 (not a leap year)
    ("0 0 0 29 2 ?", "2025-01-01 00:00:00+00:00", days("2028-02-29", "2032-02-29")),
    ("0 0 0 29 2 ?", "2097-03-01 00:00:00+00:00", days("2104-02-29")),
    # year field: the list ends, then nothing
    ("0 0 0 1 1 ? 2027,2030-2031", "2025-01-01 00:00:00+00:00", days("2027-01-01", "2030-01-01", "2031-01-01")),
    ("0 0 0 25 12 ? 2024", "2025-01-01 00:00:00+00:00", []),
    ("0 30 9 ? JUN-AUG MON#1 2025", "2025-01-01 00:00:00+00:00",
     days("2025-06-02", "2025-07-07", "2025-08-04", at="09:30:00")),
    # `*` in both day fields is accepted (every day)
    ("0 0 1 * * *", "2025-01-01 00:00:00+00:00", days("2025-01-01", "2025-01-02", at="01:00:00")),
    # --- time zones ---
    # 09:00 AEDT (UTC+11) on weekdays; 2025-01-01 00:00 UTC is 11:00 Wed in Sydney
    ("0 0 9 ? * MON-FRI @ Australia/Sydney", "2025-01-01 00:00:00+00:00",
     ["2025-01-02 09:00:00+11:00", "2025-01-03 09:00:00+11:00", "2025-01-06 09:00:00+11:00"]),
    # Sydney fall back (6 Apr): 02:30 happens twice, fires once (the first, AEDT)
    ("0 30 2 * * ? @ Australia/Sydney", "2025-04-05 00:00:00+11:00",
     ["2025-04-05 02:30:00+11:00", "2025-04-06 02:30:00+11:00", "2025-04-07 02:30:00+10:00"]),
    # Sydney spring forward (5 Oct): 02:30 does not exist, skipped
    ("0 30 2 * * ? @ Australia/Sydney", "2025-10-04 00:00:00+10:00",
     ["2025-10-04 02:30:00+10:00", "2025-10-06 02:30:00+11:00"]),
    # New York spring forward (9 Mar): the 02:30 daily job is skipped that day
    ("0 30 2 * * ? @ America/New_York", "2025-03-08 00:00:00-05:00",
     ["2025-03-08 02:30:00-05:00", "2025-03-10 02:30:00-04:00"]),
    # New York fall back (2 Nov): the 01:30 daily job fires once, at 01:30 EDT
    ("0 30 1 * * ? @ America/New_York", "2025-11-01 00:00:00-04:00",
     ["2025-11-01 01:30:00-04:00", "2025-11-02 01:30:00-04:00", "2025-11-03 01:30:00-05:00"]),
    # hourly across fall back: 01:00 EST (the repeat) does not fire
    ("0 0 * * * ? @ America/New_York", "2025-11-02 00:00:00-04:00",
     ["2025-11-02 00:00:00-04:00", "2025-11-02 01:00:00-04:00", "2025-11-02 02:00:00-05:00",
      "2025-11-02 03:00:00-05:00"]),
    # starting inside the repeated hour: its wall times already fired, next is 02:00 EST
    ("0 */30 * * * ? @ America/New_York", "2025-11-02 01:10:00-05:00",
     ["2025-11-02 02:00:00-05:00", "2025-11-02 02:30:00-05:00"]),
    # half-hourly across spring forward: 02:00 and 02:30 do not exist
    ("0 0/30 * * * ? @ America/New_York", "2025-03-09 01:00:00-05:00",
     ["2025-03-09 01:00:00-05:00", "2025-03-09 01:30:00-05:00", "2025-03-09 03:00:00-04:00",
      "2025-03-09 03:30:00-04:00"]),
    # every second across spring forward: 01:59:59 EST is followed by 03:00:00 EDT
    ("* * * ? * * @ America/New_York", "2025-03-09 01:59:58-05:00",
     ["2025-03-09 01:59:58-05:00", "2025-03-09 01:59:59-05:00", "2025-03-09 03:00:00-04:00"]),
]


@pytest.mark.parametrize(("text", "start", "expected"), CASES, ids=[f"{c[0]} from {c[1]}" for c in CASES])
def test_fire_times(text: str, start: str, expected: list[str]) -> None:
    assert fires(text, start, len(expected)) == expected


def test_fire_times_stop_when_years_run_out() -> None:
    assert fires("0 0 0 1 1 ? 2027,2030-2031", "2025-01-01 00:00:00+00:00", 10) == days(
        "2027-01-01", "2030-01-01", "2031-01-01"
    )
    trigger = parse_schedule("0 0 0 25 12 ? 2024").trigger()
    assert trigger.get_next_fire_time(None, datetime(2025, 1, 1, tzinfo=UTC)) is None


@pytest.mark.parametrize(
    ("zone", "day"),
    [("America/New_York", "2025-03-09"), ("America/New_York", "2025-11-02"),
     ("Australia/Sydney", "2025-04-06"), ("Australia/Sydney", "2025-10-05"),
     ("Australia/Lord_Howe", "2025-04-06"), ("Australia/Lord_Howe", "2025-10-05")],  # Lord Howe shifts 30 min
)
@pytest.mark.parametrize("cron", ["0 */15 * * * ?", "0 30 1,2 * * ?", "0 45 2 * * ?"])
def test_dst_days_agree_with_a_minute_by_minute_scan(zone: str, day: str, cron: str) -> None:
    """Oracle: walk UTC minute by minute, keep wall times that match, and only their first occurrence."""
    tz = ZoneInfo(zone)
    minutes, hours = cron.split()[1:3]
    start = datetime.fromisoformat(day).replace(tzinfo=tz) - timedelta(hours=2)
    expected = []
    for i in range(28 * 60):
        local = (start.astimezone(UTC) + timedelta(minutes=i)).astimezone(tz)
        ok_minute = local.minute % 15 == 0 if minutes == "*/15" else local.minute == int(minutes)
        ok_hour = hours == "*" or local.hour in {int(h) for h in hours.split(",")}
        if ok_minute and ok_hour and local.fold == 0:
            expected.append(local.isoformat(sep=" "))
    got = fires(f"{cron} @ {zone}", start.isoformat(sep=" "), len(expected))
    assert got == expected


def test_sydney_results_are_the_right_instants() -> None:
    got = parse_schedule("0 0 9 ? * MON-FRI @ Australia/Sydney").next_fire_times(datetime(2025, 1, 1, tzinfo=UTC), 1)
    assert got[0][0] == datetime(2025, 1, 1, 22, 0, tzinfo=UTC)


def test_naive_start_is_wall_time_in_the_schedule_zone() -> None:
    got = parse_schedule("0 30 2 * * ? @ America/New_York").next_fire_times(datetime(2025, 3, 9), 1)
    assert got[0][0].isoformat(sep=" ") == "2025-03-10 02:30:00-04:00"


# An independent day-by-day oracle for the day rules, from their definitions rather than the
# module's arithmetic: nW is the weekday of the month closest to day n; nL is weekday n with no
# later one in the month; n#k is weekday n in days 7k-6..7k.
def _oracle(item: str, d: date) -> bool:
    last = calendar.monthrange(d.year, d.month)[1]
    quartz_wd = d.isoweekday() % 7 + 1  # ISO Mon=1..Sun=7 -> Quartz SUN=1..SAT=7
    weekdays = [x for x in range(1, last + 1) if date(d.year, d.month, x).isoweekday() <= 5]
    if item == "L":
        return d.day == last
    if item.startswith("L-"):
        return d.day == last - int(item[2:])
    if item == "LW":
        return d.day == weekdays[-1]
    if item.endswith("W"):
        n = int(item[:-1])
        return n <= last and d.day == min(weekdays, key=lambda x: abs(x - n))
    if item.endswith("L"):
        return quartz_wd == int(item[:-1]) and d.day + 7 > last
    if "#" in item:
        wd, k = map(int, item.split("#"))
        return quartz_wd == wd and (d.day - 1) // 7 + 1 == k
    raise AssertionError(item)


@pytest.mark.parametrize(
    "item", ["L", "L-1", "L-5", "LW", "1W", "2W", "15W", "16W", "28W", "29W", "30W", "31W",
             "1L", "2L", "4L", "7L", "1#1", "2#2", "4#4", "6#5", "7#5"]
)
def test_day_rules_agree_with_an_oracle_over_four_years(item: str) -> None:
    day_of_week = "#" in item or (item.endswith("L") and item[:-1].isdigit())
    text = f"0 0 12 ? * {item}" if day_of_week else f"0 0 12 {item} * ?"
    expected = [
        f"{d.isoformat()} 12:00:00+00:00"
        for d in (date(2024, 1, 1) + timedelta(days=i) for i in range(366 + 3 * 365))
        if _oracle(item, d)
    ]
    got = fires(text, "2024-01-01 00:00:00+00:00", len(expected) + 1)
    assert got[: len(expected)] == expected
    assert got[len(expected)] >= "2028-01-01"


# --- parts, prefixes and the zone suffix -------------------------------------------------------


def test_union_fires_once_with_the_first_parts_type() -> None:
    s = parse_schedule("Daily|0 0 1 * * ?; Hourly|0 0 * * * ?")
    got = [(t.isoformat(sep=" "), e) for t, e in s.next_fire_times(datetime(2025, 1, 1, 0, 30, tzinfo=UTC), 4)]
    assert got == [
        ("2025-01-01 01:00:00+00:00", "Daily"),
        ("2025-01-01 02:00:00+00:00", "Hourly"),
        ("2025-01-01 03:00:00+00:00", "Hourly"),
        ("2025-01-01 04:00:00+00:00", "Hourly"),
    ]
    swapped = parse_schedule("Hourly|0 0 * * * ?; Daily|0 0 1 * * ?")
    assert swapped.next_fire_times(datetime(2025, 1, 1, 0, 30, tzinfo=UTC), 1)[0][1] == "Hourly"


def test_union_of_weekdays_and_weekend_with_and_without_prefix() -> None:
    s = parse_schedule("0 0 9 ? * MON-FRI; Weekend|0 0 12 ? * SAT,SUN")
    got = [(t.isoformat(sep=" "), e) for t, e in s.next_fire_times(datetime(2025, 1, 3, 10, tzinfo=UTC), 3)]
    assert got == [
        ("2025-01-04 12:00:00+00:00", "Weekend"),
        ("2025-01-05 12:00:00+00:00", "Weekend"),
        ("2025-01-06 09:00:00+00:00", None),
    ]


def test_zone_suffix_applies_to_every_part_and_parts_are_normalized() -> None:
    s = parse_schedule("  Daily|0  0 1 * * ?;hourly| 0 0 * * * ? ; @ Australia/Sydney ")
    assert [(p.execution_type, p.expression) for p in s.parts] == [("Daily", "0 0 1 * * ?"), ("hourly", "0 0 * * * ?")]
    assert s.timezone.key == "Australia/Sydney"
    # 2025-01-01 13:30 UTC is 00:30 AEDT on 2 Jan: the daily part fires at 01:00 Sydney (14:00 UTC)
    got = s.next_fire_times(datetime(2025, 1, 1, 13, 30, tzinfo=UTC), 2)
    assert [(t.isoformat(sep=" "), e) for t, e in got] == [
        ("2025-01-02 01:00:00+11:00", "Daily"),
        ("2025-01-02 02:00:00+11:00", "hourly"),
    ]
    assert got[0][0] == datetime(2025, 1, 1, 14, 0, tzinfo=UTC)
    assert str(s) == "Daily|0 0 1 * * ?; hourly|0 0 * * * ? @ Australia/Sydney"


def test_defaults_and_normalization() -> None:
    s = parse_schedule("0 0 1 * * *")
    assert s.timezone.key == "UTC"
    assert s.parts[0].execution_type is None and DEFAULT_EXECUTION_TYPE == "All"
    assert s.parts[0].expression == "0 0 1 * * ?"
    assert parse_schedule("0 0 12 ? jan-mar mon#2").parts[0].expression == "0 0 12 ? JAN-MAR MON#2"
    assert len(parse_schedule("0 0 1 * * ? ;; ").parts) == 1


def test_match_finds_the_part_for_a_fire_time() -> None:
    s = parse_schedule("Daily|0 0 1 * * ?; Hourly|0 0 * * * ?")
    assert s.match(datetime(2025, 1, 1, 1, 0, 0, 300_000, tzinfo=UTC)).execution_type == "Daily"
    assert s.match(datetime(2025, 1, 1, 1, 59, 59, 800_000, tzinfo=UTC)).execution_type == "Hourly"
    assert s.match(datetime(2025, 1, 1, 2, 30, tzinfo=UTC)) is None


# --- errors -------------------------------------------------------------------------------------

ERRORS = [
    ("0 * * * *", None, "expected 6 or 7 fields"),
    ("0 0 0 1 1 ? 2025 9", None, "got 8"),
    ("60 * * ? * *", "second", "value 60 out of range 0-59"),
    ("0 60 * ? * *", "minute", "out of range 0-59"),
    ("0 0 24 ? * *", "hour", "value 24 out of range 0-23"),
    ("0 0 0 32 * ?", "day-of-month", "value 32 out of range 1-31"),
    ("0 0 0 0 * ?", "day-of-month", "value 0 out of range 1-31"),
    ("0 0 0 ? 13 *", "month", "value 13 out of range 1-12"),
    ("0 0 0 ? * 8", "day-of-week", "1=SUN"),
    ("0 0 0 ? * 0", "day-of-week", "value 0 out of range 1-7"),
    ("0 0 0 1 1 ? 1969", "year", "out of range 1970-2099"),
    ("0 0 0 ? FOO *", "month", "invalid value 'FOO'"),
    ("0 0 0 ? * FUN", "day-of-week", "invalid value 'FUN'"),
    ("0 0 0 ? * ?", "day-of-week", "'?' in both"),
    ("0 0 0 1 * MON", "day-of-month", "must be '?' when day-of-week is given"),
    ("0 0 0 15 * *", "day-of-week", "must be '?' when day-of-month is given"),
    ("? * * ? * *", "second", "'?' is only allowed"),
    ("0 0 0 ? * 6#6", "day-of-week", "out of range 1-5"),
    ("0 0 0 L-31 * ?", "day-of-month", "out of range 1-30"),
    ("0 0 0 1-15W * ?", "day-of-month", "invalid item '1-15W'"),
    ("0 0 0 ? * 2W", "day-of-week", "invalid item '2W'"),
    ("*/0 * * ? * *", "second", "step 0 out of range"),
    ("0 0 0 1,,2 * ?", "day-of-month", "empty item"),
    ("0 0 0 30 2 ?", "day-of-month", "never matches"),
    ("0 0 0 29 2 ? 2025", "day-of-month", "never matches"),
    ("0 0 0 1 1 ? 2030-2025", "year", "ends before it starts"),
    ("0 0 0 * * ? @ Mars/Olympus", None, "unknown time zone 'Mars/Olympus'"),
    ("0 0 1 * * ? @ UTC; 0 0 2 * * ?", None, "'@ Time/Zone' must come once, at the end"),
    ("", None, "empty schedule"),
    (" ; ", None, "no cron expression"),
    ("|0 0 1 * * ?", None, "invalid execution type ''"),
    ("A|B|0 0 1 * * ?", None, "only one 'Type|' prefix"),
]


@pytest.mark.parametrize(("text", "field", "reason"), ERRORS, ids=[e[0] or "<empty>" for e in ERRORS])
def test_invalid_schedules(text: str, field: str | None, reason: str) -> None:
    with pytest.raises(ScheduleError) as info:
        parse_schedule(text)
    message = str(info.value)
    assert message.startswith(f"schedule {text!r}: ")
    assert reason in message
    assert info.value.field == field
    if field is not None:
        assert f"field {field}: " in message


def test_error_names_owner_part_and_field() -> None:
    with pytest.raises(ScheduleError) as info:
        parse_schedule("Daily|0 0 1 * * ?; 0 0 25 * * ?", owner="WID-Prices")
    assert str(info.value) == (
        "agent 'WID-Prices': schedule 'Daily|0 0 1 * * ?; 0 0 25 * * ?': part 2 '0 0 25 * * ?': "
        "field hour: value 25 out of range 0-23"
    )
    assert isinstance(info.value, CoflowsError)


# --- trigger ------------------------------------------------------------------------------------


def test_trigger_follows_apscheduler_conventions() -> None:
    trigger = parse_schedule("0 0 9 ? * MON-FRI @ America/New_York").trigger()
    assert isinstance(trigger, BaseTrigger) and isinstance(trigger, QuartzTrigger)
    now = datetime(2025, 1, 3, 15, 0, tzinfo=UTC)  # Fri 10:00 EST
    first = trigger.get_next_fire_time(None, now)
    assert first.isoformat(sep=" ") == "2025-01-06 09:00:00-05:00"
    # after a fire it moves on, even when `now` is earlier (clock skew) or much later (misfire)
    assert trigger.get_next_fire_time(first, now).isoformat(sep=" ") == "2025-01-07 09:00:00-05:00"
    late = datetime(2025, 2, 1, tzinfo=UTC)
    assert trigger.get_next_fire_time(first, late).isoformat(sep=" ") == "2025-01-07 09:00:00-05:00"
    assert "MON-FRI" in str(trigger) and "America/New_York" in repr(trigger)
    clone = pickle.loads(pickle.dumps(trigger))
    assert clone.get_next_fire_time(None, now) == first


def test_leap_day_search_is_fast() -> None:
    trigger = parse_schedule("0 0 0 29 2 ?").trigger()
    now = datetime(2028, 3, 1, tzinfo=UTC)
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        got = trigger.get_next_fire_time(None, now)
        best = min(best, time.perf_counter() - t0)
    assert got == datetime(2032, 2, 29, tzinfo=UTC)
    assert best < 0.010


def test_every_second_in_a_background_scheduler() -> None:
    fired: list[datetime] = []
    done = threading.Event()

    def job() -> None:
        fired.append(datetime.now(UTC))
        if len(fired) >= 2:
            done.set()

    scheduler = BackgroundScheduler(timezone=UTC)
    scheduler.add_job(job, parse_schedule("* * * ? * *").trigger(), misfire_grace_time=5)
    scheduler.start()
    try:
        assert done.wait(2.5), f"fired {len(fired)} time(s) in 2.5 s"
    finally:
        scheduler.shutdown(wait=False)
    assert fired[1] - fired[0] >= timedelta(milliseconds=500)
