"""What an install did, item by item, in one shape for pip, jars and NuGets.

The CLI prints one table from an `InstallSummary` whatever the package kind, and
a failed build still carries the summary (on `PackageError.summary`) so the
table shows what worked next to what did not.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Literal, Mapping

from coflows.errors import CoflowsError

Status = Literal["installed", "cached", "failed"]
Kind = Literal["pip", "jar", "nuget"]


@dataclass
class InstallItem:
    """One package or artifact: `cached` means nothing was downloaded for it."""

    kind: Kind
    name: str
    version: str | None
    status: Status
    error: str | None = None
    detail: str | None = None  # e.g. "via com.example:a:1.0" or "provided by coflows"
    path: Path | None = None


@dataclass
class InstallSummary:
    """All items of one or more installs, in the order they were resolved."""

    items: list[InstallItem] = field(default_factory=list)

    def add(self, item: InstallItem) -> InstallItem:
        self.items.append(item)
        return item

    def extend(self, other: "InstallSummary") -> "InstallSummary":
        self.items.extend(other.items)
        return self

    @property
    def ok(self) -> bool:
        return all(i.status != "failed" for i in self.items)

    @property
    def failed(self) -> list[InstallItem]:
        return [i for i in self.items if i.status == "failed"]

    def count(self, status: Status) -> int:
        return sum(1 for i in self.items if i.status == status)

    def rows(self) -> Iterable[tuple[str, str, str, str, str]]:
        """(kind, name, version, status, error or detail): what a table shows."""
        for i in self.items:
            yield (i.kind, i.name, i.version or "", i.status, i.error or i.detail or "")


class PackageError(CoflowsError):
    """A package.json `Pips`/`Jars`/`NuGets` entry could not be installed.

    The message names the entry (e.g. ``Jars: 'com.example:a:1.0': not found``);
    `summary` holds the per-item outcome of the whole install when there is one.
    """

    def __init__(self, message: str, summary: InstallSummary | None = None):
        self.summary = summary
        super().__init__(message)


def entry_label(field_name: str, entry: Mapping[str, Any], index: int | None = None) -> str:
    """How an error names a package.json entry: ``Jars: 'g:a:1.0'``, ``NuGets: 'Id 1.0'``.

    An entry without its identifying key is named by position and content instead:
    ``NuGets[2] {"Version": "1.0"}``.
    """
    ident = entry.get("Url") if field_name == "Jars" and entry.get("Url") else entry.get("ID")
    if not ident:
        where = f"[{index}]" if index is not None else ""
        return f"{field_name}{where} {json.dumps(dict(entry), default=str)}"
    text = str(ident)
    version = entry.get("Version")
    if version and not entry.get("Url"):
        text += (":" if field_name == "Jars" else " ") + str(version)
    return f"{field_name}: '{text}'"
