"""End to end: a real `coflows server` on a free loopback port, called over HTTP."""

import os
import time

import pytest

from conftest import ADMIN_KEY, new_workspace

CALC = '''
import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

### <api name="Add">
###   <description>Adds two integers.</description>
###   <param name="x" type="integer">first</param>
### </api>
def Add(x: int, y: int) -> int:
    return x + y

def Concat(a, b):
    return a + b

def Table():
    return [{"name": "a", "value": 1}, {"name": "b", "value": 2.5}]

def Shapes():
    @dataclass
    class P:
        x: int
        when: dt.date
    return {"set": {3, 1, 2}, "decimal": Decimal("1.25"), "date": dt.date(2024, 1, 2),
            "point": P(1, dt.date(2020, 5, 6)), "tuple": (1, "a"), "none": None, "nan": float("nan")}

def Raw(body: str):
    return body

def Fail():
    raise KeyError("no such thing")

def Talk(word: str):
    print("said", word)
    return word

def Flags(on: bool, when: dt.datetime, amount: Decimal, xs: list[int] = []):
    return {"on": on, "when": when, "amount": amount, "xs": xs}
'''


@pytest.fixture
def server(tmp_path, start_server):
    ws = new_workspace(tmp_path / "ws", name="Calc")
    ws.add_query("Calc.py", CALC)
    return start_server(ws)


WID = "11111111-2222-3333-4444-555555555555"


def test_positional_named_and_post_arguments(server):
    assert server.get("/flow/query/Calc/Calc.py/Add?p[0]=1&p[1]=2").json() == 3
    assert server.get(f"/flow/query/{WID}/Calc.py/Add?p[0]=1&p[1]=2").json() == 3
    assert server.get("/flow/query/calc/Calc.py/Add?x=1&y=2").json() == 3  # Name is case-insensitive
    assert server.get("/flow/query/Calc/Calc.py/Add?p[0]=1&y=5").json() == 6
    assert server.post("/flow/query/Calc/Calc.py/Add", json={"x": 2, "y": 3}).json() == 5
    assert server.post("/flow/query/Calc/Calc.py/Add", json=[4, 5]).json() == 9
    assert server.get("/flow/query/Calc/Calc.py/Concat?p[0]=1&p[1]=2").json() == "12"  # undeclared: strings
    raw = server.post("/flow/query/Calc/Calc.py/Raw", content=b'{"a": [1, 2]}')
    assert raw.json() == '{"a": [1, 2]}'
    flags = server.get("/flow/query/Calc/Calc.py/Flags?on=yes&when=2024-03-01T12:00:00Z&amount=1.50&xs=1,2").json()
    assert flags == {"on": True, "when": "2024-03-01T12:00:00+00:00", "amount": 1.5, "xs": [1, 2]}


@pytest.mark.parametrize("url, parameter, text", [
    ("/flow/query/Calc/Calc.py/Add?p[0]=1&p[1]=abc", "y", "expected int"),
    ("/flow/query/Calc/Calc.py/Add?p[0]=1", "y", "missing argument 'y'"),
    ("/flow/query/Calc/Calc.py/Add?p[0]=1&p[1]=2&p[2]=3", None, "takes 2 argument"),
    ("/flow/query/Calc/Calc.py/Add?x=1&y=2&z=3", "z", "unknown parameter 'z'"),
    ("/flow/query/Calc/Calc.py/Add?p[0]=1&p[2]=3", "p[1]", "p[1] is missing"),
    ("/flow/query/Calc/Calc.py/Flags?on=maybe&when=2024-01-01&amount=1", "on", "expected bool"),
])
def test_bad_arguments_are_400_naming_the_parameter(server, url, parameter, text):
    r = server.get(url)
    assert r.status_code == 400
    err = r.json()["error"]
    assert text in err["message"]
    assert err.get("parameter") == parameter


def test_bad_post_body_is_400(server):
    r = server.post("/flow/query/Calc/Calc.py/Add", content=b'{"x": 1,')
    assert r.status_code == 400 and "invalid JSON at line 1" in r.json()["error"]["message"]
    r = server.post("/flow/query/Calc/Calc.py/Add", json="just a string")
    assert r.status_code == 400


def test_csv_txt_and_serialisation(server):
    r = server.get("/flow/query/Calc/Calc.py/Table.csv")
    assert r.headers["content-type"].startswith("text/csv")
    assert r.text == "name,value\na,1\nb,2.5\n"
    r = server.get("/flow/query/Calc/Calc.py/Add.txt?p[0]=1&p[1]=2")
    assert r.headers["content-type"].startswith("text/plain") and r.text == "3"
    shapes = server.get("/flow/query/Calc/Calc.py/Shapes").json()
    assert shapes == {"set": [1, 2, 3], "decimal": 1.25, "date": "2024-01-02",
                      "point": {"x": 1, "when": "2020-05-06"}, "tuple": [1, "a"], "none": None, "nan": None}


def test_not_found_is_404_json(server):
    for url, what in [("/flow/query/Nope/Calc.py/Add", "workflow"), ("/flow/query/Calc/Nope.py/Add", "query"),
                      ("/flow/query/Calc/Calc.py/Nope", "function")]:
        r = server.get(url)
        assert r.status_code == 404
        assert f"unknown {what}" in r.json()["error"]["message"]


def test_user_exception_is_500_and_the_server_stays_up(server):
    r = server.get("/flow/query/Calc/Calc.py/Fail")
    assert r.status_code == 500
    err = r.json()["error"]
    assert err["type"] == "KeyError" and "no such thing" in err["message"]
    assert "stack" not in err  # tracebacks are for admins
    r = server.get("/flow/query/Calc/Calc.py/Fail", headers=server.admin())
    assert "Calc.py\", line" in r.json()["error"]["stack"]
    assert server.get("/flow/query/Calc/Calc.py/Add?p[0]=1&p[1]=1").json() == 2


def test_print_goes_to_the_server_log_tagged(server):
    assert server.get("/flow/query/Calc/Calc.py/Talk?word=bonjour").json() == "bonjour"
    deadline = time.time() + 5
    while "said bonjour" not in server.output() and time.time() < deadline:
        time.sleep(0.05)
    line = next(ln for ln in server.output().splitlines() if "said bonjour" in ln)
    assert "[Calc/Calc.py/Talk]" in line  # the workflow's Name, not its ID (README)


def test_hot_reload_over_http(server):
    path = server.ws.mnt / "Queries" / "Calc.py"
    before = path.stat().st_mtime_ns
    path.write_text(CALC.replace("return x + y", "return x * y"))
    os.utime(path, ns=(before + 10**9, before + 10**9))
    assert server.get("/flow/query/Calc/Calc.py/Add?p[0]=3&p[1]=4").json() == 12
    path.write_text("def Add(x, y):\n  return (\n")
    os.utime(path, ns=(before + 2 * 10**9, before + 2 * 10**9))
    assert server.get("/flow/query/Calc/Calc.py/Add?p[0]=3&p[1]=4").json() == 12  # old version serves
    status = server.get("/flow/workflows").json()[0]["queries"][0]
    assert status["errors"] and "Calc.py:" in status["errors"][0]


def test_openapi_per_query_and_global(server):
    doc = server.get("/flow/openapi/Calc/Calc.py").json()
    assert doc["openapi"] == "3.1.0"
    op = doc["paths"][f"/flow/query/{WID}/Calc.py/Add"]["get"]
    assert op["description"] == "Adds two integers."
    assert [(p["name"], p["schema"]["type"], p["required"]) for p in op["parameters"]] == [
        ("x", "integer", True), ("y", "integer", True)]
    post = doc["paths"][f"/flow/query/{WID}/Calc.py/Add"]["post"]
    assert post["requestBody"]["content"]["application/json"]["schema"]["required"] == ["x", "y"]
    yaml_doc = server.get("/flow/openapi/Calc/Calc.py?format=yaml")
    assert yaml_doc.text.startswith("openapi: 3.1.0")
    everything = server.get("/openapi.json").json()
    assert f"/flow/query/{WID}/Calc.py/Table" in everything["paths"]
    page = server.get("/docs")
    assert "swagger-ui-bundle.js" in page.text and "/openapi.json" in page.text
    js = server.get("/docs/static/swagger-ui-bundle.js")
    assert js.status_code == 200 and len(js.content) > 100_000


def test_health(server):
    body = server.get("/health").json()
    assert body["status"] == "ok" and body["workflows"] == 1 and "python" in body["engines"]


def test_auth_private_workflow(tmp_path, start_server):
    ws = new_workspace(tmp_path / "ws", name="Private", public=None)
    ws.add_query("Calc.py", CALC)
    s = start_server(ws)
    url = "/flow/query/Private/Calc.py/Add?p[0]=1&p[1]=2"
    assert s.get(url).status_code == 401
    assert s.get(url, headers={"x-api-key": ADMIN_KEY}).json() == 3
    assert s.get(url, headers={"_cokey": ADMIN_KEY}).json() == 3
    assert s.get(url + f"&_cokey={ADMIN_KEY}").json() == 3  # _cokey is not an argument
    bad = s.get(url, headers={"x-api-key": "wrong"})
    assert bad.status_code == 401 and bad.json()["error"]["message"] == "invalid API key"
    assert s.get("/flow/openapi/Private/Calc.py").status_code == 401
    anonymous_paths = s.get("/openapi.json").json()["paths"]
    assert "/health" in anonymous_paths  # the server's own routes, described for everyone
    assert not any(p.startswith("/flow/query/") for p in anonymous_paths)  # no function it may not call
    assert "Add" in str(s.get("/openapi.json", headers=s.admin()).json()["paths"])


def test_function_permissions_narrow_access(tmp_path, start_server):
    ws = new_workspace(tmp_path / "ws", name="Perm", public=1)
    ws.add_query("P.py", '''
### <api name="Secret">
###   <permissions><group id="$WID$" permission="write"/></permissions>
### </api>
def Secret():
    return "s"

### <api name="Open">
###   <permissions><group id="$WID$" permission="read"/></permissions>
### </api>
def Open():
    return "o"
''')
    s = start_server(ws)
    assert s.get("/flow/query/Perm/P.py/Open").json() == "o"
    assert s.get("/flow/query/Perm/P.py/Secret").status_code == 401
    assert s.get("/flow/query/Perm/P.py/Secret", headers=s.admin()).json() == "s"
    paths = s.get("/flow/openapi/Perm/P.py").json()["paths"]
    assert any(p.endswith("/Open") for p in paths) and not any(p.endswith("/Secret") for p in paths)
