"""Docs of Java functions: CoFlows `///` XML comments and Javadoc (`/** … @param … @return … */`).

XML (`<api name="…">`, `<info>`) wins where both say something; Javadoc fills in
what the XML leaves out. The Javadoc of the class (the comment above
`class X`) becomes the file's `<info>` description when there is no `<info>`.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field

from coflows.functions import FunctionDocs
from coflows.xmldocs import ModuleDocs, comment_blocks, parse_api, parse_module_docs

_BLOCK = re.compile(r"/\*\*(?!/)(.*?)\*/", re.S)
_ANNOTATION = re.compile(r"@\w+(?:\.\w+)*(?:\s*\([^)]*\))?")
_INLINE = re.compile(r"\{@(?:code|link|linkplain|literal|value)\s+([^}]*)\}")
_TAG_HTML = re.compile(r"</?[a-zA-Z][^>]*>")
_DECL = re.compile(r"^[^;{}=]*?\b(class|interface|enum|record)\s+(\w+)|^[^;{}=()]*?\b(\w+)\s*\(", re.S)


@dataclass
class Javadoc:
    description: str = ""
    params: dict[str, str] = field(default_factory=dict)
    returns: str = ""


def _clean(text: str) -> str:
    text = _INLINE.sub(lambda m: m.group(1).strip(), text)
    text = _TAG_HTML.sub(" ", text)
    return " ".join(html.unescape(text).split())


def parse_javadoc(body: str) -> Javadoc:
    lines = []
    for line in body.splitlines():
        s = line.strip()
        if s.startswith("*"):
            s = s[1:]
            if s.startswith(" "):
                s = s[1:]
        lines.append(s)
    doc = Javadoc()
    description: list[str] = []
    current: tuple[str, str] | None = None  # (tag, param name)
    parts: dict[tuple[str, str], list[str]] = {}
    for s in lines:
        m = re.match(r"@(\w+)\s*(.*)", s.strip())
        if m:
            tag, rest = m.group(1), m.group(2)
            if tag == "param":
                name, _, text = rest.partition(" ")
                current = ("param", name.strip("<>"))
                parts[current] = [text]
            elif tag in ("return", "returns"):
                current = ("return", "")
                parts[current] = [rest]
            else:
                current = ("other", tag)
                parts[current] = [rest]
            continue
        if current is None:
            description.append(s)
        else:
            parts[current].append(s)
    doc.description = _clean(" ".join(description))
    for (tag, name), text in parts.items():
        if tag == "param" and name:
            doc.params[name] = _clean(" ".join(text))
        elif tag == "return":
            doc.returns = _clean(" ".join(text))
    return doc


def javadocs(source: str) -> tuple[dict[str, Javadoc], Javadoc | None]:
    """Javadoc per method name (the first one documented wins) and the top-level class's."""
    methods: dict[str, Javadoc] = {}
    klass: Javadoc | None = None
    for m in _BLOCK.finditer(source):
        after = source[m.end():m.end() + 600]
        after = _ANNOTATION.sub(" ", re.sub(r"//[^\n]*", " ", after))
        d = _DECL.search(after.lstrip())
        if not d:
            continue
        if d.group(1):
            if klass is None:
                klass = parse_javadoc(m.group(1))
            continue
        name = d.group(3)
        if name in ("if", "for", "while", "switch", "return", "new", "catch", "synchronized"):
            continue
        methods.setdefault(name, parse_javadoc(m.group(1)))
    return methods, klass


def _member_xml(source: str, mdocs: ModuleDocs, workflow_id: str) -> None:
    """`/// <summary>…` right above any method (instance ones too), not only `static` ones."""
    import xml.etree.ElementTree as ET

    lines = source.splitlines()
    for _, text, next_line in comment_blocks(source, "///"):
        if "<" not in text or "<api" in text:
            continue
        after = "\n".join(lines[next_line - 1:next_line + 4])
        d = _DECL.search(_ANNOTATION.sub(" ", after).lstrip())
        if not d or not d.group(3) or d.group(3) in mdocs.apis:
            continue
        try:
            root = ET.fromstring(f"<root>{text}</root>")
            if root.find("summary") is not None or root.find("param") is not None:
                mdocs.apis[d.group(3)] = parse_api(root, workflow_id)
        except (ET.ParseError, ValueError):
            continue  # reported by parse_module_docs


def module_docs(source: str, workflow_id: str, filename: str) -> tuple[ModuleDocs, dict[str, Javadoc]]:
    """The file's XML docs, with the class Javadoc as `<info>` description when there is none."""
    mdocs = parse_module_docs(source, "///", workflow_id, filename)
    _member_xml(source, mdocs, workflow_id)
    methods, klass = javadocs(source)
    if klass is not None and klass.description and "description" not in mdocs.info:
        mdocs.info = {**mdocs.info, "description": klass.description}
    return mdocs, methods


def function_docs(name: str, mdocs: ModuleDocs, methods: dict[str, Javadoc]) -> FunctionDocs:
    """A fresh FunctionDocs for `name`: XML first, then Javadoc for whatever XML leaves empty."""
    xml = mdocs.apis.get(name)
    docs = FunctionDocs() if xml is None else FunctionDocs(
        xml.description, xml.returns, dict(xml.params), dict(xml.param_types),
        list(xml.permissions) if xml.permissions is not None else None, xml.timeout, dict(xml.extra))
    jd = methods.get(name)
    if jd is not None:
        docs.description = docs.description or jd.description
        docs.returns = docs.returns or jd.returns
        for p, text in jd.params.items():
            if text and not docs.params.get(p):
                docs.params[p] = text
    return docs
