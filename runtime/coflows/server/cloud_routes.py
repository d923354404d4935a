"""Cloud mode, the server's side of `coflows build cloud` and `coflows cloud log|restart|remove`.

    POST /flow/cloud/deploy?wid=W[&force=true]   body: a zip or tar(.gz) of the workspace
         admin (or Write on W with Server.DeployAccess "write"; admin to bring back a workflow
         `remove` unloaded); see `_deploy` for the steps
    GET  /flow/cloud/log?wid=W&lines=N            Write on W: its recent log lines (the live log's buffer)
    POST /flow/cloud/restart[?grace=S]            admin: the supervisor restarts the server process (the old
                                                  one may finish its calls for S seconds, 1…600, default 25)
    POST /flow/cloud/remove?wid=W[&purge=true]    admin: unload W from the running server

Who may deploy: admins, and with `Server.DeployAccess: "write"` also users (a key or a login,
never anonymous, even where Public has Write) with Write on the workflow. Admin is the default
because a deploy runs the uploaded code with the server's rights (as a notebook does, and /lab is
the admins'): whoever may deploy may read what the server process can. The server's config, the
database, `.coflows/` (the admin key) and the package caches never come from an archive
(`workspace/archive.py`), so a deploy cannot replace them directly.

Bounds per request: the body is streamed to a file (never held in memory) up to
`Server.MaxDeployBytes` (413 past it), unpacks to at most 4 × that and `archive.MAX_FILES`
entries, and one deploy runs at a time (409 while another runs). The check runs the new
sources in a separate process (`coflows cloud check`, the same report as `build local`),
so a module that misbehaves at import cannot touch the serving process; it is stopped after
`CHECK_TIMEOUT` seconds.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
from starlette.background import BackgroundTask
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from coflows.errors import ArgumentError, CoflowsError, ManifestError, NotFoundError, PermissionDenied, Unauthenticated
from coflows.permissions import WRITE, Principal, require
from coflows.server.auth import principal_of
from coflows.server.limits import BodyLimitMiddleware, int_param, text_param
from coflows.server.responses import error_response, json_response
from coflows.supervisor import STATUS_FD_ENV, STOP_GRACE
from coflows.workspace.archive import CACHES, FOLDERS, ArchiveError, ArchiveTooLarge, allowed, unpack

if TYPE_CHECKING:
    from coflows.runtime import Runtime
    from coflows.workflow import Workflow

log = logging.getLogger("coflows.cloud")
user_log = logging.getLogger("coflows.user")  # lines here reach the workflow's live log (server/logs.py)

DEPLOY_PATH = "/flow/cloud/deploy"
CHECK_TIMEOUT = 900.0  # seconds the scratch check may take (CoFlows' deploy timeout was 15 minutes)
UNPACK_FACTOR = 4  # an archive unpacks to at most this × Server.MaxDeployBytes
LOG_LINES = 100
_NO_STORE = {"Cache-Control": "no-store"}


class DeployRefused(CoflowsError):
    """The new sources do not build (409, with the build report); `force=true` deploys them anyway."""

    http_status = 409

    def __init__(self, message: str, report: dict[str, Any]) -> None:
        super().__init__(message)
        self.report = report


class Busy(CoflowsError):
    http_status = 409


class Unsupervised(CoflowsError):
    http_status = 409


class BadManifest(CoflowsError):
    http_status = 400


class BodyLimits:
    """`BodyLimitMiddleware` for every route but the deploy, which bounds its body itself (MaxDeployBytes)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.limited = BodyLimitMiddleware(app, max_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == DEPLOY_PATH and scope["method"] == "POST":
            await self.app(scope, receive, send)
        else:
            await self.limited(scope, receive, send)


def _flag(params: Any, name: str) -> bool:
    raw = (params.get(name) or "").lower()
    if raw in ("", "false", "0", "no"):
        return False
    if raw in ("true", "1", "yes"):
        return True
    raise ArgumentError(f"query parameter '{name}': true or false", name)


def _admin(principal: Principal, what: str) -> None:
    if principal.is_admin:
        return
    if principal.is_anonymous:
        raise Unauthenticated(f"{what}: an API key is required")
    raise PermissionDenied(f"{what} is for admins (the admin key or an admin user)")


def _wid(params: Any) -> str:
    wid = text_param(params, "wid", 200)
    if not wid:
        raise ArgumentError("query parameter 'wid': the workflow's ID is required", "wid")
    return wid


class CloudRoutes:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._deploying = threading.Lock()
        self.removed: dict[str, Path] = {}  # workflow ID → its package.json, for a deploy that brings it back

    # -- deploy -----------------------------------------------------------------------------------
    async def deploy(self, request: Request) -> Response:
        principal = principal_of(request.scope)
        limit = self.runtime.config.server.max_deploy_bytes
        try:
            wid = _wid(request.query_params)
            force = _flag(request.query_params, "force")
            wf, manifest_path = self._target(wid, principal)
            declared = request.headers.get("content-length")
            if declared is not None and declared.isdigit() and int(declared) > limit:
                raise ArchiveTooLarge(f"request body of {declared} bytes, more than {limit} (Server.MaxDeployBytes)")
            if not self._deploying.acquire(blocking=False):
                raise Busy("another deploy is running on this server; try again when it is done")
        except Exception as exc:  # noqa: BLE001
            return self._error(exc, principal, close=True)
        stage = manifest_path.parent / ".coflows" / "deploy" / secrets.token_hex(8)
        try:
            stage.mkdir(parents=True, mode=0o700)
            archive = stage / "upload"
            await self._receive(request, archive, limit)
            who = principal.name or principal.id
            result = await anyio.to_thread.run_sync(self._deploy, wid, wf, manifest_path, archive, stage, force, who)
            response = json_response(result)
            response.headers.update(_NO_STORE)
            return response
        except ClientDisconnect:
            return Response(status_code=400)
        except Exception as exc:  # noqa: BLE001
            return self._error(exc, principal, close=True)
        finally:
            shutil.rmtree(stage, ignore_errors=True)
            self._deploying.release()

    def _target(self, wid: str, principal: Principal) -> tuple[Workflow | None, Path]:
        """The loaded workflow `wid` (Write needed), or one `remove` unloaded (admin needed)."""
        try:
            wf = self.runtime.registry.workflow(wid)
        except NotFoundError:
            path = self.removed.get(wid)
            if path is None:
                raise NotFoundError(f"unknown workflow '{wid}' (a deploy replaces a workflow this server serves)") from None
            _admin(principal, "bringing back a removed workflow")
            return None, path
        if self.runtime.config.server.deploy_access != "write":
            _admin(principal, "a deploy (Server.DeployAccess: admin)")
        elif principal.is_anonymous:
            raise Unauthenticated("a deploy: an API key or a login is required")
        else:
            require(wf, principal, WRITE, "a deploy")
        if wf.id != wid:
            raise ArgumentError(f"query parameter 'wid': give the workflow's ID ('{wf.id}'), not its name", "wid")
        return wf, wf.manifest_path

    @staticmethod
    async def _receive(request: Request, target: Path, limit: int) -> None:
        """Stream the body to `target`, 413 once it passes `limit` (chunked bodies too)."""
        received = 0
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            async for chunk in request.stream():
                received += len(chunk)
                if received > limit:
                    raise ArchiveTooLarge(f"request body larger than {limit} bytes (Server.MaxDeployBytes)")
                f.write(chunk)
        if received == 0:
            raise ArchiveError("request body: empty; send the workspace as a zip or tar.gz (coflows build cloud)")

    def _deploy(self, wid: str, wf: Workflow | None, manifest_path: Path, archive: Path, stage: Path, force: bool,
                who: str) -> dict[str, Any]:
        """Unpack, check in a scratch process, swap the files in, hot-reload. Runs on a worker thread."""
        from coflows.workspace.manifest import load_manifest

        live = manifest_path.parent
        ws = stage / "ws"
        ws.mkdir()
        files = unpack(archive, ws, max_bytes=UNPACK_FACTOR * self.runtime.config.server.max_deploy_bytes)
        archive.unlink()
        if "package.json" not in files:
            raise ArchiveError("archive: no package.json at its top level")
        try:
            manifest = load_manifest(ws / "package.json")
        except ManifestError as e:
            raise BadManifest(str(e).replace(str(ws), "<archive>")) from None
        if manifest.ID != wid:
            raise BadManifest(f"<archive>/package.json: ID: '{manifest.ID}' does not match the workflow being "
                              f"replaced ('{wid}')")
        self._share_caches(live, ws)
        report = self._check(stage, ws)
        if report["exit"] != 0 and not force:
            raise DeployRefused(f"the new sources do not build ({len(report['errors'])} error(s)); the running "
                                "workflow is unchanged (deploy anyway with --force)", report)
        moved = self._swap(ws, live)
        wf = self._reload(wid, wf, manifest_path, moved)
        forced = " (forced, with errors)" if report["exit"] != 0 else ""
        user_log.info("[%s] %s", f"{wf.name}/cloud", f"deployed by {who}{forced}: {len(files)} files")
        log.info("%s: deployed by %s%s: %d files", wf.name, who, forced, len(files))
        return {"workflow": wf.id, "name": wf.name, "deployed": True, "forced": bool(forced), "files": len(files),
                "report": report, "status": wf.status()}

    @staticmethod
    def _share_caches(live: Path, ws: Path) -> None:
        """The scratch build sees the installed packages (a lock that is current installs nothing)."""
        from coflows.packages.pip import LOCK_NAME as PIP_LOCK  # here: the installer imports httpx

        for name in CACHES:
            if (live / name).is_dir():
                os.symlink(live / name, ws / name, target_is_directory=True)
        if (live / PIP_LOCK).is_file():
            shutil.copy2(live / PIP_LOCK, ws / PIP_LOCK)

    def _check(self, stage: Path, ws: Path) -> dict[str, Any]:
        """`coflows cloud check` on the staged workspace, in its own process: the build report."""
        cfg = self.runtime.config
        config = {"Database": {"Type": "sqlite", "Connection": str(stage / "scratch.db")},
                  "Workflow": str(ws / "package.json"),
                  "Packages": cfg.packages.model_dump(mode="json", by_alias=True),
                  "Engines": cfg.engines.model_dump(mode="json", by_alias=True),
                  "Server": {"SecretKey": secrets.token_hex(16)}}
        path = stage / "scratch_config.json"
        path.write_text(json.dumps(config))
        env = {k: v for k, v in os.environ.items() if k not in (STATUS_FD_ENV, "COFLOWS_SECRET_KEY")}
        try:
            proc = subprocess.run([sys.executable, "-m", "coflows", "cloud", "check", str(path)], cwd=stage,
                                  capture_output=True, timeout=CHECK_TIMEOUT, env=env, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise DeployRefused(f"the build check did not finish within {CHECK_TIMEOUT:.0f} s",
                                {"exit": 1, "errors": ["build check: timed out"]}) from None
        try:
            report = json.loads(proc.stdout.decode("utf-8", "replace").strip().splitlines()[-1])
        except (ValueError, IndexError):
            tail = proc.stderr.decode("utf-8", "replace").strip().splitlines()[-5:]
            report = {"exit": 1, "errors": [f"build check failed (exit code {proc.returncode}): " + " | ".join(tail)],
                      "queries": [], "agents": [], "warnings": [], "packages": []}
        return _relative(report, ws)

    @staticmethod
    def _swap(ws: Path, live: Path) -> list[Path]:
        """Move the deployed folders and files into the workflow folder, each by one rename.

        The previous ones go to the stage (removed with it). A cache the scratch build installed
        afresh (a real folder, not our link) replaces the live one.
        """
        from coflows.packages.pip import LOCK_NAME as PIP_LOCK  # here: the installer imports httpx

        old = ws.parent / "old"
        old.mkdir()
        names = [p.name for p in ws.iterdir() if allowed_top(p)]
        names += [c for c in CACHES if (ws / c).is_dir() and not (ws / c).is_symlink()]
        if "pip" in names and (ws / PIP_LOCK).is_file():
            names.append(PIP_LOCK)  # the lock of the pip folder installed afresh
        moved: list[Path] = []
        # package.json last: the watcher rereads it once every file it names is in place
        for name in sorted(names, key=lambda n: n == "package.json"):
            if (live / name).exists() or (live / name).is_symlink():
                os.replace(live / name, old / name)
            os.replace(ws / name, live / name)
            moved.append(live / name)
        for name in FOLDERS:  # a folder the new version no longer has
            if not (ws / name).exists() and (live / name).is_dir() and live / name not in moved:
                os.replace(live / name, old / name)
                moved.append(live / name)
        return moved

    def _reload(self, wid: str, wf: Workflow | None, manifest_path: Path, moved: list[Path]) -> Workflow:
        """Bring the running workflow in line now (the watcher would, a moment later)."""
        from coflows.workflow import open_workflow

        paths = {p for m in moved for p in ([m] if m.is_file() else m.rglob("*"))} | set(moved)
        if wf is None:  # brought back after `remove`
            wf = open_workflow(manifest_path, self.runtime.engines)
            wf.collect_sources()
            self.runtime.engines.plan(wf.languages())
            self.runtime.problems[wf.id] = self.runtime.load_workflow(wf)
            self.removed.pop(wid, None)
            if self.runtime.watcher is not None:
                self.runtime.watcher.sync_agents(wf)
            return wf
        if self.runtime.watcher is not None:
            self.runtime.watcher.reload(wf, paths)
        else:
            from coflows.workspace.manifest import load_manifest

            wf.sync(load_manifest(wf.manifest_path))
            self.runtime.registry.changed(wf)
        return wf

    # -- log, restart, remove -------------------------------------------------------------------
    async def log_lines(self, request: Request) -> Response:
        principal = principal_of(request.scope)
        try:
            wf = self.runtime.registry.workflow(_wid(request.query_params))
            require(wf, principal, WRITE, "its cloud log")
            lines = int_param(request.query_params, "lines", LOG_LINES, minimum=1, maximum=1000)
        except Exception as exc:  # noqa: BLE001
            return self._error(exc, principal)
        logs = getattr(self.runtime, "logs", None)
        events = logs.recent(wf.id, lines) if logs is not None else []
        return Response(json.dumps({"workflow": wf.id, "name": wf.name, "lines": events}, ensure_ascii=False),
                        media_type="application/json", headers=_NO_STORE)

    async def restart(self, request: Request) -> Response:
        principal = principal_of(request.scope)
        try:
            _admin(principal, "restarting the server")
            grace = int_param(request.query_params, "grace", int(STOP_GRACE), minimum=1, maximum=600)
            fd = os.environ.get(STATUS_FD_ENV, "")
            if not fd.isdigit():
                raise Unsupervised("this server runs without a supervisor (--no-supervisor): restart it yourself")
        except Exception as exc:  # noqa: BLE001
            return self._error(exc, principal)
        log.warning("restart asked for by %s: draining, then the supervisor starts a new server process",
                    principal.name or principal.id)

        def ask() -> None:
            self.runtime.draining = True  # new calls get 503 + Retry-After while this process stops
            try:
                os.write(int(fd), f"restart {grace}\n".encode())
            except OSError:
                log.exception("cannot reach the supervisor")

        body = json.dumps({"restarting": True, "pid": os.getpid()})
        return Response(body, 202, media_type="application/json", headers=_NO_STORE, background=BackgroundTask(ask))

    async def remove(self, request: Request) -> Response:
        principal = principal_of(request.scope)
        try:
            _admin(principal, "removing a workflow")
            wid = _wid(request.query_params)
            purge = _flag(request.query_params, "purge")
            wf = self.runtime.registry.workflow(wid)
            if wf.id != wid:
                raise ArgumentError(f"query parameter 'wid': give the workflow's ID ('{wf.id}'), not its name", "wid")
            await anyio.to_thread.run_sync(self._remove, wf, purge)
        except Exception as exc:  # noqa: BLE001
            return self._error(exc, principal)
        return Response(json.dumps({"removed": wf.id, "name": wf.name, "purged": purge}),
                        media_type="application/json", headers=_NO_STORE)

    def _remove(self, wf: Workflow, purge: bool) -> None:
        """Stop its agents, take it out of the registry (its calls 404), unload its queries later."""
        wf.agent_sources = []
        if self.runtime.agents is not None:
            self.runtime.agents.sync(wf)
        self.runtime.registry.remove(wf.id)
        self.removed[wf.id] = wf.manifest_path
        if self.runtime.watcher is not None:
            self.runtime.watcher._unload_later(wf, list(wf.queries.values()))  # noqa: SLF001 - same grace
        if purge:
            from coflows.workspace.manifest import load_manifest, save_manifest

            for name in FOLDERS:
                shutil.rmtree(wf.root / name, ignore_errors=True)
            manifest = load_manifest(wf.manifest_path)
            manifest.Base, manifest.Queries, manifest.Agents, manifest.Files, manifest.Bins = [], [], [], [], []
            save_manifest(wf.manifest_path, manifest)
        log.warning("workflow %s (%s) removed from the running server%s", wf.name, wf.id,
                    "; its sources were deleted (purge)" if purge else "; its files stay")

    @staticmethod
    def _error(exc: BaseException, principal: Principal, close: bool = False) -> Response:
        if isinstance(exc, DeployRefused):
            body = {"error": {"type": "DeployRefused", "message": str(exc)}, "report": exc.report}
            return Response(json.dumps(body), 409, media_type="application/json", headers=_NO_STORE)
        response = error_response(exc, principal)
        response.headers.update(_NO_STORE)
        if close:
            response.headers["Connection"] = "close"  # an unread body must not be taken for the next request
        return response


def allowed_top(p: Path) -> bool:
    """A top-level item of the staged workspace that is deployed (not the scratch build's leftovers)."""
    from pathlib import PurePosixPath

    if p.name in FOLDERS:
        return p.is_dir() and not p.is_symlink()
    return p.is_file() and not p.is_symlink() and allowed(PurePosixPath(p.name))


def _relative(report: dict[str, Any], ws: Path) -> dict[str, Any]:
    """The report with the staging folder's path taken out of every message."""
    text = json.dumps(report).replace(str(ws) + "/", "").replace(str(ws), "<workspace>")
    return json.loads(text)


def install(runtime: Runtime) -> list[BaseRoute]:
    """The cloud routes (the body limit of the deploy route is `BodyLimits`, installed by the app)."""
    routes = CloudRoutes(runtime)
    runtime.cloud = routes  # type: ignore[attr-defined]
    return [Route(DEPLOY_PATH, routes.deploy, methods=["POST"]),
            Route("/flow/cloud/log", routes.log_lines, methods=["GET"]),
            Route("/flow/cloud/restart", routes.restart, methods=["POST"]),
            Route("/flow/cloud/remove", routes.remove, methods=["POST"])]
