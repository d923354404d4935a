"""package.json: the whole CoFlows schema kept, and what `build` does to it."""

import json
import subprocess
import sys
import uuid

import pytest

from coflows.errors import ManifestError
from coflows.workspace.manifest import load_manifest, save_manifest
from coflows.workspace.scan import scan_workspace

FULL = {
    "ID": "9b926680-059a-4a57-8ea8-a1d6c623c760",
    "Name": "Workflow",
    "Base": [{"Name": "csBase/csBase.cs", "Content": "Base/csBase/csBase.cs"}],
    "Agents": [{"Name": "PythonAgent.py", "Content": "Agents/PythonAgent.py", "Exe": "pkg"}],
    "Queries": [{"Name": "PythonQuery.py", "Content": "Queries/PythonQuery.py", "ID": "PythonQuery.py"}],
    "Permissions": [{"ID": "root", "Permission": 2}, {"ID": "Public", "Permission": 0}],
    "NuGets": [{"ID": "Accord.MachineLearning", "Version": "3.8.0"}],
    "Pips": [{"ID": "matplotlib"}],
    "Jars": [{"Url": "https://repo1.maven.org/maven2/org/json/json/20180813/json-20180813.jar"}],
    "Bins": [],
    "Files": [{"Name": "my.azureauth", "Content": "Files/my.azureauth"}],
    "ReadMe": "README.md", "Publisher": None, "PublishTimestamp": "0001-01-01T00:00:00",
    "AutoDeploy": True,
    "Container": {"Type": "", "Request": {"Cpu": "", "Mem": ""}, "Limit": {"Cpu": "", "Mem": ""},
                  "VolumeMounts": None, "Storage": None},
    "SomethingNew": {"kept": True},
}


def test_full_schema_round_trips_without_loss(tmp_path):
    path = tmp_path / "package.json"
    path.write_text(json.dumps(FULL))
    m = load_manifest(path)
    assert m.Agents[0].Exe == "pkg"
    assert m.NuGets[0].Version == "3.8.0"
    assert m.Permissions[1].ID == "Public" and m.Permissions[1].Permission == 0
    save_manifest(path, m)
    again = json.loads(path.read_text())
    for key, value in FULL.items():
        assert again[key] == value, key


@pytest.mark.parametrize("patch, where", [
    ({"Permissions": [{"ID": "x", "Permission": 5}]}, "Permissions[0].Permission"),
    ({"Queries": [{"Name": "q.py"}]}, "Queries[0].Content"),
    ({"AutoDeploy": "sometimes"}, "AutoDeploy"),
])
def test_invalid_manifest_names_path(tmp_path, patch, where):
    path = tmp_path / "package.json"
    path.write_text(json.dumps({**FULL, **patch}))
    with pytest.raises(ManifestError) as e:
        load_manifest(path)
    assert f"{path}: {where}: " in str(e.value)


def test_scan_generates_id_appends_and_never_deletes(tmp_path):
    (tmp_path / "Queries" / "sub").mkdir(parents=True)
    (tmp_path / "Queries" / "a.py").write_text("def f(): return 1\n")
    (tmp_path / "Queries" / "sub" / "b.py").write_text("def g(): return 2\n")
    (tmp_path / "Queries" / "a.pyc").write_bytes(b"x")
    (tmp_path / "Base").mkdir()
    (tmp_path / "Base" / "lib.py").write_text("X = 1\n")
    (tmp_path / "Agents").mkdir()
    (tmp_path / "Agents" / "ag.py").write_text("def pkg(): pass\n")
    (tmp_path / "Files" / ".ipynb_checkpoints").mkdir(parents=True)
    (tmp_path / "Files" / "data.csv").write_text("a,b\n")
    (tmp_path / "Files" / ".ipynb_checkpoints" / "x").write_text("")
    path = tmp_path / "package.json"
    path.write_text(json.dumps({"ID": "", "Name": "W", "Queries": [
        {"Name": "gone.py", "Content": "Queries/gone.py", "ID": "gone.py"}]}))
    m = load_manifest(path)
    result = scan_workspace(m, tmp_path)
    assert result.generated_id and uuid.UUID(m.ID)
    assert [q.ID for q in m.Queries] == ["gone.py", "a.py", "sub/b.py"]  # the missing one is kept
    assert [b.Content for b in m.Base] == ["Base/lib.py"]
    assert m.Agents[0].Exe == "pkg"
    assert [f.Content for f in m.Files] == ["Files/data.csv"]
    again = scan_workspace(m, tmp_path)
    assert not again.changed


def test_build_local_writes_back_and_reports_errors(tmp_path):
    mnt = tmp_path / "mnt"
    (mnt / "Queries").mkdir(parents=True)
    (mnt / "Queries" / "good.py").write_text("def Add(x: int, y: int):\n    return x + y\n")
    (mnt / "Queries" / "bad.py").write_text("def Broken(:\n    pass\n")
    (mnt / "package.json").write_text(json.dumps({"ID": "", "Name": "W", "Queries": [
        {"Name": "missing.py", "Content": "Queries/missing.py", "ID": "missing.py"}]}))
    (tmp_path / "coflows_config.json").write_text(json.dumps({"Workflow": "mnt/package.json"}))
    r = subprocess.run([sys.executable, "-m", "coflows", "build", "local"], capture_output=True,
                       text=True, cwd=tmp_path)
    written = json.loads((mnt / "package.json").read_text())
    assert written["ID"]
    assert [q["ID"] for q in written["Queries"]] == ["missing.py", "bad.py", "good.py"]
    assert r.returncode == 1
    assert "Queries/bad.py:1:" in r.stderr and "SyntaxError" in r.stderr
    assert "missing.py" in r.stderr and "not found" in r.stderr
    assert "Traceback" not in r.stderr
