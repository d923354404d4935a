"""`coflows`: the command line (typer + rich). `bin/*.sh` are thin wrappers that keep CoFlows' argument order.

Bad config or manifest input exits with status 2 and a message naming the
file, field and reason, never a Python traceback.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from coflows.config import Config, load_config
from coflows.errors import CoflowsError, ConfigError, ManifestError

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="coflows: a polyglot workflow runtime (Python, C#, Java, JavaScript in one process).")
console = Console(stderr=True, soft_wrap=True)  # never split a file:line message
out = Console()

ConfigOpt = Annotated[Optional[str], typer.Option("--config", "-c", help="config file (default: $config_file or coflows_config.json)")]


def _fail(message: str, code: int) -> typer.Exit:
    console.print(f"[bold red]error:[/] {message}", highlight=False, markup=True)
    return typer.Exit(code)


def _config(name: str | None) -> Config:
    try:
        return load_config(name)
    except ConfigError as e:
        raise _fail(str(e), 2) from None


def _setup_logging(level: str = "INFO") -> None:
    from coflows.redact import install

    install()  # API keys never reach a log line, whichever handler writes it (uvicorn's included)
    logging.basicConfig(level=getattr(logging, level.upper(), logging.INFO),
                        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s", stream=sys.stderr)


@app.command()
def server(
    config_file: Annotated[Optional[str], typer.Argument(help="config file")] = None,
    host: Annotated[Optional[str], typer.Option(help="override Server.Host")] = None,
    port: Annotated[Optional[int], typer.Option(help="override Server.Port")] = None,
    access_log: Annotated[bool, typer.Option(help="log every request")] = False,
    log_level: Annotated[str, typer.Option(help="debug, info, warning, error")] = "info",
    supervise: Annotated[bool, typer.Option("--supervisor/--no-supervisor",
                                            help="run the server as a child that is restarted when it dies")] = True,
    listen_fd: Annotated[Optional[int], typer.Option(hidden=True, help="(supervisor's child) listening socket")] = None,
    status_fd: Annotated[Optional[int], typer.Option(hidden=True, help="(supervisor's child) status pipe")] = None,
) -> None:
    """Load the workspace(s) and serve them over HTTP, restarted by a supervisor when the server process dies."""
    _setup_logging(log_level)
    config = _config(config_file)
    h = host or config.server.host
    p = port if port is not None else config.server.port
    if supervise and listen_fd is None:
        _supervise(config_file, h, p, access_log, log_level, config.server.memory_limit, config)
    _serve(config, h, p, access_log, log_level, listen_fd, status_fd)


def _busy(host: str, port: int, e: OSError) -> str:
    return f"cannot listen on {host}:{port}: {e.strerror or e} (another server running? choose a port with --port)"


def _acme(config: Config, host: str, sock) -> None:  # noqa: ANN001 - a socket
    """With Server.LetsEncrypt: hold HttpPort, answer HTTP-01 there, get and renew the certificate (coflows/tls)."""
    if config.server.lets_encrypt.enabled:
        from coflows.tls import TlsStartError, start_acme

        try:
            start_acme(config, host, sock.getsockname()[1])
        except TlsStartError as e:
            raise _fail(str(e), 2) from None


def _supervise(config_file: str | None, host: str, port: int, access_log: bool, log_level: str,
               memory_limit: int, config: Config) -> None:
    """The parent: hold the port, run `coflows server --listen-fd …` as a child, restart it when it dies."""
    from coflows.supervisor import Supervisor, exit_like, listen

    try:
        sock = listen(host, port)
    except OSError as e:
        raise _fail(_busy(host, port, e), 2) from None
    _acme(config, host, sock)
    command = [sys.executable, "-m", "coflows", "server", *([config_file] if config_file else []),
               "--log-level", log_level, "--access-log" if access_log else "--no-access-log"]
    supervisor = Supervisor(command, sock, memory_limit)
    code = supervisor.run()
    exit_like(code, supervisor.stop_signal)


def _serve(config: Config, host: str, port: int, access_log: bool, log_level: str,
           listen_fd: int | None, status_fd: int | None) -> None:
    """One server process (the supervisor's child, or the whole server with --no-supervisor)."""
    import os
    import socket

    from coflows.server.serve import serve
    from coflows.supervisor import listen

    log = logging.getLogger("coflows")
    if listen_fd is not None:
        sock = socket.socket(fileno=listen_fd)
    else:
        try:
            sock = listen(host, port)  # before loading anything: a busy port fails at once
        except OSError as e:
            raise _fail(_busy(host, port, e), 2) from None
        _acme(config, host, sock)
    runtime = _preflight(config)
    from coflows.workspace.changes import DiskChanges

    runtime.changes = DiskChanges()  # read on the server's loop: calls skip stat calls (workspace/changes.py)
    try:
        problems = runtime.load()
    except (ConfigError, ManifestError) as e:
        raise _fail(str(e), 2) from None
    except CoflowsError as e:
        raise _fail(str(e), 1) from None
    for wf in runtime.registry.workflows():
        n = sum(len(q.functions) for q in wf.queries.values())
        log.info("workflow %s (%s): %d queries, %d functions, %d problems",
                 wf.name, wf.id, len(wf.queries), n, len(problems.get(wf.id, [])))
    if not config.server.secret_key:
        log.info("admin API key: see %s (or set Server.SecretKey)", config.state_dir() / "secret_key")
    code = serve(config, runtime, sock, access_log=access_log, log_level=log_level, status_fd=status_fd)
    if code:
        logging.shutdown()
        sys.stderr.flush()
        os._exit(code)  # the runtime is closed; skip the engines' exit handlers


def _preflight(config: Config):  # noqa: ANN202 - a Runtime (imported lazily)
    """Every start-up precondition that can fail, before any engine loads or agent starts: exit 2.

    The port is already bound (by the supervisor, or by `_serve`). Here: the config and manifests
    (database folder, duplicate IDs), the admin secret key file (created now, 0600, or a clear
    error), and the database (opened and migrated by the Runtime).
    """
    import sqlalchemy.exc

    from coflows.runtime import Runtime
    from coflows.workspace.build import check_workspaces

    try:
        check_workspaces(config)  # a missing database folder or a duplicate ID: refuse before creating anything
        config.admin_key()
    except (ConfigError, ManifestError) as e:
        raise _fail(str(e), 2) from None
    except OSError as e:
        raise _fail(f"cannot write the admin secret key file {e.filename or config.state_dir()}: "
                    f"{e.strerror or e} (or set Server.SecretKey in {config.source})", 2) from None
    try:
        return Runtime(config)
    except (ConfigError, ManifestError) as e:
        raise _fail(str(e), 2) from None
    except sqlalchemy.exc.SQLAlchemyError as e:
        reason = str(getattr(e, "orig", None) or e).splitlines()[0]
        raise _fail(f"{config.source}: Database.Connection: cannot open the database: {reason}", 2) from None


build_app = typer.Typer(help="Update package.json and compile everything.", no_args_is_help=True)
app.add_typer(build_app, name="build")


@build_app.command("local")
def build_local(config_file: Annotated[Optional[str], typer.Argument(help="config file")] = None,
                config: ConfigOpt = None) -> None:
    """Scan the workspace folders into package.json, then load everything and report every error.

    Exit 2 for a mistake in the config or a manifest (then nothing is written), a duplicate
    query or agent ID, an agent whose factory fails or whose schedule is invalid; exit 1 for
    a source that does not compile or a package that does not install. The build opens no
    database: the server creates it.
    """
    from coflows.agents.check import check_agents
    from coflows.runtime import Runtime
    from coflows.workspace.build import build_workspaces

    _setup_logging("WARNING")
    cfg = _config(config or config_file)
    try:
        for path, scan in build_workspaces(cfg):
            if scan.generated_id:
                out.print(f"{path}: generated ID")
            for added in scan.added:
                out.print(f"{path}: added {added}")
        from coflows.packages import RichProgress

        runtime = Runtime(cfg, with_database=False)
        with RichProgress(console=console) as progress:
            runtime.package_progress = progress
            problems = runtime.load()
    except (ConfigError, ManifestError) as e:
        raise _fail(str(e), 2) from None
    agents = check_agents(runtime.registry.workflows())
    _print_packages(runtime)
    table = Table(title="build")
    for col in ("workflow", "query", "language", "functions", "status"):
        table.add_column(col)
    errors = 0
    for wf in runtime.registry.workflows():
        for q in wf.queries.values():
            status = "[green]ok[/]" if q.error is None else "[red]error[/]"
            table.add_row(wf.name, q.id, q.language or "?", str(len(q.functions)), status)
    out.print(table)
    if agents:
        table = Table(title="agents")
        for col in ("workflow", "agent", "ID", "schedule", "topic", "status"):
            table.add_column(col, overflow="fold")  # an agent ID is never cut
        for a in agents:
            d = a.definition
            table.add_row(a.wf.name, a.src.name, d.id if d else "?", (d.schedule or "") if d else "",
                          (d.topic or "") if d else "", "[green]ok[/]" if a.error is None else "[red]error[/]")
        out.print(table)
    for wf_id, items in problems.items():
        for item in items:
            if item.startswith("warning: "):
                console.print(f"[yellow]{item}[/]", highlight=False)
            else:
                errors += 1
                console.print(item, highlight=False, markup=False)
    agent_errors = [a.error for a in agents if a.error]
    for item in agent_errors:
        console.print(item, highlight=False, markup=False)
    runtime.close()
    if agent_errors:
        raise _fail(f"{errors + len(agent_errors)} error(s)", 2)
    if errors:
        raise _fail(f"{errors} error(s)", 1)
    out.print("[bold green]Success!!![/]")


def _print_packages(runtime) -> None:  # noqa: ANN001
    rows = [row for report in runtime.package_reports.values() for row in report.rows]
    if not rows:
        return
    table = Table(title="packages")
    for col in ("kind", "name", "version", "status", "detail"):
        table.add_column(col)
    colour = {"installed": "green", "cached": "cyan", "failed": "red"}
    for kind, name, version, status, detail in rows:
        table.add_row(kind, name, version, f"[{colour.get(status, 'white')}]{status}[/]", detail)
    out.print(table)
    counts = {s: sum(1 for r in rows if r[3] == s) for s in ("installed", "cached", "failed")}
    out.print(f"{counts['installed']} installed, {counts['cached']} from the cache, {counts['failed']} failed")


query_app = typer.Typer(help="Call a query function.", no_args_is_help=True)
app.add_typer(query_app, name="query")


@query_app.command("local")
def query_local(
    qid: Annotated[str, typer.Argument(help="query ID, e.g. Calc.py")],
    function: Annotated[str, typer.Argument(help="function name")],
    params: Annotated[Optional[list[str]], typer.Argument(help="positional arguments p[0] …")] = None,
    config: ConfigOpt = None,
    workflow: Annotated[Optional[str], typer.Option("--workflow", "-w", help="workflow ID or Name")] = None,
) -> None:
    """Run a function in-process and print its JSON result."""
    from coflows.runtime import Runtime
    from coflows.serialize import to_json_bytes
    from coflows.server.responses import error_body

    from coflows.local import open_on_demand

    _setup_logging("WARNING")
    cfg = _config(config)
    try:
        runtime = Runtime(cfg)
        runtime.load(open_on_demand)  # only the called query (and what it calls) loads: only its engines start
        wf = runtime.registry.workflow(workflow) if workflow else runtime.registry.default_workflow()
        ref = f"{qid}/{function}"
        _, fn = runtime.registry.resolve_ref(ref, wf.id)
        # on the call pool, under the function's time limit (as over HTTP)
        result = runtime.calls.run(lambda: runtime.call(ref, *(params or []), workflow=wf.id),
                                   label=f"{wf.name}/{ref}", timeout=fn.docs.timeout)
    except (ConfigError, ManifestError) as e:
        raise _fail(str(e), 2) from None
    except Exception as e:  # noqa: BLE001
        _, body = error_body(e)
        print(json.dumps(body, indent=2), file=sys.stderr)
        raise typer.Exit(1) from None
    print(json.dumps(json.loads(to_json_bytes(result)), indent=2))
    runtime.close()


@query_app.command("cloud")
def query_cloud(
    qid: Annotated[str, typer.Argument(help="query ID")],
    function: Annotated[str, typer.Argument(help="function name")],
    params: Annotated[Optional[list[str]], typer.Argument(help="positional arguments p[0] …")] = None,
    config: ConfigOpt = None,
    workflow: Annotated[Optional[str], typer.Option("--workflow", "-w", help="workflow ID or Name")] = None,
    timeout: Annotated[float, typer.Option(help="seconds")] = 60.0,
) -> None:
    """Call the function on the server named in `Cloud` (with its SecretKey) and print the result."""
    import httpx

    from coflows.workspace.manifest import load_manifest

    cfg = _config(config)
    try:
        wid = workflow or load_manifest(cfg.workflow_paths[0]).ID
    except ManifestError as e:
        raise _fail(str(e), 2) from None
    scheme = "https" if cfg.cloud.ssl else "http"
    host = cfg.cloud.host if "://" not in cfg.cloud.host else cfg.cloud.host.split("://", 1)[1]
    key = cfg.cloud.secret_key or (cfg.admin_key() if host.split(":")[0] in ("localhost", "127.0.0.1") else "")
    url = f"{scheme}://{host}/flow/query/{wid}/{qid}/{function}"
    query = [(f"p[{i}]", v) for i, v in enumerate(params or [])]
    try:
        r = httpx.get(url, params=query, headers={"x-api-key": key} if key else {}, timeout=timeout)
    except httpx.HTTPError as e:
        raise _fail(f"{url}: {e}", 1) from None
    if r.status_code != 200:
        print(r.text, file=sys.stderr)
        raise typer.Exit(1)
    try:
        print(json.dumps(r.json(), indent=2))
    except ValueError:
        print(r.text)


add_app = typer.Typer(help="Add a package or a source to package.json (CoFlows' add.sh).", no_args_is_help=True)
app.add_typer(add_app, name="add")


def _edit_manifest(config: str | None, change) -> None:  # noqa: ANN001 - change(manifest, root) -> message
    from coflows.workspace.manifest import load_manifest, save_manifest

    cfg = _config(config)
    path = cfg.workflow_paths[0]
    try:
        manifest = load_manifest(path)
        message = change(manifest, path.parent)
    except (ManifestError, CoflowsError) as e:
        raise _fail(str(e), 2) from None
    save_manifest(path, manifest)
    out.print(f"{path}: {message}")


@add_app.command("pip")
def add_pip_cmd(spec: Annotated[str, typer.Argument(help="a pip requirement, e.g. requests==2.32.3")],
                config: ConfigOpt = None) -> None:
    """Add a pip requirement (installed by `coflows build local`)."""
    from coflows.workspace.add import add_pip

    _edit_manifest(config, lambda m, root: add_pip(m, spec))


@add_app.command("nuget")
def add_nuget_cmd(package_id: Annotated[str, typer.Argument(help="NuGet package ID")],
                  version: Annotated[str, typer.Argument(help="version")], config: ConfigOpt = None) -> None:
    """Add a NuGet package."""
    from coflows.workspace.add import add_nuget

    _edit_manifest(config, lambda m, root: add_nuget(m, package_id, version))


@add_app.command("jar")
def add_jar_cmd(what: Annotated[str, typer.Argument(help="a jar URL or Maven group:artifact:version")],
                config: ConfigOpt = None) -> None:
    """Add a jar by URL or Maven coordinates."""
    from coflows.workspace.add import add_jar

    _edit_manifest(config, lambda m, root: add_jar(m, what))


@add_app.command("query")
def add_query_cmd(language: Annotated[str, typer.Argument(help="py, cs, java or js")],
                  name: Annotated[str, typer.Argument(help="query name (file name without extension)")],
                  config: ConfigOpt = None) -> None:
    """Create a query from a template and list it."""
    from coflows.workspace.add import add_query

    _edit_manifest(config, lambda m, root: add_query(m, root, language, name))


@add_app.command("dash")
def add_dash_cmd(name: Annotated[str, typer.Argument(help="app name (file name without extension)")],
                 config: ConfigOpt = None) -> None:
    """Create a Dash app query (served at /dash/<workflow ID>/NAME.py/) and add dash to Pips."""
    from coflows.workspace.add import add_dash

    _edit_manifest(config, lambda m, root: add_dash(m, root, name))


@add_app.command("agent")
def add_agent_cmd(language_or_name: Annotated[str, typer.Argument(metavar="LANGUAGE", help="py, cs, java or js")],
                  name: Annotated[Optional[str], typer.Argument(help="agent name (file name without extension)")] = None,
                  config: ConfigOpt = None) -> None:
    """Create an agent from a template and list it (`add agent NAME` alone: a Python agent, as before)."""
    from coflows.workspace.add import add_agent

    language, agent = (language_or_name, name) if name is not None else ("py", language_or_name)
    _edit_manifest(config, lambda m, root: add_agent(m, root, agent, language))


flow_app = typer.Typer(help="DAG flows: submit, follow and inspect runs.", no_args_is_help=True)
app.add_typer(flow_app, name="flow")

from coflows.cli_users import group_app, user_app  # noqa: E402 - users and groups on the database only

app.add_typer(user_app, name="user")
app.add_typer(group_app, name="group")

from coflows.cli_cloud import register as _register_cloud  # noqa: E402 - build cloud, cloud log|restart|remove

_register_cloud(app, build_app)

from coflows.cli_aci import aci_app  # noqa: E402 - Azure Container Instances (the SDK loads only when used)

app.add_typer(aci_app, name="aci")


def _server(cfg: Config) -> tuple[str, dict[str, str]]:
    """Base URL and auth header of the server named in `Cloud` (the local one by default)."""
    scheme = "https" if cfg.cloud.ssl else "http"
    host = cfg.cloud.host.split("://", 1)[-1] or f"{cfg.server.host}:{cfg.server.port}"
    key = cfg.cloud.secret_key or (cfg.admin_key() if host.split(":")[0] in ("localhost", "127.0.0.1") else "")
    return f"{scheme}://{host}", ({"x-api-key": key} if key else {})


def _read_spec(spec: str) -> tuple[object, str | None]:
    path = Path(spec)
    if path.is_file():
        fmt = {".yaml": "yaml", ".yml": "yaml", ".json": "json"}.get(path.suffix.lower(), "graph")
        text = path.read_text(encoding="utf-8")
        return (json.loads(text) if fmt == "json" else text), fmt
    return spec, None  # an inline graph string


_STATE_COLOUR = {"pending": "white", "running": "yellow", "finished": "green", "failed": "red",
                 "cancelled": "magenta", "skipped": "dim", "interrupted": "cyan"}


def _print_run(run: dict) -> None:
    out.print(f"run [bold]{run['id']}[/]  {run.get('name') or ''}  state "
              f"[{_STATE_COLOUR.get(run['state'], 'white')}]{run['state']}[/]")
    table = Table()
    for col in ("node", "function", "state", "attempts", "started", "ended", "output / error"):
        table.add_column(col, overflow="fold")
    for t in run.get("tasks", []):
        shown = t.get("error") or json.dumps(t.get("output"))
        table.add_row(t["node"], t["ref"], f"[{_STATE_COLOUR.get(t['state'], 'white')}]{t['state']}[/]",
                      str(t.get("attempts", 0)), str(t.get("started_at") or ""), str(t.get("finished_at") or ""),
                      shown if len(shown) < 80 else shown[:77] + "...")
    out.print(table)


def _http(method: str, url: str, headers: dict, **kw):  # noqa: ANN202
    import httpx

    try:
        r = httpx.request(method, url, headers=headers, timeout=kw.pop("timeout", 60), **kw)
    except httpx.HTTPError as e:
        raise _fail(f"{url}: {e} (is the server running? bin/server.sh)", 1) from None
    if r.status_code >= 400:
        try:
            message = r.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = r.text
        raise _fail(f"{r.status_code}: {message}", 1)
    return r.json()


@flow_app.command("submit")
def flow_submit(
    spec: Annotated[str, typer.Option("--spec", "-s", help="a file (.yaml, .json, graph string) or an inline graph string")],
    wait: Annotated[bool, typer.Option("--wait", help="wait for the run to end and print it")] = False,
    inputs: Annotated[Optional[str], typer.Option(help="flow inputs as a JSON object")] = None,
    workflow: Annotated[Optional[str], typer.Option("--workflow", "-w", help="workflow ID or Name")] = None,
    timeout: Annotated[float, typer.Option(help="seconds to wait")] = 3600,
    config: ConfigOpt = None,
) -> None:
    """Submit a flow to the server; print the run ID (or the finished run with --wait)."""
    import time

    from coflows.workspace.manifest import load_manifest

    cfg = _config(config)
    base, headers = _server(cfg)
    wid = workflow or load_manifest(cfg.workflow_paths[0]).ID
    source, fmt = _read_spec(spec)
    body = {"spec": source, "format": fmt, "inputs": json.loads(inputs) if inputs else None}
    run_id = _http("POST", f"{base}/flows/{wid}/runs", headers, json=body)["run_id"]
    if not wait:
        print(run_id)
        return
    deadline = time.monotonic() + timeout
    while True:
        run = _http("GET", f"{base}/flows/runs/{run_id}", headers)
        if run["state"] in ("finished", "failed", "cancelled", "interrupted") or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    _print_run(run)
    if run["state"] != "finished":
        raise typer.Exit(1)


@flow_app.command("get")
def flow_get(run_id: Annotated[str, typer.Argument(help="run ID")],
             out_node: Annotated[Optional[str], typer.Option("--out", help="print only this node's output (JSON)")] = None,
             as_json: Annotated[bool, typer.Option("--json", help="print the run as JSON")] = False,
             config: ConfigOpt = None) -> None:
    """Show a run: every task's state, times, attempts and output."""
    cfg = _config(config)
    base, headers = _server(cfg)
    run = _http("GET", f"{base}/flows/runs/{run_id}", headers)
    if out_node is not None:
        task = next((t for t in run["tasks"] if t["node"] == out_node), None)
        if task is None:
            raise _fail(f"run {run_id} has no node '{out_node}'", 1)
        print(json.dumps(task.get("output"), indent=2))
    elif as_json:
        print(json.dumps(run, indent=2))
    else:
        _print_run(run)


@flow_app.command("list")
def flow_list(limit: Annotated[int, typer.Option(help="how many")] = 20,
              state: Annotated[Optional[str], typer.Option(help="only runs in this state")] = None,
              config: ConfigOpt = None) -> None:
    """List recent runs."""
    cfg = _config(config)
    base, headers = _server(cfg)
    params = {"limit": limit} | ({"state": state} if state else {})
    runs = _http("GET", f"{base}/flows/runs", headers, params=params)
    table = Table()
    table.add_column("run", no_wrap=True, min_width=32)  # an ID is never cut
    for col in ("name", "state", "created", "tasks"):
        table.add_column(col)
    for r in runs:
        counts = ", ".join(f"{k} {v}" for k, v in (r.get("counts") or {}).items())
        table.add_row(r["id"], r.get("name") or "", f"[{_STATE_COLOUR.get(r['state'], 'white')}]{r['state']}[/]",
                      str(r.get("created_at") or ""), counts)
    out.print(table)


@flow_app.command("run")
def flow_run(spec: Annotated[str, typer.Option("--spec", "-s", help="a file or an inline graph string")],
             inputs: Annotated[Optional[str], typer.Option(help="flow inputs as a JSON object")] = None,
             timeout: Annotated[float, typer.Option(help="seconds")] = 3600,
             config: ConfigOpt = None) -> None:
    """Run a flow from this process (no server needed; tasks on its threads or the configured Dask cluster)."""
    from coflows.flows import FlowEngine
    from coflows.flows.executor import executor_from_config
    from coflows.flows.registry_resolver import RegistryResolver
    from coflows.runtime import Runtime

    _setup_logging("WARNING")
    cfg = _config(config)
    try:
        runtime = Runtime(cfg)
        runtime.load()
        wf = runtime.registry.default_workflow()
        resolver = RegistryResolver(runtime.registry, wf.id)
        engine = FlowEngine(runtime.database, resolver, max_workers=cfg.executor.max_workers,
                            executor=executor_from_config(cfg, runtime.calls)).start()
        source, fmt = _read_spec(spec)
        run_id = engine.submit(source, json.loads(inputs) if inputs else None, workflow=wf.id, format=fmt)
        run = engine.wait(run_id, timeout).to_dict()
        engine.shutdown(grace=5)
    except (ConfigError, ManifestError) as e:
        raise _fail(str(e), 2) from None
    except CoflowsError as e:
        raise _fail(str(e), 1) from None
    _print_run(run)
    runtime.close()
    if run["state"] != "finished":
        raise typer.Exit(1)


@app.command()
def version() -> None:
    """Print the coflows version."""
    from coflows import __version__

    out.print(__version__)


def main() -> None:
    try:
        app()
    except CoflowsError as e:  # any user-caused error that escaped a command
        console.print(f"[bold red]error:[/] {e}", highlight=False)
        sys.exit(2)


if __name__ == "__main__":
    main()
