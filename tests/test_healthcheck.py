"""`python -m coflows.healthcheck PORT`, the container's HEALTHCHECK, against a real server."""

import subprocess
import sys

from conftest import free_port, new_workspace


def check(port: int) -> int:
    return subprocess.run([sys.executable, "-m", "coflows.healthcheck", str(port)], timeout=60).returncode


def test_healthy_server_and_closed_port(tmp_path, start_server):
    s = start_server(new_workspace(tmp_path / "ws"))
    assert check(s.port) == 0
    assert check(free_port()) == 1
