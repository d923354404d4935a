"""`coflows add …`: edit package.json as CoFlows' `add.sh` did (pip, jar, nuget, query, agent, dash)."""

from __future__ import annotations

import re
from pathlib import Path

from coflows.errors import ManifestError
from coflows.workspace.manifest import AgentEntry, JarEntry, Manifest, NuGetEntry, PipEntry, QueryEntry
from coflows.workspace.templates import AGENTS, DASH, DASH_PIP, LANGUAGES, QUERIES

_PIP_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
_MAVEN = re.compile(r"^([\w.\-]+):([\w.\-]+):([\w.\-]+)$")


def _pip_name(spec: str) -> str:
    m = _PIP_NAME.match(spec)
    if not m:
        raise ManifestError(f"Pips: {spec!r} is not a pip requirement")
    return re.sub(r"[-_.]+", "-", m.group(1)).lower()


def add_pip(manifest: Manifest, spec: str) -> str:
    """Add or replace (same project name) a pip requirement."""
    name = _pip_name(spec)
    for entry in manifest.Pips:
        if _pip_name(entry.ID) == name:
            entry.ID = spec
            return f"Pips: replaced {name} with {spec}"
    manifest.Pips.append(PipEntry(ID=spec))
    return f"Pips: added {spec}"


def add_nuget(manifest: Manifest, package_id: str, version: str) -> str:
    for entry in manifest.NuGets:
        if entry.ID.lower() == package_id.lower():
            entry.Version = version
            return f"NuGets: {package_id} set to {version}"
    manifest.NuGets.append(NuGetEntry(ID=package_id, Version=version))
    return f"NuGets: added {package_id} {version}"


def add_jar(manifest: Manifest, what: str) -> str:
    """A URL (CoFlows) or Maven coordinates `group:artifact:version`."""
    m = _MAVEN.match(what)
    if m:
        group_artifact, version = f"{m.group(1)}:{m.group(2)}", m.group(3)
        for entry in manifest.Jars:
            if entry.ID == group_artifact:
                entry.Version = version
                return f"Jars: {group_artifact} set to {version}"
        manifest.Jars.append(JarEntry(ID=group_artifact, Version=version))
        return f"Jars: added {group_artifact}:{version}"
    if not re.match(r"^(https?|file)://", what):
        raise ManifestError(f"Jars: {what!r} is neither a URL nor group:artifact:version")
    if any(entry.Url == what for entry in manifest.Jars):
        return f"Jars: {what} already listed"
    manifest.Jars.append(JarEntry(Url=what))
    return f"Jars: added {what}"


def _language(kind: str, language: str) -> str:
    lang = LANGUAGES.get(language.lower())
    if lang is None:
        raise ManifestError(f"add {kind}: unknown language {language!r} (py, cs, java, js)")
    return lang


def add_query(manifest: Manifest, root: Path, language: str, name: str) -> str:
    """Create `Queries/<name>.<lang>` from a template (class name XXX → name) and list it."""
    lang = _language("query", language)
    file_name = f"{name}.{lang}"
    path = root / "Queries" / file_name
    if path.exists():
        raise ManifestError(f"add query: {path} already exists")
    if any((q.ID or q.Name) == file_name for q in manifest.Queries):
        raise ManifestError(f"add query: a query with ID '{file_name}' is already listed in package.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(QUERIES[lang].replace("XXX", name))
    manifest.Queries.append(QueryEntry(Name=file_name, Content=f"Queries/{file_name}", ID=file_name))
    return f"Queries: added {file_name}"


def add_agent(manifest: Manifest, root: Path, name: str, language: str = "py") -> str:
    """Create `Agents/<name>.<lang>` from a template (ID `$WID$-<name>`, topic `<name>`) and list it."""
    lang = _language("agent", language)
    file_name = f"{name}.{lang}"
    path = root / "Agents" / file_name
    if path.exists():
        raise ManifestError(f"add agent: {path} already exists")
    if any(a.Name == file_name for a in manifest.Agents):
        raise ManifestError(f"add agent: an agent named '{file_name}' is already listed in package.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(AGENTS[lang].replace("XXX", name))
    manifest.Agents.append(AgentEntry(Name=file_name, Content=f"Agents/{file_name}", Exe="pkg"))
    return f"Agents: added {file_name}"


def add_dash(manifest: Manifest, root: Path, name: str) -> str:
    """Create `Queries/<name>.py` from the Dash template, list it, and add `dash` to Pips (unless listed)."""
    file_name = f"{name}.py"
    path = root / "Queries" / file_name
    if path.exists():
        raise ManifestError(f"add dash: {path} already exists")
    if any((q.ID or q.Name) == file_name for q in manifest.Queries):
        raise ManifestError(f"add dash: a query with ID '{file_name}' is already listed in package.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(DASH.replace("XXX", name))
    manifest.Queries.append(QueryEntry(Name=file_name, Content=f"Queries/{file_name}", ID=file_name))
    said = [f"Queries: added {file_name} (served at /dash/{manifest.ID or '<workflow ID>'}/{file_name}/)"]
    if not any(_pip_name(p.ID) == "dash" for p in manifest.Pips):
        said.append(add_pip(manifest, DASH_PIP))
    return "; ".join(said)
