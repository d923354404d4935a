"""`coflows add …` edits package.json like CoFlows' add.sh."""

import json
import subprocess
import sys

from conftest import new_workspace


def coflows(ws, *args):
    return subprocess.run([sys.executable, "-m", "coflows", "add", *args], capture_output=True, text=True, cwd=ws.root)


def manifest(ws):
    return json.loads((ws.mnt / "package.json").read_text())


def test_add_packages(tmp_path):
    ws = new_workspace(tmp_path / "ws")
    assert coflows(ws, "pip", "requests==2.32.3").returncode == 0
    assert coflows(ws, "pip", "Requests>=2.31").returncode == 0  # same project: replaced
    assert coflows(ws, "nuget", "Newtonsoft.Json", "13.0.3").returncode == 0
    assert coflows(ws, "jar", "com.google.code.gson:gson:2.10.1").returncode == 0
    assert coflows(ws, "jar", "https://repo1.maven.org/maven2/org/json/json/20180813/json-20180813.jar").returncode == 0
    m = manifest(ws)
    assert m["Pips"] == [{"ID": "Requests>=2.31"}]
    assert m["NuGets"] == [{"ID": "Newtonsoft.Json", "Version": "13.0.3"}]
    assert m["Jars"] == [{"ID": "com.google.code.gson:gson", "Version": "2.10.1"},
                         {"Url": "https://repo1.maven.org/maven2/org/json/json/20180813/json-20180813.jar"}]
    bad = coflows(ws, "jar", "not-a-jar")
    assert bad.returncode == 2 and "neither a URL nor group:artifact:version" in bad.stderr


def test_add_query_from_template_is_callable(tmp_path):
    ws = new_workspace(tmp_path / "ws")
    assert coflows(ws, "query", "py", "Greeter").returncode == 0
    assert manifest(ws)["Queries"][-1] == {"Name": "Greeter.py", "Content": "Queries/Greeter.py", "ID": "Greeter.py"}
    r = subprocess.run([sys.executable, "-m", "coflows", "query", "local", "Greeter.py", "Hello", "you"],
                       capture_output=True, text=True, cwd=ws.root)
    assert json.loads(r.stdout) == "Hello, you!"
    again = coflows(ws, "query", "py", "Greeter")
    assert again.returncode == 2 and "already exists" in again.stderr
