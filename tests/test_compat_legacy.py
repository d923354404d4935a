"""Issue 16, the legacy parts: CoFlows' old URL forms, F#/VB/Scala sources, manifests as CoFlows writes them,
NuGets no feed has.

Real servers and real `coflows build local` runs on workspaces written here (shaped like the public CoFlows
example workspace, with names of our own).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from conftest import ADMIN_KEY, Server, Workspace, new_workspace

ADMIN = {"x-api-key": ADMIN_KEY}

CALC = '''
import time

def Add(x: int, y: int) -> int:
    return x + y

def Join(*parts):
    return "-".join(str(p) for p in parts)

def Table():
    return [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]

def Fail():
    raise ValueError("calc fails")

### <api name="Slow" timeout="1"/>
def Slow():
    time.sleep(5)
    return "late"

### <api name="Secret">
###   <permissions><group id="Admins" permission="read"/></permissions>
### </api>
def Secret():
    return "secret"
'''


def build(ws: Workspace) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "coflows", "build", "local"], capture_output=True, text=True,
                          cwd=ws.root, timeout=600)


# -- legacy URL forms -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def legacy(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("legacy")
    public = new_workspace(root / "pub", name="Pub", wid="aaaaaaaa-1111-2222-3333-444444444444", public=1)
    public.add_query("Calc.py", CALC)
    private = new_workspace(root / "priv", name="Priv", wid="bbbbbbbb-1111-2222-3333-444444444444", public=None)
    private.add_query("Calc.py", CALC)
    public.config["Workflow"] = [str(public.mnt / "package.json"), str(private.mnt / "package.json")]
    public.save()
    server = Server(public).start()
    try:
        yield server, public.manifest["ID"], private.manifest["ID"]
    finally:
        server.close()


FORMS = {  # the three legacy forms: (path, workflow key, query key, function key)
    "getquery": ("/flow/getquery", "wid", "qid", "name"),
    "m/getwb": ("/m/getwb", "workbook", "id", "name"),
    "flow/getwb": ("/flow/getwb", "workbook", "id", "name"),
}


def url(form: str, wid: str, qid: str, name: str, rest: str = "") -> str:
    path, w, q, n = FORMS[form]
    return f"{path}?{w}={wid}&{q}={qid}&{n}={name}" + (f"&{rest}" if rest else "")


@pytest.mark.parametrize("form", FORMS)
def test_legacy_forms_answer_as_flow_query(legacy, form: str) -> None:
    server, pub, priv = legacy
    pairs = [  # (legacy query, /flow/query path)
        (("Calc.py", "Add", "p[0]=2&p[1]=40"), "Calc.py/Add?p[0]=2&p[1]=40"),
        (("Calc.py", "Add", "p=2&p=40"), "Calc.py/Add?p=2&p=40"),  # CoFlows' `string[] p`
        (("Calc.py", "Add", "x=1&y=2"), "Calc.py/Add?x=1&y=2"),  # beyond CoFlows, by name as /flow/query
        (("Calc.py", "Join", "p[0]=a&p[1]=b%26c&p[2]=3"), "Calc.py/Join?p[0]=a&p[1]=b%26c&p[2]=3"),
        (("Calc.py", "Table.csv", ""), "Calc.py/Table.csv"),
        (("Calc.py", "Table.txt", ""), "Calc.py/Table.txt"),
        (("Calc.py", "Add", "p[0]=x&p[1]=1"), "Calc.py/Add?p[0]=x&p[1]=1"),  # conversion error: 400
        (("Calc.py", "Add", "p[1]=1"), "Calc.py/Add?p[1]=1"),  # p[0] missing: 400
        (("Calc.py", "Fail", ""), "Calc.py/Fail"),  # user error: 500
        (("Calc.py", "Nope", ""), "Calc.py/Nope"),  # unknown function: 404
        (("Nope.py", "Add", ""), "Nope.py/Add"),  # unknown query: 404
        (("Calc.py", "Secret", ""), "Calc.py/Secret"),  # narrowed by <permissions>: 401 anonymous
    ]
    for (qid, name, rest), direct in pairs:
        for headers in (None, ADMIN):
            old = server.get(url(form, pub, qid, name, rest), headers=headers)
            new = server.get(f"/flow/query/{pub}/{direct}", headers=headers)
            assert (old.status_code, old.headers["content-type"], old.content) == \
                   (new.status_code, new.headers["content-type"], new.content), (form, qid, name, rest, headers)
    assert server.get(url(form, pub, "Calc.py", "Add", "p[0]=2&p[1]=40")).json() == 42
    assert server.get(url(form, pub, "Calc.py", "Table.csv")).text.splitlines()[0] == "a,b"
    assert server.get(url(form, pub, "Calc.py", "Secret"), headers=ADMIN).json() == "secret"
    # the workflow by name too, as /flow/query takes it
    assert server.get(url(form, "Pub", "Calc.py", "Add", "p[0]=1&p[1]=1")).json() == 2


@pytest.mark.parametrize("form", FORMS)
def test_legacy_forms_check_permissions_and_keys(legacy, form: str) -> None:
    server, pub, priv = legacy
    assert server.get(url(form, priv, "Calc.py", "Add", "p[0]=1&p[1]=2")).status_code == 401
    assert server.get(url(form, priv, "Calc.py", "Add", "p[0]=1&p[1]=2"), headers=ADMIN).json() == 3
    # the key as CoFlows' web app passes it: _cokey in the query string (never an argument)
    assert server.get(url(form, priv, "Calc.py", "Add", f"_cokey={ADMIN_KEY}&p[0]=1&p[1]=2")).json() == 3
    assert server.get(url(form, priv, "Calc.py", "Add", "_cokey=wrong&p[0]=1&p[1]=2")).status_code == 401
    assert server.get(url(form, pub, "Calc.py", "Add", "p[0]=1&p[1]=2"),
                      headers={"x-api-key": "wrong"}).status_code == 401


@pytest.mark.parametrize("form", FORMS)
def test_legacy_forms_keep_the_time_limit(legacy, form: str) -> None:
    server, pub, _ = legacy
    r = server.get(url(form, pub, "Calc.py", "Slow"))
    assert r.status_code == 504, r.text
    direct = server.get(f"/flow/query/{pub}/Calc.py/Slow")
    assert (r.status_code, r.json()["error"]["type"]) == (direct.status_code, direct.json()["error"]["type"])


@pytest.mark.parametrize("form", FORMS)
def test_bad_or_missing_naming_parameters_are_400_naming_them(legacy, form: str) -> None:
    server, pub, _ = legacy
    path, w, q, n = FORMS[form]
    cases = {
        w: f"{path}?{q}=Calc.py&{n}=Add",
        q: f"{path}?{w}={pub}&{n}=Add",
        n: f"{path}?{w}={pub}&{q}=Calc.py&{n}=",
    }
    for param, u in cases.items():
        r = server.get(u)
        assert r.status_code == 400, (u, r.text)
        err = r.json()["error"]
        assert err["parameter"] == param and f"'{param}'" in err["message"], err
    r = server.get(f"{path}?{w}={pub}&{q}=Calc.py&{q}=Other.py&{n}=Add")
    assert r.status_code == 400 and r.json()["error"]["parameter"] == q
    assert server.get(path).json()["error"]["parameter"] == w
    assert server.post(url(form, pub, "Calc.py", "Add")).status_code == 405  # GET only, as in CoFlows


def test_legacy_forms_are_in_the_openapi(legacy) -> None:
    server, _, _ = legacy
    paths = server.get("/openapi.json", headers=ADMIN).json()["paths"]
    for path, w, q, n in FORMS.values():
        names = [p["name"] for p in paths[path]["get"]["parameters"]]
        assert names[:3] == [w, q, n], names
