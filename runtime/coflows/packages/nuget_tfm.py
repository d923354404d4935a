"""Target frameworks Mono 6.8 can load, best first, and reading them from package folders.

A package offers assemblies per target framework (``lib/net45/``,
``lib/netstandard2.0/``) and dependencies per framework group
(``<group targetFramework=".NETFramework4.5">``). Like NuGet for a .NET Framework
4.8 project, a .NET Framework build is preferred over a .NET Standard one, the
newest first; .NET Core / .NET 5+ builds are never picked.
"""

from __future__ import annotations

import re
from typing import Iterable

# What Mono 6.8 (a .NET Framework 4.8 profile with netstandard 2.0 facades) can load, best first.
PREFERENCE: tuple[str, ...] = (
    "net48", "net472", "net471", "net47", "net462", "net461", "net46", "net452", "net451", "net45",
    "net403", "net40", "net35", "net20",
    "netstandard2.0", "netstandard1.6", "netstandard1.5", "netstandard1.4", "netstandard1.3",
    "netstandard1.2", "netstandard1.1", "netstandard1.0",
    "",  # assemblies directly under lib/ or a dependency group without a framework
)
_RANK = {tfm: i for i, tfm in enumerate(PREFERENCE)}
_LONG = re.compile(r"^\.?(netframework|netstandard)\s*,?\s*(?:version=)?v?([\d.]+)$")


def normalize(name: str | None) -> str | None:
    """A short folder name (``net45``) from any spelling (``.NETFramework4.5``, ``net45-client``).

    Returns "" for no framework and None for one Mono cannot load (net6.0, netcoreapp, portable, …).
    """
    if not name:
        return ""
    text = name.strip().lower()
    text = re.sub(r"-(client|full)$", "", text)
    long = _LONG.match(text)
    if long:
        family, version = long.groups()
        if family == "netframework":
            text = "net" + version.replace(".", "")
        else:
            text = "netstandard" + (version if "." in version else version + ".0")
    m = re.match(r"^net(\d)\.?(\d)?\.?(\d)?$", text)
    if m and int(m.group(1)) < 5:  # net4.5 / net45 / net451; net5.0+ is .NET (Core)
        text = "net" + "".join(g for g in m.groups() if g)
    return text if text in _RANK else None


def best(available: Iterable[str | None]) -> str | None:
    """The most preferred loadable framework among folder/group names (returned as given)."""
    ranked = [(_RANK[n], a) for a in available if (n := normalize(a)) is not None]
    return min(ranked)[1] if ranked else None
