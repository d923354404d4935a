"""`coflows build local` installs a workspace's pips; queries import them; a second build downloads nothing."""

import json
import subprocess
import sys
import time

import pytest

from conftest import new_workspace


def run(ws, *args):
    return subprocess.run([sys.executable, "-m", "coflows", *args], capture_output=True, text=True, cwd=ws.root)


@pytest.mark.network
def test_pip_install_then_import_in_a_query(tmp_path):
    ws = new_workspace(tmp_path / "ws")
    # a package coflows itself does not depend on (six is one of its dependencies' dependencies)
    ws.manifest["Pips"] = [{"ID": "tabulate==0.9.0"}]
    ws.add_query("UsesTabulate.py", "import tabulate\n\ndef Version():\n    return tabulate.__version__\n\n"
                                    "def Where():\n    return tabulate.__file__\n")
    cold_start = time.monotonic()
    r = run(ws, "build", "local")
    cold = time.monotonic() - cold_start
    assert r.returncode == 0, r.stdout + r.stderr
    assert "tabulate" in r.stdout and "installed" in r.stdout
    assert (ws.mnt / "requirements.lock").read_text().count("tabulate==0.9.0") == 1
    warm_start = time.monotonic()
    again = run(ws, "build", "local")
    warm = time.monotonic() - warm_start
    assert again.returncode == 0
    assert "0 installed" in again.stdout and "1 from the cache" in again.stdout
    print(f"cold build {cold:.2f}s, warm build {warm:.2f}s")
    r = run(ws, "query", "local", "UsesTabulate.py", "Version")
    assert json.loads(r.stdout) == "0.9.0"
    r = run(ws, "query", "local", "UsesTabulate.py", "Where")
    assert json.loads(r.stdout).startswith(str(ws.mnt / "pip"))


def test_bad_pip_is_a_build_error_naming_the_entry(tmp_path):
    ws = new_workspace(tmp_path / "ws")
    ws.manifest["Pips"] = [{"ID": "-e git+nothing"}]
    ws.add_query("Q.py", "def F():\n    return 1\n")
    r = run(ws, "build", "local")
    assert r.returncode == 1
    assert "Pips" in r.stderr and "-e git+nothing" in r.stderr
    # the rest of the workspace still loads and serves
    assert json.loads(run(ws, "query", "local", "Q.py", "F").stdout) == 1
