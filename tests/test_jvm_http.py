"""The Java engine end to end: a real `coflows server` with a Java Base, Java queries, a jar and Python.

One server serves most tests (JVM start and compilation are the slow part); the
tests that edit files use their own query files, so they do not disturb the others.
"""

from __future__ import annotations

import shutil
import signal
import sys
import time
from pathlib import Path

import pytest

from conftest import ADMIN_KEY, Server, new_workspace

sys.path.insert(0, str(Path(__file__).parent / "fixtures" / "packages"))
from builders import build_jar  # noqa: E402

pytestmark = pytest.mark.skipif(shutil.which("javac") is None, reason="needs a JDK")

WID = "11111111-2222-3333-4444-555555555555"

SHAPES = '''package calc;

/** Base library of the test workflow. */
public class Shapes {
    public static String hello(String name) { return "shapes says hi to " + name + " in $WID$"; }
    public static int area(int w, int h) { return w * h; }
}
'''

CALC = '''import java.math.BigDecimal;
import java.time.*;
import java.util.*;
import calc.Shapes;

/// <info version="2.0.0">
///   <title>Calc in Java</title>
/// </info>
public class Calc {
    public enum Color { RED, GREEN }

    public static class Point {
        public int x;
        public int y;
        public Point() {}
        public Point(int x, int y) { this.x = x; this.y = y; }
    }

    public static class Account {
        private String owner;
        private BigDecimal balance = BigDecimal.ZERO;
        private List<String> tags = new ArrayList<>();
        public String getOwner() { return owner; }
        public void setOwner(String owner) { this.owner = owner; }
        public BigDecimal getBalance() { return balance; }
        public void setBalance(BigDecimal balance) { this.balance = balance; }
        public List<String> getTags() { return tags; }
        public void setTags(List<String> tags) { this.tags = tags; }
        public boolean isRich() { return balance.compareTo(new BigDecimal("1000")) > 0; }
    }

    public record Pair(String name, double value) {}

    public static class MyError extends RuntimeException {
        public MyError(String m) { super(m); }
    }

    private int calls;

    /// <api name="Add">
    ///   <description>Adds two integers.</description>
    ///   <returns>the sum</returns>
    ///   <param name="x" type="integer">first number</param>
    /// </api>
    public static int Add(int x, int y) { return x + y; }

    public static int Add(int x, int y, int z) { return x + y + z; }

    /**
     * Twice a long.
     *
     * @param x any {@code long}
     * @return {@code 2 * x}
     */
    public static long Big(long x) { return 2 * x; }

    public static double Half(double x) { return x / 2; }
    public static boolean Not(boolean b) { return !b; }
    public static String Upper(String s) { return s == null ? null : s.toUpperCase(); }
    public static char Initial(String s) { return s.charAt(0); }
    public static Integer Boxed(Integer x) { return x == null ? null : x + 1; }
    public static BigDecimal Money(BigDecimal a, BigDecimal b) { return a.add(b); }
    public static String Dates(LocalDate d, LocalDateTime t, OffsetDateTime o, Instant i) {
        return d + "|" + t + "|" + o + "|" + i;
    }
    public static LocalDate NextDay(LocalDate d) { return d.plusDays(1); }
    public static Map<String, Object> Times() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("date", LocalDate.of(2024, 3, 1));
        m.put("local", LocalDateTime.of(2024, 3, 1, 12, 30, 5));
        m.put("offset", OffsetDateTime.of(2024, 3, 1, 12, 0, 0, 0, ZoneOffset.ofHours(2)));
        m.put("zoned", ZonedDateTime.of(2024, 3, 1, 12, 0, 0, 0, ZoneId.of("UTC")));
        m.put("instant", Instant.parse("2024-03-01T10:00:00Z"));
        m.put("time", LocalTime.of(9, 15));
        m.put("duration", Duration.ofMillis(1500));
        return m;
    }
    public static int SumArray(int[] xs) { int s = 0; for (int x : xs) s += x; return s; }
    public static double SumList(List<Double> xs) { double s = 0; for (double x : xs) s += x; return s; }
    public static Map<String, Integer> Count(List<String> words) {
        Map<String, Integer> m = new TreeMap<>();
        for (String w : words) m.merge(w, 1, Integer::sum);
        return m;
    }
    public static double Total(Map<String, Double> prices) { double s = 0; for (double p : prices.values()) s += p; return s; }
    public static int Norm(Point p) { return p.x * p.x + p.y * p.y; }
    public static List<Point> Points(int n) {
        List<Point> out = new ArrayList<>();
        for (int i = 0; i < n; i++) out.add(new Point(i, i * i));
        return out;
    }
    public static Account Deposit(Account a, BigDecimal amount) { a.setBalance(a.getBalance().add(amount)); return a; }
    public static Pair MakePair(String name, double value) { return new Pair(name, value); }
    public static double PairValue(Pair p) { return p.value(); }
    public static String Paint(Color c) { return "painted " + c; }
    public static Color[] Colors() { return Color.values(); }
    public static Object Nothing() { return null; }
    public static Object Nested() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("ints", new int[] {1, 2, 3});
        m.put("nan", Double.NaN);
        m.put("list", Arrays.asList(1, "two", 3.5, null, true));
        m.put("points", new Point[] {new Point(1, 2)});
        m.put("optional", Optional.of("here"));
        m.put("empty", Optional.empty());
        m.put("set", new TreeSet<>(Arrays.asList("b", "a")));
        m.put("nested", Map.of("deeper", List.of(Map.of("k", 1))));
        return m;
    }
    public static Map<String, Object> Echo(String body) { return Map.of("received", body, "length", body.length()); }
    public static int Sum5(int a, int b, int c, int d, int e) { return a + b + c + d + e; }
    public static String Mixed(String s, long n, double d, boolean b, List<Integer> xs) {
        return s + "|" + n + "|" + d + "|" + b + "|" + xs;
    }

    /// <summary>Counts its calls (an instance method).</summary>
    public int Counter() { return ++calls; }
    public String Hi(String name) { return Shapes.hello(name); }

    public static void Fail(String message) {
        throw new IllegalStateException(message); // FAIL-LINE
    }
    public static int Deep(int n) {
        if (n == 0) throw new MyError("deep down"); // DEEP-LINE
        return Deep(n - 1);
    }
    public static int Divide(int a, int b) { return a / b; }

    public static Object Py(String name) { return coflows.Host.call("Helper.py", "Hello", name); }
    public static long PyAdd(long a, long b) { return coflows.Host.callAs(Long.class, "Helper.py", "Add", a, b); }
    public static Object PyEcho(Map<String, Object> data) { return coflows.Host.call("Helper.py", "Echo", data, List.of(1, 2), Point.class.getSimpleName()); }
    public static String PyFail() {
        try {
            coflows.Host.call("Helper.py", "Boom");
            return "no error";
        } catch (coflows.CoflowsException e) {
            return e.getType() + "|" + e.getLanguage() + "|" + e.getMessage();
        }
    }
    public static String Wid() { return "$WID$|" + coflows.Host.workflowId(); }
    public static int Area(int w, int h) { return Shapes.area(w, h); }
}
'''

HELPER = '''
from coflows.engines.jvm import java_class, java_package
from coflows.runtime import call


def Hello(name: str) -> str:
    return "python says hi to " + name


def Add(a: int, b: int) -> int:
    return a + b


def Echo(data: dict, xs: list, name: str):
    return {"data": data, "xs": xs, "name": name}


def Boom():
    raise ValueError("python went boom")


def JavaDirect(name: str) -> str:
    Shapes = java_class("$WID$", "calc.Shapes")
    return str(Shapes.hello(name))


def JavaPackage(w: int, h: int) -> int:
    return int(java_package("$WID$").calc.Shapes.area(w, h))


def CallJava(x: int) -> int:
    return call("Calc.java/Add", x, 10)


def CallJavaFails():
    return call("Calc.java/Fail", "from python")
'''

BROKEN = '''public class Broken {
    public static int Ok() { return 1; }

    public static int Bad() { return "not an int"; }
}
'''

BROKEN_BASE = '''package calc;

public class Oops {
    public static int nope() { return undefinedVariable; }
}
'''

LIVE = '''public class Live {
    public static int Version() { return 1; }
}
'''

TOOL = '''package ext;

public class Tool {
    public static String shout(String s) { return s.toUpperCase() + "!"; }
}
'''

USES_JAR = '''import ext.Tool;

public class UsesJar {
    public static String Shout(String s) { return Tool.shout(s); }
}
'''


def line_of(text: str, marker: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if marker in line)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("jvm")
    ws = new_workspace(root / "ws", name="JavaCalc", wid=WID)
    ws.add_base("calc/Shapes.java", SHAPES)
    ws.add_base("calc/Oops.java", BROKEN_BASE)
    ws.add_query("Calc.java", CALC)
    ws.add_query("Helper.py", HELPER)
    ws.add_query("Broken.java", BROKEN)
    ws.add_query("Live.java", LIVE)
    ws.add_query("UsesJar.java", USES_JAR)
    build_jar(root / "jarbuild", ws.mnt / "jars" / "tool.jar", {"ext/Tool.java": TOOL})
    s = Server(ws).start(timeout=120)
    yield s
    code = s.stop()
    s.client.close()
    # uvicorn re-raises the SIGTERM it handled after a graceful shutdown; a kill would be -9
    out = s.output()
    assert code in (0, -signal.SIGTERM) and "Finished server process" in out, f"unclean stop ({code}):\n{out[-3000:]}"
    assert "FATAL" not in out and "hs_err" not in out


def q(server: Server, fn: str, query: str = "Calc.java", **kw):
    return server.get(f"/flow/query/{WID}/{query}/{fn}", **kw)


def test_add_overloads_and_arguments(server):
    assert q(server, "Add?p[0]=1&p[1]=2").json() == 3
    assert q(server, "Add?p[0]=1&p[1]=2&p[2]=3").json() == 6
    assert q(server, "Add?x=4&y=5").json() == 9
    assert server.get("/flow/query/JavaCalc/Calc.java/Add?p[0]=1&p[1]=2").json() == 3
    assert server.post(f"/flow/query/{WID}/Calc.java/Add", json={"x": 2, "y": 3}).json() == 5
    assert server.post(f"/flow/query/{WID}/Calc.java/Add", json=[7, 8, 9]).json() == 24
    assert q(server, "Sum5?p[0]=1&p[1]=2&p[2]=3&p[3]=4&p[4]=5").json() == 15
    r = q(server, "Mixed", params={"s": "a", "n": "7", "d": "2.5", "b": "true", "xs": "1,2"})
    assert r.json() == "a|7|2.5|true|[1, 2]"


@pytest.mark.parametrize("url, status, parameter, text", [
    ("Add?p[0]=1&p[1]=abc", 400, "y", "expected int"),
    ("Add?p[0]=1", 400, "y", "missing argument 'y'"),
    ("Add?p[0]=1&p[1]=9999999999", 400, "y", "out of range for int"),
    ("Paint?c=BLUE", 400, "c", "expected one of RED, GREEN"),
    ("Norm?p={\"x\":1,\"z\":2}", 400, "p", "unknown property 'z'"),
    ("Norm?p=[1,2]", 400, "p", "expected Point"),
    ("SumArray?xs=[1,\"x\"]", 400, "xs", "expected int"),
])
def test_argument_errors(server, url, status, parameter, text):
    r = q(server, url)
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err.get("parameter") == parameter
    assert text in err["message"]


def test_scalar_types(server):
    assert q(server, "Big?x=4000000000").json() == 8000000000
    assert q(server, "Half?x=3").json() == 1.5
    assert q(server, "Not?b=false").json() is True
    assert q(server, "Upper?s=abc").json() == "ABC"
    assert q(server, "Initial?s=xyz").json() == "x"
    assert q(server, "Boxed?x=41").json() == 42
    assert q(server, "Money?a=0.10&b=0.20").json() == 0.3
    assert q(server, "NextDay?d=2024-02-28").json() == "2024-02-29"
    r = q(server, "Dates", params={"d": "2024-01-02", "t": "2024-01-02T03:04:05", "o": "2024-01-02T03:04:05+02:00",
                                  "i": "2024-01-02T03:04:05Z"})
    assert r.json() == "2024-01-02|2024-01-02T03:04:05|2024-01-02T03:04:05+02:00|2024-01-02T03:04:05Z"
    assert q(server, "Times").json() == {
        "date": "2024-03-01", "local": "2024-03-01T12:30:05", "offset": "2024-03-01T12:00:00+02:00",
        "zoned": "2024-03-01T12:00:00Z", "instant": "2024-03-01T10:00:00Z", "time": "09:15", "duration": 1.5}
    assert q(server, "Nothing").json() is None


def test_collections_and_objects(server):
    assert q(server, "SumArray?xs=[1,2,3]").json() == 6
    assert q(server, "SumArray?xs=4,5").json() == 9
    assert q(server, "SumList?xs=[1.5,2.5]").json() == 4.0
    assert q(server, "Count", params={"words": '["b","a","b"]'}).json() == {"a": 1, "b": 2}
    assert server.post(f"/flow/query/{WID}/Calc.java/Total", json={"prices": {"a": 1.25, "b": 2}}).json() == 3.25
    assert q(server, "Norm", params={"p": '{"x": 3, "y": 4}'}).json() == 25
    assert q(server, "Points?n=3").json() == [{"x": 0, "y": 0}, {"x": 1, "y": 1}, {"x": 2, "y": 4}]
    acct = server.post(f"/flow/query/{WID}/Calc.java/Deposit",
                       json={"a": {"owner": "ann", "balance": "999.99", "tags": ["x"]}, "amount": "0.02"}).json()
    assert acct == {"owner": "ann", "balance": 1000.01, "tags": ["x"], "rich": True}
    assert q(server, "MakePair?name=pi&value=3.14").json() == {"name": "pi", "value": 3.14}
    assert server.post(f"/flow/query/{WID}/Calc.java/PairValue", json={"p": {"name": "e", "value": 2.72}}).json() == 2.72
    assert q(server, "Paint?c=green").json() == "painted GREEN"
    assert q(server, "Colors").json() == ["RED", "GREEN"]
    assert q(server, "Nested").json() == {
        "ints": [1, 2, 3], "nan": None, "list": [1, "two", 3.5, None, True], "points": [{"x": 1, "y": 2}],
        "optional": "here", "empty": None, "set": ["a", "b"], "nested": {"deeper": [{"k": 1}]}}
    raw = server.post(f"/flow/query/{WID}/Calc.java/Echo", content=b'{"a": [1, 2]}')
    assert raw.json() == {"received": '{"a": [1, 2]}', "length": 13}
    csv = q(server, "Points.csv?n=2")
    assert csv.status_code == 200 and csv.text.splitlines()[0] == "x,y"


def test_instance_methods_and_base(server):
    first = q(server, "Counter").json()
    assert q(server, "Counter").json() == first + 1  # one instance per load
    assert q(server, "Hi?name=bob").json() == f"shapes says hi to bob in {WID}"
    assert q(server, "Area?w=3&h=4").json() == 12


def test_java_exceptions(server):
    r = q(server, "Fail?message=kaput")
    assert r.status_code == 500
    err = r.json()["error"]
    assert err == {"type": "java.lang.IllegalStateException", "message": "kaput", "language": "java",
                   "origin": "user"}
    r = q(server, "Fail?message=kaput", headers={"x-api-key": ADMIN_KEY})
    stack = r.json()["error"]["stack"]
    assert f"at Calc.Fail(Calc.java:{line_of(CALC, 'FAIL-LINE')})" in stack
    assert "coflows.jvm" not in stack and "jdk.internal.reflect" not in stack
    r = q(server, "Deep?n=3", headers={"x-api-key": ADMIN_KEY})
    err = r.json()["error"]
    assert (r.status_code, err["type"], err["message"]) == (500, "Calc$MyError", "deep down")
    assert err["stack"].count("at Calc.Deep(") == 4
    r = q(server, "Divide?a=1&b=0")
    assert r.json()["error"]["type"] == "java.lang.ArithmeticException"
    assert q(server, "Add?p[0]=1&p[1]=2").json() == 3  # still serving


def test_compile_errors(server):
    r = q(server, "Ok", query="Broken.java")
    assert r.status_code == 404
    line = line_of(BROKEN, "not an int")
    assert f"Queries/Broken.java:{line}: incompatible types" in r.json()["error"]["message"]
    status = {w["id"]: w for w in server.get("/flow/workflows", headers={"x-api-key": ADMIN_KEY}).json()}[WID]
    broken = next(x for x in status["queries"] if x["id"] == "Broken.java")
    assert broken["errors"] and broken["errors"][0].startswith(f"Queries/Broken.java:{line}: ")
    base_line = line_of(BROKEN_BASE, "undefinedVariable")
    assert any(e.startswith(f"Base/calc/Oops.java:{base_line}: cannot find symbol") for e in status["base_errors"])
    # the rest of Base (Shapes) compiled anyway
    assert q(server, "Area?w=2&h=2").json() == 4


def test_hot_reload(server):
    path = server.ws.mnt / "Queries" / "Live.java"
    assert q(server, "Version", query="Live.java").json() == 1

    def edit(text: str) -> None:
        before = path.stat().st_mtime_ns
        path.write_text(text)
        while path.stat().st_mtime_ns == before:  # coarse file-system clocks
            time.sleep(0.01)
            path.write_text(text)

    edit(LIVE.replace("return 1;", "return 2;"))
    assert q(server, "Version", query="Live.java").json() == 2
    edit(LIVE.replace("return 1;", "return 2 +;"))
    assert q(server, "Version", query="Live.java").json() == 2  # a broken edit keeps the last good version
    status = {w["id"]: w for w in server.get("/flow/workflows", headers={"x-api-key": ADMIN_KEY}).json()}[WID]
    live = next(x for x in status["queries"] if x["id"] == "Live.java")
    assert live["errors"] and live["errors"][0].startswith("Queries/Live.java:2: ")
    edit(LIVE.replace("return 1;", "return 3;").replace("Version()", "Version(int plus)").replace("3;", "3 + plus;"))
    assert q(server, "Version?plus=4", query="Live.java").json() == 7


def test_jar_on_classpath(server):
    assert q(server, "Shout?s=hey", query="UsesJar.java").json() == "HEY!"


def test_java_calls_python(server):
    assert q(server, "Py?name=ann").json() == "python says hi to ann"
    assert q(server, "PyAdd?a=40&b=2").json() == 42
    echoed = server.post(f"/flow/query/{WID}/Calc.java/PyEcho", json={"data": {"k": [1, {"z": None}]}}).json()
    assert echoed == {"data": {"k": [1, {"z": None}]}, "xs": [1, 2], "name": "Point"}
    assert q(server, "PyFail").json() == "ValueError|python|ValueError: python went boom"
    assert q(server, "Wid").json() == f"{WID}|{WID}"


def test_python_calls_java(server):
    assert q(server, "JavaDirect?name=py", query="Helper.py").json() == f"shapes says hi to py in {WID}"
    assert q(server, "JavaPackage?w=5&h=6", query="Helper.py").json() == 30
    assert q(server, "CallJava?x=5", query="Helper.py").json() == 15
    r = q(server, "CallJavaFails", query="Helper.py")
    assert r.status_code == 500
    err = r.json()["error"]
    # the Python engine currently wraps the Java error it passes through (type UserCodeError)
    assert "java.lang.IllegalStateException" in (err["type"], err["message"].split(":")[0])
    assert err["message"].endswith("from python")


def test_openapi_and_docs(server):
    doc = server.get(f"/flow/openapi/{WID}/Calc.java").json()
    assert doc["info"]["title"] == "Calc in Java" and doc["info"]["version"] == "2.0.0"
    add = next(v for k, v in doc["paths"].items() if k.endswith("/Add"))["get"]
    assert add["description"] == "Adds two integers."
    params = {p["name"]: p for p in add["parameters"] if p["name"] in ("x", "y")}
    assert params["x"]["schema"]["type"] == "integer" and params["x"]["description"] == "first number"
    counter = next(v for k, v in doc["paths"].items() if k.endswith("/Counter"))["get"]
    assert counter["description"] == "Counts its calls (an instance method)."
    big = next(v for k, v in doc["paths"].items() if k.endswith("/Big"))["get"]
    assert big["description"] == "Twice a long."
    assert big["responses"]["200"]["description"] == "2 * x"
    norm = next(v for k, v in doc["paths"].items() if k.endswith("/Norm"))
    body = norm["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body["properties"]["p"]["properties"] == {"x": {"type": "integer"}, "y": {"type": "integer"}}
    health = server.get("/health").json()
    assert "java" in health["engines"]
