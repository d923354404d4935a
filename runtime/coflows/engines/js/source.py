"""Reading JavaScript source without a JavaScript parser: top-level declarations, parameters, JSDoc.

A small tokenizer (comments, strings, template literals with `${}` nesting,
regular expression literals, brackets) is enough to find what the engine
needs, best effort:

- the names a file declares at its top level (`function f`, `async function`,
  `class C`, `let/const/var` with simple destructuring, `export …`), with the
  JSDoc comment right above each and its line;
- `export` keywords, blanked out (same length, so columns stay right) because
  a query file is evaluated inside a function scope, and top-level `import`s
  (not supported: there is no module loader) and `await` (the file is then
  wrapped in an async function);
- the parameter list of a function from its source text (V8's
  `Function.prototype.toString()`): names, defaults, rest parameters,
  destructuring patterns;
- JSDoc tags: `@param {type} name`, `@param {type} [name=default]`,
  `@returns {type}`, `@timeout seconds`.

V8 stays the judge of what a file really defines: the engine keeps only the
names that resolve, after evaluation, to bindings of the file's own scope.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_ID_START = re.compile(r"[A-Za-z_$\u0080-\uffff]")
_ID_CHARS = re.compile(r"[A-Za-z0-9_$\u0080-\uffff]*")
_NUMBER = re.compile(r"(?:0[xXoObB][0-9a-fA-F_]+n?|(?:\d[\d_]*\.?[\d_]*|\.\d[\d_]*)(?:[eE][+-]?\d+)?n?)")
_PUNCT = sorted(
    """>>>= ... === !== **= <<= >>= >>> &&= ||= ??= => == != <= >= && || ?? ?. ++ -- += -= *= /= %= &= |= ^= ** << >>
    { } ( ) [ ] ; , < > + - * / % & | ^ ! ~ ? : = . @ #""".split(),
    key=len, reverse=True,
)
# After these, a `/` starts a regular expression rather than a division.
_REGEX_AFTER_KEYWORDS = {"return", "typeof", "instanceof", "in", "of", "new", "delete", "void", "throw", "case",
                         "do", "else", "yield", "await", "extends"}
_DECL_KEYWORDS = {"let", "const", "var"}
_OPENERS = {"(": ")", "[": "]", "{": "}"}


@dataclass(slots=True)
class Token:
    kind: str  # ident | punct | string | template | regex | number | comment
    value: str
    start: int
    end: int
    line: int
    newline_before: bool
    depth: int = 0  # bracket depth before this token


class JsSyntaxError(ValueError):
    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.line = line


def tokenize(text: str, keep_comments: bool = True) -> list[Token]:
    """Tokens with their bracket depth; unterminated constructs end at the end of the text."""
    tokens: list[Token] = []
    i, n, line = 0, len(text), 1
    stack: list[str] = []  # open brackets; "${" marks a template substitution
    newline = True
    prev_sig: Token | None = None

    def regex_allowed() -> bool:
        if prev_sig is None:
            return True
        if prev_sig.kind == "punct":
            return prev_sig.value not in (")", "]", "}", "++", "--")
        if prev_sig.kind == "ident":
            return prev_sig.value in _REGEX_AFTER_KEYWORDS
        return False

    def scan_template(j: int) -> tuple[int, bool]:
        """From inside a template at j: return (index after the closing ` or after `${`, opened_sub)."""
        nonlocal line
        while j < n:
            c = text[j]
            if c == "\\":
                j += 2
                continue
            if c == "\n":
                line += 1
            if c == "`":
                return j + 1, False
            if c == "$" and j + 1 < n and text[j + 1] == "{":
                return j + 2, True
            j += 1
        return n, False

    while i < n:
        c = text[i]
        if c == "\n":
            line += 1
            newline = True
            i += 1
            continue
        if c in " \t\r\f\v\ufeff\u00a0\u2028\u2029":
            i += 1
            continue
        start, start_line, depth = i, line, len(stack)
        if c == "/" and i + 1 < n and text[i + 1] in "/*":
            if text[i + 1] == "/":
                j = text.find("\n", i)
                j = n if j < 0 else j
            else:
                j = text.find("*/", i + 2)
                j = n if j < 0 else j + 2
                line += text.count("\n", i, j)
            if keep_comments:
                tokens.append(Token("comment", text[i:j], start, j, start_line, newline, depth))
            i = j
            continue
        if c in "'\"":
            j = i + 1
            while j < n and text[j] != c and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            j = min(j + 1, n)
            tok = Token("string", text[i:j], start, j, start_line, newline, depth)
        elif c == "`":
            j, opened = scan_template(i + 1)
            if opened:
                stack.append("${")
            tok = Token("template", text[i:j], start, j, start_line, newline, depth)
        elif c == "}" and stack and stack[-1] == "${":
            stack.pop()
            j, opened = scan_template(i + 1)
            if opened:
                stack.append("${")
            tok = Token("template", text[i:j], start, j, start_line, newline, len(stack))
        elif c == "/" and regex_allowed():
            j, in_class = i + 1, False
            while j < n and text[j] != "\n":
                ch = text[j]
                if ch == "\\":
                    j += 2
                    continue
                if ch == "[":
                    in_class = True
                elif ch == "]":
                    in_class = False
                elif ch == "/" and not in_class:
                    break
                j += 1
            j += 1
            while j < n and (text[j].isalnum() or text[j] in "_$"):
                j += 1
            tok = Token("regex", text[i:j], start, j, start_line, newline, depth)
        elif _ID_START.match(c) or c == "\\":
            m = _ID_CHARS.match(text, i + 1)
            j = m.end() if m else i + 1
            tok = Token("ident", text[i:j], start, j, start_line, newline, depth)
        elif c.isdigit() or (c == "." and i + 1 < n and text[i + 1].isdigit()):
            m = _NUMBER.match(text, i)
            j = m.end() if m and m.end() > i else i + 1
            tok = Token("number", text[i:j], start, j, start_line, newline, depth)
        else:
            for p in _PUNCT:
                if text.startswith(p, i):
                    break
            else:
                p = c
            j = i + len(p)
            if p in _OPENERS:
                stack.append(p)
            elif p in (")", "]", "}"):
                if stack and stack[-1] != "${":
                    stack.pop()
            tok = Token("punct", p, start, j, start_line, newline, depth if p not in (")", "]", "}") else len(stack))
        tokens.append(tok)
        prev_sig = tok
        newline = False
        i = j
    return tokens


@dataclass
class Declaration:
    name: str
    kind: str  # function | class | let | const | var
    line: int
    doc: str = ""  # the JSDoc block right above (without /** */)
    exported: bool = False


@dataclass
class ScanResult:
    declarations: list[Declaration] = field(default_factory=list)
    text: str = ""  # the source with `export` keywords blanked
    module: bool = False  # uses export (evaluate in strict mode)
    top_level_await: bool = False
    imports: list[int] = field(default_factory=list)  # lines of top-level import statements

    def names(self) -> list[str]:
        seen: dict[str, None] = {}
        for d in self.declarations:
            seen.setdefault(d.name, None)
        return list(seen)

    def find(self, name: str) -> Declaration | None:
        for d in self.declarations:
            if d.name == name:
                return d
        return None


_STATEMENT_END = {";", "}"}
_EXPRESSION_END = {")", "]", "}"}


def _starts_statement(tokens: list[Token], k: int) -> bool:
    """Whether token k (at depth 0) begins a statement (rather than sitting inside an expression)."""
    j = k - 1
    while j >= 0 and tokens[j].kind == "comment":
        j -= 1
    if j < 0:
        return True
    prev = tokens[j]
    if prev.kind == "punct" and prev.value in _STATEMENT_END:
        return True
    if prev.kind == "ident" and prev.value in ("export", "default", "async"):
        return prev.value != "async" or _starts_statement(tokens, j)
    if tokens[k].newline_before:
        # ASI: a new line starts a statement unless the previous line ends mid-expression
        if prev.kind == "punct" and prev.value not in _EXPRESSION_END and prev.value not in ("++", "--"):
            return False
        return not (prev.kind == "ident" and prev.value in _REGEX_AFTER_KEYWORDS)
    return False


def _doc_before(tokens: list[Token], k: int) -> str:
    j = k - 1
    while j >= 0 and tokens[j].kind == "ident" and tokens[j].value in ("export", "default", "async"):
        j -= 1
    if j >= 0 and tokens[j].kind == "comment" and tokens[j].value.startswith("/**"):
        return tokens[j].value[3:-2]
    return ""


def _skip_default(tokens: list[Token], j: int) -> int:
    """From the token after a `=` at depth d, skip to the `,` or closer that ends the default value."""
    d = tokens[j - 1].depth
    n = len(tokens)
    while j < n:
        t = tokens[j]
        if t.kind == "punct" and ((t.value == "," and t.depth <= d) or (t.value in (")", "]", "}") and t.depth < d)):
            break
        j += 1
    return j


def _pattern_names(tokens: list[Token], k: int) -> tuple[list[str], int]:
    """Names bound by a binding pattern starting at token k; returns (names, index after the pattern)."""
    tok = tokens[k]
    if tok.kind == "ident":
        return [tok.value], k + 1
    if tok.kind != "punct" or tok.value not in ("{", "["):
        return [], k + 1
    base = tok.depth
    names: list[str] = []
    j, n = k + 1, len(tokens)
    while j < n:
        t = tokens[j]
        if t.kind == "punct" and t.value in (")", "]", "}") and t.depth == base:
            return names, j + 1
        if t.kind == "punct" and t.value == "=":
            j = _skip_default(tokens, j + 1)
            continue
        if t.kind == "ident" and j + 1 < n:
            nxt = tokens[j + 1]
            if nxt.kind == "punct" and nxt.value in (",", "}", "]", "="):
                names.append(t.value)
        j += 1
    return names, j


def scan(text: str) -> ScanResult:
    """Find the top-level declarations of a script or ES module (best effort)."""
    tokens = tokenize(text)
    out = ScanResult()
    chars = list(text)
    arrow_in_statement = False
    k = 0
    n = len(tokens)
    while k < n:
        t = tokens[k]
        if t.depth != 0 or t.kind == "comment":
            k += 1
            continue
        if t.kind == "punct":
            if t.value == ";":
                arrow_in_statement = False
            elif t.value == "=>":
                arrow_in_statement = True
            k += 1
            continue
        if t.kind != "ident":
            k += 1
            continue
        v = t.value
        if v == "await" and not arrow_in_statement:
            prev = tokens[k - 1] if k else None
            if not (prev is not None and prev.kind == "punct" and prev.value == "."):
                out.top_level_await = True
        stmt = _starts_statement(tokens, k)
        if stmt:
            arrow_in_statement = False
        if v == "import" and stmt:
            nxt = tokens[k + 1] if k + 1 < n else None
            if not (nxt and nxt.kind == "punct" and nxt.value in ("(", ".")):  # import() / import.meta
                out.imports.append(t.line)
            k += 1
            continue
        if v == "export" and stmt:
            out.module = True
            nxt = tokens[k + 1] if k + 1 < n else None
            if nxt is not None and nxt.kind == "ident" and nxt.value == "default":
                after = tokens[k + 2] if k + 2 < n else None
                if after is not None and after.kind == "ident" and after.value in ("function", "async", "class"):
                    for p in range(t.start, nxt.end):  # `export default function f` → `function f`
                        if chars[p] != "\n":
                            chars[p] = " "
                else:  # `export default expr` → `var __default=expr` (same length)
                    span = nxt.end - t.start
                    chars[t.start:nxt.end] = list("var __default=".ljust(span))
                k += 2
                continue
            if nxt is not None and nxt.kind == "punct" and nxt.value in ("{", "*"):
                # `export { a, b as c }` (names declared elsewhere): drop the statement;
                # `export … from "x"` re-exports another module: not supported (like import)
                j = k + 1
                if nxt.value == "{":
                    while j < n and not (tokens[j].kind == "punct" and tokens[j].value == "}" and tokens[j].depth == 0):
                        j += 1
                    j += 1
                else:
                    j += 1
                    while j < n and not (tokens[j].kind == "ident" and tokens[j].value == "from"):
                        j += 1
                if j < n and tokens[j].kind == "ident" and tokens[j].value == "from":
                    out.imports.append(t.line)
                    j += 2
                if j < n and tokens[j].kind == "punct" and tokens[j].value == ";":
                    j += 1
                end_pos = tokens[j - 1].end if j - 1 < n else len(text)
                for p in range(t.start, end_pos):
                    if chars[p] != "\n":
                        chars[p] = " "
                k = j
                continue
            for p in range(t.start, t.end):
                chars[p] = " "
            k += 1
            continue
        if not stmt:
            k += 1
            continue
        exported = k > 0 and any(tokens[j].kind == "ident" and tokens[j].value == "export"
                                 for j in range(max(0, k - 3), k))
        if v in ("function", "class"):
            j = k + 1
            if j < n and tokens[j].kind == "punct" and tokens[j].value == "*":
                j += 1
            if j < n and tokens[j].kind == "ident":
                out.declarations.append(Declaration(tokens[j].value, v, t.line, _doc_before(tokens, k), exported))
            k = j + 1
            continue
        if v == "async" and k + 1 < n and tokens[k + 1].value == "function" and not tokens[k + 1].newline_before:
            k += 1  # handled as `function` on the next round (it starts a statement after `async`)
            continue
        if v in _DECL_KEYWORDS:
            nxt = tokens[k + 1] if k + 1 < n else None
            if v == "let" and (nxt is None or not (nxt.kind == "ident" or (nxt.kind == "punct" and nxt.value in "[{"))):
                k += 1  # `let` used as an identifier
                continue
            doc = _doc_before(tokens, k)
            j = k + 1
            while j < n:
                names, j = _pattern_names(tokens, j)
                for name in names:
                    out.declarations.append(Declaration(name, v, t.line, doc, exported))
                # skip the initializer up to a comma at depth 0 or the end of the statement
                arrow = False
                while j < n:
                    tj = tokens[j]
                    if tj.kind == "comment":
                        j += 1
                        continue
                    if tj.depth == 0:
                        if tj.kind == "punct" and tj.value == "=>":
                            arrow = True
                        elif tj.kind == "ident" and tj.value == "await" and not arrow:
                            out.top_level_await = True
                    if tj.depth == 0 and tj.kind == "punct" and tj.value in (",", ";"):
                        break
                    if tj.depth == 0 and tj.newline_before and j > 0 and _starts_statement(tokens, j) and not (
                            tj.kind == "punct"):
                        break
                    j += 1
                if j < n and tokens[j].kind == "punct" and tokens[j].value == ",":
                    j += 1
                    continue
                break
            k = j
            continue
        k += 1
    out.text = "".join(chars)
    return out


# -- parameters -------------------------------------------------------------------------------
@dataclass(frozen=True)
class JsParam:
    name: str
    optional: bool = False
    rest: bool = False
    default: str | None = None  # source text of the default value
    pattern: str = ""  # "object" | "array" for destructured parameters


def _split_top(tokens: list[Token], base: int) -> list[list[Token]]:
    parts: list[list[Token]] = [[]]
    for t in tokens:
        if t.kind == "punct" and t.value == "," and t.depth == base:
            parts.append([])
        else:
            parts[-1].append(t)
    return [p for p in parts if p]


def params_of(source: str) -> list[JsParam] | None:
    """Parameters of a function from its source text (`fn.toString()`); None if not a function."""
    tokens = [t for t in tokenize(source, keep_comments=False)]
    if not tokens:
        return None
    if tokens[0].kind == "ident" and tokens[0].value == "class":
        return None
    k = 1 if (tokens[0].kind == "ident" and tokens[0].value == "async" and len(tokens) > 1
              and tokens[1].kind == "ident") else 0
    t = tokens[k] if k < len(tokens) else None
    if t is None:
        return None
    # `x => …`
    if t.kind == "ident" and t.value != "function" and k + 1 < len(tokens) and tokens[k + 1].value == "=>":
        return [JsParam(t.value)]
    # find the parameter list: the first "(" (function, method, arrow)
    open_idx = None
    for j in range(k, len(tokens)):
        tj = tokens[j]
        if tj.kind == "punct" and tj.value == "(" and tj.depth == 0:
            open_idx = j
            break
        if tj.kind == "punct" and tj.value in ("{", "=>"):
            break
    if open_idx is None:
        return None
    base = tokens[open_idx].depth + 1
    body: list[Token] = []
    for j in range(open_idx + 1, len(tokens)):
        tj = tokens[j]
        if tj.kind == "punct" and tj.value == ")" and tj.depth == base - 1:
            break
        body.append(tj)
    if "[native code]" in source:
        return []
    params: list[JsParam] = []
    for i, part in enumerate(_split_top(body, base)):
        first = part[0]
        rest = first.kind == "punct" and first.value == "..."
        if rest:
            part = part[1:]
            if not part:
                continue
            first = part[0]
        default = None
        for idx, tok in enumerate(part):
            if tok.kind == "punct" and tok.value == "=" and tok.depth == base:
                default = source[part[idx + 1].start:part[-1].end] if idx + 1 < len(part) else ""
                break
        if first.kind == "ident":
            params.append(JsParam(first.value, optional=default is not None or rest, rest=rest, default=default))
        elif first.kind == "punct" and first.value in ("{", "["):
            params.append(JsParam(f"arg{i}", optional=default is not None or rest, rest=rest, default=default,
                                  pattern="object" if first.value == "{" else "array"))
    return params


# -- JSDoc --------------------------------------------------------------------------------------
@dataclass
class JsDocParam:
    name: str
    type: str = ""
    description: str = ""
    optional: bool = False
    default: str | None = None


@dataclass
class JsDoc:
    description: str = ""
    params: dict[str, JsDocParam] = field(default_factory=dict)
    returns_type: str = ""
    returns: str = ""
    timeout: float | None = None


def _braced(s: str) -> tuple[str, str]:
    """Split `{type} rest` (nested braces allowed) → (type, rest)."""
    s = s.lstrip()
    if not s.startswith("{"):
        return "", s
    depth = 0
    for i, c in enumerate(s):
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return s[1:i].strip(), s[i + 1:]
    return s[1:].strip(), ""


def parse_jsdoc(comment: str) -> JsDoc:
    """Parse the inside of a `/** … */` block."""
    lines = []
    for raw in comment.splitlines():
        line = raw.strip()
        if line.startswith("*"):
            line = line[1:]
            if line.startswith(" "):
                line = line[1:]
        lines.append(line.rstrip())
    doc = JsDoc()
    desc: list[str] = []
    tag: list[str] | None = None
    tags: list[list[str]] = []
    for line in lines:
        if line.lstrip().startswith("@"):
            tag = [line.lstrip()]
            tags.append(tag)
        elif tag is not None:
            tag.append(line)
        else:
            desc.append(line)
    doc.description = " ".join(" ".join(desc).split())
    for parts in tags:
        text = " ".join(" ".join(parts).split())
        name, _, rest = text.partition(" ")
        name = name[1:]
        if name in ("param", "arg", "argument"):
            typ, rest = _braced(rest)
            rest = rest.strip()
            if rest.startswith("["):
                end = rest.find("]")
                inner, rest = (rest[1:end], rest[end + 1:]) if end > 0 else (rest[1:], "")
                pname, _, default = inner.partition("=")
                optional, dflt = True, (default.strip() or None)
            else:
                pname, _, rest = rest.partition(" ")
                optional, dflt = False, None
            pname = pname.strip()
            if typ.endswith("="):
                typ, optional = typ[:-1], True
            rest = rest.strip()
            if rest.startswith("- "):
                rest = rest[2:]
            if pname and "." not in pname:  # `@param {T} opts.x` documents a property: skip
                doc.params[pname] = JsDocParam(pname, typ, rest, optional, dflt)
        elif name in ("returns", "return"):
            typ, rest = _braced(rest)
            doc.returns_type = typ
            doc.returns = rest.strip().removeprefix("- ")
        elif name == "timeout":
            try:
                doc.timeout = float(rest.strip().split()[0].rstrip("s"))
            except (ValueError, IndexError):
                pass
        elif name in ("description", "summary") and rest:
            doc.description = (doc.description + " " + rest).strip()
    return doc
