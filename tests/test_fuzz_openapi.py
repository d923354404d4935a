"""Fuzz the whole OpenAPI document (`/openapi.json`) with schemathesis against a real server.

Every operation (the functions of queries in Python, C#, Java and JavaScript, and the server's
own routes: health, workflows, M, flows, agents) gets a few valid and invalid requests, as the
admin and as an anonymous caller. None may answer 5xx, except a 500 that user code raised: its
error body says `"origin": "user"` (see `server/responses.py`, `docs/security.md`).

Bounded in time: a few examples per operation, no shrinking, no example database.
"""

from __future__ import annotations

import hypothesis
import hypothesis.errors
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase
from schemathesis import GenerationMode

from conftest import ADMIN_KEY, Server, new_workspace

pytestmark = pytest.mark.timeout(300)

PY = '''
import datetime as dt

def Add(x: int, y: int) -> int:
    return x + y

def Hello(name: str = "world") -> str:
    return "Hello, " + name

def Mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0

def Day(d: dt.date, n: int = 1) -> str:
    return (d + dt.timedelta(days=max(min(n, 1000), -1000))).isoformat()

def Fail(message: str = "boom"):
    raise ValueError(message)

def Keys(data: dict) -> list:
    return sorted(map(str, data))
'''

CS = '''
using System;
using System.Collections.Generic;

public class Calc
{
    public static int Add(int x, int y) { return x + y; }
    public static string Hello(string name = "world") { return "Hello, " + name; }
    public static double Mean(double[] values)
    {
        double s = 0; foreach (var v in values) s += v;
        return values.Length == 0 ? 0 : s / values.Length;
    }
    public static bool Flag(bool on) { return !on; }
    public static int Fail(string message = "boom") { throw new InvalidOperationException(message); }
}
'''

JAVA = '''
import java.util.List;

public class JCalc {
    public static int Add(int x, int y) { return x + y; }
    public static String Hello(String name) { return "Hello, " + name; }
    public static double Mean(List<Double> values) {
        double s = 0; for (Double v : values) s += v == null ? 0 : v;
        return values.isEmpty() ? 0 : s / values.size();
    }
    public static long Big(long n) { return n; }
    public static void Fail(String message) { throw new IllegalStateException(message); }
}
'''

JS = '''
/**
 * @param {number} x
 * @param {number} y
 */
function Add(x, y) { return x + y }

/** @param {string} [name] */
function Hello(name = 'world') { return 'Hello, ' + name }

/** @param {number[]} values */
function Mean(values) { return values.length ? values.reduce((a, b) => a + b, 0) / values.length : 0 }

function Fail(message = 'boom') { throw new Error(String(message)) }
'''

@pytest.fixture(scope="module")
def server(tmp_path_factory):
    ws = new_workspace(tmp_path_factory.mktemp("fuzz") / "ws", name="Fuzz")
    ws.add_query("Calc.py", PY)
    ws.add_query("Calc.cs", CS)
    ws.add_query("JCalc.java", JAVA)
    ws.add_query("Calc.js", JS)
    ws.manifest["Flows"] = [{"Name": "sum", "Spec": "Calc.py/Add", "Aliases": {}}]
    ws.save()
    s = Server(ws).start(timeout=180)
    # something to find: an M entry and a finished flow run
    s.post("/m/add?type=fuzz", json={"a": 1}, headers=s.admin())
    s.post(f"/flows/{ws.manifest['ID']}/runs", json={"spec": "Calc.py/Hello"}, headers=s.admin())
    yield s
    s.close()


def _schema(server: Server, headers: dict[str, str]) -> schemathesis.BaseSchema:
    schema = schemathesis.openapi.from_url(f"{server.base}/openapi.json", headers=headers, timeout=30)
    # Server-Sent Events never end, and a restart ends the server being fuzzed: described, not fuzzed
    return schema.exclude(path_regex=r"/events$|^/flow/logs/|^/flow/cloud/restart$")


@pytest.fixture(scope="module")
def admin_schema(server):
    return _schema(server, {"x-api-key": ADMIN_KEY})


@pytest.fixture(scope="module")
def anonymous_schema(server):
    return _schema(server, {})


def check_no_server_error(response, case) -> None:
    """5xx only when user code raised (error.origin == 'user'); every error body is JSON."""
    status = response.status_code
    if status >= 500:
        try:
            err = response.json()["error"]
        except Exception:  # noqa: BLE001
            err = {}
        assert status == 500 and err.get("origin") == "user", (
            f"{case.method} {case.formatted_path} → {status}: {response.text[:500]}")
    if status >= 400:
        media = response.headers.get("content-type") or [""]
        media = media[0] if isinstance(media, list) else media
        assert media.startswith("application/json"), (
            f"{case.method} {case.formatted_path} → {status} without a JSON body: {response.text[:200]}")


_SETTINGS = hypothesis.settings(max_examples=15, deadline=None, derandomize=True, database=None,
                                phases=[Phase.explicit, Phase.generate],
                                suppress_health_check=list(HealthCheck))


def fuzz(schema: schemathesis.BaseSchema, headers: dict[str, str]) -> list[str]:
    """Valid and invalid requests for every operation; the failures found (one per operation and mode).

    Driven per operation with hypothesis directly (schemathesis' pytest plugin does not run on
    pytest 9), so one failure does not hide the others.
    """
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            found: list[str] = []

            @_SETTINGS
            @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
            def run(case) -> None:
                if found:
                    return
                try:
                    check_no_server_error(case.call(headers=headers, timeout=60), case)
                except AssertionError as exc:
                    found.append(str(exc))
                except Exception as exc:  # noqa: BLE001 - the connection broke: the server failed too
                    found.append(f"{case.method} {case.formatted_path}: {type(exc).__name__}: {exc}")

            try:
                run()
            except hypothesis.errors.Unsatisfiable:
                pass  # nothing to make invalid (no parameters, no body)
            failures += found
    assert operations > 30, operations
    return failures


def test_admin_gets_no_server_errors(admin_schema):
    failures = fuzz(admin_schema, {"x-api-key": ADMIN_KEY})
    assert not failures, "\n".join(failures)


def test_anonymous_gets_no_server_errors(anonymous_schema):
    failures = fuzz(anonymous_schema, {})
    assert not failures, "\n".join(failures)


def test_the_document_describes_every_route(server):
    paths = server.get("/openapi.json", headers=server.admin()).json()["paths"]
    for path in ("/health", "/flow/workflows", "/m/data", "/m/add", "/flows/runs", "/flows/{wid}/runs",
                 "/flows/runs/{run_id}/cancel", "/flow/agents", "/flow/agent/{id}", "/flow/ActiveAgentToggle"):
        assert path in paths, path
    wid = server.ws.manifest["ID"]
    for q in ("Calc.py", "Calc.cs", "JCalc.java", "Calc.js"):
        assert f"/flow/query/{wid}/{q}/Add" in paths, q
    add = paths[f"/flow/query/{wid}/Calc.py/Add"]["post"]["responses"]
    assert {"400", "413", "500", "503", "504"} <= set(add)
