"""The supervised `jupyter lab` child: started with the server, restarted when it dies, stopped with it.

It listens on a loopback port the server picks, under `base_url=/lab/`, with token auth whose token
only the server knows (given in the child's environment, never on its command line or to users);
its only allowed origin is the proxy's own, so a browser cannot talk to it directly. Jupyter's
config, data, runtime and settings folders are private (`<workspace>/.coflows/jupyter`, 0700), so
a user's `~/.jupyter` cannot change how it runs.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from coflows.jupyter.identity import SECRET_ENV

log = logging.getLogger("coflows.jupyter")

KERNEL_NAME = "coflows"
RELAY_ENV = "COFLOWS_JUPYTER_RELAY"  # host:port of the server's M relay (coflows.jupyter.relay)
CONFIG_ENV = "COFLOWS_JUPYTER_CONFIG"  # the server's config file, for the kernel


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the server dies, even by SIGKILL (Linux)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, 15)  # PR_SET_PDEATHSIG, SIGTERM
    except Exception:  # noqa: BLE001 - not Linux: stop() still stops it on a clean exit
        pass


# JupyterLab puts the server's token into every page it serves (page_config["token"]); the token
# is the server's alone (the proxy adds it), so pages go out without it.
SERVER_CONFIG = """# written by coflows (coflows/jupyter/process.py) at every start
def _without_token(handler, page_config):
    # and without the "get Jupyter news?" prompt (news are off: c.LabApp.news_url below)
    disabled = [*page_config.get("disabledExtensions", []), "@jupyterlab/apputils-extension:announcements"]
    return {**page_config, "token": "", "disabledExtensions": disabled}


c.ServerApp.tornado_settings = {"page_config_hook": _without_token}
c.LabApp.news_url = None  # no announcements fetched from the internet
c.LabApp.extension_manager = "readonly"  # no pip installs into the server's environment from the page
"""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_kernelspec(data_dir: Path, display_name: str, env: dict[str, str]) -> Path:
    """The `coflows` kernelspec in Jupyter's private data folder (no secrets in it)."""
    folder = data_dir / "kernels" / KERNEL_NAME
    folder.mkdir(parents=True, exist_ok=True)
    spec = {"argv": [sys.executable, "-m", "coflows.jupyter.kernel", "-f", "{connection_file}"],
            "display_name": display_name, "language": "python", "env": env,
            "metadata": {"debugger": False}}
    (folder / "kernel.json").write_text(json.dumps(spec, indent=1), encoding="utf-8")
    return folder


class JupyterProcess:
    """Runs and watches one JupyterLab; `port` and `token` are what the proxy needs."""

    def __init__(self, state_dir: Path, notebook_dir: Path, cwd: Path, env: dict[str, str],
                 secret: str) -> None:
        self.state_dir = state_dir
        self.notebook_dir = notebook_dir
        self.cwd = cwd
        self.extra_env = env
        self.secret = secret
        self.token = secrets.token_urlsafe(32)
        self.port = 0
        self.restarts = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def running(self) -> bool:
        proc = self._proc
        return proc is not None and proc.poll() is None

    def _env(self) -> dict[str, str]:
        d = self.state_dir
        env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "JPY_"))}
        env.update(self.extra_env)
        env.update({
            "JUPYTER_TOKEN": self.token, SECRET_ENV: self.secret,
            "JUPYTER_CONFIG_DIR": str(d / "config"), "JUPYTER_DATA_DIR": str(d / "data"),
            "JUPYTER_RUNTIME_DIR": str(d / "runtime"), "JUPYTERLAB_SETTINGS_DIR": str(d / "lab-settings"),
            "JUPYTERLAB_WORKSPACES_DIR": str(d / "lab-workspaces"), "IPYTHONDIR": str(d / "ipython"),
            "JUPYTER_PLATFORM_DIRS": "1", "PYTHONUNBUFFERED": "1",
        })
        return env

    def _command(self) -> list[str]:
        origin = f"http://127.0.0.1:{self.port}"
        return [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={self.port}",
                "--port-retries=0", "--ServerApp.base_url=/lab/", f"--ServerApp.root_dir={self.notebook_dir}",
                f"--ServerApp.allow_origin={origin}", "--ServerApp.allow_remote_access=False",
                "--ServerApp.disable_check_xsrf=False", "--ServerApp.password=",
                f"--MappingKernelManager.default_kernel_name={KERNEL_NAME}",
                "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
                "--log-level=WARN",
                *(["--allow-root"] if os.geteuid() == 0 else [])]  # root in a test box or a container: our choice

    def _spawn(self) -> None:
        for sub in ("config", "data", "runtime", "lab-settings", "lab-workspaces", "ipython"):
            (self.state_dir / sub).mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.state_dir, 0o700)
        (self.state_dir / "config" / "jupyter_server_config.py").write_text(SERVER_CONFIG, encoding="utf-8")
        self.port = free_port()
        log.info("starting JupyterLab on 127.0.0.1:%d (reached through /lab)", self.port)
        self._proc = subprocess.Popen(self._command(), cwd=self.cwd, env=self._env(), stdin=subprocess.DEVNULL,
                                      start_new_session=True, preexec_fn=_die_with_parent)

    def start(self) -> None:
        with self._lock:
            if self._thread is not None:
                return
            self._spawn()
            self._thread = threading.Thread(target=self._watch, name="coflows-jupyter", daemon=True)
            self._thread.start()

    def _watch(self) -> None:
        delay = 1.0
        while not self._stop.is_set():
            proc = self._proc
            if proc is None:
                return
            started = time.monotonic()
            while proc.poll() is None:
                if self._stop.wait(0.5):
                    return
            if self._stop.is_set():
                return
            if time.monotonic() - started > 60:
                delay = 1.0  # it ran a while: a fresh failure, not a crash loop
            log.warning("JupyterLab exited with status %s; restarting in %.0f s", proc.returncode, delay)
            if self._stop.wait(delay):
                return
            delay = min(delay * 2, 60.0)
            with self._lock:
                if not self._stop.is_set():
                    self.restarts += 1
                    self._spawn()

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            proc = self._proc
        if proc is not None and proc.poll() is None:
            try:
                os.killpg(proc.pid, 15)  # its kernels too (same session)
            except ProcessLookupError:
                pass
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, 9)
                except ProcessLookupError:
                    pass
                proc.wait(5)
        if self._thread is not None:
            self._thread.join(5)
