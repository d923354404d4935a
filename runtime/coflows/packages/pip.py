"""Pips for a workspace: package.json ``Pips`` → a reviewed lock → ``<workspace>/pip``.

Resolution is pip-tools' (``python -m piptools compile``), run in coflows' own
interpreter and **constrained by coflows' own dependencies** (each pinned to the
version installed here), so a workspace cannot silently swap out a package the
runtime needs: such a pin is a build error naming both requirements.

The result is ``<workspace>/requirements.lock`` (with hashes; meant to be
committed). Its header keeps a key of the entries and the runtime pins, so an
unchanged package.json skips pip-compile. The lock is installed with ``pip
install --target <workspace>/pip --no-deps``, leaving out what coflows'
environment already has at the same version; ``pip/.coflows-lock-hash`` records
what was installed, so the same lock never installs twice.
"""

from __future__ import annotations

import hashlib
import importlib.metadata as metadata
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from coflows.packages.download import atomic_write_text, replace_dir
from coflows.packages.progress import Progress, or_null
from coflows.packages.summary import InstallItem, InstallSummary, PackageError, entry_label

LOCK_NAME = "requirements.lock"
PIP_DIR = "pip"
HASH_FILE = ".coflows-lock-hash"
KEY_PREFIX = "# coflows-key: "
CONSTRAINTS_NAME = "coflows-runtime.txt"
INPUT_NAME = "pips.in"
LOCK_FORMAT = 1
# Extras of the runtime that are about developing coflows, not running it.
_DEV_EXTRAS = {"test", "tests", "dev", "docs", "lint"}
_HEADER = """\
# requirements.lock: this workspace's package.json "Pips", resolved by coflows with pip-tools.
# Commit it. coflows regenerates it when the Pips entries or coflows' own pins change,
# and installs exactly these versions (hash-checked) into pip/.
"""


@dataclass
class PipResult:
    """Where the packages are and what happened; `compiled`/`installed` say which steps ran."""

    path: Path
    lock_file: Path
    summary: InstallSummary
    compiled: bool
    installed: bool
    provided: list[str] = field(default_factory=list)  # locked names taken from coflows' environment


@dataclass(frozen=True)
class IndexOptions:
    """Where pip looks for packages (default: PyPI, plus pip's own configuration)."""

    index_url: str | None = None
    find_links: tuple[str, ...] = ()
    no_index: bool = False

    def args(self) -> list[str]:
        out = ["--index-url", self.index_url] if self.index_url else []
        for link in self.find_links:
            out += ["--find-links", str(link)]
        return out + (["--no-index"] if self.no_index else [])


def pip_path(workspace_dir: Path | str) -> Path:
    """The directory to put on ``sys.path`` for the workspace's Pips."""
    return Path(workspace_dir) / PIP_DIR


# -- the runtime's own environment --------------------------------------------------------

def _runtime_paths() -> list[str]:
    """site-packages of the interpreter running coflows (not any workspace's pip/)."""
    paths = sysconfig.get_paths()
    return list(dict.fromkeys(p for p in (paths.get("purelib"), paths.get("platlib")) if p))


def runtime_distributions() -> dict[str, tuple[str, str]]:
    """canonical name → (name, version) of every distribution installed for coflows."""
    out: dict[str, tuple[str, str]] = {}
    for d in metadata.distributions(path=_runtime_paths()):
        name = d.metadata["Name"]
        if name:
            out.setdefault(canonicalize_name(name), (name, d.version))
    return out


def runtime_pins(root: str = "coflows") -> dict[str, str]:
    """``name==version`` for every installed dependency of `root`, transitively.

    Extras of `root` count (an installed ``dask`` extra is used by the runtime) except
    the development ones (test, docs, ...). Requirements whose markers do not hold
    here, or that are not installed, are skipped.
    """
    dists = {canonicalize_name(d.metadata["Name"] or ""): d for d in metadata.distributions(path=_runtime_paths())}
    start = dists.get(canonicalize_name(root))
    if start is None:
        return {}
    root_extras = {e for e in (start.metadata.get_all("Provides-Extra") or []) if e not in _DEV_EXTRAS}
    pins: dict[str, str] = {}
    seen: set[tuple[str, frozenset[str]]] = set()
    todo: list[tuple[str, frozenset[str]]] = [(canonicalize_name(root), frozenset(root_extras))]
    while todo:
        name, extras = todo.pop()
        if (name, extras) in seen or name not in dists:
            continue
        seen.add((name, extras))
        dist = dists[name]
        if name != canonicalize_name(root):
            pins[name] = f"{dist.metadata['Name']}=={dist.version}"
        for text in dist.requires or []:
            try:
                req = Requirement(text)
            except InvalidRequirement:
                continue
            if req.marker is not None and not any(req.marker.evaluate({"extra": e}) for e in (extras or {""})):
                continue
            todo.append((canonicalize_name(req.name), frozenset(req.extras)))
    return dict(sorted(pins.items()))


# -- entries and the lock -------------------------------------------------------------------

@dataclass
class _Spec:
    label: str  # "Pips: 'six==1.16.0'"
    text: str  # "six==1.16.0"
    name: str  # canonical


def _parse_entries(entries: Sequence[Mapping[str, Any]]) -> list[_Spec]:
    specs = []
    for index, entry in enumerate(entries):
        text = str(entry.get("ID") or "").strip()
        label = f"Pips: '{text}'" if text else entry_label("Pips", entry, index)
        if not text:
            raise PackageError(f"{label}: needs 'ID' (a pip requirement such as 'requests==2.32.3')")
        if text.startswith("-") or "\n" in text or "\r" in text:
            raise PackageError(f"{label}: options are not allowed, only a requirement such as 'requests==2.32.3'")
        try:
            req = Requirement(text)
        except InvalidRequirement as e:
            raise PackageError(f"{label}: not a valid requirement: {e}") from None
        specs.append(_Spec(label, text, canonicalize_name(req.name)))
    return specs


def _key(specs: list[_Spec], pins: dict[str, str], index: IndexOptions) -> str:
    data = {"format": LOCK_FORMAT, "entries": [s.text for s in specs], "runtime": sorted(pins.values()),
            "python": f"{sys.version_info.major}.{sys.version_info.minor}", "index": index.args()}
    return "sha256:" + hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def _lock_key(lock_text: str) -> str | None:
    for line in lock_text.splitlines():
        if line.startswith(KEY_PREFIX):
            return line[len(KEY_PREFIX):].strip()
        if line and not line.startswith("#"):
            break
    return None


@dataclass
class _Locked:
    """One requirement block of the lock: ``name==version \\`` + hashes + ``# via`` comments."""

    name: str  # canonical
    display: str
    version: str | None
    lines: list[str]
    via: list[str]


_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?\s*(?:==\s*([^\s;\\]+)|@\s*\S+)")


def parse_lock(text: str) -> list[_Locked]:
    """The requirement blocks of a pip-compile output, in file order."""
    blocks: list[_Locked] = []
    current: _Locked | None = None
    continued = False
    for line in text.splitlines():
        stripped = line.strip()
        if continued and current is not None:
            current.lines.append(line)
            continued = stripped.endswith("\\")
            continue
        if current is not None and line.startswith((" ", "\t")) and stripped.startswith("#"):
            via = stripped.lstrip("#").strip()
            via = via[len("via"):].strip() if via.startswith("via") else via
            if via:
                current.via.append(via)
            continue
        if not stripped or stripped.startswith("#") or stripped.startswith("-"):
            current = None
            continue
        m = _PIN.match(stripped)
        if m is None:
            current = None
            continue
        current = _Locked(canonicalize_name(m.group(1)), m.group(1), m.group(2), [line], [])
        blocks.append(current)
        continued = stripped.endswith("\\")
    return blocks


# -- subprocesses ----------------------------------------------------------------------------

def _run(args: list[str], cwd: Path) -> tuple[int, str]:
    """Run a command; returns (exit code, stdout and stderr merged). Tests patch this."""
    env = {**os.environ, "PIP_NO_INPUT": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PYTHONIOENCODING": "utf-8"}
    proc = subprocess.run(args, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          encoding="utf-8", errors="replace", env=env)
    return proc.returncode, proc.stdout


# -- pip-compile errors -> messages that name entries -------------------------------------

_LINE_REF = re.compile(r"-r \S*" + re.escape(INPUT_NAME) + r" \(line (\d+)\)")


def _req_name(text: str) -> str | None:
    try:
        return canonicalize_name(Requirement(text.replace(" and ", ",")).name)
    except InvalidRequirement:
        m = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", text)
        return canonicalize_name(m.group(0)) if m else None


def _spec_for(name: str | None, specs: list[_Spec]) -> list[_Spec]:
    return [s for s in specs if name is not None and s.name == name]


def explain_compile_error(output: str, specs: list[_Spec]) -> str:
    """Turn pip-compile's output into a message naming the package.json entries at fault."""
    lines = output.splitlines()
    cannot: list[_Spec] = []
    for line in lines:
        if "Cannot install " in line:
            cannot += [specs[int(n) - 1] for n in _LINE_REF.findall(line) if 0 < int(n) <= len(specs)]
            what = line.split("Cannot install ", 1)[1].split(" because", 1)[0]
            for part in re.split(r",\s*| and ", what):
                cannot += _spec_for(_req_name(part.strip()), specs)
    constraints, requested, depends = [], [], []
    if "The conflict is caused by:" in output:
        block = output.split("The conflict is caused by:", 1)[1].split("\n\n", 1)[0]
        for raw in block.splitlines():
            item = raw.strip()
            if item.startswith("The user requested (constraint) "):
                constraints.append(item[len("The user requested (constraint) "):])
            elif item.startswith("The user requested "):
                requested.append(item[len("The user requested "):])
            elif " depends on " in item:
                depends.append(item)
    if constraints:
        messages = []
        for own in constraints:
            own_name = _req_name(own)
            culprits = [s for r in requested if _req_name(r) == own_name for s in _spec_for(own_name, specs)]
            because = [d for d in depends if _req_name(d.split(" depends on ", 1)[1]) == own_name]
            for d in because:
                culprits += _spec_for(_req_name(d.split(" ", 1)[0]), specs)
            # In package.json order; when pip names no entry, the ones it could not install.
            culprits = [s for s in specs if s in culprits] or cannot or specs
            why = f" ({'; '.join(because)})" if because else ""
            messages += [f"{s.label} conflicts with coflows' own '{own}'{why}" for s in culprits]
        return "\n".join(dict.fromkeys(messages))
    if requested or depends:
        labels = list(dict.fromkeys(s.label for s in cannot)) or [s.label for s in specs]
        return f"{', '.join(labels)}: conflicting requirements: {'; '.join(requested + depends)}"
    for line in lines:
        m = re.search(r"Could not find a version that satisfies the requirement (\S+)(.*)", line)
        if m:
            found = _spec_for(_req_name(m.group(1)), specs) or cannot
            who = ", ".join(s.label for s in found) or f"Pips: dependency '{m.group(1)}'"
            return f"{who}: no matching version on the package index{m.group(2).rstrip()}"
    errors = [x.strip() for x in lines if "ERROR" in x or x.startswith(("error:", "Error:"))]
    who = ", ".join(dict.fromkeys(s.label for s in cannot)) or "Pips"
    return f"{who}: pip-compile failed: " + ("; ".join(errors[-3:]) or (lines[-1] if lines else "no output"))


def _explain_install_error(output: str, specs: list[_Spec]) -> str:
    """pip install's errors, prefixed by the entries they mention (else just "Pips")."""
    lines = [x.strip() for x in output.splitlines() if x.strip()]
    errors = [x for x in lines if x.startswith(("ERROR", "Expected sha256", "Got "))
              or re.match(r"^[A-Za-z0-9._-]+==\S+ from ", x)]
    text = "; ".join(errors[-5:]) or (lines[-1] if lines else "no output")
    words = set(re.findall(r"[a-z0-9][a-z0-9._-]*", text.lower().replace("_", "-")))
    named = [s.label for s in specs if s.name in words]
    return f"{', '.join(named) or 'Pips'}: pip install of requirements.lock failed: {text}"


# -- the install -------------------------------------------------------------------------

def install_pips(
    entries: Sequence[Mapping[str, Any]],
    workspace_dir: Path | str,
    progress: Progress | None = None,
    *,
    index: IndexOptions = IndexOptions(),
    runtime: str = "coflows",
) -> PipResult:
    """Lock and install the workspace's Pips; fast (no subprocess) when nothing changed.

    Raises `PackageError` naming the entries at fault (conflicts with coflows' own
    pins, unknown packages, failed installs).
    """
    workspace = Path(workspace_dir)
    progress = or_null(progress)
    lock_file = workspace / LOCK_NAME
    target = pip_path(workspace)
    specs = _parse_entries(entries)
    if not specs:
        return _no_pips(lock_file, target)
    pins = runtime_pins(runtime)
    key = _key(specs, pins, index)

    compiled = False
    lock_text = lock_file.read_text() if lock_file.is_file() else ""
    if _lock_key(lock_text) != key:
        lock_text = _compile(specs, pins, key, lock_file, lock_text, index, progress)
        compiled = True
    locked = parse_lock(lock_text)

    have = runtime_distributions()
    provided = [b for b in locked if b.version is not None and b.name in have and have[b.name][1] == b.version]
    to_install = [b for b in locked if b not in provided]
    install_hash = hashlib.sha256(
        (lock_text + "\n# provided: " + " ".join(sorted(b.name for b in provided))).encode()).hexdigest()
    hash_file = target / HASH_FILE
    done = hash_file.is_file() and hash_file.read_text().strip() == install_hash
    if not done:
        _install(to_install, specs, workspace, target, install_hash, index, progress)

    summary = InstallSummary()
    direct = {s.name for s in specs}
    for b in locked:
        is_provided = b in provided
        detail = "provided by coflows' environment" if is_provided else (
            None if b.name in direct else ("via " + ", ".join(b.via) if b.via else None))
        summary.add(InstallItem("pip", b.display, b.version, "cached" if done or is_provided else "installed",
                                detail=detail, path=None if is_provided else target))
    return PipResult(target, lock_file, summary, compiled, not done, [b.display for b in provided])


def _no_pips(lock_file: Path, target: Path) -> PipResult:
    """No entries: remove what coflows installed before (only if it is ours)."""
    if (target / HASH_FILE).is_file():
        shutil.rmtree(target, ignore_errors=True)
    if lock_file.is_file() and _lock_key(lock_file.read_text()) is not None:
        lock_file.unlink()
    return PipResult(target, lock_file, InstallSummary(), False, False)


def _compile(specs: list[_Spec], pins: dict[str, str], key: str, lock_file: Path, previous: str,
             index: IndexOptions, progress: Progress) -> str:
    item = "Pips: resolve"
    progress.start(item)
    with tempfile.TemporaryDirectory(prefix="coflows-pips-") as tmp:
        tmpdir = Path(tmp)
        (tmpdir / INPUT_NAME).write_text("".join(s.text + "\n" for s in specs))
        (tmpdir / CONSTRAINTS_NAME).write_text("".join(p + "\n" for p in pins.values()))
        if previous:
            (tmpdir / LOCK_NAME).write_text(previous)  # existing pins are kept where still valid
        args = [sys.executable, "-m", "piptools", "compile", "--no-config", "--no-header", "-v",
                "--strip-extras", "--allow-unsafe", "--generate-hashes", "--no-emit-index-url",
                "--no-emit-find-links", "--no-emit-trusted-host", "--no-emit-options",
                "-c", CONSTRAINTS_NAME, "-o", LOCK_NAME, *index.args(), INPUT_NAME]
        code, output = _run(args, tmpdir)
        if code != 0:
            progress.done(item, "failed")
            raise PackageError(explain_compile_error(output, specs))
        body = (tmpdir / LOCK_NAME).read_text()
    text = _HEADER + KEY_PREFIX + key + "\n\n" + body.lstrip("\n")
    atomic_write_text(lock_file, text)
    progress.done(item, "installed")
    return text


def _install(blocks: list[_Locked], specs: list[_Spec], workspace: Path, target: Path, install_hash: str,
             index: IndexOptions, progress: Progress) -> None:
    """Install into a fresh directory and swap it in, so a failure keeps the old pip/."""
    item = f"Pips: install {len(blocks)} package{'s' * (len(blocks) != 1)}"
    progress.start(item)
    workspace.mkdir(parents=True, exist_ok=True)
    new = Path(tempfile.mkdtemp(dir=workspace, prefix=f".{PIP_DIR}.new-"))
    os.chmod(new, 0o755)  # mkdtemp makes it private; pip/ is read by whoever runs the workspace
    try:
        if blocks:
            requirements = new.parent / f"{new.name}.txt"
            requirements.write_text("".join("\n".join(b.lines) + "\n" for b in blocks))
            hashed = all(any("--hash=" in line for line in b.lines) for b in blocks)
            args = [sys.executable, "-m", "pip", "install", "--target", str(new), "--no-deps",
                    "--no-warn-script-location", "--no-input", *(["--require-hashes"] if hashed else []),
                    *index.args(), "-r", str(requirements)]

            try:
                code, output = _run(args, workspace)
            finally:
                requirements.unlink(missing_ok=True)
            if code != 0:
                raise PackageError(_explain_install_error(output, specs))
        (new / HASH_FILE).write_text(install_hash + "\n")
        replace_dir(new, target)
    except BaseException:
        shutil.rmtree(new, ignore_errors=True)
        progress.done(item, "failed")
        raise
    progress.done(item, "installed")
