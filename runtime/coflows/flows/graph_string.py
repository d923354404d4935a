"""The cloudmesh-flow graph string: `fetch; (clean || enrich); report`.

Grammar (whitespace and newlines are free)::

    sequence := parallel (';' parallel)*      a ; b    → every start of b depends on every end of a
    parallel := term ('||' term)*             a || b   → a and b side by side
    term     := NAME | '(' sequence ')'

A NAME is an alias declared with the flow or a function ref (`Query.py/fn`,
`Workflow/Query.py/fn`). Nodes are named after the alias, or after the function
part of a ref (`Data.py/fetch` → `fetch`); a name used again gets `#2`, `#3`, ...
so the same function can run twice. Errors carry line and column.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from coflows.flows.errors import FlowSpecError
from coflows.flows.spec import FlowSpec, Loc, NodeSpec, make_node, resolve_name

_TOKEN = re.compile(r"\s+|(?P<name>[A-Za-z0-9_.\-/$@]+)|(?P<par>\|\|)|(?P<op>[;()])")


@dataclass
class _Tok:
    kind: str  # name | ; | || | ( | ) | end
    text: str
    line: int
    column: int


def _tokens(text: str) -> list[_Tok]:
    out: list[_Tok] = []
    pos, line, line_start = 0, 1, 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            ch = text[pos]
            hint = " ('|' alone: did you mean '||'?)" if ch == "|" else ""
            raise FlowSpecError(f"unexpected character {ch!r}{hint}", line=line, column=pos - line_start + 1)
        col = pos - line_start + 1
        if m.group("name"):
            out.append(_Tok("name", m.group("name"), line, col))
        elif m.group("par"):
            out.append(_Tok("||", "||", line, col))
        elif m.group("op"):
            out.append(_Tok(m.group("op"), m.group("op"), line, col))
        else:  # whitespace: keep line counting right
            chunk = m.group(0)
            if "\n" in chunk:
                line += chunk.count("\n")
                line_start = pos + chunk.rindex("\n") + 1
        pos = m.end()
    out.append(_Tok("end", "", line, pos - line_start + 1))
    return out


class _Parser:
    """Recursive descent; each rule returns (starts, ends): the nodes with no parent and no child inside it."""

    def __init__(self, text: str, aliases: Mapping[str, Any]):
        self.toks = _tokens(text)
        self.i = 0
        self.aliases = aliases
        self.nodes: list[NodeSpec] = []
        self.deps: dict[str, list[str]] = {}
        self.counts: dict[str, int] = {}

    def peek(self) -> _Tok:
        return self.toks[self.i]

    def take(self) -> _Tok:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def fail(self, tok: _Tok, message: str) -> FlowSpecError:
        return FlowSpecError(message, line=tok.line, column=tok.column)

    def parse(self) -> FlowSpec:
        if self.peek().kind == "end":
            raise self.fail(self.peek(), "the graph string is empty (expected e.g. 'a; b || c')")
        self.sequence()
        tok = self.peek()
        if tok.kind != "end":
            raise self.fail(tok, f"unexpected {tok.text!r} (expected ';', '||' or the end)")
        for node in self.nodes:
            node.after = self.deps[node.name]
            for i, _dep in enumerate(node.after):
                node._locs[f"after[{i}]"] = node._locs["node"]
        return FlowSpec(nodes=self.nodes, format="graph")

    def sequence(self) -> tuple[list[str], list[str]]:
        starts, ends = self.parallel()
        while self.peek().kind == ";":
            self.take()
            if self.peek().kind in ("end", ")"):
                break  # a trailing ';' is harmless
            nstarts, nends = self.parallel()
            for s in nstarts:
                self.deps[s].extend(e for e in ends if e not in self.deps[s])
            ends = nends
        return starts, ends

    def parallel(self) -> tuple[list[str], list[str]]:
        starts, ends = self.term()
        while self.peek().kind == "||":
            self.take()
            s, e = self.term()
            starts, ends = starts + s, ends + e
        return starts, ends

    def term(self) -> tuple[list[str], list[str]]:
        tok = self.take()
        if tok.kind == "(":
            if self.peek().kind == ")":
                raise self.fail(self.peek(), "empty parentheses")
            result = self.sequence()
            close = self.take()
            if close.kind != ")":
                raise self.fail(close, f"expected ')' to close the '(' at line {tok.line}, column {tok.column}")
            return result
        if tok.kind == "name":
            name = self.add_node(tok)
            return [name], [name]
        what = "the end" if tok.kind == "end" else repr(tok.text)
        raise self.fail(tok, f"expected a function name or '(' but found {what}")

    def add_node(self, tok: _Tok) -> str:
        loc = Loc(None, tok.line, tok.column)
        ref, defaults, default_locs = resolve_name(tok.text, self.aliases, loc)
        base = tok.text if tok.text in self.aliases else tok.text.rsplit("/", 1)[-1]
        n = self.counts.get(base, 0) + 1
        self.counts[base] = n
        name = base if n == 1 else f"{base}#{n}"
        node = make_node(name, {"ref": ref}, {"ref": loc}, loc, defaults, default_locs)
        self.nodes.append(node)
        self.deps[name] = []
        return name


def parse_graph_string(text: str, aliases: Mapping[str, Any] | None = None) -> FlowSpec:
    """Parse a graph string into a FlowSpec (not yet checked against the function registry)."""
    spec = _Parser(text, aliases or {}).parse()
    spec.aliases = dict(aliases or {})
    return spec
