"""Source fixes for where Mono's C# compiler (mcs) rejects C# that Roslyn (CoFlows' compiler) accepts.

One is known and met in CoFlows workspaces: inside a class with a *method* `Fs`, the type name
`new Fs.Base.FsBase()` makes mcs report CS0118 ("`CsQuery.Fs()' is a `method' but a `type' was
expected"). The C# spec looks only at types and namespaces for a namespace-or-type name, so
Roslyn compiles it. The fix is what a user would write for mcs: `global::Fs.Base.FsBase`, at the
position mcs reports, and only when the text there is that simple name starting a dotted name.
The engine compiles a patched copy (with `#line` pointing at the user's file) and tries again.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# `CsQuery.Fs()' is a `method' but a `type' was expected
_SHADOWED = re.compile(r"`(?:[\w.<>,]+\.)?(\w+)(?:\([^)]*\))?' is a `(?:method|property|field|event|method group)' "
                       r"but a `type' was expected")


def shadowed_name(code: str, text: str) -> str | None:
    """The simple name that mcs took for a member when it wanted a type, from a CS0118 message."""
    if code != "CS0118":
        return None
    m = _SHADOWED.search(text)
    return m.group(1) if m else None


def qualify_global(source: str, spots: Iterable[tuple[int, int, str]]) -> str | None:
    """`source` with `global::` before `name` at each 1-based (line, column), or None if none applies.

    A spot applies when the text there is `name` followed by `.` and not preceded by `.`, `::` or
    an identifier character (so only the first part of a dotted name is qualified).
    """
    lines = source.split("\n")
    changed = False
    # right to left on a line, so earlier columns stay valid
    for line, col, name in sorted(set(spots), key=lambda s: (s[0], -s[1])):
        i = line - 1
        if not 0 <= i < len(lines) or col < 1:
            continue
        text = lines[i]
        j = col - 1
        if not text.startswith(name + ".", j):
            continue
        before = text[:j].rstrip()
        if before.endswith((".", "::")) or (j > 0 and (text[j - 1].isalnum() or text[j - 1] == "_")):
            continue
        lines[i] = text[:j] + "global::" + text[j:]
        changed = True
    return "\n".join(lines) if changed else None
