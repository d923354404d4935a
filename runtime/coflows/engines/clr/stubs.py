"""C# stand-ins for the types of a workflow's F# and VB Base files (coflows compiles neither).

CoFlows workspaces mix .NET languages: the example's CsQuery.cs has `new Fs.Base.FsBase()` in one
function next to four that need only C#. Without `Fs.Base.FsBase` the whole file would not
compile and every function of it would be lost. So the C# engine compiles, with the workflow's C#,
a stand-in for each public type declared in its `.fs` and `.vb` Base files: same namespace and
name, a constructor taking any arguments, and each declared member as a `dynamic` property or a
`dynamic` method taking any arguments. Every one of them throws `NotSupportedException` naming
the F#/VB file and what to do instead (build it into a DLL and list it under Bins), so a call
fails with that message and the rest of the file works.

The declarations are read with a few regular expressions (namespace, type, member lines), not a
parser: a member the scan misses is a compile error naming it, as it would be without stubs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

_CS_KEYWORDS = frozenset("""abstract as base bool break byte case catch char checked class const continue decimal
default delegate do double else enum event explicit extern false finally fixed float for foreach goto if implicit
in int interface internal is lock long namespace new null object operator out override params private protected
public readonly ref return sbyte sealed short sizeof stackalloc static string struct switch this throw true try
typeof uint ulong unchecked unsafe ushort using virtual void volatile while""".split())

LANGUAGES = {".fs": "F#", ".vb": "VB"}


@dataclass
class StubType:
    namespace: str
    name: str
    static: bool = False  # an F# or VB module: static members only
    members: dict[str, tuple[bool, bool]] = field(default_factory=dict)  # name -> (is_method, is_static)

    @property
    def full_name(self) -> str:
        return f"{self.namespace}.{self.name}" if self.namespace else self.name


def _ident(name: str) -> str:
    return "@" + name if name in _CS_KEYWORDS else name


# -- F# ---------------------------------------------------------------------------------------------
_FS_NAMESPACE = re.compile(r"^\s*namespace\s+(?:rec\s+)?(?:global\.)?([A-Za-z_][\w.]*)\s*$")
_FS_MODULE = re.compile(r"^\s*module\s+(?:rec\s+)?([A-Za-z_][\w.]*)\s*(=)?\s*$")
_FS_TYPE = re.compile(r"^\s*(?:type|and)\s+(?:\[<[^>]*>\]\s*)?(?:public\s+)?([A-Za-z_]\w*)\s*(\([^)]*\))?[^=]*=")
_FS_MEMBER = re.compile(r"^\s*(static\s+member|member|override|default|abstract(?:\s+member)?)\s+"
                        r"(?:val\s+|(?:inline\s+)?(?:private\s+|internal\s+)?)?(?:[A-Za-z_]\w*\.)?([A-Za-z_]\w*)(.*)$")
_FS_LET = re.compile(r"^(\s*)let\s+(?:inline\s+|rec\s+)?([A-Za-z_]\w*)(.*)$")


def parse_fsharp(text: str) -> list[StubType]:
    types: list[StubType] = []
    namespace = ""
    current: StubType | None = None
    for line in text.splitlines():
        code = line.split("//")[0]
        m = _FS_NAMESPACE.match(code)
        if m:
            namespace, current = m.group(1), None
            continue
        m = _FS_MODULE.match(code)
        if m:
            full = m.group(1)
            if m.group(2) is None and "." in full and not namespace:  # `module A.B` heads the file
                ns, _, name = full.rpartition(".")
            else:
                ns, name = namespace, full
            current = StubType(ns, name, static=True)
            types.append(current)
            continue
        m = _FS_TYPE.match(code)
        if m:
            current = StubType(namespace, m.group(1))
            types.append(current)
            continue
        if current is None:
            continue
        m = _FS_MEMBER.match(code)
        if m:
            kind, name, rest = m.group(1), m.group(2), m.group(3).strip()
            is_method = rest.startswith("(") or bool(re.match(r"^[A-Za-z_(]", rest))
            if kind.startswith("abstract") and rest.startswith(":"):
                is_method = "->" in rest
            current.members.setdefault(name, (is_method, kind.startswith("static") or current.static))
            continue
        m = _FS_LET.match(code)
        if m and current.static and len(m.group(1)) > 0:  # a module's let bindings are its functions
            rest = m.group(3).strip()
            current.members.setdefault(m.group(2), (not rest.startswith("=") and not rest.startswith(":"), True))
    return [t for t in types if t.name]


# -- VB ---------------------------------------------------------------------------------------------
_VB_NAMESPACE = re.compile(r"^\s*Namespace\s+([A-Za-z_][\w.]*)\s*$", re.IGNORECASE)
_VB_END_NAMESPACE = re.compile(r"^\s*End\s+Namespace\b", re.IGNORECASE)
_VB_TYPE = re.compile(r"^\s*Public\s+(?:(?:Partial|MustInherit|NotInheritable)\s+)*(Class|Module|Structure)\s+"
                      r"([A-Za-z_]\w*)", re.IGNORECASE)
_VB_MEMBER = re.compile(r"^\s*Public\s+((?:(?:Shared|Overridable|Overrides|Overloads|ReadOnly|WriteOnly|Default|"
                        r"Shadows|MustOverride|NotOverridable)\s+)*)(?:(Function|Sub|Property|Event)\s+)?"
                        r"([A-Za-z_]\w*)", re.IGNORECASE)


def parse_vb(text: str) -> list[StubType]:
    types: list[StubType] = []
    namespaces: list[str] = []
    current: StubType | None = None
    for line in text.splitlines():
        code = line.split("'")[0]
        m = _VB_NAMESPACE.match(code)
        if m:
            namespaces.append(m.group(1))
            continue
        if _VB_END_NAMESPACE.match(code):
            if namespaces:
                namespaces.pop()
            continue
        m = _VB_TYPE.match(code)
        if m:
            current = StubType(".".join(namespaces), m.group(2), static=m.group(1).lower() == "module")
            types.append(current)
            continue
        if current is None:
            continue
        m = _VB_MEMBER.match(code)
        if m and m.group(3).lower() not in ("class", "module", "structure", "enum", "interface", "const"):
            modifiers = (m.group(1) or "").lower()
            kind = (m.group(2) or "").lower()
            name = m.group(3)
            if kind == "sub" and name.lower() == "new":
                continue  # a constructor: the stub's takes any arguments
            if kind == "event":
                continue
            current.members.setdefault(name, (kind in ("function", "sub"), "shared" in modifiers or current.static))
    return types


# -- C# ---------------------------------------------------------------------------------------------
def _literal(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def stub_source(types: list[tuple[StubType, str, str]]) -> str:
    """C# for `(type, workflow-relative file, language)` triples."""
    out = ["// Generated by coflows (engines/clr/stubs.py): stand-ins for F#/VB Base types.",
           "using System;", ""]
    for t, rel, language in types:
        message = (f"{t.full_name} is declared in {rel}, written in {language}: coflows compiles C#, Java, Python "
                   f"and JavaScript only; build {rel} into a .dll and list it under Bins in package.json")
        if t.namespace:
            out.append(f"namespace {t.namespace}\n{{")
        static = "static " if t.static else ""
        out.append(f"public {static}class {_ident(t.name)}\n{{")
        out.append(f"    private static Exception CoflowsMissing() {{ return new NotSupportedException({_literal(message)}); }}")
        if not t.static:
            out.append(f"    public {_ident(t.name)}(params object[] args) {{ throw CoflowsMissing(); }}")
        for name, (is_method, is_static) in t.members.items():
            if name == t.name:
                continue
            mod = "static " if is_static or t.static else ""
            if is_method:
                out.append(f"    public {mod}dynamic {_ident(name)}(params object[] args) {{ throw CoflowsMissing(); }}")
            else:
                out.append(f"    public {mod}dynamic {_ident(name)} {{ get {{ throw CoflowsMissing(); }} "
                           f"set {{ throw CoflowsMissing(); }} }}")
        out.append("}")
        if t.namespace:
            out.append("}")
        out.append("")
    return "\n".join(out)


def read_types(path: Path) -> list[StubType]:
    text = path.read_text(encoding="utf-8", errors="replace")
    return parse_fsharp(text) if path.suffix.lower() == ".fs" else parse_vb(text)
