"""The CLI and the CoFlows-style bin/ scripts, run as a user would."""

import json
import subprocess
import sys
from pathlib import Path

from conftest import ADMIN_KEY, new_workspace

REPO = Path(__file__).resolve().parent.parent


def run(args, cwd, **kw):
    return subprocess.run([sys.executable, "-m", "coflows", *args], capture_output=True, text=True, cwd=cwd, **kw)


def test_query_local_prints_json_and_fails_with_status_1(tmp_path):
    ws = new_workspace(tmp_path / "ws")
    ws.add_query("Calc.py", "def Add(x: int, y: int):\n    return x + y\n\ndef Bad():\n    raise ValueError('nope')\n")
    r = run(["query", "local", "Calc.py", "Add", "1", "2"], ws.root)
    assert r.returncode == 0 and json.loads(r.stdout) == 3
    r = run(["query", "local", "Calc.py", "Bad"], ws.root)
    assert r.returncode == 1 and json.loads(r.stderr)["error"]["type"] == "ValueError"
    r = run(["query", "local", "Calc.py", "Add", "1", "x"], ws.root)
    assert r.returncode == 1 and "parameter 'y'" in r.stderr


def test_query_cloud_calls_the_configured_server(tmp_path, start_server):
    ws = new_workspace(tmp_path / "ws", public=None)
    ws.add_query("Calc.py", "def Add(x: int, y: int):\n    return x + y\n")
    server = start_server(ws)
    ws.config["Cloud"] = {"Host": f"127.0.0.1:{server.port}", "SecretKey": ADMIN_KEY, "SSL": False}
    ws.save()
    r = run(["query", "cloud", "Calc.py", "Add", "20", "22"], ws.root)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == 42
    ws.config["Cloud"]["SecretKey"] = "wrong"
    ws.save()
    r = run(["query", "cloud", "Calc.py", "Add", "1", "2"], ws.root)
    assert r.returncode == 1 and "invalid API key" in r.stderr


def test_bin_scripts_keep_coflows_argument_order(tmp_path):
    r = subprocess.run([str(REPO / "bin" / "query.sh"), "local", "PythonQuery.py", "Add", "1", "2"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == 3
    cfg = tmp_path / "other.json"
    cfg.write_text(json.dumps({"Workflow": str(REPO / "mnt" / "package.json"),
                               "Database": {"Connection": str(tmp_path / "db.sqlite")}}))
    r = subprocess.run([str(REPO / "bin" / "query_custom.sh"), str(cfg), "local", "PythonQuery.py", "Hello", "bin"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == "Hello from Base, bin!"
    r = subprocess.run([str(REPO / "bin" / "query.sh"), "local"], capture_output=True, text=True)
    assert r.returncode == 2 and "usage" in r.stderr
