"""Jars for a workspace: package.json ``Jars`` entries → a verified local classpath.

URL entries are downloaded as they are. Coordinate entries (``{"ID": "g:a",
"Version": "v"}`` or ``{"ID": "g:a:v"}``) bring their compile- and runtime-scope
dependencies, read from POMs (`maven_pom`) and mediated the Maven way: nearest
wins, first declaration wins at equal depth, exclusions apply to a whole
subtree, optional and test/provided/system dependencies are left out.

Files live in ``<workspace>/jars/`` (Maven layout under ``maven/``, URL jars under
``urls/<host>/<path>``). The outcome is pinned in ``jars/jars.lock.json``, keyed by
the entries and repositories: while they do not change, a build only checks the
local files against the lock's SHA-256 and touches no network.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import xml.etree.ElementTree as ET
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence
from urllib.parse import urlparse

from coflows.packages.download import (
    Digest,
    DownloadError,
    Downloader,
    Fetched,
    NotFound,
    atomic_write_text,
    read_lock,
)
from coflows.packages.maven_pom import Coords, Dep, Effective, PomError, PomResolver
from coflows.packages.maven_version import MavenVersion, VersionRange
from coflows.packages.progress import Progress, or_null
from coflows.packages.summary import InstallItem, InstallSummary, PackageError, Status, entry_label

DEFAULT_REPOSITORIES: tuple[str, ...] = ("https://repo1.maven.org/maven2",)
LOCK_NAME = "jars.lock.json"
LOCK_FORMAT = 1
_SKIPPED_SCOPES = {"test", "provided", "system", "import"}
# type → (file extension, implied classifier); other types are not classpath jars.
_TYPES = {"jar": ("jar", None), "bundle": ("jar", None), "maven-plugin": ("jar", None), "ejb": ("jar", None),
          "test-jar": ("jar", "tests"), "pom": ("pom", None)}
_SAFE = re.compile(r"^[A-Za-z0-9_.+\-]+$")


@dataclass
class JarResult:
    """The classpath (absolute jar paths, in order) and what happened to each artifact."""

    jars: list[Path]
    summary: InstallSummary
    entry_status: dict[str, Status]  # keyed by entry label, e.g. "Jars: 'g:a:1.0'"
    lock_file: Path
    resolved: bool  # False when the lock was reused (no POM read, no network)


def jars_dir(workspace_dir: Path | str) -> Path:
    return Path(workspace_dir) / "jars"


@dataclass
class _Entry:
    index: int
    label: str  # "Jars: 'g:a:1.0'"
    text: str  # "g:a:1.0"
    url: str | None = None
    dep: Dep | None = None


def _parse_entry(index: int, entry: Mapping[str, Any]) -> _Entry:
    label = entry_label("Jars", entry, index)
    text = label.split(": ", 1)[1].strip("'") if ": '" in label else label
    url = entry.get("Url")
    if url:
        if urlparse(str(url)).scheme not in ("http", "https", "file"):
            raise PackageError(f"{label}: Url must be http(s) or file")
        return _Entry(index, label, text, url=str(url))
    ident = str(entry.get("ID") or "").strip()
    if not ident:
        raise PackageError(f"{label}: needs 'Url' or 'ID' (groupId:artifactId[:version])")
    parts = ident.split(":")
    version = str(entry.get("Version") or "").strip() or None
    if version is None and len(parts) >= 3:
        version = parts.pop()
    if not 2 <= len(parts) <= 4 or not all(parts):
        raise PackageError(f"{label}: ID must be groupId:artifactId[:type[:classifier]][:version]")
    dep = Dep(group=parts[0], artifact=parts[1], version=version,
              type=parts[2] if len(parts) > 2 else "jar", classifier=parts[3] if len(parts) > 3 else None)
    return _Entry(index, label, text, dep=dep)


def _checksum(text: bytes, algorithm: str) -> Digest | None:
    """A digest from a ``.sha1``/``.sha256`` file, whatever its decoration."""
    size = {"sha1": 40, "sha256": 64}[algorithm]
    m = re.search(rb"\b[0-9a-fA-F]{%d}\b" % size, text)
    return Digest.from_hex(algorithm, m.group(0).decode()) if m else None


class _Repos:
    """Remote Maven repositories in order, with the local copy under ``jars/maven``."""

    def __init__(self, urls: Sequence[str], downloader: Downloader, root: Path) -> None:
        self.urls = [u.rstrip("/") for u in urls]
        self.downloader = downloader
        self.root = root

    @staticmethod
    def layout(c: Coords, ext: str, classifier: str | None = None) -> str:
        for part in (c.group, c.artifact, c.version, ext, classifier or "x"):
            if not _SAFE.match(part):
                raise PomError(f"unsafe coordinate part {part!r} in {c}")
        name = f"{c.artifact}-{c.version}" + (f"-{classifier}" if classifier else "") + f".{ext}"
        return "/".join([*c.group.split("."), c.artifact, c.version, name])

    def published_digest(self, url: str) -> Digest | None:
        for algorithm in ("sha1", "sha256"):
            text = self.downloader.get_optional(f"{url}.{algorithm}")
            if text is not None:
                return _checksum(text, algorithm)
        return None

    def fetch(self, c: Coords, ext: str, classifier: str | None = None,
              label: str | None = None) -> tuple[Fetched, str]:
        """The file from the first repository that has it: (fetched, url)."""
        rel = self.layout(c, ext, classifier)
        dest = self.root / "maven" / rel
        for base in self.urls:
            url = f"{base}/{rel}"
            try:
                digest = functools.partial(self.published_digest, url)
                return self.downloader.fetch(url, dest, digest, label=label, report=label is not None), url
            except NotFound:
                continue
        what = "POM" if ext == "pom" else f"{ext}{' ' + classifier if classifier else ''}"
        raise NotFound(f"not found in {', '.join(self.urls)} (no {what} at .../{rel})", f"{self.urls[0]}/{rel}")

    def versions(self, group: str, artifact: str) -> list[str]:
        found: list[str] = []
        for base in self.urls:
            data = self.downloader.get_optional(f"{base}/{group.replace('.', '/')}/{artifact}/maven-metadata.xml")
            if data is None:
                continue
            try:
                root = ET.fromstring(data)
            except ET.ParseError:
                continue
            found += [v.text.strip() for v in root.iter("version") if v.text and v.text.strip() not in found]
        return found


@dataclass
class _Node:
    """One artifact in the resolved tree."""

    coords: Coords
    ext: str
    classifier: str | None
    entry: _Entry
    parent: "_Node | None"
    exclusions: frozenset[tuple[str, str]]
    scope: str = "compile"
    children: list["_Node"] = field(default_factory=list)
    packaging: str = "jar"

    @property
    def name(self) -> str:
        return f"{self.coords.group}:{self.coords.artifact}" + (f":{self.classifier}" if self.classifier else "")

    @property
    def via(self) -> str:
        chain = []
        node = self.parent
        while node is not None:
            chain.append(str(node.coords))
            node = node.parent
        return " > ".join(reversed(chain))

    def excluded(self, group: str, artifact: str) -> bool:
        return any(g in ("*", group) and a in ("*", artifact) for g, a in self.exclusions)


class _Resolution:
    """Breadth-first walk of all coordinate entries together, so depth decides conflicts."""

    def __init__(self, repos: _Repos) -> None:
        self.repos = repos
        self.poms = PomResolver(lambda c: repos.fetch(c, "pom")[0].path.read_bytes())
        self.failures: dict[int, list[str]] = {}
        self.roots: list[_Node] = []

    def fail(self, node: _Node, message: str) -> None:
        """Record a failure against the entry; a dependency's failure says which one and how it was reached."""
        where = f"{node.coords} (via {node.via}): " if node.parent else ""
        self.failures.setdefault(node.entry.index, []).append(f"{where}{message}")

    def _pick_version(self, dep: Dep) -> str:
        if dep.version and not VersionRange.is_range(dep.version):
            return dep.version
        available = self.repos.versions(dep.group, dep.artifact)
        if dep.version:
            chosen = VersionRange(dep.version).highest(available)
        else:
            releases = [v for v in available if not v.upper().endswith("-SNAPSHOT")]
            chosen = max(releases, key=MavenVersion) if releases else None
        if chosen is None:
            if not available:
                raise PomError(f"no versions listed (maven-metadata.xml) in {', '.join(self.repos.urls)}")
            raise PomError(f"no version matches {dep.version or 'a release'} (available: {', '.join(available)})")
        return chosen

    def run(self, entries: list[_Entry]) -> None:
        queue: deque[tuple[_Node | None, _Entry, Dep, str, frozenset[tuple[str, str]]]] = deque(
            (None, e, e.dep, "compile", frozenset()) for e in entries if e.dep is not None)
        winners: dict[tuple[str, str, str, str | None], _Node] = {}
        while queue:
            parent, entry, dep, scope, exclusions = queue.popleft()
            ext, implied = _TYPES.get(dep.type, (dep.type, None))
            classifier = dep.classifier or implied
            key = (dep.group, dep.artifact, ext, classifier)
            if key in winners:
                continue  # nearer (or earlier) declaration already won
            node = _Node(Coords(dep.group, dep.artifact, dep.version or ""), ext, classifier, entry, parent,
                         exclusions, scope)
            try:
                node.coords = Coords(dep.group, dep.artifact, self._pick_version(dep))
                effective = self._effective(node)
            except (PomError, DownloadError) as e:
                self.fail(node, str(e))
                continue
            winners[key] = node
            (parent.children if parent else self.roots).append(node)
            node.packaging = effective.packaging
            for d in effective.dependencies:
                d_scope = d.scope or "compile"
                if d_scope in _SKIPPED_SCOPES or d.optional or node.excluded(d.group, d.artifact):
                    continue
                if not d.version or "${" in d.version or "${" in d.group + d.artifact:
                    self.fail(node, f"dependency {d} has no resolvable version in its POM")
                    continue
                child_scope = "runtime" if scope == "runtime" else d_scope
                queue.append((node, entry, d, child_scope, exclusions | frozenset(d.exclusions)))

    def _effective(self, node: _Node) -> Effective:
        for _ in range(5):
            effective = self.poms.effective(node.coords)
            if effective.relocation is None:
                return effective
            node.coords = effective.relocation
        raise PomError(f"too many relocations from {node.coords}")

    def preorder(self) -> list[_Node]:
        out: list[_Node] = []

        def walk(n: _Node) -> None:
            out.append(n)
            for c in n.children:
                walk(c)

        for r in self.roots:
            walk(r)
        return out


def _lock_key(entries: list[_Entry], repositories: Sequence[str]) -> str:
    norm = [{"Url": e.url} if e.url else {"ID": str(e.dep)} for e in entries]
    data = json.dumps({"format": LOCK_FORMAT, "entries": norm, "repositories": list(repositories)}, sort_keys=True)
    return hashlib.sha256(data.encode()).hexdigest()


def _url_dest(root: Path, url: str) -> Path:
    parsed = urlparse(url)
    parts = [p for p in parsed.path.split("/") if p not in ("", ".", "..")]
    if not parts:
        raise PomError(f"no file name in {url}")
    return root.joinpath("urls", parsed.netloc.replace(":", "_") or "local", *parts)


def resolve_jars(
    entries: Sequence[Mapping[str, Any]],
    workspace_dir: Path | str,
    repositories: Sequence[str] = DEFAULT_REPOSITORIES,
    progress: Progress | None = None,
    *,
    downloader: Downloader | None = None,
) -> JarResult:
    """Download the workspace's jars with their runtime dependencies; return the classpath.

    Raises `PackageError` naming every failed entry (with `.summary` filled in).
    """
    root = jars_dir(workspace_dir)
    parsed = [_parse_entry(i, e) for i, e in enumerate(entries)]
    key = _lock_key(parsed, repositories)
    lock_file = root / LOCK_NAME
    progress = or_null(progress)
    own = downloader is None
    dl = downloader or Downloader(progress=progress)
    try:
        lock = read_lock(lock_file, LOCK_FORMAT)
        if lock is not None and lock.get("key") == key:
            return _from_lock(lock, parsed, root, lock_file, dl)
        progress.start("Jars: resolve")
        try:
            result, lock = _resolve(parsed, root, repositories, dl, lock_file)
        except BaseException:
            progress.done("Jars: resolve", "failed")
            raise
        progress.done("Jars: resolve", "installed")
        lock["key"] = key
        atomic_write_text(lock_file, json.dumps(lock, indent=2) + "\n")
        return result
    finally:
        if own:
            dl.close()




@dataclass
class _Planned:
    """One file to put on the classpath."""

    entry: _Entry
    name: str
    version: str | None
    urls: list[str]  # candidates, first that has it wins
    dest: Path
    expected: Any
    via: str = ""


def _resolve(entries: list[_Entry], root: Path, repositories: Sequence[str], dl: Downloader,
             lock_file: Path) -> tuple[JarResult, dict[str, Any]]:
    repos = _Repos(repositories, dl, root)
    resolution = _Resolution(repos)
    resolution.run(entries)
    by_entry: dict[int, list[_Node]] = {}
    for node in resolution.preorder():
        by_entry.setdefault(node.entry.index, []).append(node)

    planned: list[_Planned] = []
    for e in entries:
        if e.url:
            try:
                dest = _url_dest(root, e.url)
            except PomError as err:
                resolution.failures.setdefault(e.index, []).append(str(err))
                continue
            planned.append(_Planned(e, dest.name, None, [e.url], dest,
                                    functools.partial(repos.published_digest, e.url)))
            continue
        for node in by_entry.get(e.index, []):
            if node.ext != "jar" or (node.packaging == "pom" and node.classifier is None):
                continue  # a BOM/aggregator or non-jar type: its dependencies count, it does not
            try:
                rel = repos.layout(node.coords, node.ext, node.classifier)
            except PomError as err:
                resolution.fail(node, str(err))
                continue
            planned.append(_Planned(e, node.name, node.coords.version, [f"{u}/{rel}" for u in repos.urls],
                                    root / "maven" / rel, None, node.via))

    def fetch(p: _Planned) -> tuple[_Planned, Fetched | None, str, str | None]:
        last: str | None = None
        for url in p.urls:
            expected = p.expected if p.expected is not None else functools.partial(repos.published_digest, url)
            try:
                return p, dl.fetch(url, p.dest, expected, label=f"{p.name} {p.version or ''}".strip()), url, None
            except NotFound as err:
                last = str(err)
            except DownloadError as err:
                return p, None, url, str(err)
        return p, None, p.urls[0], last

    with ThreadPoolExecutor(max_workers=4) as pool:
        outcomes = list(pool.map(fetch, planned))

    summary = InstallSummary()
    for index, messages in sorted(resolution.failures.items()):
        summary.add(InstallItem("jar", entries[index].text, None, "failed", error="; ".join(messages)))
    failures = dict(resolution.failures)
    artifacts: list[dict[str, Any]] = []
    for p, fetched, url, error in outcomes:
        summary.add(InstallItem("jar", p.name, p.version, "failed" if fetched is None else fetched.status,
                                error=error, detail=f"via {p.via}" if p.via else p.entry.url, path=p.dest))
        if fetched is None:
            where = f"{p.name}:{p.version} (via {p.via}): " if p.via else ""
            failures.setdefault(p.entry.index, []).append(f"{where}{error}")
            continue
        artifacts.append({"entry": p.entry.index, "name": p.name, "version": p.version, "url": url,
                          "path": p.dest.relative_to(root).as_posix(), "sha256": fetched.sha256, "via": p.via})
    entry_status = _entry_status(entries, outcomes, failures)
    if failures:
        raise PackageError(_failure_text(entries, failures), summary)
    lock = {"format": LOCK_FORMAT, "repositories": list(repositories),
            "entries": [e.text for e in entries], "artifacts": artifacts}
    jars = [root / a["path"] for a in artifacts]
    return JarResult(jars, summary, entry_status, lock_file, True), lock


def _failure_text(entries: list[_Entry], failures: dict[int, list[str]]) -> str:
    return "\n".join(f"{entries[i].label}: {'; '.join(m)}" for i, m in sorted(failures.items()))


def _entry_status(entries: list[_Entry], outcomes: list[Any],
                  failures: dict[int, list[str]]) -> dict[str, Status]:
    status: dict[str, Status] = {}
    for e in entries:
        mine = [f.status if f else "failed" for p, f, _, _ in outcomes if p.entry.index == e.index]
        if e.index in failures or "failed" in mine:
            status[e.label] = "failed"
        elif "installed" in mine:
            status[e.label] = "installed"
        else:
            status[e.label] = "cached"
    return status


def _from_lock(lock: dict[str, Any], entries: list[_Entry], root: Path, lock_file: Path,
               dl: Downloader) -> JarResult:
    """Reuse a lock: verify local files by SHA-256, re-download only a missing or damaged one."""
    summary = InstallSummary()
    failures: dict[int, list[str]] = {}
    outcomes = []
    for a in lock.get("artifacts", []):
        dest = root / a["path"]
        entry = entries[a["entry"]]
        try:
            fetched: Fetched | None = dl.fetch(a["url"], dest, Digest.from_hex("sha256", a["sha256"]),
                                               label=f"{a['name']} {a.get('version') or ''}".strip())
            error = None
        except DownloadError as err:
            fetched, error = None, str(err)
            failures.setdefault(entry.index, []).append(f"{a['name']}:{a.get('version') or ''} {error}")
        summary.add(InstallItem("jar", a["name"], a.get("version"), fetched.status if fetched else "failed",
                                error=error, detail=f"via {a['via']}" if a.get("via") else entry.url, path=dest))
        planned = _Planned(entry, a["name"], a.get("version"), [a["url"]], dest, None)
        outcomes.append((planned, fetched, a["url"], error))
    entry_status = _entry_status(entries, outcomes, failures)
    if failures:
        raise PackageError(_failure_text(entries, failures), summary)
    return JarResult([root / a["path"] for a in lock["artifacts"]], summary, entry_status, lock_file, False)
