"""The container image, end to end: built with bin/image.sh (podman), run with the example workspace
mounted at /app/mnt, queried in Python, C#, Java and JavaScript over a published loopback port.

Selected with `-m image`; it runs in the default suite (CI installs podman: bin/setup.sh --test).
Figures (build time, image size, time from `podman run` to the first answered query) are printed
and written to test-artifacts/image_figures.json; nothing here asserts a duration.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from conftest import REPO, free_port

pytestmark = [pytest.mark.image, pytest.mark.timeout(2700)]

IMAGE_SH = REPO / "bin" / "image.sh"
ARTIFACTS = REPO / "test-artifacts"
TOOLS = ("podman", "buildah", "runc", "debootstrap")
# A workspace's runtime state: the image gets the example's sources only, as a fresh clone would.
STATE = shutil.ignore_patterns("database.db*", "pip", "jars", "nugets", ".coflows", "bin", "obj", "__pycache__")
LANGUAGES = ("PythonQuery.py", "CSharpQuery.cs", "JavaQuery.java", "JsQuery.js")


def podman(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
    """podman with this machine's options (runc, cgroupfs, the project's containers.conf), via bin/image.sh."""
    return subprocess.run([str(IMAGE_SH), "podman", *args], capture_output=True, text=True,
                          timeout=timeout, check=check)


def podman_or_skip() -> None:
    """Skip, saying why, only where podman cannot run at all; under CI (which installs it) fail instead."""
    missing = [t for t in TOOLS if not (shutil.which(t) or Path("/usr/sbin", t).exists())]
    reason = ""
    if missing:
        reason = f"{', '.join(missing)} not installed (bin/setup.sh --image installs them)"
    else:
        info = podman("info", "--format", "{{.Host.OCIRuntime.Name}}", check=False)
        if info.returncode != 0:
            reason = f"podman cannot run here: {info.stderr.strip()[-300:]}"
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"CI installs podman (bin/setup.sh --test), but {reason}")
        pytest.skip(reason)


def record(figures: dict[str, object]) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / "image_figures.json"
    old = json.loads(path.read_text()) if path.exists() else {}
    path.write_text(json.dumps({**old, **figures}, indent=2))
    print("image figures:", json.dumps(figures))


@pytest.fixture(scope="module")
def image() -> str:
    """bin/image.sh build: the cached Debian base and podman's layer cache are reused when present."""
    podman_or_skip()
    ARTIFACTS.mkdir(exist_ok=True)
    log = ARTIFACTS / "image_build.log"
    t0 = time.monotonic()
    with log.open("w") as out:
        done = subprocess.run([str(IMAGE_SH), "build"], stdout=out, stderr=subprocess.STDOUT, timeout=2400)
    seconds = time.monotonic() - t0
    if done.returncode != 0:
        pytest.fail(f"bin/image.sh build failed ({done.returncode}); the end of {log}:\n"
                    + "\n".join(log.read_text().splitlines()[-40:]))
    size = int(podman("image", "inspect", "--format", "{{.Size}}", "coflows:latest").stdout.strip())
    record({"build_seconds": round(seconds, 1), "image_bytes": size, "image_mb": round(size / 1e6)})
    return "coflows:latest"


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """A copy of the example workspace, owned by the image's user (uid 1000) like a prepared volume."""
    mnt = tmp_path / "mnt"
    shutil.copytree(REPO / "mnt", mnt, ignore=STATE)
    if os.geteuid() == 0:
        for path in [mnt, *mnt.rglob("*")]:
            os.chown(path, 1000, 1000, follow_symlinks=False)
    return mnt


@pytest.fixture
def container(image: str, workspace: Path) -> Iterator[tuple[str, int, float]]:
    """`bin/image.sh run -d -p 127.0.0.1:PORT:8080 -v MNT:/app/mnt`; stopped and removed afterwards."""
    name = f"coflows-test-{uuid.uuid4().hex[:8]}"
    port = free_port()
    userns = [] if os.geteuid() == 0 else ["--userns=keep-id:uid=1000,gid=1000"]
    started = time.monotonic()
    run = subprocess.run([str(IMAGE_SH), "run", "-d", "--name", name, *userns,
                          "-p", f"127.0.0.1:{port}:8080", "-v", f"{workspace}:/app/mnt"],
                         capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, f"bin/image.sh run failed: {run.stderr}"
    try:
        yield name, port, started
    finally:
        podman("rm", "-f", "-t", "5", name, check=False, timeout=60)


def wait_healthy(name: str, port: int, limit: float = 600) -> None:
    """Poll /health until it answers 200; fail with the container's log if it stops first."""
    until = time.monotonic() + limit
    while time.monotonic() < until:
        state = podman("inspect", "--format", "{{.State.Status}}", name).stdout.strip()
        if state not in ("running", "created", "configured"):
            logs = podman("logs", name, check=False)
            pytest.fail(f"container {name} is {state}:\n{(logs.stdout + logs.stderr)[-3000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=10).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    logs = podman("logs", name, check=False)
    pytest.fail(f"/health did not answer within {limit} s:\n{(logs.stdout + logs.stderr)[-3000:]}")


def test_image_serves_the_workspace_in_four_languages(container: tuple[str, int, float], workspace: Path) -> None:
    name, port, started = container
    wait_healthy(name, port)
    first_answer = None
    for query in LANGUAGES:
        r = httpx.get(f"http://127.0.0.1:{port}/flow/query/Example/{query}/Add",
                      params={"p[0]": 1, "p[1]": 2}, timeout=120)
        assert r.status_code == 200, f"{query}/Add: {r.status_code} {r.text[:500]}"
        assert r.json() == 3, f"{query}/Add(1, 2) answered {r.text[:200]}"
        first_answer = first_answer or time.monotonic() - started
    record({"run_to_first_query_seconds": round(first_answer or 0, 1),
            "run_to_four_languages_seconds": round(time.monotonic() - started, 1)})

    # not root inside
    uid = podman("exec", name, "id", "-u").stdout.strip()
    assert uid.isdigit() and uid != "0", f"the server runs as uid {uid!r}"
    # the image's HEALTHCHECK (GET /health) passes
    health = podman("healthcheck", "run", name, check=False, timeout=60)
    assert health.returncode == 0, f"podman healthcheck run: {health.returncode} {health.stdout}{health.stderr}"
    # the supervisor is the entry point: PID 1 is `coflows server`, the server its child
    pid1 = podman("exec", name, "cat", "/proc/1/cmdline").stdout.replace("\0", " ")
    assert "coflows server" in pid1 and "--no-supervisor" not in pid1, pid1
    # no default admin key: one was generated into the mounted workspace, owner-only, and never logged
    key_file = workspace / ".coflows" / "secret_key"
    assert key_file.exists(), f"no generated admin key at {key_file}"
    assert key_file.stat().st_mode & 0o777 == 0o600, oct(key_file.stat().st_mode)
    logs = podman("logs", name, check=False)
    assert key_file.read_text().strip() not in logs.stdout + logs.stderr
    # the database is written to the mount too
    assert (workspace / "database.db").exists()

    # a graceful stop (SIGTERM to the supervisor), well before podman's SIGKILL
    podman("stop", "-t", "60", name, timeout=120)
    state = podman("inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", name).stdout.strip()
    assert state == "exited 143", f"after podman stop: {state} (143: ended by SIGTERM; 137: killed)"


def test_unwritable_mount_is_refused_with_a_message(image: str, tmp_path: Path) -> None:
    """A volume the image's user cannot write stops the server at start-up (exit 2), naming what it needs."""
    mnt = tmp_path / "mnt"
    shutil.copytree(REPO / "mnt", mnt, ignore=STATE)
    mnt.chmod(0o555)  # nobody but root may create the database or .coflows/ in it; the server is not root
    name = f"coflows-test-{uuid.uuid4().hex[:8]}"
    try:
        run = subprocess.run([str(IMAGE_SH), "run", "--name", name, "-v", f"{mnt}:/app/mnt"],
                             capture_output=True, text=True, timeout=300)
        state = podman("inspect", "--format", "{{.State.ExitCode}}", name).stdout.strip()
        logs = podman("logs", name, check=False)
        out = logs.stdout + logs.stderr
        assert state == "2", f"exit {state}, expected 2 (a start-up precondition):\n{out[-2000:]}"
        assert "/app/mnt" in out, f"the message does not name the mounted folder:\n{out[-2000:]}"
        assert run.returncode == 2
    finally:
        podman("rm", "-f", name, check=False, timeout=60)
        mnt.chmod(0o755)
