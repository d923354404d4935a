"""Maven version order and version ranges, enough to pick from ``[1.0,2.0)``.

Follows the shape of Maven's ComparableVersion: numbers compare as numbers,
known qualifiers in their release order (alpha < beta < milestone < rc <
snapshot < release < sp), unknown qualifiers after those, alphabetically.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import total_ordering

_QUALIFIERS = {"alpha": 0, "a": 0, "beta": 1, "b": 1, "milestone": 2, "m": 2, "rc": 3, "cr": 3,
               "snapshot": 4, "": 5, "ga": 5, "final": 5, "release": 5, "sp": 6}


def _items(text: str) -> list[tuple[int, int | str]]:
    """Tokens as (kind, value): kind 0 = qualifier rank, 1 = unknown qualifier, 2 = number.

    Each ``-`` part drops its trailing zeros and release markers, as Maven does, so
    1.0 == 1 == 1.0.0-ga and 1.0-rc1 sorts like 1-rc1 (before 1).
    """
    out: list[tuple[int, int | str]] = []
    for part in text.lower().split("-"):
        items: list[tuple[int, int | str]] = []
        for token in re.findall(r"\d+|[a-z]+", part):
            if token.isdigit():
                items.append((2, int(token)))
            elif token in _QUALIFIERS:
                items.append((0, _QUALIFIERS[token]))
            else:
                items.append((1, token))
        while items and items[-1] in ((2, 0), (0, 5)):
            items.pop()
        out.extend(items)
    return out


@total_ordering
class MavenVersion:
    def __init__(self, text: str) -> None:
        self.text = text
        self._key = _items(text)

    @staticmethod
    def _cmp_item(a: tuple[int, int | str] | None, b: tuple[int, int | str] | None) -> int:
        # A missing item is "release": 1.0 > 1.0-rc1 but 1.0 < 1.0.1 and 1.0 < 1.0-sp1.
        a = a if a is not None else (0, 5)
        b = b if b is not None else (0, 5)
        if a[0] != b[0]:
            # numbers > unknown qualifiers > known qualifiers below release, but "sp"
            # (known, rank 6) is above release; compare via a common scale.
            return (_scale(a) > _scale(b)) - (_scale(a) < _scale(b))
        return (a[1] > b[1]) - (a[1] < b[1])  # type: ignore[operator]

    def _cmp(self, other: "MavenVersion") -> int:
        for i in range(max(len(self._key), len(other._key))):
            a = self._key[i] if i < len(self._key) else None
            b = other._key[i] if i < len(other._key) else None
            c = self._cmp_item(a, b)
            if c:
                return c
        return 0

    def __eq__(self, other: object) -> bool:
        return isinstance(other, MavenVersion) and self._cmp(other) == 0

    def __lt__(self, other: "MavenVersion") -> bool:
        return self._cmp(other) < 0

    def __hash__(self) -> int:
        return hash(tuple(self._key))

    def __repr__(self) -> str:
        return f"MavenVersion({self.text!r})"


def _scale(item: tuple[int, int | str]) -> float:
    kind, value = item
    if kind == 2:
        return 10.0
    if kind == 1:
        return 7.0  # unknown qualifiers: after sp, before numbers
    return float(value)  # type: ignore[arg-type]


@dataclass(frozen=True)
class _Interval:
    low: MavenVersion | None
    low_inclusive: bool
    high: MavenVersion | None
    high_inclusive: bool

    def __contains__(self, v: MavenVersion) -> bool:
        if self.low is not None and (v < self.low or (v == self.low and not self.low_inclusive)):
            return False
        if self.high is not None and (v > self.high or (v == self.high and not self.high_inclusive)):
            return False
        return True


class VersionRange:
    """``[1.0,2.0)``, ``[1.5,)``, ``(,1.0]``, ``[1.2]`` or unions ``[1,2),[3,)``."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.intervals: list[_Interval] = []
        for lo_b, body, hi_b in re.findall(r"([\[(])([^\])]*)([\])])", text.replace(" ", "")):
            if "," in body:
                lo, hi = body.split(",", 1)
            else:
                lo = hi = body
                if not (lo_b == "[" and hi_b == "]"):
                    raise ValueError(f"bad version range {text!r}")
            self.intervals.append(_Interval(MavenVersion(lo) if lo else None, lo_b == "[",
                                            MavenVersion(hi) if hi else None, hi_b == "]"))
        if not self.intervals:
            raise ValueError(f"bad version range {text!r}")

    @staticmethod
    def is_range(text: str) -> bool:
        return text.strip()[:1] in ("[", "(")

    def __contains__(self, version: str | MavenVersion) -> bool:
        v = version if isinstance(version, MavenVersion) else MavenVersion(version)
        return any(v in i for i in self.intervals)

    def highest(self, versions: list[str]) -> str | None:
        """Maven picks the highest available version in the range."""
        inside = [v for v in versions if v in self]
        return max(inside, key=MavenVersion) if inside else None
