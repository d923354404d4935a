"""The C# engine end to end: a workspace with a C# Base and C# queries served by a real server.

One server (module scope) serves every test here; each test calls URLs as a client would.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from conftest import ADMIN_KEY, Server, Workspace, new_workspace

WID = "11111111-2222-3333-4444-555555555555"

BASE_GREETER = """\
using System;

namespace TestBase
{
    /// <summary>Shared by every C# query (and importable from Python).</summary>
    public static class Greeter
    {
        public static string Greet(string name) { return Prefix.Text + name; }
    }
}
"""

# a second Base file: both compile into ONE assembly, in manifest order
BASE_PREFIX = """\
namespace TestBase
{
    public static class Prefix
    {
        public const string Text = "hello ";
    }
}
"""

CALC = """\
using System;
using System.Collections.Generic;
using System.Linq;
using TestBase;

public enum Color { Red, Green, Blue }

public class Point
{
    public int X { get; set; }
    public double Y { get; set; }
    public List<string> Tags { get; set; }
    public Color Color { get; set; }
    public Point Next { get; set; }
}

public class Node
{
    public string Name { get; set; }
    public List<Node> Children { get; set; }
    public Dictionary<string, int> Counts { get; set; }
    public DateTime At { get; set; }
    public Color Color { get; set; }
    public object Nothing { get; set; }
    public double[] Values;
}

/// <api name="Add">
///   <description>Adds two integers.</description>
///   <returns>the sum</returns>
///   <param name="x">first number</param>
///   <param name="y">second number</param>
///   <permissions><group id="$WID$" permission="read"/></permissions>
/// </api>
public class Calc
{
    public static int Add(int x, int y) { return x + y; }
    public static int Add(int x, int y, int z) { return x + y + z; }

    /// <summary>Doubles a long.</summary>
    /// <param name="x">a 64-bit number</param>
    public static long Big(long x) { return x * 2; }
    public static double Half(double x) { return x / 2; }
    public static decimal Money(decimal x) { return x * 1.5m; }
    public static bool Not(bool b) { return !b; }
    public static string Upper(string s) { return s.ToUpperInvariant(); }
    public static DateTime NextDay(DateTime d) { return d.AddDays(1); }
    public static string Paint(Color c) { return "painted " + c; }
    public static int Sum(int[] xs) { return xs.Sum(); }
    public static double Total(List<double> xs) { return xs.Sum(); }
    public static int Count(Dictionary<string, int> d) { return d.Values.Sum(); }
    public static string Describe(Point p)
    {
        var s = p.X + ";" + p.Y + ";" + (p.Tags == null ? "-" : string.Join(",", p.Tags)) + ";" + p.Color;
        return p.Next == null ? s : s + ">" + Describe(p.Next);
    }
    public static string Kind(object a)
    {
        if (a == null) return "null";
        var d = a as Dictionary<string, object>;
        if (d != null) return "dict:" + string.Join(",", d.Select(kv => kv.Key + "=" + Kind(kv.Value)));
        var l = a as List<object>;
        if (l != null) return "list:" + string.Join(",", l.Select(Kind));
        return a.GetType().Name;
    }
    public static int Scale(int x, int factor = 10) { return x * factor; }
    public static int SumAll(params int[] xs) { return xs.Sum(); }

    public static int[] Range(int n) { return Enumerable.Range(0, n).ToArray(); }
    public static List<string> Names() { return new List<string> { "a", "b" }; }
    public static Dictionary<string, double> Weights() { return new Dictionary<string, double> { { "x", 0.25 }, { "y", 0.75 } }; }
    public static Node Tree()
    {
        return new Node
        {
            Name = "root", At = new DateTime(2024, 2, 3, 4, 5, 6), Color = Color.Green,
            Counts = new Dictionary<string, int> { { "a", 1 } }, Values = new[] { 1.5, 2.5 },
            Children = new List<Node> { new Node { Name = "leaf", At = new DateTime(2024, 1, 1) } },
        };
    }
    public static List<Point> Points(int n)
    {
        return Enumerable.Range(1, n).Select(i => new Point { X = i, Y = i / 2.0, Color = Color.Blue }).ToList();
    }
    public static object Nothing() { return null; }
    public static DateTime When() { return new DateTime(2024, 2, 3, 4, 5, 6, 7); }
    public static DateTime WhenUtc() { return new DateTime(2024, 2, 3, 4, 5, 6, DateTimeKind.Utc); }
    public static Color Favourite() { return Color.Blue; }
    public static DateTimeOffset Offset() { return new DateTimeOffset(2024, 2, 3, 4, 5, 6, TimeSpan.FromHours(2)); }
    public static TimeSpan Span() { return TimeSpan.FromSeconds(90.5); }
    public static System.Threading.Tasks.Task<int> Later(int x) { return System.Threading.Tasks.Task.Run(() => x * 2); }
    public static decimal[] Prices() { return new[] { 1.25m, 2m }; }
    public static string Wid() { return "$WID$"; }

    public static int Divide(int a, int b) { return a / b; }
    public static int Throw(string message) { throw new ArgumentException(message); }
    public static string Greet(string name) { return Greeter.Greet(name); }

    /// <api name="Version"><description>A static property.</description></api>
    public static string Version { get { return "2.0"; } }

    // C# -> any language through the host API
    public static string CallPython(string name) { return (string)Coflows.Host.Call("Helper.py", "greet", name); }
    public static long CallPythonTyped(int a, int b) { return Coflows.Host.Call<long>("Helper.py", "add", a, b); }
    public static string CallPythonCaught()
    {
        try { Coflows.Host.Call("Helper.py", "boom"); return "no error"; }
        catch (Coflows.CallException e) { return e.ErrorType + "|" + e.ErrorMessage + "|" + e.Language; }
    }
    public static object CallPythonUncaught() { return Coflows.Host.Call("Helper.py", "boom"); }
    public static string RoundTripTypes()
    {
        var d = (Dictionary<string, object>)Coflows.Host.Call("Helper.py", "shapes");
        return string.Join(",", d.OrderBy(kv => kv.Key).Select(kv => kv.Key + "=" + Kind(kv.Value)));
    }
    public static object RoundTrip() { return Coflows.Host.Call("Helper.py", "shapes"); }
    public static int CallCSharp(int a) { return Coflows.Host.Call<int>("Calc.cs", "Add", a, 100); }
}

public class Other
{
    public static int Add(int a) { return -a; }
    public static string Only() { return "other"; }
}
"""

HELPER_PY = """\
import coflows.runtime


def greet(name: str) -> str:
    return f"py hi {name}"


def add(a: int, b: int) -> int:
    return a + b


def boom():
    raise KeyError("missing")


def shapes():
    return {"i": 1, "f": 2.5, "s": "x", "b": True, "l": [1, "a"], "d": {"k": None}}


def base_from_python(name: str) -> str:
    import TestBase  # the workflow's C# Base namespace, imported from Python

    return TestBase.Greeter.Greet(name)


def csharp_from_python(a: int, b: int):
    return coflows.runtime.call("Calc.cs/Add", a, b)
"""

BROKEN_SYNTAX = """\
public class Broken
{
    public static int Ok() { return 1; }
    public static int F() { return 1 }
}
"""

BROKEN_SEMANTIC = """\
public class Broken2
{
    public static int F() { return undefinedName; }
}
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    ws: Workspace = new_workspace(tmp_path_factory.mktemp("clr") / "ws", wid=WID)
    ws.add_base("TestBase/Greeter.cs", BASE_GREETER)
    ws.add_base("TestBase/Prefix.cs", BASE_PREFIX)
    ws.add_query("Calc.cs", CALC)
    ws.add_query("Helper.py", HELPER_PY)
    ws.add_query("Broken.cs", BROKEN_SYNTAX)
    ws.add_query("Broken2.cs", BROKEN_SEMANTIC)
    s = Server(ws).start()
    yield s
    s.close()


def q(server: Server, path: str, **kw) -> object:
    r = server.get(f"/flow/query/{WID}/{path}", **kw)
    assert r.status_code == 200, r.text
    return r.json()


# -- basics -----------------------------------------------------------------------------------------
def test_add_over_http(server: Server) -> None:
    assert q(server, "Calc.cs/Add?p[0]=1&p[1]=2") == 3
    assert q(server, "Calc.cs/Add?x=40&y=2") == 42


def test_overloads_by_argument_count(server: Server) -> None:
    assert q(server, "Calc.cs/Add?p[0]=1&p[1]=2&p[2]=3") == 6
    r = server.get(f"/flow/query/{WID}/Calc.cs/Add?p[0]=1")
    assert r.status_code == 400


def test_same_name_in_two_classes(server: Server) -> None:
    assert q(server, "Calc.cs/Add?p[0]=5&p[1]=5") == 10  # the first class owns the plain name
    assert q(server, "Calc.cs/Other.Add?p[0]=5") == -5
    assert q(server, "Calc.cs/Only") == "other"


def test_static_property_is_a_function(server: Server) -> None:
    assert q(server, "Calc.cs/Version") == "2.0"


def test_base_assembly_and_wid(server: Server) -> None:
    assert q(server, "Calc.cs/Greet?p[0]=bob") == "hello bob"  # Base: two files, one assembly
    assert q(server, "Calc.cs/Wid") == WID


# -- argument types -------------------------------------------------------------------------------------
def test_scalar_argument_types(server: Server) -> None:
    assert q(server, "Calc.cs/Big?p[0]=3000000000") == 6000000000
    assert q(server, "Calc.cs/Half?p[0]=3") == 1.5
    assert q(server, "Calc.cs/Money?p[0]=2.5") == 3.75
    assert q(server, "Calc.cs/Not?p[0]=false") is True
    assert q(server, "Calc.cs/Upper?p[0]=abc") == "ABC"
    assert q(server, "Calc.cs/NextDay?p[0]=2024-02-28") == "2024-02-29T00:00:00"
    assert q(server, "Calc.cs/NextDay?p[0]=2024-12-31T10:00:00Z") == "2025-01-01T10:00:00+00:00"


def test_enum_argument_by_name_or_number(server: Server) -> None:
    assert q(server, "Calc.cs/Paint?p[0]=Green") == "painted Green"
    assert q(server, "Calc.cs/Paint?p[0]=blue") == "painted Blue"
    assert q(server, "Calc.cs/Paint?p[0]=0") == "painted Red"
    r = server.get(f"/flow/query/{WID}/Calc.cs/Paint?p[0]=Purple")
    assert r.status_code == 400
    assert "Red, Green, Blue" in r.json()["error"]["message"]


def test_collection_arguments(server: Server) -> None:
    assert q(server, "Calc.cs/Sum?p[0]=[1,2,3]") == 6
    assert q(server, "Calc.cs/Sum?p[0]=1,2,3") == 6
    assert q(server, "Calc.cs/Total?p[0]=[0.5,0.25]") == 0.75
    assert q(server, 'Calc.cs/Count?p[0]={"a":1,"b":2}') == 3
    r = server.post(f"/flow/query/{WID}/Calc.cs/Sum", json={"xs": [4, 5]})
    assert r.status_code == 200 and r.json() == 9


def test_json_object_becomes_a_class(server: Server) -> None:
    body = {"p": {"x": 1, "Y": 2.5, "tags": ["a", "b"], "color": "Green", "next": {"X": 2, "Y": 0}}}
    r = server.post(f"/flow/query/{WID}/Calc.cs/Describe", json=body)
    assert r.status_code == 200, r.text
    assert r.json() == "1;2.5;a,b;Green>2;0;-;Red"
    assert q(server, 'Calc.cs/Describe?p[0]={"X":7}') == "7;0;-;Red"
    r = server.get(f"/flow/query/{WID}/Calc.cs/Describe", params={"p[0]": '{"X": "seven"}'})
    assert r.status_code == 400
    assert "X" in r.json()["error"]["message"]


def test_object_parameter_gets_json_like_dotnet_values(server: Server) -> None:
    assert q(server, "Calc.cs/Kind?p[0]=5") == "String"  # query-string text is a string for `object`
    r = server.post(f"/flow/query/{WID}/Calc.cs/Kind", json=[{"a": 1, "b": [2.5, True, None, "s"]}])
    assert r.status_code == 200, r.text
    assert r.json() == "dict:a=Int64,b=list:Double,Boolean,null,String"


def test_optional_and_params_arguments(server: Server) -> None:
    assert q(server, "Calc.cs/Scale?p[0]=2") == 20
    assert q(server, "Calc.cs/Scale?p[0]=2&p[1]=3") == 6
    assert q(server, "Calc.cs/Scale?x=2&factor=4") == 8
    assert q(server, "Calc.cs/SumAll?p[0]=1&p[1]=2&p[2]=3&p[3]=4") == 10
    assert q(server, "Calc.cs/SumAll") == 0


def test_bad_argument_is_400(server: Server) -> None:
    r = server.get(f"/flow/query/{WID}/Calc.cs/Add?p[0]=one&p[1]=2")
    assert r.status_code == 400
    assert r.json()["error"]["parameter"] == "x"
    r = server.get(f"/flow/query/{WID}/Calc.cs/Add?p[0]=99999999999&p[1]=2")  # does not fit an int
    assert r.status_code == 400


# -- results ---------------------------------------------------------------------------------------------
def test_result_shapes(server: Server) -> None:
    assert q(server, "Calc.cs/Range?p[0]=4") == [0, 1, 2, 3]
    assert q(server, "Calc.cs/Names") == ["a", "b"]
    assert q(server, "Calc.cs/Weights") == {"x": 0.25, "y": 0.75}
    assert q(server, "Calc.cs/Nothing") is None
    assert q(server, "Calc.cs/When") == "2024-02-03T04:05:06.007000"
    assert q(server, "Calc.cs/WhenUtc") == "2024-02-03T04:05:06+00:00"
    assert q(server, "Calc.cs/Favourite") == "Blue"
    assert q(server, "Calc.cs/Offset") == "2024-02-03T04:05:06+02:00"
    assert q(server, "Calc.cs/Span") == 90.5
    assert q(server, "Calc.cs/Later?p[0]=21") == 42
    assert q(server, "Calc.cs/Prices") == [1.25, 2]
    assert q(server, "Calc.cs/Points?p[0]=2") == [
        {"X": 1, "Y": 0.5, "Tags": None, "Color": "Blue", "Next": None},
        {"X": 2, "Y": 1.0, "Tags": None, "Color": "Blue", "Next": None},
    ]


def test_nested_object_result(server: Server) -> None:
    tree = q(server, "Calc.cs/Tree")
    assert tree == {
        "Name": "root", "At": "2024-02-03T04:05:06", "Color": "Green", "Counts": {"a": 1}, "Nothing": None,
        "Values": [1.5, 2.5],
        "Children": [{"Name": "leaf", "At": "2024-01-01T00:00:00", "Color": "Red", "Counts": None,
                      "Children": None, "Nothing": None, "Values": None}],
    }


def test_csv_of_object_list(server: Server) -> None:
    r = server.get(f"/flow/query/{WID}/Calc.cs/Points.csv?p[0]=2")
    assert r.status_code == 200
    assert r.text.splitlines()[0] == "X,Y,Tags,Color,Next"


# -- errors ----------------------------------------------------------------------------------------------
def test_dotnet_exception_is_500_with_type(server: Server) -> None:
    r = server.get(f"/flow/query/{WID}/Calc.cs/Divide?p[0]=1&p[1]=0")
    assert r.status_code == 500
    err = r.json()["error"]
    assert err["type"] == "System.DivideByZeroException"
    assert err["language"] == "csharp"
    assert "divide by zero" in err["message"].lower()
    assert "stack" not in err  # only admins see stacks
    r = server.get(f"/flow/query/{WID}/Calc.cs/Throw?p[0]=bad input", headers=server.admin())
    err = r.json()["error"]
    assert r.status_code == 500 and err["type"] == "System.ArgumentException" and err["message"] == "bad input"
    assert re.search(r"Calc\.Throw .* in Queries/Calc\.cs:\d+", err["stack"]), err["stack"]
    assert q(server, "Calc.cs/Add?p[0]=1&p[1]=1") == 2  # and the server keeps serving


def test_compile_errors_have_file_and_line(server: Server) -> None:
    r = server.get("/flow/workflows", headers=server.admin())
    assert r.status_code == 200
    queries = {x["id"]: x for x in r.json()[0]["queries"]}
    syntax = queries["Broken.cs"]["errors"]
    assert any(re.match(r"Queries/Broken\.cs:4:\d+: error CS1525: ", e) for e in syntax), syntax
    semantic = queries["Broken2.cs"]["errors"]
    assert any(e.startswith("Queries/Broken2.cs:3:") and "error CS0103" in e and "undefinedName" in e
               for e in semantic), semantic
    assert queries["Calc.cs"]["errors"] == []  # a broken file does not stop the others
    r = server.get(f"/flow/query/{WID}/Broken.cs/Ok")
    assert r.status_code == 404
    assert "Broken.cs:4" in r.json()["error"]["message"]


# -- docs -----------------------------------------------------------------------------------------------
def test_openapi_from_reflection_and_xml_docs(server: Server) -> None:
    r = server.get(f"/flow/openapi/{WID}/Calc.cs", headers=server.admin())
    assert r.status_code == 200
    paths = r.json()["paths"]
    add = paths[f"/flow/query/{WID}/Calc.cs/Add"]["get"]
    assert add["description"] == "Adds two integers."
    assert [(p["name"], p["schema"]["type"], p["description"]) for p in add["parameters"]] == [
        ("x", "integer", "first number"), ("y", "integer", "second number")]
    big = paths[f"/flow/query/{WID}/Calc.cs/Big"]["get"]
    assert big["description"] == "Doubles a long." and big["parameters"][0]["description"] == "a 64-bit number"
    paint = paths[f"/flow/query/{WID}/Calc.cs/Paint"]["get"]["parameters"][0]["schema"]
    assert paint["enum"] == ["Red", "Green", "Blue"]
    describe = paths[f"/flow/query/{WID}/Calc.cs/Describe"]["get"]["parameters"][0]["schema"]
    assert describe["type"] == "object" and {"X", "Y", "Tags", "Color", "Next"} <= set(describe["properties"])
    assert paths[f"/flow/query/{WID}/Calc.cs/Sum"]["get"]["parameters"][0]["schema"]["type"] == "array"
    scale = paths[f"/flow/query/{WID}/Calc.cs/Scale"]["get"]["parameters"][1]
    assert scale["required"] is False and scale["schema"]["default"] == 10


def test_permissions_from_xml_docs(server: Server) -> None:
    # Add requires read on the workflow's group ($WID$); anonymous "Public" has read in this workspace
    r = server.get(f"/flow/query/{WID}/Calc.cs/Add?p[0]=1&p[1]=2", headers={"x-api-key": ADMIN_KEY})
    assert r.status_code == 200


# -- interop ---------------------------------------------------------------------------------------------
def test_csharp_calls_python(server: Server) -> None:
    assert q(server, "Calc.cs/CallPython?p[0]=ann") == "py hi ann"
    assert q(server, "Calc.cs/CallPythonTyped?p[0]=2&p[1]=3") == 5
    assert q(server, "Calc.cs/CallCSharp?p[0]=1") == 101  # C# -> registry -> C#


def test_python_error_seen_from_csharp(server: Server) -> None:
    assert q(server, "Calc.cs/CallPythonCaught") == "KeyError|'missing'|python"
    r = server.get(f"/flow/query/{WID}/Calc.cs/CallPythonUncaught", headers=server.admin())
    assert r.status_code == 500
    err = r.json()["error"]
    assert (err["type"], err["language"]) == ("KeyError", "python")
    assert "Calc.CallPythonUncaught" in err["stack"] and "Helper.py" in err["stack"]


def test_values_cross_both_ways(server: Server) -> None:
    assert q(server, "Calc.cs/RoundTripTypes") == "b=Boolean,d=dict:k=null,f=Double,i=Int64,l=list:Int64,String,s=String"
    assert q(server, "Calc.cs/RoundTrip") == {"i": 1, "f": 2.5, "s": "x", "b": True, "l": [1, "a"], "d": {"k": None}}


def test_python_uses_csharp(server: Server) -> None:
    assert q(server, "Helper.py/base_from_python?name=py") == "hello py"
    assert q(server, "Helper.py/csharp_from_python?a=20&b=22") == 42
