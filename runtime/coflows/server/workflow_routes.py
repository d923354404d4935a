"""What the web app's workflow and query pages read: one workflow in full, one query's source.

- `GET /flow/workflows/{wid}` (View): name, README, queries with their errors (file, line,
  column), agents, declared flows, the files package.json names (with sizes), packages and their
  install state, problems; the fixed permissions only for callers with Write (they name people).
- `GET /flow/source/{wid}/{qid}` (Read): a query file's text, language, compile errors and its
  functions' `<permissions>`.

Why a route of its own and not `/flow/workflows`: that list is every visible workflow's short
status; this is one workflow's page. Bounds: the README and a source are read up to a cap (the
answer says when it was cut), the file list holds at most MAX_FILES entries; nothing outside the
workflow's folder is read or named, nor hidden files, databases and configuration.
"""

from __future__ import annotations

import asyncio
from pathlib import Path, PurePosixPath
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from coflows.apps.detect import app_path, run_function
from coflows.errors import NotFoundError, SourceError
from coflows.permissions import READ, VIEW, WRITE, require, workflow_level
from coflows.runtime import Runtime
from coflows.server.auth import principal_of
from coflows.server.responses import error_response, json_response
from coflows.workflow import Query, Workflow

README_CAP = 256 * 1024
SOURCE_CAP = 1024 * 1024
MAX_FILES = 1000
_README_NAMES = ("README.md", "Readme.md", "readme.md", "README.MD", "README")
# never listed: databases, configuration and key material, even when package.json names them
_HIDDEN_SUFFIXES = (".db", ".sqlite", ".sqlite3", ".db-wal", ".db-shm", ".db-journal", ".pem", ".key", ".env")
_HIDDEN_NAMES = {"coflows_config.json", ".env", "secrets.json"}


def inside(root: Path, path: Path) -> Path | None:
    """`path` resolved, when it is a file inside `root` and not hidden, a database or a secret."""
    try:
        resolved = path.resolve()
        rel = resolved.relative_to(root.resolve())
    except (OSError, ValueError):
        return None
    name = resolved.name.lower()
    if any(part.startswith(".") for part in rel.parts) or name in _HIDDEN_NAMES or name.endswith(_HIDDEN_SUFFIXES):
        return None
    return resolved if resolved.is_file() else None


def read_capped(path: Path, cap: int) -> tuple[str, bool, int]:
    """(text, truncated, size): at most `cap` bytes, decoded leniently (a cut may split a character)."""
    size = path.stat().st_size
    with path.open("rb") as f:
        data = f.read(cap)
    return data.decode("utf-8", "replace"), size > cap, size


def source_error(e: SourceError) -> dict[str, Any]:
    return {"file": e.file, "line": e.line, "column": e.column, "message": e.message}


def query_errors(q: Query) -> list[dict[str, Any]]:
    return [source_error(e) for e in q.error.errors] if q.error else []


def _readme(wf: Workflow) -> dict[str, Any] | None:
    """package.json `ReadMe` (a file in the folder, or the text itself), else README.md."""
    own = wf.manifest.ReadMe or ""
    names = [own] if own and "\n" not in own and len(own) < 1000 else []
    for name in [*names, *_README_NAMES]:
        path = inside(wf.root, wf.root / name)
        if path is not None:
            text, truncated, size = read_capped(path, README_CAP)
            return {"file": path.relative_to(wf.root.resolve()).as_posix(), "text": text,
                    "truncated": truncated, "size": size}
    if "\n" in own:
        return {"file": "package.json", "text": own[:README_CAP], "truncated": len(own) > README_CAP, "size": len(own)}
    return None


def _files(wf: Workflow) -> dict[str, Any]:
    m = wf.manifest
    items: list[dict[str, Any]] = []
    seen: set[str] = set()
    truncated = False
    root = wf.root.resolve()
    for kind, entries in (("Base", m.Base), ("Queries", m.Queries), ("Agents", m.Agents), ("Files", m.Files),
                          ("Bins", m.Bins)):
        for e in entries:
            path = inside(root, root / e.Content)
            if path is None:
                continue
            rel = path.relative_to(root).as_posix()
            if rel in seen:
                continue
            if len(items) >= MAX_FILES:
                truncated = True
                break
            seen.add(rel)
            items.append({"kind": kind, "name": e.Name, "path": rel, "size": path.stat().st_size})
    return {"items": items, "truncated": truncated}


def _packages(wf: Workflow) -> dict[str, Any]:
    m = wf.manifest
    return {"state": wf.packages_state or "",
            "pips": [p.ID for p in m.Pips],
            "jars": [{k: v for k, v in (("id", j.ID), ("version", j.Version), ("url", j.Url)) if v} for j in m.Jars],
            "nugets": [{"id": n.ID, "version": n.Version} for n in m.NuGets]}


def workflow_view(wf: Workflow, level: int, admin: bool) -> dict[str, Any]:
    """The workflow page's data for a caller at `level` (permissions only with Write)."""
    relroot = wf.root.resolve()
    queries = []
    for q in wf.queries.values():
        try:
            file = q.source.path.relative_to(relroot).as_posix()
        except ValueError:
            file = q.source.path.name
        queries.append({"id": q.id, "file": file, "language": q.language, "functions": sorted(q.functions),
                        "errors": query_errors(q), "stale": q.error is not None and q.loaded is not None,
                        "app": app_path(wf.id, q.id) if run_function(q) is not None else None})  # docs/dash.md
    agents = [{"name": s.name, "file": s.path.name, "exe": s.exe} for s in wf.agent_sources]
    view: dict[str, Any] = {
        "id": wf.id, "name": wf.name, "level": level, "readme": _readme(wf), "queries": queries, "agents": agents,
        "flows": [{"name": f.Name, "spec": f.Spec if isinstance(f.Spec, str) else None, "content": f.Content}
                  for f in wf.manifest.Flows],
        "files": _files(wf), "packages": _packages(wf), "problems": list(wf.problems),
        "base_errors": [source_error(e) for e in wf.base_errors],
        "permissions": None,
    }
    if admin or level >= WRITE:
        view["permissions"] = [{"id": p.ID, "level": p.Permission} for p in wf.manifest.Permissions]
    return view


def query_source(wf: Workflow, q: Query) -> dict[str, Any]:
    """One query's text (capped), language, errors and functions (with their `<permissions>`)."""
    path = inside(wf.root, q.source.path)
    if path is None:
        raise NotFoundError(f"query '{q.id}': its file is not inside the workflow's folder")
    text, truncated, size = read_capped(path, SOURCE_CAP)
    functions = []
    for name, fn in sorted(q.functions.items()):
        perms = fn.docs.permissions
        functions.append({"name": name, "description": fn.docs.description,
                          "params": [{"name": p.name, "type": p.type.label, "required": p.required}
                                     for p in fn.params],
                          "permissions": None if perms is None else [{"group": g.group, "level": g.level}
                                                                     for g in perms]})
    return {"workflow": wf.id, "id": q.id, "file": path.relative_to(wf.root.resolve()).as_posix(),
            "language": q.language, "text": text, "truncated": truncated, "size": size,
            "errors": query_errors(q), "stale": q.error is not None and q.loaded is not None,
            "base_errors": [source_error(e) for e in wf.base_errors], "functions": functions}


class WorkflowRoutes:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def _view(self, request: Request) -> dict[str, Any]:
        principal = principal_of(request.scope)
        wf = self.runtime.registry.workflow(request.path_params["wid"])
        require(wf, principal, VIEW, "its page")
        return workflow_view(wf, workflow_level(wf, principal), principal.is_admin)

    def _source(self, request: Request) -> dict[str, Any]:
        principal = principal_of(request.scope)
        wf = self.runtime.registry.workflow(request.path_params["wid"])
        require(wf, principal, READ, "a query's source")
        qid = request.path_params["qid"]
        if PurePosixPath(qid).is_absolute() or ".." in PurePosixPath(qid).parts:
            raise NotFoundError(f"unknown query '{qid}' in workflow '{wf.name}'")
        # what is loaded: reading a page never loads user code (the workspace watcher reloads edits)
        q = self.runtime.registry.query(wf, qid, refresh=False)
        return query_source(wf, q)

    async def workflow(self, request: Request) -> Response:
        try:
            return json_response(await asyncio.to_thread(self._view, request))
        except Exception as exc:  # noqa: BLE001
            return error_response(exc, principal_of(request.scope))

    async def source(self, request: Request) -> Response:
        try:
            return json_response(await asyncio.to_thread(self._source, request))
        except Exception as exc:  # noqa: BLE001
            return error_response(exc, principal_of(request.scope))


def workflow_routes(runtime: Runtime) -> list[BaseRoute]:
    r = WorkflowRoutes(runtime)
    return [Route("/flow/workflows/{wid}", r.workflow), Route("/flow/source/{wid}/{qid:path}", r.source)]
