"""CoFlows XML doc comments (`###` in Python, `///` in C#/Java/JS) → `FunctionDocs`.

CoFlows strips the comment prefix, wraps the lines in `<root>…</root>` and
reads `<info>` and `<api name="…">` elements with `<description>`,
`<returns>`, `<param name type>` and `<permissions><group id permission/>`.
Standard `<summary>`/`<param>` docs directly above a member (C#) are read too.
Comments that are not XML are ignored rather than failing the file.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from coflows.functions import FunctionDocs, GroupPermission

LEVELS = {"denied": -1, "view": 0, "read": 1, "write": 2}


@dataclass
class ModuleDocs:
    info: dict[str, str] = field(default_factory=dict)
    apis: dict[str, FunctionDocs] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


def permission_level(text: str) -> int:
    t = text.strip().lower()
    if t in LEVELS:
        return LEVELS[t]
    try:
        return max(-1, min(2, int(t)))
    except ValueError:
        raise ValueError(f"unknown permission {text!r} (expected view, read, write or denied)") from None


def _text(el: ET.Element | None) -> str:
    if el is None:
        return ""
    return " ".join("".join(el.itertext()).split())


def parse_api(el: ET.Element, workflow_id: str = "") -> FunctionDocs:
    docs = FunctionDocs(description=_text(el.find("description")) or _text(el.find("summary")),
                        returns=_text(el.find("returns")))
    for p in el.findall("param"):
        name = p.get("name")
        if name:
            docs.params[name] = _text(p)
            if p.get("type"):
                docs.param_types[name] = p.get("type", "")
    perms = el.find("permissions")
    if perms is not None:
        docs.permissions = []
        for g in perms.findall("group"):
            gid = (g.get("id") or "").replace("$WID$", workflow_id)
            docs.permissions.append(GroupPermission(gid, permission_level(g.get("permission", "read"))))
    timeout = el.get("timeout")
    if timeout:
        docs.timeout = float(timeout)
    for k, v in el.attrib.items():
        if k not in ("name", "timeout"):
            docs.extra[k] = v
    return docs


def comment_blocks(source: str, prefix: str) -> list[tuple[int, str, int]]:
    """Consecutive comment lines starting with `prefix`: (first line no, text, line after block)."""
    blocks: list[tuple[int, str, int]] = []
    lines = source.splitlines()
    i = 0
    while i < len(lines):
        stripped = lines[i].lstrip()
        if stripped.startswith(prefix):
            start = i
            parts = []
            while i < len(lines) and lines[i].lstrip().startswith(prefix):
                parts.append(lines[i].lstrip()[len(prefix):])
                i += 1
            blocks.append((start + 1, "\n".join(parts), i + 1))
        else:
            i += 1
    return blocks


_DEF_NAME = re.compile(r"(?:def|function|class|let|var|const|static)\s+(?:[\w<>\[\],\s]+\s+)?(\w+)\s*[=(:]")


def parse_module_docs(source: str, prefix: str, workflow_id: str = "", filename: str = "") -> ModuleDocs:
    """Read every XML comment block of a file.

    `<api name=…>` elements are keyed by name. A block with no `<api>` but a
    `<summary>` or `<param>` documents the member declared right below it.
    """
    out = ModuleDocs()
    lines = source.splitlines()
    for line_no, text, next_line in comment_blocks(source, prefix):
        if "<" not in text:
            continue
        try:
            root = ET.fromstring(f"<root>{text}</root>")
        except ET.ParseError as e:
            out.errors.append(f"{filename}:{line_no}: doc comment is not valid XML: {e}")
            continue
        info = root.find("info")
        if info is not None:
            out.info = {k: v for k, v in info.attrib.items()}
            for child in info:
                out.info[child.tag] = _text(child)
        for api in root.findall("api"):
            name = api.get("name")
            if name:
                try:
                    out.apis[name] = parse_api(api, workflow_id)
                except ValueError as e:
                    out.errors.append(f"{filename}:{line_no}: {e}")
        if root.find("api") is None and (root.find("summary") is not None or root.find("param") is not None):
            for follow in lines[next_line - 1:next_line + 2]:
                m = _DEF_NAME.search(follow)
                if m:
                    try:
                        out.apis.setdefault(m.group(1), parse_api(root, workflow_id))
                    except ValueError as e:
                        out.errors.append(f"{filename}:{line_no}: {e}")
                    break
    return out
