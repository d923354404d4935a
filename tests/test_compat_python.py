"""CoFlows' Python API (`QuantApp.Kernel`, `QuantApp.Engine`, `import Cs.Base`, `Base.*` imports)
over HTTP on a real server with real Mono and a real JVM.

The fixtures are our own but use the API exactly as CoFlows' example workspace does
(`Queries/PythonQuery.py`, `Agents/PythonAgent.py`, `Base/{pyBase,csBase,javabase}`): the
caller and their permission as `qak.User.ContextUser` / `qak.User.PermissionContext`, Java
through `qak.JVM.Runtime.CreateInstance`, C# through a .NET namespace import with CoFlows'
float → int conversion, a Python Base module by its three names, and an agent built with
`qae.FPKG(...)` whose Body answers `POST /flow/agent/{id}` and whose Add hook fires on M writes.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from typing import Any

import pytest

from conftest import ADMIN_KEY, Server, Workspace, new_workspace

pytestmark = pytest.mark.skipif(shutil.which("javac") is None or shutil.which("mono") is None,
                                reason="needs a JDK and Mono")

WID = "7a1c3e52-9d04-4b6e-8f21-3c5d6e7f8a90"
WID2 = "0b2d4f61-8e13-4a5c-9d72-1e3f5a7b9c02"
READER, WRITER = "reader@example.com", "writer@example.com"
AGENT_ID = f"{WID}-PythonAgent"

PYBASE = '''
class pybase:
    getName = "{name}"

    def _getAge(self):
        return 31.5

    getAge = property(fget=_getAge)

    def Add(self, x, y):
        return x + y

    def getInterests(self):
        return ["tea", "chess", "rowing"]
'''

CSBASE = '''
namespace Cs.Base
{
    using System.Collections.Generic;

    public class csBase
    {
        public string getName = "Ada";

        private double _age = 40.0;
        public double getAge
        {
            get { return _age; }
            set { _age = value; }
        }

        public List<string> getInterests = new List<string>{ "go", "jazz", "maps" };

        public int Add(int x, int y) => x + y;
    }
}
'''

JAVABASE = '''
package javabase;

import java.util.*;

public class javaBase
{
    public javaBase(){}

    public String getName = "Grace";

    public double getAge = 50.0;

    public List<String> getInterests()
    {
        return Arrays.asList("ski", "piano");
    }

    public int Add(int x, int y)
    {
        return x + y;
    }
}
'''

QUERY = '''
import QuantApp.Kernel as qak
import QuantApp.Engine as qae
import Cs.Base as csb
import Base.pyBase.pybase
import pybase
import pyBase.pybase
import importlib

### <api name="Permission">
###     <description>The caller's level, as CoFlows' example</description>
###     <permissions>
###         <group id="$WID$" permission="view"/>
###     </permissions>
### </api>
def Permission(group="$WID$"):
    quser = qak.User.ContextUser
    permission = qak.User.PermissionContext(group)
    if permission == qak.AccessType.Write:
        return quser.FirstName + " WRITE"
    elif permission == qak.AccessType.Read:
        return quser.FirstName + " READ"
    elif permission == qak.AccessType.View:
        return quser.FirstName + " VIEW"
    else:
        return quser.FirstName + " DENIED"


def Who():
    u = qak.User.ContextUser
    same = qak.User.GetContextUser()
    return [u.ID, u.Email, u.FirstName, u.LastName, same.ID == u.ID]


def Me():
    return qak.User.ContextUser


def BySecret(secret):
    return [int(qak.User.PermissionContext(secret, "$WID$")), qak.User.ContextUserBySecret(secret).Email]


def AccessTypes():
    t = qak.AccessType
    return {"values": {m.name: int(m) for m in t}, "ints": [t.Write == 2, t.Read == 1, t.View == 0, t.Denied == -1,
            t.Invited == -2, t(1) is t.Read]}


def Cs():
    csbase = csb.csBase()

    age_in_5_years = csbase.Add(csbase.getAge, 5)
    result = "C# " + str(csbase.getName) + " will be " + str(age_in_5_years) + " in 5 years and is interested in:"
    for interest in csbase.getInterests:
        result = result + str(interest) + "\\n"

    return result


def CsDetails():
    csbase = csb.csBase()
    interests = csbase.getInterests
    csbase.getAge = 41
    return {"age": csbase.getAge, "type": type(csbase.getAge).__name__, "len": len(interests),
            "second": interests[1], "list": [str(x) for x in interests], "sum": csbase.Add(2.0, 3.0)}


def CsInterests():
    return {"list": csb.csBase().getInterests, "iterable": hasattr(csb.csBase(), "__iter__")}


def CsWrongArgs():
    return csb.csBase().Add(2.5, 1)


def Java():
    javabase = qak.JVM.Runtime.CreateInstance("javabase.javaBase", None)

    age_in_5_years = javabase.Add(int(javabase.getAge), 5)
    result = "Java " + str(javabase.getName) + " will be " + str(age_in_5_years) + " in 5 years and is interested in: \\n"

    for interest in javabase.getInterests():
        result = result + str(interest) + "\\n"

    return result


def PyBase():
    by_importlib = importlib.import_module("Base.pyBase.pybase")
    return {"Base.pyBase.pybase": Base.pyBase.pybase.pybase().getName, "pybase": pybase.pybase().getAge,
            "pyBase.pybase": pyBase.pybase.pybase().Add(1, 2), "same": Base.pyBase.pybase is pybase is pyBase.pybase,
            "importlib": by_importlib.pybase.getName, "interests": by_importlib.pybase().getInterests()}


def Ids():
    return ["$WID$", "$ID$"]
'''

# C#'s `Py.Import` is pythonnet's real import (importlib): each workflow must get its own Base.
PY_FROM_CS = '''
using Python.Runtime;

public class PyFromCs
{
    public static string Name()
    {
        using (Py.GIL())
        {
            dynamic pymodule = Py.Import("Base.pyBase.pybase");
            dynamic pybase = pymodule.pybase();
            return pybase.getName.ToString() + " " + pybase.Add((int)pybase.getAge, 5).ToString();
        }
    }
}
'''

# A second workflow whose Base file has the same name: `importlib` must give each its own.
QUERY2 = '''
import importlib

def Name():
    return importlib.import_module("Base.pyBase.pybase").pybase.getName
'''

AGENT = '''
import clr

import System
import QuantApp.Kernel as qak
import QuantApp.Engine as qae

import json
import datetime

workspaceID = "$WID$"

def Add(id, data):
    qak.M.Base("seen").Add({"hook": "Add", "entry": id, "item": data["item"], "agent": "$ID$"})

def Exchange(id, data):
    pass

def Remove(id, data):
    pass

def Load(data):
    qak.M.Base("seen").Add({"hook": "Load", "entry": None, "item": None, "agent": "$ID$"})

def Body(data):
    cmd = json.loads(data)
    if 'Data' in cmd and cmd['Data'] == 'Initial Execution':
        print('     Python Initial Execute @ : ' + str(datetime.datetime.now()))

    return data

def Job(timestamp, data):
    pass

def pkg():
    return qae.FPKG(
    workspaceID + "-PythonAgent", #ID
    workspaceID, #Workflow ID
    "Python Agent", #Name
    "Python Agent Sample", #Description
    "orders", #M ID Listener
    qae.Utils.SetFunction("Load", qae.Load(Load)),
    qae.Utils.SetFunction("Add", qak.MCallback(Add)),
    qae.Utils.SetFunction("Exchange", qak.MCallback(Exchange)),
    qae.Utils.SetFunction("Remove", qak.MCallback(Remove)),
    qae.Utils.SetFunction("Body", qae.Body(Body)),
    "0 * * ? * *", #Cron Schedule
    qae.Utils.SetFunction("Job", qae.Job(Job))
    )
'''


def _second_workflow(ws: Workspace) -> str:
    """A second workflow beside the first (same server), with a Base file of the same name."""
    root = ws.root / "mnt2"
    (root / "Base/pyBase").mkdir(parents=True)
    (root / "Queries").mkdir()
    (root / "Base/pyBase/pybase.py").write_text(PYBASE.format(name="second"))
    (root / "Queries/Q2.py").write_text(QUERY2)
    (root / "Queries/PyFromCs.cs").write_text(PY_FROM_CS)
    manifest = {"ID": WID2, "Name": "Second", "Base": [{"Name": "Base/pyBase/pybase.py",
                                                         "Content": "Base/pyBase/pybase.py"}],
                "Agents": [], "Queries": [{"Name": n, "Content": f"Queries/{n}", "ID": n} for n in ("Q2.py", "PyFromCs.cs")],
                "Permissions": [{"ID": "Public", "Permission": 1}], "NuGets": [], "Pips": [], "Jars": [], "Bins": [],
                "Files": []}
    (root / "package.json").write_text(json.dumps(manifest))
    return "mnt2/package.json"


def _make_users(ws: Workspace) -> dict[str, str]:
    from coflows.auth.store import UserStore
    from coflows.store import Database, database_url

    db = Database(database_url("sqlite", ws.config["Database"]["Connection"], ws.root))
    try:
        store = UserStore(db)
        store.add_user(READER, name="Rita Reader")
        store.add_user(WRITER, name="Walt Writer")
        store.grant(WID, READER, "read")  # the workflow's ID is a group
        store.grant(WID, WRITER, "write")
        store.add_group("Viewers", name="Viewers")
        store.grant("Viewers", READER, "view")
        return {who: store.new_key(who, "test")[1] for who in (READER, WRITER)}
    finally:
        db.dispose()


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, dict[str, str]]]:
    ws = new_workspace(tmp_path_factory.mktemp("compatpy") / "ws", name="Compat", wid=WID, public=1)
    ws.add_base("pyBase/pybase.py", PYBASE.format(name="first"))
    ws.manifest["Base"][-1]["Name"] = "Base/pyBase/pybase.py"  # as CoFlows' example names it
    ws.add_base("csBase/csBase.cs", CSBASE)
    ws.add_base("javabase/javaBase.java", JAVABASE)
    ws.add_query("CompatQuery.py", QUERY)
    ws.add_query("PyFromCs.cs", PY_FROM_CS)
    ws.add_agent("PythonAgent.py", AGENT)
    ws.config["Workflow"] = ["mnt/package.json", _second_workflow(ws)]
    ws.save()
    keys = _make_users(ws)
    server = Server(ws).start()
    try:
        yield server, keys
    finally:
        server.close()


def call(server: Server, fn: str, *args: Any, key: str | None = ADMIN_KEY, wid: str = WID,
         query: str = "CompatQuery.py") -> Any:
    headers = {"x-api-key": key} if key else {}
    r = server.post(f"/flow/query/{wid}/{query}/{fn}", json=list(args), headers=headers)
    assert r.status_code == 200, (fn, r.status_code, r.text, server.output()[-3000:])
    return r.json()


def test_the_workspace_loads_without_problems(env) -> None:
    server, _ = env
    r = server.get("/flow/agents", headers=server.admin())
    agents = {a["ID"]: a for a in r.json()}
    assert agents[AGENT_ID]["State"] == "running", (agents[AGENT_ID].get("Error"), server.output()[-3000:])
    assert agents[AGENT_ID]["Hooks"] == ["Load", "Add", "Exchange", "Remove", "Body", "Job"]


@pytest.mark.parametrize("who,expected", [(None, "Anonymous READ"), (READER, "Rita READ"), (WRITER, "Walt WRITE"),
                                          ("admin", "admin WRITE")])
def test_permission_as_coflows_example(env, who: str | None, expected: str) -> None:
    server, keys = env
    key = None if who is None else ADMIN_KEY if who == "admin" else keys[who]
    assert call(server, "Permission", key=key) == expected  # the workflow's ID is its group; Public is Read


@pytest.mark.parametrize("who,expected", [(None, "Anonymous DENIED"), (READER, "Rita VIEW"), (WRITER, "Walt DENIED")])
def test_permission_in_a_named_group(env, who: str | None, expected: str) -> None:
    server, keys = env
    assert call(server, "Permission", "Viewers", key=None if who is None else keys[who]) == expected


def test_context_user_fields(env) -> None:
    server, keys = env
    assert call(server, "Who", key=keys[WRITER]) == [WRITER, WRITER, "Walt", "Writer", True]
    assert call(server, "Who", key=None) == ["anonymous", "", "Anonymous", "", True]
    # returned as is, it is CoFlows' UserData object
    assert call(server, "Me", key=keys[READER]) == {"ID": READER, "Email": READER, "FirstName": "Rita",
                                                    "LastName": "Reader"}


def test_permission_by_secret(env) -> None:
    server, keys = env
    # anonymous code asks about a visitor by their key (CoFlows' Dash apps do)
    assert call(server, "BySecret", keys[READER], key=None) == [1, READER]
    assert call(server, "BySecret", keys[WRITER], key=None) == [2, WRITER]
    assert call(server, "BySecret", "not-a-key", key=None) == [-1, ""]
    assert call(server, "BySecret", ADMIN_KEY, key=None) == [2, ""]  # the server's admin key


def test_access_type_values(env) -> None:
    server, _ = env
    got = call(server, "AccessTypes")
    assert got["values"] == {"Invited": -2, "Denied": -1, "View": 0, "Read": 1, "Write": 2}
    assert got["ints"] == [True] * 6


def test_csharp_interop_converts_and_iterates(env) -> None:
    server, _ = env
    # getAge is a double (40.0); Add takes ints: CoFlows' pythonnet fork passed it, and so do we
    assert call(server, "Cs") == "C# Ada will be 45 in 5 years and is interested in:go\njazz\nmaps\n"
    assert call(server, "CsDetails") == {"age": 41.0, "type": "float", "len": 3, "second": "jazz",
                                         "list": ["go", "jazz", "maps"], "sum": 5}
    # a .NET list returned as is answers as a JSON list; a plain object is not a collection
    assert call(server, "CsInterests") == {"list": ["go", "jazz", "maps"], "iterable": False}


def test_csharp_refusal_names_the_member(env) -> None:
    server, _ = env
    r = server.post(f"/flow/query/{WID}/CompatQuery.py/CsWrongArgs", json=[], headers=server.admin())
    assert r.status_code == 500
    err = r.json()["error"]
    assert err["type"] == "ForeignError" and "csBase.Add" in err["message"], err  # 2.5 is not integral


def test_java_interop_through_qak_jvm(env) -> None:
    server, _ = env
    assert call(server, "Java") == "Java Grace will be 55 in 5 years and is interested in: \nski\npiano\n"


def test_python_base_by_its_three_names_and_importlib(env) -> None:
    server, _ = env
    assert call(server, "PyBase") == {"Base.pyBase.pybase": "first", "pybase": 31.5, "pyBase.pybase": 3,
                                      "same": True, "importlib": "first", "interests": ["tea", "chess", "rowing"]}


def test_two_workflows_base_modules_do_not_collide(env) -> None:
    server, _ = env
    assert call(server, "Name", wid=WID2, query="Q2.py") == "second"
    assert call(server, "PyBase")["importlib"] == "first"
    assert call(server, "Name", wid=WID2, query="Q2.py") == "second"
    # from C# (Py.Import), the same: getAge is 31.5, (int) makes 31
    assert call(server, "Name", query="PyFromCs.cs") == "first 36"
    assert call(server, "Name", wid=WID2, query="PyFromCs.cs") == "second 36"
    assert call(server, "Name", query="PyFromCs.cs") == "first 36"


def test_wid_and_id_placeholders(env) -> None:
    server, _ = env
    assert call(server, "Ids") == [WID, "CompatQuery.py"]


def _seen(server: Server, hook: str, timeout: float = 60) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    rows: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        r = server.get("/m/data?type=seen", headers=server.admin())
        assert r.status_code == 200, r.text
        rows = [x for x in r.json() if x["hook"] == hook]
        if rows:
            return rows
        time.sleep(0.1)
    raise AssertionError(f"no {hook} record in 'seen' after {timeout}s: {rows}\n{server.output()[-3000:]}")


def test_agent_body_answers_over_http(env) -> None:
    server, keys = env
    payload = {"Function": "Hello", "Data": [1, 2]}
    r = server.post(f"/flow/agent/{AGENT_ID}", json=payload, headers={"x-api-key": keys[WRITER]})
    assert r.status_code == 200, r.text
    assert json.loads(r.json()) == payload  # Body got the JSON text and returned it
    assert server.post(f"/flow/agent/{AGENT_ID}", json=payload).status_code == 401  # anonymous may only View


def test_agent_load_and_add_hooks(env) -> None:
    server, _ = env
    assert _seen(server, "Load")[0]["agent"] == AGENT_ID  # $ID$ in an agent: its default ID
    r = server.post("/m/add?type=orders", json={"item": "scones"}, headers=server.admin())
    assert r.status_code == 200, r.text
    entry = r.json()["ID"]
    deadline = time.monotonic() + 60
    while not any(x["entry"] == entry for x in _seen(server, "Add")) and time.monotonic() < deadline:
        time.sleep(0.1)
    rows = [x for x in _seen(server, "Add") if x["entry"] == entry]
    assert rows and rows[0]["item"] == "scones" and rows[0]["agent"] == AGENT_ID


def test_quantapp_in_the_jupyter_kernel(tmp_path_factory: pytest.TempPathFactory) -> None:
    """A notebook cell of the `coflows` kernel imports QuantApp.Kernel and sees whoever ran it."""
    pytest.importorskip("ipykernel")
    pytest.importorskip("jupyterlab")
    from test_jupyter import ADMIN_USER as LAB_ADMIN  # /lab is for admins
    from test_jupyter import Kernel, lab

    gen = lab.__wrapped__(tmp_path_factory)  # the Jupyter tests' server, for this test alone
    server = next(gen)
    try:
        k = Kernel(server, LAB_ADMIN)
        try:
            got = k.run("import QuantApp.Kernel as qak\nimport QuantApp.Engine as qae\n"
                        "u = qak.User.ContextUser\n"
                        "[u.Email, u.ID, u.FirstName, int(qak.User.PermissionContext('$WID$')), "
                        "qak.AccessType.Write == 2, qae.FPKG.__name__]")
            assert got["error"] is None, got
            assert got["result"] == repr([LAB_ADMIN, LAB_ADMIN, "Ada", 2, True, "FPKG"])
        finally:
            k.close()
    finally:
        gen.close()


def test_import_clr_in_a_workspace_without_csharp(tmp_path, start_server) -> None:
    """`import clr` / `import System` in Python plans the C# engine, which must start before V8."""
    ws = new_workspace(tmp_path / "ws")
    ws.add_query("Hello.js", "function hello(n) { return 'hi ' + n; }\n")
    ws.add_query("Net.py", "import clr\nimport System\n\n"
                           "def Nl():\n    return [System.Environment.NewLine, System.Math.Max(2, 3)]\n")
    server = start_server(ws)
    wid = ws.manifest["ID"]
    assert server.post(f"/flow/query/{wid}/Net.py/Nl", json=[]).json() == ["\n", 3]
    assert server.post(f"/flow/query/{wid}/Hello.js/hello", json=["you"]).json() == "hi you"
