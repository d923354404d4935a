"""NuGet versions (SemVer 2 plus the legacy 4th part) and version ranges.

NuGet compares ``1.0`` == ``1.0.0`` == ``1.0.0.0``, puts prereleases before their
release, and reads a bare ``1.0`` in a dependency as "1.0 or higher". It then
takes the *lowest* version a range allows, which is what `NuGetRange.lowest` does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import total_ordering

_VERSION = re.compile(r"^\s*v?(\d+(?:\.\d+){0,3})(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]*)?\s*$")


@total_ordering
class NuGetVersion:
    def __init__(self, text: str) -> None:
        m = _VERSION.match(text)
        if not m:
            raise ValueError(f"not a NuGet version: {text!r}")
        numbers = [int(p) for p in m.group(1).split(".")]
        self.release: tuple[int, int, int, int] = tuple(numbers + [0] * (4 - len(numbers)))  # type: ignore[assignment]
        self.prerelease: tuple[str, ...] = tuple(m.group(2).split(".")) if m.group(2) else ()
        self.text = text.strip()

    @classmethod
    def parse(cls, text: str) -> "NuGetVersion | None":
        try:
            return cls(text)
        except ValueError:
            return None

    @property
    def is_prerelease(self) -> bool:
        return bool(self.prerelease)

    @property
    def normalized(self) -> str:
        """``1.0`` → ``1.0.0``; a zero 4th part is dropped; metadata is dropped (as nuget.org does)."""
        a, b, c, d = self.release
        text = f"{a}.{b}.{c}" + (f".{d}" if d else "")
        return text + ("-" + ".".join(self.prerelease) if self.prerelease else "")

    def _pre_key(self) -> tuple:
        if not self.prerelease:
            return (1,)
        # numeric labels sort before alphanumeric ones; labels compare case-insensitively
        return (0, tuple((0, int(p), "") if p.isdigit() else (1, 0, p.lower()) for p in self.prerelease))

    def _key(self) -> tuple:
        return (self.release, self._pre_key())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, NuGetVersion) and self._key() == other._key()

    def __lt__(self, other: "NuGetVersion") -> bool:
        return self._key() < other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __str__(self) -> str:
        return self.normalized

    def __repr__(self) -> str:
        return f"NuGetVersion({self.normalized!r})"


@dataclass(frozen=True)
class NuGetRange:
    """``1.0`` (≥ 1.0), ``[1.0]``, ``[1.0,2.0)``, ``(,2.0]``, ``(1.0,)``; empty or ``*``: any."""

    min: NuGetVersion | None = None
    min_inclusive: bool = True
    max: NuGetVersion | None = None
    max_inclusive: bool = False
    text: str = ""

    @classmethod
    def parse(cls, text: str | None) -> "NuGetRange":
        text = (text or "").strip()
        if text in ("", "*"):
            return cls(text=text)
        if text[0] not in "[(":
            return cls(NuGetVersion(text), True, None, False, text)
        if len(text) < 3 or text[-1] not in ")]":
            raise ValueError(f"bad version range {text!r}")
        body = text[1:-1]
        if "," not in body:
            if not (text[0] == "[" and text[-1] == "]"):
                raise ValueError(f"bad version range {text!r}")
            v = NuGetVersion(body)
            return cls(v, True, v, True, text)
        lo, hi = (p.strip() for p in body.split(",", 1))
        return cls(NuGetVersion(lo) if lo else None, text[0] == "[", NuGetVersion(hi) if hi else None,
                   text[-1] == "]", text)

    def __contains__(self, v: NuGetVersion) -> bool:
        if self.min is not None and (v < self.min or (v == self.min and not self.min_inclusive)):
            return False
        if self.max is not None and (v > self.max or (v == self.max and not self.max_inclusive)):
            return False
        return True

    def allows_prerelease(self) -> bool:
        return any(b is not None and b.is_prerelease for b in (self.min, self.max))

    def lowest(self, versions: list[NuGetVersion], *others: "NuGetRange") -> NuGetVersion | None:
        """The lowest version inside this range (and all `others`): NuGet's choice."""
        ranges = (self, *others)
        pre = any(r.allows_prerelease() for r in ranges)
        ok = [v for v in versions if (pre or not v.is_prerelease) and all(v in r for r in ranges)]
        return min(ok) if ok else None

    def __str__(self) -> str:
        return self.text or "*"
