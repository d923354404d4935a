"""Agent schedules in CoFlows' Quartz dialect, as APScheduler 3 triggers.

CoFlows agents carry a `ScheduleCommand` run by Quartz.NET. APScheduler's
`CronTrigger` cannot express it (no `W`, `L-n`, `nL`, Quartz `#`; Monday=0
instead of Quartz's Sunday=1), so this module parses the dialect itself and
searches for fire times field by field (year, month, day, hour, minute,
second), never second by second.

Format of a schedule string::

    [Type|]<cron> ; [Type|]<cron> ; ... [@ Time/Zone]

* ``<cron>`` is Quartz: ``sec min hour day-of-month month day-of-week [year]``
  with ``*``, ``?``, ranges ``a-b`` (may wrap: ``22-2`` hours, ``FRI-MON``),
  lists, steps (``*/5``, ``10/5``, ``1-30/3``, ``/5`` = ``*/5``), month names
  JAN-DEC and day names SUN-SAT (case-insensitive). Day-of-week is Quartz's:
  1=SUN ... 7=SAT. Day-of-month also takes ``L``, ``L-n`` (n days before the
  last), ``LW`` (last weekday), ``nW`` (weekday nearest to day n, never
  leaving the month; no match if the month has no day n). Day-of-week also
  takes ``nL`` (last weekday n of the month; ``L`` alone = 7 = SAT) and
  ``n#k`` (k-th weekday n, k 1-5; months without it are skipped). Lists may
  mix these (``1,15W,L``). Year is 1970-2099.
* Day fields (Quartz rule): exactly one of day-of-month / day-of-week is
  ``?``. Both ``?`` is an error; both restricted is an error. As the one
  leniency, ``*`` in both means every day (normalized to ``* ?``), because
  Unix-minded users write ``0 0 1 * * *`` and it is unambiguous.
* ``;`` separates parts; blank parts are ignored (CoFlows split the same way).
  The schedule fires at the union of the parts' times; when several parts fire
  at the same instant it fires once, with the first such part's type.
* ``Type|`` is per part and optional; it is what the agent's
  ``Job(timestamp, executionType)`` receives. Without it ``execution_type`` is
  None and the caller passes `DEFAULT_EXECUTION_TYPE` ("All"), as CoFlows did.
* ``@ Time/Zone`` (IANA name, default UTC) is written once, at the very end,
  and applies to every part; ``@`` anywhere else is an error.

Times are wall-clock times in that zone. Across DST changes a wall-clock time
that does not exist (spring forward) is skipped, and one that occurs twice
(fall back) fires once, at its first occurrence; so during the repeated hour a
frequent job pauses rather than running twice.

Use: ``schedule = parse_schedule(text, owner=agent_id)``, then
``scheduler.add_job(run, schedule.trigger())``; in ``run``,
``schedule.match(now)`` gives the part (hence the execution type) that fired,
since APScheduler 3 does not hand the scheduled time to the job.
"""

from __future__ import annotations

import calendar
import re
from bisect import bisect_left
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.base import BaseTrigger

from coflows.errors import CoflowsError

__all__ = [
    "DEFAULT_EXECUTION_TYPE",
    "QuartzTrigger",
    "Schedule",
    "ScheduleError",
    "SchedulePart",
    "parse_schedule",
]

DEFAULT_EXECUTION_TYPE = "All"  # what CoFlows passed to Job when a part had no "Type|" prefix

_UTC = timezone.utc
_SECOND = timedelta(seconds=1)
_TICK = timedelta(microseconds=1)
_CYCLE_YEARS = 400  # the Gregorian calendar repeats every 400 years: a search bound that cannot miss


class ScheduleError(CoflowsError):
    """An invalid schedule; the message names the owner (agent), the schedule, the part and the field."""

    http_status = 400

    def __init__(
        self,
        text: str,
        reason: str,
        *,
        owner: str | None = None,
        field: str | None = None,
        part: tuple[int, str] | None = None,
    ):
        self.text, self.reason, self.owner, self.field, self.part = text, reason, owner, field, part
        where = f"agent {owner!r}: " if owner else ""
        where += f"schedule {text!r}: "
        if part is not None:
            where += f"part {part[0]} {part[1]!r}: "
        if field is not None:
            where += f"field {field}: "
        super().__init__(where + reason)


class _FieldError(Exception):
    """Raised while compiling one field; `parse_schedule` adds the schedule context."""

    def __init__(self, field: str | None, reason: str):
        super().__init__(reason)
        self.field, self.reason = field, reason


# --- fields -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Field:
    name: str
    lo: int
    hi: int
    names: dict[str, int] | None = None


_MONTH_NAMES = {n.upper(): i for i, n in enumerate(calendar.month_abbr) if n}
_DAY_NAMES = {"SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7}
_SEC, _MIN, _HOUR, _DOM, _MON, _DOW, _YEAR = (
    _Field("second", 0, 59),
    _Field("minute", 0, 59),
    _Field("hour", 0, 23),
    _Field("day-of-month", 1, 31),
    _Field("month", 1, 12, _MONTH_NAMES),
    _Field("day-of-week", 1, 7, _DAY_NAMES),
    _Field("year", 1970, 2099),
)
_FIELDS = (_SEC, _MIN, _HOUR, _DOM, _MON, _DOW, _YEAR)

_RE_L_OFFSET = re.compile(r"L-(\d+)")
_RE_NEAREST = re.compile(r"(\d+)W")
_RE_LAST_DOW = re.compile(r"(\w+)L")
_RE_NTH_DOW = re.compile(r"(\w+)#(\d+)")


def _value(tok: str, f: _Field) -> int:
    if tok.isdigit():
        v = int(tok)
    elif f.names and tok in f.names:
        v = f.names[tok]
    else:
        hint = " or " + "-".join((next(iter(f.names)), list(f.names)[-1])) if f.names else ""
        raise _FieldError(f.name, f"invalid value {tok!r} (expected {f.lo}-{f.hi}{hint})")
    if not f.lo <= v <= f.hi:
        extra = " (1=SUN ... 7=SAT)" if f is _DOW else ""
        raise _FieldError(f.name, f"value {v} out of range {f.lo}-{f.hi}{extra}")
    return v


def _plain(item: str, f: _Field) -> list[int]:
    """`*`, `a`, `a-b` (wrapping if b < a, as in Quartz), each optionally `/step`."""
    span = f.hi - f.lo + 1
    base, slash, step_text = item.partition("/")
    step = 1
    if slash:
        if not step_text.isdigit():
            raise _FieldError(f.name, f"invalid step {step_text!r} in {item!r}")
        step = int(step_text)
        if not 1 <= step <= span:
            raise _FieldError(f.name, f"step {step} out of range 1-{span} in {item!r}")
    if base == "*" or (base == "" and slash):
        lo, hi = f.lo, f.hi
    elif "-" in base:
        a, _, b = base.partition("-")
        if not a or not b:
            raise _FieldError(f.name, f"invalid range {base!r}")
        lo, hi = _value(a, f), _value(b, f)
        if hi < lo and f is _YEAR:
            raise _FieldError(f.name, f"range {base!r} ends before it starts")
    else:
        lo = _value(base, f)
        hi = f.hi if slash else lo
    length = (hi - lo) % span + 1
    return [f.lo + (lo - f.lo + k) % span for k in range(0, length, step)]


def _items(text: str, f: _Field) -> list[str]:
    items = text.split(",")
    if any(not i for i in items):
        raise _FieldError(f.name, f"empty item in list {text!r}")
    if "?" in text:
        raise _FieldError(f.name, "'?' is only allowed alone, in day-of-month or day-of-week")
    return items


def _simple(text: str, f: _Field) -> tuple[int, ...]:
    values: set[int] = set()
    for item in _items(text, f):
        values.update(_plain(item, f))
    return tuple(sorted(values))


@dataclass(frozen=True, slots=True)
class _Days:
    """Day rules; resolved per (year, month) because `L`, `W` and `#` depend on the month."""

    dom: frozenset[int] = frozenset()
    dom_last: frozenset[int] = frozenset()  # `L-n` offsets from the last day (`L` is 0)
    dom_nearest: frozenset[int] = frozenset()  # `nW`
    dom_last_weekday: bool = False  # `LW`
    dow: frozenset[int] = frozenset()  # Quartz numbering, 1=SUN
    dow_last: frozenset[int] = frozenset()  # `nL`
    dow_nth: frozenset[tuple[int, int]] = frozenset()  # `n#k`


def _dom(text: str) -> dict:
    dom: set[int] = set()
    last: set[int] = set()
    nearest: set[int] = set()
    last_weekday = False
    for item in _items(text, _DOM):
        if item == "L":
            last.add(0)
        elif item == "LW":
            last_weekday = True
        elif m := _RE_L_OFFSET.fullmatch(item):
            n = int(m[1])
            if not 1 <= n <= 30:
                raise _FieldError(_DOM.name, f"offset in {item!r} out of range 1-30")
            last.add(n)
        elif m := _RE_NEAREST.fullmatch(item):
            nearest.add(_value(m[1], _DOM))
        elif "W" in item or "L" in item or "#" in item:
            raise _FieldError(
                _DOM.name, f"invalid item {item!r} (use nW with a single day, LW, L or L-n; '#' is day-of-week only)"
            )
        else:
            dom.update(_plain(item, _DOM))
    return dict(
        dom=frozenset(dom), dom_last=frozenset(last), dom_nearest=frozenset(nearest), dom_last_weekday=last_weekday
    )


def _dow(text: str) -> dict:
    dow: set[int] = set()
    last: set[int] = set()
    nth: set[tuple[int, int]] = set()
    for item in _items(text, _DOW):
        if item == "L":
            dow.add(7)  # Quartz: `L` alone in day-of-week is 7, Saturday
        elif m := _RE_NTH_DOW.fullmatch(item):
            k = int(m[2])
            if not 1 <= k <= 5:
                raise _FieldError(_DOW.name, f"occurrence in {item!r} out of range 1-5")
            nth.add((_value(m[1], _DOW), k))
        elif m := _RE_LAST_DOW.fullmatch(item):
            last.add(_value(m[1], _DOW))
        elif "#" in item or "W" in item.replace("WED", ""):
            raise _FieldError(
                _DOW.name, f"invalid item {item!r} (use n#k with k in 1-5, nL, L; 'W' is day-of-month only)"
            )
        else:
            dow.update(_plain(item, _DOW))
    return dict(dow=frozenset(dow), dow_last=frozenset(last), dow_nth=frozenset(nth))


def _quartz_weekday(d: date) -> int:
    return (d.weekday() + 1) % 7 + 1  # Python Monday=0 -> Quartz 2; Sunday=6 -> 1


def _nearest_weekday(year: int, month: int, day: int, last: int) -> int:
    wd = date(year, month, day).weekday()
    if wd == 5:  # Saturday: Friday before, unless that leaves the month
        return 3 if day == 1 else day - 1
    if wd == 6:  # Sunday: Monday after, unless that leaves the month
        return day - 2 if day == last else day + 1
    return day


@lru_cache(maxsize=4096)
def _month_days(rule: _Days, year: int, month: int) -> tuple[int, ...]:
    last = calendar.monthrange(year, month)[1]
    days = {d for d in rule.dom if d <= last}
    days.update(last - n for n in rule.dom_last if last - n >= 1)
    days.update(_nearest_weekday(year, month, d, last) for d in rule.dom_nearest if d <= last)
    if rule.dom_last_weekday:
        days.add(_nearest_weekday(year, month, last, last))
    if rule.dow or rule.dow_last or rule.dow_nth:
        first = _quartz_weekday(date(year, month, 1))
        days.update(d for d in range(1, last + 1) if (first + d - 2) % 7 + 1 in rule.dow)
        wd_last = (first + last - 2) % 7 + 1
        days.update(last - (wd_last - wd) % 7 for wd in rule.dow_last)
        for wd, k in rule.dow_nth:
            d = 1 + (wd - first) % 7 + 7 * (k - 1)
            if d <= last:
                days.add(d)
    return tuple(sorted(days))


def _first_at_least(values: tuple[int, ...], v: int) -> int | None:
    i = bisect_left(values, v)
    return values[i] if i < len(values) else None


@dataclass(frozen=True, slots=True)
class _Cron:
    """One compiled Quartz expression; `next_local` works on naive wall-clock times."""

    seconds: tuple[int, ...]
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: _Days
    months: tuple[int, ...]
    years: tuple[int, ...] | None  # None: any year

    def next_local(self, w: datetime, last_year: int) -> datetime | None:
        """First wall-clock time >= `w` (whole seconds) that matches, or None past `last_year`."""
        while True:
            if self.years is not None:
                y = _first_at_least(self.years, w.year)
                if y is None:
                    return None
                if y != w.year:
                    w = datetime(y, 1, 1)
            if w.year > last_year:
                return None
            m = _first_at_least(self.months, w.month)
            if m is None:
                w = datetime(w.year + 1, 1, 1)
                continue
            if m != w.month:
                w = datetime(w.year, m, 1)
            d = _first_at_least(_month_days(self.days, w.year, w.month), w.day)
            if d is None:
                w = datetime(w.year + 1, 1, 1) if w.month == 12 else datetime(w.year, w.month + 1, 1)
                continue
            if d != w.day:
                w = datetime(w.year, w.month, d)
            h = _first_at_least(self.hours, w.hour)
            if h is None:
                w = datetime(w.year, w.month, w.day) + timedelta(days=1)
                continue
            if h != w.hour:
                w = w.replace(hour=h, minute=0, second=0)
            mi = _first_at_least(self.minutes, w.minute)
            if mi is None:
                w = w.replace(minute=0, second=0) + timedelta(hours=1)
                continue
            if mi != w.minute:
                w = w.replace(minute=mi, second=0)
            s = _first_at_least(self.seconds, w.second)
            if s is None:
                w = w.replace(second=0) + timedelta(minutes=1)
                continue
            return w.replace(second=s)


def _compile(expr: str) -> tuple[str, _Cron]:
    """Normalize (upper case, single spaces, `* *` days -> `* ?`) and compile one expression."""
    fields = expr.upper().split()
    if len(fields) not in (6, 7):
        raise _FieldError(
            None,
            f"expected 6 or 7 fields (second minute hour day-of-month month day-of-week [year]), got {len(fields)}",
        )
    dom_text, dow_text = fields[3], fields[5]
    if dom_text == "?" and dow_text == "?":
        raise _FieldError(_DOW.name, "'?' in both day-of-month and day-of-week; exactly one of them must be '?'")
    if dom_text == "*" and dow_text == "*":
        fields[5] = dow_text = "?"
    if dom_text != "?" and dow_text != "?":
        restricted = _DOM if dow_text == "*" else _DOW
        other = _DOW if restricted is _DOM else _DOM
        raise _FieldError(
            other.name,
            f"must be '?' when {restricted.name} is given (Quartz does not combine both day fields)",
        )
    days = _Days(**(_dom(dom_text) if dom_text != "?" else {}), **(_dow(dow_text) if dow_text != "?" else {}))
    cron = _Cron(
        seconds=_simple(fields[0], _SEC),
        minutes=_simple(fields[1], _MIN),
        hours=_simple(fields[2], _HOUR),
        days=days,
        months=_simple(fields[4], _MON),
        years=_simple(fields[6], _YEAR) if len(fields) == 7 else None,
    )
    # Refuse expressions that can never fire (e.g. `0 0 0 30 2 ?`) instead of silently never running.
    first_year = cron.years[0] if cron.years else 2000
    last_year = cron.years[-1] if cron.years else first_year + _CYCLE_YEARS
    if cron.next_local(datetime(first_year, 1, 1), last_year) is None:
        day_field = _DOM.name if dom_text != "?" else _DOW.name
        raise _FieldError(day_field, "never matches a day in the given months" + (" and years" if cron.years else ""))
    return " ".join(fields), cron


# --- time zones -------------------------------------------------------------------------------


def _offsets(zone: tzinfo, w: datetime) -> tuple[timedelta, timedelta]:
    return (
        w.replace(tzinfo=zone, fold=0).utcoffset() or timedelta(0),
        w.replace(tzinfo=zone, fold=1).utcoffset() or timedelta(0),
    )


def _transition_end(zone: tzinfo, w: datetime) -> datetime:
    """First wall-clock second after `w` that is neither skipped nor repeated (`w` is one of those)."""
    before, after = _offsets(zone, w)
    lo, hi = 0, int(abs((before - after).total_seconds()))  # the window is exactly this long
    while lo < hi:  # smallest k in (0, hi] with an unambiguous w + k seconds
        mid = (lo + hi) // 2
        a, b = _offsets(zone, w + timedelta(seconds=mid))
        if a == b:
            hi = mid
        else:
            lo = mid + 1
    return w + timedelta(seconds=lo)


# --- public API -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SchedulePart:
    """One `;`-separated part: its execution type (None without a `Type|` prefix) and normalized cron."""

    execution_type: str | None
    expression: str
    _cron: _Cron = field(repr=False, compare=False)

    def next_fire_time(self, start: datetime, zone: tzinfo) -> datetime | None:
        """First instant (UTC) >= `start` (aware) at which this part fires in `zone`."""
        start = start.astimezone(_UTC)
        local = start.astimezone(zone)
        w = local.replace(tzinfo=None, microsecond=0, fold=0)
        if local.microsecond:
            w += _SECOND
        before, after = _offsets(zone, w)
        if local.fold == 1 and before > after:
            # `start` is in the second pass of a repeated hour, whose wall times already fired.
            w = _transition_end(zone, w)
        last_year = start.year + _CYCLE_YEARS
        while True:
            found = self._cron.next_local(w, last_year)
            if found is None:
                return None
            before, after = _offsets(zone, found)
            if before < after:  # skipped by a spring-forward change: does not exist
                w = _transition_end(zone, found)
                continue
            return (found - before).replace(tzinfo=_UTC)  # repeated: `before` is the first occurrence


@dataclass(frozen=True, slots=True)
class Schedule:
    """A parsed schedule: its parts (a union of fire times) and the zone they are read in."""

    text: str
    parts: tuple[SchedulePart, ...]
    timezone: ZoneInfo

    def __str__(self) -> str:
        parts = "; ".join(
            f"{p.execution_type}|{p.expression}" if p.execution_type else p.expression for p in self.parts
        )
        return f"{parts} @ {self.timezone.key}"

    def next_fire(self, start: datetime) -> tuple[datetime, SchedulePart] | None:
        """First fire instant >= `start` and the part firing then (the first one on a tie), or None."""
        start = self._aware(start)
        best: tuple[datetime, SchedulePart] | None = None
        for part in self.parts:
            t = part.next_fire_time(start, self.timezone)
            if t is not None and (best is None or t < best[0]):
                best = (t, part)
        return None if best is None else (best[0].astimezone(self.timezone), best[1])

    def next_fire_times(self, start: datetime, n: int) -> list[tuple[datetime, str | None]]:
        """The next `n` fire times at or after `start`, in the schedule's zone, with their execution type.

        A naive `start` is read as wall-clock time in the schedule's zone.
        """
        out: list[tuple[datetime, str | None]] = []
        t = self._aware(start)
        while len(out) < n and (hit := self.next_fire(t)) is not None:
            out.append((hit[0], hit[1].execution_type))
            t = hit[0] + _TICK
        return out

    def match(self, when: datetime) -> SchedulePart | None:
        """The part that fires at `when` rounded to the nearest second (first on a tie), else None.

        APScheduler 3 does not pass the scheduled time to a job; the runner can use
        `now` (CoFlows also rounded to the second) to find the execution type.
        """
        t = self._aware(when).astimezone(_UTC)
        t = (t + timedelta(microseconds=500_000)).replace(microsecond=0)
        hit = self.next_fire(t)
        return hit[1] if hit is not None and hit[0] == t else None

    def trigger(self) -> QuartzTrigger:
        """An APScheduler 3 trigger firing at this schedule's times."""
        return QuartzTrigger(self)

    def _aware(self, when: datetime) -> datetime:
        return when if when.tzinfo is not None else when.replace(tzinfo=self.timezone)


class QuartzTrigger(BaseTrigger):
    """APScheduler 3 trigger for a `Schedule`; fire times are returned in the schedule's zone.

    Like `CronTrigger` it returns the first time after the previous fire time (even if that is
    already past: the scheduler's misfire/coalesce settings decide what to do with it), or, for
    a new job, the first time at or after `now`.
    """

    __slots__ = ("schedule",)

    def __init__(self, schedule: Schedule):
        self.schedule = schedule

    def get_next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> datetime | None:
        start = now if previous_fire_time is None else previous_fire_time.astimezone(_UTC) + _TICK
        hit = self.schedule.next_fire(start)
        return None if hit is None else hit[0]

    def __getstate__(self) -> dict:
        return {"version": 1, "text": self.schedule.text}

    def __setstate__(self, state: dict) -> None:
        self.schedule = parse_schedule(state["text"])

    def __str__(self) -> str:
        return f"quartz[{self.schedule}]"

    def __repr__(self) -> str:
        return f"<QuartzTrigger ({self.schedule.text!r}, timezone={self.schedule.timezone.key!r})>"


_RE_TYPE = re.compile(r"[^|@;\s][^|@;]*")


def parse_schedule(text: str, owner: str | None = None) -> Schedule:
    """Parse a CoFlows schedule (see the module docstring); `owner` (the agent) goes into errors."""

    def fail(reason: str, field: str | None = None, part: tuple[int, str] | None = None) -> ScheduleError:
        return ScheduleError(text, reason, owner=owner, field=field, part=part)

    if not isinstance(text, str) or not text.strip():
        raise fail("empty schedule")
    body, at, zone_name = text.partition("@")
    zone = ZoneInfo("UTC")
    if at:
        zone_name = zone_name.strip()
        if not zone_name or "@" in zone_name or ";" in zone_name.rstrip(" ;"):
            raise fail("'@ Time/Zone' must come once, at the end, and applies to every part")
        try:
            zone = ZoneInfo(zone_name.rstrip(" ;"))
        except (ZoneInfoNotFoundError, ValueError):
            raise fail(
                f"unknown time zone {zone_name.rstrip(' ;')!r} (expected an IANA name such as Europe/London)"
            ) from None
    chunks = [c.strip() for c in body.split(";") if c.strip()]
    if not chunks:
        raise fail("no cron expression")
    parts: list[SchedulePart] = []
    for i, chunk in enumerate(chunks, 1):
        where = (i, chunk) if len(chunks) > 1 else None
        execution_type: str | None = None
        expr = chunk
        if "|" in chunk:
            execution_type, _, expr = (s.strip() for s in chunk.partition("|"))
            if not _RE_TYPE.fullmatch(execution_type):
                raise fail(f"invalid execution type {execution_type!r} before '|'", part=where)
            if "|" in expr:
                raise fail("only one 'Type|' prefix per part", part=where)
        try:
            normalized, cron = _compile(expr)
        except _FieldError as e:
            raise fail(e.reason, e.field, where) from None
        parts.append(SchedulePart(execution_type, normalized, cron))
    return Schedule(text, tuple(parts), zone)
