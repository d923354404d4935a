"""Cloud mode on the command line: `coflows build cloud` and `coflows cloud log|restart|remove`.

CoFlows' `build.sh cloud` / `cloud_deploy.sh`, `cloud_log.sh`, `cloud_restart.sh` and
`cloud_remove.sh`, against the server named in the config's `Cloud` section (`Host`,
`SecretKey`, `SSL`): see docs/cloud.md. Exit codes as `build local`: 0 built and deployed,
1 a source that does not compile (nothing deployed without `--force`) or the server cannot be
reached, 2 a mistake of the caller (config, manifest, a refused archive, no permission).

`coflows cloud check CONFIG` (hidden) is what the server runs on an uploaded workspace before
it deploys it: the checks of `build local`, printed as one JSON line (`build_report`).
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from typing import Annotated, Any, Optional

import typer
from rich.table import Table

from coflows.errors import ConfigError, ManifestError
from coflows.packages.progress import NULL_PROGRESS

cloud_app = typer.Typer(help="The server named in the config's Cloud section (CoFlows' cloud_*.sh).",
                        no_args_is_help=True)

UPLOAD_TIMEOUT = 900.0  # seconds: CoFlows' deploy timeout (15 minutes), for the upload and the server's check
CHUNK = 256 * 1024


def _cli():  # noqa: ANN202 - coflows.cli, imported late (it imports this module)
    from coflows import cli

    return cli


# -- the build report (shared by `cloud check` and the printer) -------------------------------------

def build_report(config_file: str) -> dict[str, Any]:
    """What `build local` checks, as data: queries, agents, packages, errors (`file:line: message`) and the exit code."""
    from coflows.agents.check import check_agents
    from coflows.runtime import Runtime
    from coflows.workspace.build import build_workspaces
    from coflows.config import load_config

    report: dict[str, Any] = {"exit": 0, "added": [], "queries": [], "agents": [], "packages": [], "errors": [],
                              "warnings": []}
    try:
        cfg = load_config(config_file)
        for path, scan in build_workspaces(cfg):
            report["added"] += scan.added
        runtime = Runtime(cfg, with_database=False)
        runtime.package_progress = NULL_PROGRESS  # the check's stdout is its JSON report
        problems = runtime.load()
    except (ConfigError, ManifestError) as e:
        report.update(exit=2, errors=[str(e)])
        return report
    agents = check_agents(runtime.registry.workflows())
    report["packages"] = [list(row) for r in runtime.package_reports.values() for row in r.rows]
    for wf in runtime.registry.workflows():
        for q in wf.queries.values():
            report["queries"].append({"workflow": wf.name, "query": q.id, "language": q.language or "?",
                                      "functions": sorted(q.functions), "ok": q.error is None})
    for a in agents:
        d = a.definition
        report["agents"].append({"workflow": a.wf.name, "agent": a.src.name, "id": d.id if d else "?",
                                 "schedule": (d.schedule or "") if d else "", "topic": (d.topic or "") if d else "",
                                 "ok": a.error is None})
    for items in problems.values():
        for item in items:
            (report["warnings"] if item.startswith("warning: ") else report["errors"]).append(item)
    agent_errors = [a.error for a in agents if a.error]
    report["errors"] += agent_errors
    runtime.close()
    report["exit"] = 2 if agent_errors else 1 if report["errors"] else 0
    return report


def print_report(report: dict[str, Any]) -> None:
    """The report as `build local` prints it: tables, then every error as `file:line: message`."""
    cli = _cli()
    out, console = cli.out, cli.console
    for added in report.get("added", []):
        out.print(f"added {added}", highlight=False)
    rows = report.get("packages") or []
    if rows:
        table = Table(title="packages")
        for col in ("kind", "name", "version", "status", "detail"):
            table.add_column(col)
        for row in rows:
            table.add_row(*[str(c) for c in row])
        out.print(table)
    table = Table(title="build")
    for col in ("workflow", "query", "language", "functions", "status"):
        table.add_column(col)
    for q in report.get("queries", []):
        table.add_row(q["workflow"], q["query"], q["language"], str(len(q["functions"])),
                      "[green]ok[/]" if q["ok"] else "[red]error[/]")
    out.print(table)
    if report.get("agents"):
        table = Table(title="agents")
        for col in ("workflow", "agent", "ID", "schedule", "topic", "status"):
            table.add_column(col, overflow="fold")
        for a in report["agents"]:
            table.add_row(a["workflow"], a["agent"], a["id"], a["schedule"], a["topic"],
                          "[green]ok[/]" if a["ok"] else "[red]error[/]")
        out.print(table)
    for w in report.get("warnings", []):
        console.print(f"[yellow]{w}[/]", highlight=False)
    for e in report.get("errors", []):
        console.print(e, highlight=False, markup=False)


@cloud_app.command("check", hidden=True)
def check(config_file: Annotated[str, typer.Argument(help="config file of the staged workspace")]) -> None:
    """(the server's deploy) Build the workspace and print the report as one JSON line."""
    logging.basicConfig(level=logging.ERROR, stream=sys.stderr)
    report = build_report(config_file)
    sys.stdout.write("\n" + json.dumps(report) + "\n")
    sys.stdout.flush()


# -- build cloud --------------------------------------------------------------------------------

def build_cloud(
    config_file: Annotated[Optional[str], typer.Argument(help="config file")] = None,
    config: Annotated[Optional[str], typer.Option("--config", "-c", help="config file")] = None,
    force: Annotated[bool, typer.Option("--force", help="deploy even when the new sources do not compile")] = False,
    timeout: Annotated[float, typer.Option(help="seconds for the upload and the server's check")] = UPLOAD_TIMEOUT,
) -> None:
    """Pack the workspace, upload it to the server in `Cloud`, which checks, installs and hot-deploys it.

    The server answers with the same build report as `build local`; a source that does not
    compile leaves the running workflow as it is (exit 1) unless `--force`.
    """
    import httpx
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    from coflows.workspace.archive import ArchiveError, ArchiveTooLarge, pack
    from coflows.workspace.build import build_workspaces
    from coflows.workspace.manifest import load_manifest

    cli = _cli()
    cli._setup_logging("WARNING")
    cfg = cli._config(config or config_file)
    path = cfg.workflow_paths[0]
    try:
        for p, scan in build_workspaces(cfg):  # as CoFlows' deploy: new files are listed first
            for added in scan.added:
                cli.out.print(f"{p}: added {added}", highlight=False)
        manifest = load_manifest(path)
        packed = pack(path.parent, cfg.server.max_deploy_bytes, manifest.ReadMe)
    except (ConfigError, ManifestError, ArchiveError, ArchiveTooLarge) as e:
        raise cli._fail(str(e), 2) from None
    base, headers = cli._server(cfg)
    url = f"{base}/flow/cloud/deploy"
    cli.out.print(f"{manifest.Name or manifest.ID}: {len(packed.files)} files, {len(packed.data):,} bytes packed; "
                  f"deploying to {base}", highlight=False)
    progress = Progress(TextColumn("upload"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                        console=cli.console, transient=True)

    def body() -> Iterator[bytes]:
        data = packed.data
        for i in range(0, len(data), CHUNK):
            progress.update(task, advance=min(CHUNK, len(data) - i))
            yield data[i:i + CHUNK]

    params = {"wid": manifest.ID} | ({"force": "true"} if force else {})
    with progress:
        task = progress.add_task("upload", total=len(packed.data))
        try:
            r = httpx.post(url, params=params, content=body(),
                           headers={**headers, "content-type": "application/gzip",
                                    "content-length": str(len(packed.data))},
                           timeout=httpx.Timeout(timeout, connect=10))
        except httpx.HTTPError as e:
            raise cli._fail(f"{url}: {e}", 1) from None
    try:
        answer = r.json()
    except ValueError:
        answer = {"error": {"message": r.text[:500]}}
    if r.status_code == 409 and isinstance(answer.get("report"), dict):
        print_report(answer["report"])
        code = answer["report"].get("exit") or 1
        raise cli._fail(f"not deployed: {answer['error']['message']}", code)
    if r.status_code >= 400:
        message = (answer.get("error") or {}).get("message") or r.text[:500]
        raise cli._fail(f"{r.status_code}: {message}", 2 if r.status_code < 500 else 1)
    report = answer.get("report") or {}
    print_report(report)
    code = int(report.get("exit") or 0)
    if code:
        raise cli._fail(f"deployed anyway (--force) with {len(report.get('errors', []))} error(s)", code)
    cli.out.print(f"[bold green]Success!!![/] deployed {answer.get('name')} ({answer.get('workflow')}) "
                  f"to {base}", highlight=False)


# -- log, restart, remove -----------------------------------------------------------------------------

ConfigOpt = Annotated[Optional[str], typer.Option("--config", "-c", help="config file")]


def _wid(cfg: Any, workflow: str | None) -> str:
    from coflows.workspace.manifest import load_manifest

    if workflow:
        return workflow
    try:
        return load_manifest(cfg.workflow_paths[0]).ID
    except ManifestError as e:
        raise _cli()._fail(str(e), 2) from None


def _call(method: str, path: str, cfg: Any, **kw: Any) -> dict[str, Any]:
    import httpx

    cli = _cli()
    base, headers = cli._server(cfg)
    url = f"{base}{path}"
    try:
        r = httpx.request(method, url, headers=headers, timeout=kw.pop("timeout", 60), **kw)
    except httpx.HTTPError as e:
        raise cli._fail(f"{url}: {e}", 1) from None
    if r.status_code >= 400:
        try:
            message = r.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = r.text[:500]
        raise cli._fail(f"{r.status_code}: {message}", 2 if r.status_code < 500 else 1)
    return r.json()


@cloud_app.command("log")
def cloud_log(config_file: Annotated[Optional[str], typer.Argument(help="config file")] = None,
              config: ConfigOpt = None,
              lines: Annotated[int, typer.Option("--lines", "-n", min=1, max=1000, help="how many")] = 100,
              workflow: Annotated[Optional[str], typer.Option("--workflow", "-w", help="workflow ID")] = None) -> None:
    """Print the workflow's recent log lines on the server (CoFlows' cloud_log.sh)."""
    cli = _cli()
    cfg = cli._config(config or config_file)
    answer = _call("GET", "/flow/cloud/log", cfg, params={"wid": _wid(cfg, workflow), "lines": lines})
    for e in answer.get("lines", []):
        print(f"{e.get('time', '')} {e.get('level', '')} [{e.get('tag', '')}] {e.get('line', '')}")


@cloud_app.command("restart")
def cloud_restart(config_file: Annotated[Optional[str], typer.Argument(help="config file")] = None,
                  config: ConfigOpt = None,
                  grace: Annotated[int, typer.Option(min=1, max=600, help="seconds the old process may take to "
                                                     "finish its calls")] = 25,
                  wait: Annotated[float, typer.Option(help="seconds to wait for the new server process")] = 120) -> None:
    """Restart the server process (admin; the supervisor drains it and starts a new one) (CoFlows' cloud_restart.sh)."""
    import time

    import httpx

    cli = _cli()
    cfg = cli._config(config or config_file)
    answer = _call("POST", "/flow/cloud/restart", cfg, params={"grace": grace})
    old = answer.get("pid")
    cli.out.print(f"restarting the server process (pid {old})", highlight=False)
    base, headers = cli._server(cfg)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        time.sleep(0.5)
        try:
            r = httpx.get(f"{base}/health", headers=headers, timeout=5)
            if r.status_code == 200 and r.json().get("pid") not in (None, old):
                cli.out.print(f"[bold green]restarted[/] (pid {r.json()['pid']})", highlight=False)
                return
        except (httpx.HTTPError, ValueError):
            pass
    raise cli._fail(f"the server did not come back within {wait:.0f} s", 1)


@cloud_app.command("remove")
def cloud_remove(config_file: Annotated[Optional[str], typer.Argument(help="config file")] = None,
                 config: ConfigOpt = None,
                 purge: Annotated[bool, typer.Option("--purge", help="also delete its sources on the server")] = False,
                 workflow: Annotated[Optional[str], typer.Option("--workflow", "-w", help="workflow ID")] = None) -> None:
    """Unload the workflow from the running server (admin); its files stay unless --purge (CoFlows' cloud_remove.sh)."""
    cli = _cli()
    cfg = cli._config(config or config_file)
    answer = _call("POST", "/flow/cloud/remove", cfg,
                   params={"wid": _wid(cfg, workflow)} | ({"purge": "true"} if purge else {}))
    cli.out.print(f"removed {answer['name']} ({answer['removed']})" + (" and its sources" if answer["purged"] else ""),
                  highlight=False)


def register(app: typer.Typer, build_app: typer.Typer) -> None:
    """`coflows build cloud` and `coflows cloud …` on the main app."""
    build_app.command("cloud")(build_cloud)
    app.add_typer(cloud_app, name="cloud")
