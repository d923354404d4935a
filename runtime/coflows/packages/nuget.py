"""NuGets for a workspace: package.json ``NuGets`` → assemblies Mono 6.8 can load.

Each entry (``{"ID": "Newtonsoft.Json", "Version": "13.0.3"}``) is resolved with
its dependencies from the ``.nuspec`` groups for the best framework Mono can load
(`nuget_tfm`), taking for each dependency the lowest version its ranges allow,
as NuGet does. Packages are downloaded from the feeds (v3 or folder,
`nuget_feed`), checked against the SHA-512 the feed publishes and extracted to
``<workspace>/nugets/<id>/<version>/`` (NuGet's own global-packages layout, with
the ``.nupkg`` and its ``.nupkg.sha512`` beside the files, so the folder is itself
a valid feed). ``nugets/nugets.lock.json`` pins the outcome: while the entries
and feeds do not change, an install only checks local files, with no network.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import os
import shutil
import tempfile
import xml.etree.ElementTree as ET
import zipfile
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Mapping, Sequence
from urllib.parse import unquote

from coflows.errors import CoflowsError
from coflows.packages import nuget_tfm
from coflows.packages.download import Digest, DownloadError, Downloader, atomic_write_text, hash_file, read_lock
from coflows.packages.nuget_feed import Feed, FeedError, open_feed
from coflows.packages.nuget_version import NuGetRange, NuGetVersion
from coflows.packages.progress import Progress, or_null
from coflows.packages.summary import InstallItem, InstallSummary, PackageError, Status, entry_label

DEFAULT_FEEDS: tuple[str, ...] = ("https://api.nuget.org/v3/index.json",)
LOCK_NAME = "nugets.lock.json"
LOCK_FORMAT = 1
_MAX_ROUNDS = 10
_OPC_PARTS = ("[Content_Types].xml", "_rels/", "package/")


class _Failure(CoflowsError):
    """One package could not be had; the caller adds the entry it belongs to."""


@dataclass
class NuGetPackage:
    """An installed package: where it is and what to reference from it."""

    id: str
    version: str
    directory: Path
    framework: str | None  # the lib/ folder chosen, "" for lib/ itself, None without assemblies
    assemblies: list[Path]
    framework_assemblies: list[str]  # GAC references the package asks for (System.Net.Http, …)
    sha512: str  # base64, as NuGet writes it
    source: str
    entry: str = ""  # the package.json entry that brought it, e.g. "NuGets: 'Cf.A 1.0.0'"
    status: Status = "cached"


@dataclass
class NuGetResult:
    """Assemblies in load order (dependencies first) and the packages they come from."""

    assemblies: list[Path]
    packages: list[NuGetPackage]
    summary: InstallSummary
    lock_file: Path
    resolved: bool  # False when the lock was reused (no feed contacted)

    @property
    def framework_assemblies(self) -> list[str]:
        return list(dict.fromkeys(a for p in self.packages for a in p.framework_assemblies))


def nugets_dir(workspace_dir: Path | str) -> Path:
    return Path(workspace_dir) / "nugets"


# -- nuspec ---------------------------------------------------------------------------------

@dataclass
class Nuspec:
    id: str
    version: str
    groups: dict[str, list[tuple[str, NuGetRange]]]  # framework as written ("" = any) → dependencies
    framework_assemblies: list[tuple[str, str]] = field(default_factory=list)  # (name, framework)

    def dependencies(self) -> list[tuple[str, NuGetRange]]:
        chosen = nuget_tfm.best(self.groups)
        return self.groups[chosen] if chosen is not None else []

    def gac_references(self) -> list[str]:
        usable = [(n, f) for n, f in self.framework_assemblies if nuget_tfm.normalize(f) is not None]
        return list(dict.fromkeys(n for n, _ in usable))


def parse_nuspec(data: bytes) -> Nuspec:
    try:
        root = ET.fromstring(data)
    except ET.ParseError as e:
        raise _Failure(f"invalid .nuspec: {e}") from None
    for el in root.iter():
        if isinstance(el.tag, str) and "}" in el.tag:
            el.tag = el.tag.split("}", 1)[1]
    meta = root.find("metadata")
    if meta is None or meta.findtext("id") is None:
        raise _Failure(".nuspec has no metadata/id")

    def deps(parent: ET.Element) -> list[tuple[str, NuGetRange]]:
        out = []
        for d in parent.findall("dependency"):
            try:
                out.append((d.get("id", ""), NuGetRange.parse(d.get("version"))))
            except ValueError as e:
                raise _Failure(f".nuspec dependency {d.get('id')}: {e}") from None
        return out

    groups: dict[str, list[tuple[str, NuGetRange]]] = {}
    dependencies = meta.find("dependencies")
    if dependencies is not None:
        for g in dependencies.findall("group"):
            groups[g.get("targetFramework", "")] = deps(g)
        if not groups:
            groups[""] = deps(dependencies)
    gac = [(fa.get("assemblyName", ""), fa.get("targetFramework", ""))
           for fa in meta.findall("frameworkAssemblies/frameworkAssembly") if fa.get("assemblyName")]
    return Nuspec(meta.findtext("id", "").strip(), meta.findtext("version", "").strip(), groups, gac)


# -- the nugets/ folder -------------------------------------------------------------------------

class _Store:
    """``nugets/<id>/<version>/``: verified, extracted packages."""

    def __init__(self, root: Path, dl: Downloader) -> None:
        self.root = root
        self.dl = dl
        self.status: dict[tuple[str, NuGetVersion], Status] = {}

    def directory(self, package_id: str, version: NuGetVersion) -> Path:
        return self.root / package_id.lower() / version.normalized.lower()

    def _nupkg(self, package_id: str, version: NuGetVersion) -> Path:
        return self.directory(package_id, version) / f"{package_id.lower()}.{version.normalized.lower()}.nupkg"

    def verified_hash(self, package_id: str, version: NuGetVersion, expected: str | None = None) -> str | None:
        """The base64 SHA-512 of an intact extracted package (matching `expected` if given)."""
        nupkg = self._nupkg(package_id, version)
        note = nupkg.with_name(nupkg.name + ".sha512")
        try:
            recorded = note.read_text().strip()
        except OSError:
            return None
        if expected is not None and recorded != expected:
            return None
        actual = base64.b64encode(hash_file(nupkg, "sha512")["sha512"]).decode() if nupkg.is_file() else None
        return recorded if actual == recorded else None

    def ensure(self, package_id: str, version: NuGetVersion, url: str, expected: Any, label: str) -> str:
        """Have the package extracted; returns its base64 SHA-512. `expected`: see `Downloader.fetch`."""
        known = expected.b64 if isinstance(expected, Digest) else None
        sha = self.verified_hash(package_id, version, known)
        if sha is not None:
            self.status.setdefault((package_id.lower(), version), "cached")
            return sha
        staging = self.root / ".staging" / f"{package_id.lower()}.{version.normalized.lower()}.nupkg"
        try:
            self.dl.fetch(url, staging, expected, label=label)
        except DownloadError as e:
            raise _Failure(str(e)) from None
        try:
            sha = base64.b64encode(hash_file(staging, "sha512")["sha512"]).decode()
            self._extract(staging, package_id, version, sha)
        finally:
            staging.unlink(missing_ok=True)
            staging.with_name(staging.name + ".verified").unlink(missing_ok=True)
        self.status[(package_id.lower(), version)] = "installed"
        return sha

    def _extract(self, nupkg: Path, package_id: str, version: NuGetVersion, sha: str) -> None:
        dest = self.directory(package_id, version)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}."))
        try:
            try:
                with zipfile.ZipFile(nupkg) as z:
                    for info in z.infolist():
                        name = unquote(info.filename)
                        if info.is_dir() or name.startswith(_OPC_PARTS):
                            continue
                        rel = PurePosixPath(name)
                        if rel.is_absolute() or ".." in rel.parts:
                            raise _Failure(f"unsafe path in package: {name}")
                        target = tmp.joinpath(*rel.parts)
                        target.parent.mkdir(parents=True, exist_ok=True)
                        with z.open(info) as src, open(target, "wb") as out:
                            shutil.copyfileobj(src, out)
            except zipfile.BadZipFile as e:
                raise _Failure(f"not a valid .nupkg: {e}") from None
            final_nupkg = tmp / self._nupkg(package_id, version).name
            shutil.copyfile(nupkg, final_nupkg)
            (tmp / (final_nupkg.name + ".sha512")).write_text(sha)
            os.chmod(tmp, 0o755)
            if dest.exists():
                shutil.rmtree(dest)
            os.replace(tmp, dest)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def nuspec(self, package_id: str, version: NuGetVersion) -> Nuspec:
        d = self.directory(package_id, version)
        found = sorted(d.glob("*.nuspec"))
        if not found:
            raise _Failure("package has no .nuspec")
        return parse_nuspec(found[0].read_bytes())

    def assemblies(self, package_id: str, version: NuGetVersion) -> tuple[str | None, list[Path]]:
        """(framework folder chosen, its .dll files) from lib/; an error if only unloadable ones exist."""
        lib = self.directory(package_id, version) / "lib"
        if not lib.is_dir():
            return None, []
        folders = {p.name: sorted(p.glob("*.dll")) for p in lib.iterdir() if p.is_dir()}
        folders = {k: v for k, v in folders.items() if v}
        if list(lib.glob("*.dll")):
            folders[""] = sorted(lib.glob("*.dll"))
        if not folders:
            return None, []
        chosen = nuget_tfm.best(folders)
        if chosen is None:
            raise _Failure("no assemblies for a framework Mono can load "
                           f"(it has: {', '.join(sorted(folders))})")
        return chosen, folders[chosen]


# -- resolution -----------------------------------------------------------------------------------

@dataclass
class _Entry:
    index: int
    label: str  # "NuGets: 'Newtonsoft.Json 13.0.3'"
    id: str
    version: str | None


def _parse_entries(entries: Sequence[Mapping[str, Any]]) -> list[_Entry]:
    out = []
    for i, e in enumerate(entries):
        pid = str(e.get("ID") or "").strip()
        version = str(e.get("Version") or "").strip() or None
        label = entry_label("NuGets", {**e, "ID": pid, "Version": version} if pid else e, i)
        if not pid or any(c in pid for c in "/\\ ") or pid.startswith("."):
            raise PackageError(f"{label}: needs 'ID', a NuGet package id such as 'Newtonsoft.Json'")
        if version is not None:
            try:
                NuGetRange.parse(version)
            except ValueError as err:
                raise PackageError(f"{label}: {err}") from None
        out.append(_Entry(i, label, pid, version))
    return out


class _Sources:
    """All feeds together: the versions of an id, and the first feed holding each one."""

    def __init__(self, feeds: Sequence[str], dl: Downloader) -> None:
        self.names = list(feeds)
        self.feeds = [open_feed(f, dl) for f in feeds]
        self._cache: dict[str, dict[NuGetVersion, Feed]] = {}

    def versions(self, package_id: str) -> dict[NuGetVersion, Feed]:
        lid = package_id.lower()
        if lid not in self._cache:
            found: dict[NuGetVersion, Feed] = {}
            failed: list[tuple[str, FeedError]] = []
            for name, feed in zip(self.names, self.feeds):
                try:
                    for v in feed.versions(package_id):
                        found.setdefault(v, feed)
                except FeedError as e:
                    failed.append((name, e))
            if failed and not found and len(failed) < len(self.feeds):
                # no reachable feed has it: say so first, then why the others could not be asked
                reachable = [n for n in self.names if n not in {f for f, _ in failed}]
                raise _Failure(f"package '{package_id}' not found in {', '.join(reachable)} "
                               f"({'; '.join(str(e) for _, e in failed)})")
            if failed:  # a feed that cannot answer may hold other versions: no silent pick
                raise failed[0][1]
            self._cache[lid] = found
        return self._cache[lid]


def _pick_direct(entry: _Entry, available: list[NuGetVersion], feeds: list[str]) -> NuGetVersion:
    if not available:
        raise _Failure(f"package '{entry.id}' not found in {', '.join(feeds)}")
    listing = ", ".join(str(v) for v in sorted(available)[-8:])
    if entry.version is None:
        stable = [v for v in available if not v.is_prerelease]
        return max(stable or available)
    rng = NuGetRange.parse(entry.version)
    if entry.version[0] not in "[(":  # a plain version in package.json means that version
        wanted = NuGetVersion(entry.version)
        if wanted not in available:
            raise _Failure(f"version {wanted} of '{entry.id}' not found (available: {listing})")
        return wanted
    chosen = rng.lowest(available)
    if chosen is None:
        raise _Failure(f"no version of '{entry.id}' in {rng} (available: {listing})")
    return chosen


@dataclass
class _Resolved:
    order: list[tuple[str, NuGetVersion]]  # dependencies first
    entry_of: dict[str, int]  # lower id → entry index that brought it
    display: dict[str, str]


def _resolve(entries: list[_Entry], sources: _Sources, store: _Store,
             failures: dict[int, list[str]]) -> _Resolved:
    """Direct entries are fixed; every other package gets the lowest version all its ranges allow.

    The walk repeats with the versions it chose until they stop changing (a new
    version can bring different dependency ranges).
    """
    direct: dict[str, tuple[_Entry, NuGetVersion]] = {}
    display: dict[str, str] = {}
    for e in entries:
        try:
            offered = list(sources.versions(e.id))
            direct.setdefault(e.id.lower(), (e, _pick_direct(e, offered, sources.names)))
            display.setdefault(e.id.lower(), e.id)
        except (_Failure, FeedError) as err:
            failures.setdefault(e.index, []).append(str(err))
    chosen: dict[str, NuGetVersion] = {}
    for _ in range(_MAX_ROUNDS):
        ranges: dict[str, list[NuGetRange]] = {}
        edges: dict[str, list[str]] = {}
        entry_of: dict[str, int] = {}
        queue = deque((lid, v, e, [f"{display[lid]} {v}"]) for lid, (e, v) in direct.items())
        seen: set[str] = set()
        while queue:
            lid, version, entry, path = queue.popleft()
            if lid in seen:
                continue
            seen.add(lid)
            entry_of[lid] = entry.index
            try:
                feed = sources.versions(lid).get(version)
                if feed is None:
                    raise _Failure(f"version {version} of '{display[lid]}' not found in {', '.join(sources.names)}")
                store.ensure(lid, version, feed.nupkg_url(lid, version),
                             functools.partial(feed.published_hash, lid, version), f"{display[lid]} {version}")
                spec = store.nuspec(lid, version)
                display[lid] = spec.id or display[lid]
                store.assemblies(lid, version)  # fail now if nothing loadable
            except (_Failure, FeedError) as err:
                where = f"{path[-1]} (via {' > '.join(path[:-1])}): " if len(path) > 1 else ""
                failures.setdefault(entry.index, []).append(f"{where}{err}")
                continue
            edges[lid] = []
            for dep_id, rng in spec.dependencies():
                dlid = dep_id.lower()
                display.setdefault(dlid, dep_id)
                edges[lid].append(dlid)
                if dlid in direct:
                    continue  # a package.json entry wins over any range below it
                ranges.setdefault(dlid, []).append(rng)
                if dlid in seen:
                    continue
                try:
                    v = chosen.get(dlid) or _lowest(dep_id, rng, sources)
                except (_Failure, FeedError) as err:
                    failures.setdefault(entry.index, []).append(
                        f"dependency '{dep_id}' {rng} (via {' > '.join(path)}): {err}")
                    continue
                queue.append((dlid, v, entry, path + [f"{display[dlid]} {v}"]))
        again: dict[str, NuGetVersion] = {}
        for dlid, rs in ranges.items():
            available = list(sources.versions(dlid))
            best = rs[0].lowest(available, *rs[1:])
            if best is None:  # no version satisfies every range: take the highest minimum, like NuGet's warning path
                best = max((low for r in rs if (low := r.lowest(available)) is not None), default=None)
            if best is not None:
                again[dlid] = best
        if failures or all(chosen.get(k) == v for k, v in again.items()) and set(again) <= set(chosen):
            break
        chosen = again
    else:
        raise PackageError("NuGets: dependency versions did not settle after "
                           f"{_MAX_ROUNDS} rounds: {', '.join(f'{k} {v}' for k, v in chosen.items())}")
    versions = {**{lid: v for lid, (e, v) in direct.items()}, **chosen}
    order: list[tuple[str, NuGetVersion]] = []
    done: set[str] = set()

    def visit(lid: str, stack: frozenset[str]) -> None:
        if lid in done or lid in stack or lid not in edges:
            return
        for child in edges[lid]:
            visit(child, stack | {lid})
        done.add(lid)
        order.append((lid, versions[lid]))

    for lid in direct:
        visit(lid, frozenset())
    return _Resolved(order, entry_of, display)


def _lowest(dep_id: str, rng: NuGetRange, sources: _Sources) -> NuGetVersion:
    available = list(sources.versions(dep_id))
    if not available:
        raise _Failure(f"package '{dep_id}' not found in {', '.join(sources.names)}")
    v = rng.lowest(available)
    if v is None:
        raise _Failure(f"no version in {rng} (available: {', '.join(str(x) for x in sorted(available)[-8:])})")
    return v


# -- install ----------------------------------------------------------------------------------------

def _lock_key(entries: list[_Entry], feeds: Sequence[str]) -> str:
    data = {"format": LOCK_FORMAT, "entries": [[e.id, e.version] for e in entries], "feeds": list(feeds),
            "frameworks": list(nuget_tfm.PREFERENCE)}
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def install_nugets(
    entries: Sequence[Mapping[str, Any]],
    workspace_dir: Path | str,
    feeds: Sequence[str] = DEFAULT_FEEDS,
    progress: Progress | None = None,
    *,
    downloader: Downloader | None = None,
) -> NuGetResult:
    """Install the workspace's NuGets with their dependencies; return the assemblies to reference.

    Raises `PackageError` naming every failed entry (unknown package, version not
    found, unreachable feed, hash mismatch, no loadable framework), with `.summary`.
    """
    root = nugets_dir(workspace_dir)
    parsed = _parse_entries(entries)
    key = _lock_key(parsed, feeds)
    lock_file = root / LOCK_NAME
    progress = or_null(progress)
    own = downloader is None
    dl = downloader or Downloader(progress=progress)
    try:
        store = _Store(root, dl)
        lock = read_lock(lock_file, LOCK_FORMAT)
        if lock is not None and lock.get("key") == key:
            return _from_lock(lock, parsed, store, lock_file)
        progress.start("NuGets: resolve")
        try:
            result = _install(parsed, feeds, store, lock_file)
        except BaseException:
            progress.done("NuGets: resolve", "failed")
            raise
        progress.done("NuGets: resolve", "installed")
        lock = {"format": LOCK_FORMAT, "key": key, "feeds": list(feeds), "entries": [e.label for e in parsed],
                "packages": [_lock_row(p, root) for p in result.packages]}
        atomic_write_text(lock_file, json.dumps(lock, indent=2) + "\n")
        return result
    finally:
        if own:
            dl.close()


def _install(entries: list[_Entry], feeds: Sequence[str], store: _Store, lock_file: Path) -> NuGetResult:
    failures: dict[int, list[str]] = {}
    sources = _Sources(feeds, store.dl)
    resolved = _resolve(entries, sources, store, failures)
    packages = []
    summary = InstallSummary()
    for e in entries:
        if e.index in failures:
            summary.add(InstallItem("nuget", e.id, e.version, "failed", error="; ".join(failures[e.index])))
    if failures:
        raise PackageError("\n".join(f"{entries[i].label}: {'; '.join(m)}" for i, m in sorted(failures.items())),
                           summary)
    for lid, version in resolved.order:
        spec = store.nuspec(lid, version)
        framework, dlls = store.assemblies(lid, version)
        feed = sources.versions(lid)[version]
        packages.append(NuGetPackage(
            id=resolved.display[lid], version=version.normalized, directory=store.directory(lid, version),
            framework=framework, assemblies=dlls, framework_assemblies=spec.gac_references(),
            sha512=store.verified_hash(lid, version) or "", source=feed.nupkg_url(lid, version),
            entry=entries[resolved.entry_of[lid]].label, status=store.status.get((lid, version), "cached")))
    for p in packages:
        summary.add(_item(p, entries, resolved.entry_of))
    return NuGetResult([a for p in packages for a in p.assemblies], packages, summary, lock_file, True)


def _item(p: NuGetPackage, entries: list[_Entry], entry_of: dict[str, int]) -> InstallItem:
    entry = entries[entry_of[p.id.lower()]] if p.id.lower() in entry_of else None
    direct = entry is not None and entry.id.lower() == p.id.lower()
    detail = f"lib/{p.framework}" if p.framework is not None else "no assemblies"
    if entry is not None and not direct:
        detail += f", for {entry.id}"
    return InstallItem("nuget", p.id, p.version, p.status, detail=detail, path=p.directory)


def _lock_row(p: NuGetPackage, root: Path) -> dict[str, Any]:
    return {"id": p.id, "version": p.version, "entry": p.entry, "sha512": p.sha512, "source": p.source,
            "framework": p.framework,
            "assemblies": [a.relative_to(root).as_posix() for a in p.assemblies],
            "framework_assemblies": p.framework_assemblies}




def _from_lock(lock: dict[str, Any], entries: list[_Entry], store: _Store, lock_file: Path) -> NuGetResult:
    """Reuse a lock: check each package's SHA-512; fetch again only one that is missing or damaged."""
    packages: list[NuGetPackage] = []
    summary = InstallSummary()
    errors = []
    for row in lock.get("packages", []):
        version = NuGetVersion(row["version"])
        label = f"{row['id']} {row['version']}"
        try:
            store.ensure(row["id"], version, row["source"], Digest.from_base64("sha512", row["sha512"]), label)
        except _Failure as err:
            errors.append(f"{row.get('entry') or 'NuGets'}: {label}: {err}")
            summary.add(InstallItem("nuget", row["id"], row["version"], "failed", error=str(err)))
            continue
        packages.append(NuGetPackage(
            id=row["id"], version=row["version"], directory=store.directory(row["id"], version),
            framework=row.get("framework"), assemblies=[store.root / a for a in row.get("assemblies", [])],
            framework_assemblies=list(row.get("framework_assemblies", [])), sha512=row["sha512"],
            source=row["source"], entry=row.get("entry", ""),
            status=store.status.get((row["id"].lower(), version), "cached")))
        summary.add(InstallItem("nuget", row["id"], row["version"], packages[-1].status,
                                detail=f"lib/{row.get('framework')}" if row.get("framework") is not None
                                else "no assemblies", path=packages[-1].directory))
    if errors:
        raise PackageError("\n".join(errors), summary)
    return NuGetResult([a for p in packages for a in p.assemblies], packages, summary, lock_file, False)
