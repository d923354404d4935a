"""NuGets end to end: a package (with a dependency) from a loopback v3 feed, used by a C# query over HTTP."""

from __future__ import annotations

import json

from conftest import new_workspace
from test_packages_nuget import CountingServer, mcs, nupkg, write_v3_feed

UTIL = "namespace Cf.Util { public static class Shout { public static string Up(string s) { return s.ToUpper() + \"!\"; } } }"
GREETER = ("namespace Cf.Greeter { public static class Greet { "
           "public static string Hello(string n) { return Cf.Util.Shout.Up(\"hello \" + n); } } }")
QUERY = """
public class UsesNuGet
{
    public static string Hello(string name) { return Cf.Greeter.Greet.Hello(name); }
}
"""


def test_csharp_query_uses_a_nuget_package_and_its_dependency(tmp_path, start_server):
    build = tmp_path / "build"
    util = mcs(build / "Util" / "Cf.Util.dll", UTIL)
    greeter = mcs(build / "Greeter" / "Cf.Greeter.dll", GREETER, util)
    packages = {
        ("Cf.Util", "1.0.0"): nupkg("Cf.Util", "1.0.0", {"lib/net45/Cf.Util.dll": util}),
        ("Cf.Greeter", "2.0.0"): nupkg("Cf.Greeter", "2.0.0", {"lib/net45/Cf.Greeter.dll": greeter,
                                                                "lib/netstandard2.0/Cf.Greeter.dll": greeter},
                                      {".NETFramework4.5": [("Cf.Util", "1.0.0")]}),
    }
    feed_root = tmp_path / "feed"
    feed_root.mkdir()
    with CountingServer(feed_root) as feed:
        write_v3_feed(feed_root, feed.url, packages)
        ws = new_workspace(tmp_path / "ws", Packages={"NuGetFeeds": [f"{feed.url}/index.json"]})
        ws.manifest["NuGets"] = [{"ID": "Cf.Greeter", "Version": "2.0.0"}]
        ws.add_query("UsesNuGet.cs", QUERY)
        server = start_server(ws)
        r = server.get("/flow/query/Test/UsesNuGet.cs/Hello?p[0]=nuget")
        assert r.status_code == 200, r.text + server.output()[-3000:]
        assert r.json() == "HELLO NUGET!"
        lock = json.loads((ws.mnt / "nugets" / "nugets.lock.json").read_text())
        assert {(p["id"], p["framework"]) for p in lock["packages"]} == {("Cf.Util", "net45"), ("Cf.Greeter", "net45")}
        server.stop()
        requests_before = len(feed.requests)
        again = start_server(ws)  # a restart with the lock in place downloads nothing
        assert again.get("/flow/query/Test/UsesNuGet.cs/Hello?p[0]=again").json() == "HELLO AGAIN!"
        assert len(feed.requests) == requests_before
