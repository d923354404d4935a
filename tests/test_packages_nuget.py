"""NuGets: packages built here with mcs, served as a v3 feed over loopback and as folder feeds."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "fixtures" / "packages"))
from pkgserver import CountingServer  # noqa: E402

from coflows.packages.download import Downloader
from coflows.packages.nuget import install_nugets
from coflows.packages.progress import RecordingProgress
from coflows.packages.summary import PackageError

pytestmark = pytest.mark.skipif(shutil.which("mcs") is None or shutil.which("mono") is None,
                                reason="needs Mono (mcs, mono)")

SOURCES = {
    "C": 'namespace Cf { public static class C { public static string Name() { return "C"; } } }',
    "B": 'namespace Cf { public static class B { public static string Name() { return "B>" + C.Name(); } } }',
    "A45": 'namespace Cf { public static class A { public static string Name() { return "A-net45>" + B.Name(); } } }',
    "A20": 'namespace Cf { public static class A { public static string Name() { return "A-ns20>" + B.Name(); } } }',
}


def mcs(out: Path, source: str, *refs: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    src = out.with_suffix(".cs")
    src.write_text(source)
    subprocess.run(["mcs", "-target:library", f"-out:{out}", *[f"-r:{r}" for r in refs], str(src)],
                   check=True, capture_output=True)
    return out


def nuspec(pid: str, version: str, groups: dict[str, list[tuple[str, str]]]) -> str:
    body = "".join(
        f'<group targetFramework="{tfm}">' + "".join(f'<dependency id="{d}" version="{v}" />' for d, v in deps)
        + "</group>" for tfm, deps in groups.items())
    return ('<?xml version="1.0"?><package xmlns="http://schemas.microsoft.com/packaging/2013/05/nuspec.xsd">'
            f"<metadata><id>{pid}</id><version>{version}</version><authors>t</authors><description>t</description>"
            f"<dependencies>{body}</dependencies></metadata></package>")


def nupkg(pid: str, version: str, files: dict[str, Path | bytes], groups: dict | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("_rels/.rels", "<Relationships/>")
        z.writestr(f"{pid}.nuspec", nuspec(pid, version, groups or {}))
        for name, data in files.items():
            z.writestr(name, data if isinstance(data, bytes) else data.read_bytes())
    return buf.getvalue()


@pytest.fixture(scope="module")
def packages(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], bytes]:
    """(id, version) → .nupkg bytes: A → B → C, several frameworks, and some broken ones."""
    build = tmp_path_factory.mktemp("cs")
    c = mcs(build / "C" / "C.dll", SOURCES["C"])
    b = mcs(build / "B" / "B.dll", SOURCES["B"], c)
    a45 = mcs(build / "A45" / "A.dll", SOURCES["A45"], b, c)
    a20 = mcs(build / "A20" / "A.dll", SOURCES["A20"], b, c)
    pkgs = {
        ("Cf.A", "1.0.0"): nupkg("Cf.A", "1.0.0", {"lib/net45/A.dll": a45, "lib/netstandard2.0/A.dll": a20}, {
            ".NETFramework4.5": [("Cf.B", "1.0.0")],
            ".NETStandard2.0": [("Cf.Ghost", "1.0.0")],  # only followed if the wrong group were picked
        }),
        ("Cf.B", "1.0.0"): nupkg("Cf.B", "1.0.0", {"lib/netstandard2.0/B.dll": b},
                                 {".NETStandard2.0": [("Cf.C", "[1.0.0, 2.0.0)")]}),
        ("Cf.D", "1.0.0"): nupkg("Cf.D", "1.0.0", {}, {"": [("Cf.Ghost", "1.0.0")]}),
        ("Cf.E", "1.0.0"): nupkg("Cf.E", "1.0.0", {}, {"net45": [("Cf.C", "1.1.0")]}),
        ("Cf.Core", "1.0.0"): nupkg("Cf.Core", "1.0.0", {"lib/net6.0/Core.dll": c}),
        ("Cf.Bad", "1.0.0"): nupkg("Cf.Bad", "1.0.0", {"lib/net45/C.dll": c}),
    }
    for v in ("1.0.0", "1.1.0", "2.0.0"):
        pkgs[("Cf.C", v)] = nupkg("Cf.C", v, {"lib/netstandard2.0/C.dll": c})
    return pkgs


def sha512(data: bytes) -> str:
    return base64.b64encode(hashlib.sha512(data).digest()).decode()


def write_v3_feed(root: Path, base: str, pkgs: dict[tuple[str, str], bytes]) -> None:
    """index.json, flat container, registration (one page inline, Cf.C's page apart) and catalog leaves."""
    def dump(rel: str, data: object) -> None:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(json.dumps(data))

    dump("index.json", {"version": "3.0.0", "resources": [
        {"@id": f"{base}/flat/", "@type": "PackageBaseAddress/3.0.0"},
        {"@id": f"{base}/reg/", "@type": "RegistrationsBaseUrl/3.6.0"},
        {"@id": f"{base}/query", "@type": "SearchQueryService"}]})
    ids = sorted({pid for pid, _ in pkgs})
    for pid in ids:
        lid = pid.lower()
        versions = sorted(v for p, v in pkgs if p == pid)
        dump(f"flat/{lid}/index.json", {"versions": versions})
        leaves = []
        for v in versions:
            data = pkgs[(pid, v)]
            (root / f"flat/{lid}/{v}").mkdir(parents=True, exist_ok=True)
            (root / f"flat/{lid}/{v}/{lid}.{v}.nupkg").write_bytes(data)
            published = sha512(b"tampered" if pid == "Cf.Bad" else data)
            dump(f"catalog/{lid}.{v}.json", {"id": pid, "version": v, "packageHash": published,
                                             "packageHashAlgorithm": "SHA512"})
            leaves.append({"@id": f"{base}/reg/{lid}/{v}.json",
                           "packageContent": f"{base}/flat/{lid}/{v}/{lid}.{v}.nupkg",
                           "catalogEntry": {"@id": f"{base}/catalog/{lid}.{v}.json", "id": pid, "version": v}})
        page = {"@id": f"{base}/reg/{lid}/page.json", "lower": versions[0], "upper": versions[-1], "count": len(leaves),
                "items": leaves}
        dump(f"reg/{lid}/page.json", page)
        if pid == "Cf.C":
            page = {k: v for k, v in page.items() if k != "items"}
        dump(f"reg/{lid}/index.json", {"count": 1, "items": [page]})


@pytest.fixture(scope="module")
def feed(tmp_path_factory: pytest.TempPathFactory, packages):
    root = tmp_path_factory.mktemp("feed")
    with CountingServer(root) as server:
        write_v3_feed(root, server.url, packages)
        server.index = f"{server.url}/index.json"
        yield server


def run_consumer(tmp: Path, assemblies: list[Path]) -> str:
    """Compile a program against the installed assemblies and run it under Mono."""
    src = tmp / "Program.cs"
    src.write_text("class P { static void Main() { System.Console.WriteLine(Cf.A.Name()); } }")
    exe = tmp / "prog.exe"
    subprocess.run(["mcs", f"-out:{exe}", *[f"-r:{a}" for a in assemblies], str(src)], check=True, capture_output=True)
    env = {**os.environ, "MONO_PATH": os.pathsep.join(str(a.parent) for a in assemblies)}
    return subprocess.run(["mono", str(exe)], check=True, capture_output=True, text=True, env=env,
                          cwd=tmp).stdout.strip()


def test_v3_feed_chain_frameworks_and_mono_runs_it(feed: CountingServer, tmp_path: Path) -> None:
    progress = RecordingProgress()
    result = install_nugets([{"ID": "Cf.A", "Version": "1.0.0"}], tmp_path, [feed.index], progress=progress)
    got = [(p.id, p.version, p.framework, p.status) for p in result.packages]
    # dependencies first; lowest version in [1.0.0, 2.0.0) for C; net45 over netstandard2.0 for A;
    # netstandard2.0 where it is the only one
    assert got == [("Cf.C", "1.0.0", "netstandard2.0", "installed"), ("Cf.B", "1.0.0", "netstandard2.0", "installed"),
                   ("Cf.A", "1.0.0", "net45", "installed")]
    nugets = tmp_path / "nugets"
    assert result.assemblies == [nugets / "cf.c/1.0.0/lib/netstandard2.0/C.dll",
                                 nugets / "cf.b/1.0.0/lib/netstandard2.0/B.dll", nugets / "cf.a/1.0.0/lib/net45/A.dll"]
    assert (nugets / "cf.a/1.0.0/cf.a.1.0.0.nupkg.sha512").read_text() == sha512(
        (feed.root / "flat/cf.a/1.0.0/cf.a.1.0.0.nupkg").read_bytes())
    assert "/reg/cf.c/page.json" in feed.requests and "/catalog/cf.c.1.0.0.json" in feed.requests
    assert not any("ghost" in r for r in feed.requests)
    assert run_consumer(tmp_path, result.assemblies) == "A-net45>B>C"
    assert progress.statuses()["Cf.A 1.0.0"] == "installed"
    assert [i.detail for i in result.summary.items] == ["lib/netstandard2.0, for Cf.A", "lib/netstandard2.0, for Cf.A",
                                                         "lib/net45"]


def test_second_install_downloads_nothing(feed: CountingServer, tmp_path: Path) -> None:
    entries = [{"ID": "Cf.A", "Version": "1.0.0"}]
    first = install_nugets(entries, tmp_path, [feed.index])
    feed.reset()
    dl = Downloader()
    second = install_nugets(entries, tmp_path, [feed.index], downloader=dl)
    assert feed.requests == [] and dl.requests == 0
    assert not second.resolved and second.assemblies == first.assemblies
    assert {p.status for p in second.packages} == {"cached"}
    # a damaged package is fetched again and checked against the lock's SHA-512
    (tmp_path / "nugets/cf.b/1.0.0/cf.b.1.0.0.nupkg").write_bytes(b"junk")
    third = install_nugets(entries, tmp_path, [feed.index])
    assert feed.requests == ["/flat/cf.b/1.0.0/cf.b.1.0.0.nupkg"]
    assert [p.status for p in third.packages] == ["cached", "installed", "cached"]


def test_cousin_ranges_take_lowest_common_version(feed: CountingServer, tmp_path: Path) -> None:
    result = install_nugets([{"ID": "Cf.B", "Version": "1.0.0"}, {"ID": "Cf.E", "Version": "1.0.0"}], tmp_path,
                            [feed.index])
    assert {p.id: p.version for p in result.packages}["Cf.C"] == "1.1.0"
    ranged = install_nugets([{"ID": "Cf.C", "Version": "[1.1.0, 2.0.0)"}], tmp_path / "r", [feed.index])
    assert [p.version for p in ranged.packages] == ["1.1.0"]


def test_hash_mismatch_fails(feed: CountingServer, tmp_path: Path) -> None:
    with pytest.raises(PackageError, match=r"^NuGets: 'Cf.Bad 1.0.0': checksum mismatch for http") as info:
        install_nugets([{"ID": "Cf.Bad", "Version": "1.0.0"}], tmp_path, [feed.index])
    assert not (tmp_path / "nugets/cf.bad").exists()
    assert [i.status for i in info.value.summary.items] == ["failed"]


@pytest.mark.parametrize("entry, message", [
    ({"ID": "Cf.Nope", "Version": "1.0.0"}, r"^NuGets: 'Cf.Nope 1.0.0': package 'Cf.Nope' not found in http"),
    ({"ID": "Cf.C", "Version": "9.9.9"}, r"^NuGets: 'Cf.C 9.9.9': version 9.9.9 of 'Cf.C' not found \(available: "
                                         r"1.0.0, 1.1.0, 2.0.0\)"),
    ({"ID": "Cf.D", "Version": "1.0.0"}, r"^NuGets: 'Cf.D 1.0.0': dependency 'Cf.Ghost' 1.0.0 \(via Cf.D 1.0.0\): "
                                         r"package 'Cf.Ghost' not found"),
    ({"ID": "Cf.Core", "Version": "1.0.0"}, r"^NuGets: 'Cf.Core 1.0.0': no assemblies for a "
                                            r"framework Mono can load \(it has: net6.0\)$"),
])
def test_errors_name_the_entry(feed: CountingServer, tmp_path: Path, entry, message) -> None:
    with pytest.raises(PackageError, match=message):
        install_nugets([{"ID": "Cf.C", "Version": "1.0.0"}, entry], tmp_path, [feed.index])


def test_unreachable_feed(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    with pytest.raises(PackageError, match=rf"^NuGets: 'Cf.A 1.0.0': NuGet feed http://127.0.0.1:{port}/index.json "
                                           r"is unreachable"):
        install_nugets([{"ID": "Cf.A", "Version": "1.0.0"}], tmp_path, [f"http://127.0.0.1:{port}/index.json"],
                       downloader=Downloader(retries=1, backoff=0.01))


def test_flat_folder_feed(packages, tmp_path: Path) -> None:
    folder = tmp_path / "feed"
    folder.mkdir()
    for (pid, v), data in packages.items():
        (folder / f"{pid}.{v}.nupkg").write_bytes(data)
    result = install_nugets([{"ID": "cf.a", "Version": "1.0"}], tmp_path / "ws", [str(folder)])
    assert [(p.id, p.version, p.framework) for p in result.packages] == [
        ("Cf.C", "1.0.0", "netstandard2.0"), ("Cf.B", "1.0.0", "netstandard2.0"), ("Cf.A", "1.0.0", "net45")]
    assert run_consumer(tmp_path, result.assemblies) == "A-net45>B>C"


def test_hierarchical_folder_feed_with_sha512(packages, tmp_path: Path) -> None:
    folder = tmp_path / "feed"
    for (pid, v), data in packages.items():
        d = folder / pid.lower() / v
        d.mkdir(parents=True)
        (d / f"{pid.lower()}.{v}.nupkg").write_bytes(data)
        (d / f"{pid.lower()}.{v}.nupkg.sha512").write_text(sha512(b"x" if pid == "Cf.Bad" else data))
    result = install_nugets([{"ID": "Cf.B", "Version": "1.0.0"}], tmp_path / "ws", [folder.as_uri()])
    assert [p.id for p in result.packages] == ["Cf.C", "Cf.B"]
    with pytest.raises(PackageError, match="^NuGets: 'Cf.Bad 1.0.0': .*checksum mismatch"):
        install_nugets([{"ID": "Cf.Bad", "Version": "1.0.0"}], tmp_path / "ws", [str(folder)])
    # the workspace's own nugets/ folder is itself a valid folder feed
    again = install_nugets([{"ID": "Cf.B", "Version": "1.0.0"}], tmp_path / "ws2", [str(tmp_path / "ws" / "nugets")])
    assert [p.version for p in again.packages] == ["1.0.0", "1.0.0"]


def test_bad_entries(tmp_path: Path) -> None:
    with pytest.raises(PackageError, match=r'^NuGets\[0\] \{"Version": "1.0"\}: needs \'ID\''):
        install_nugets([{"Version": "1.0"}], tmp_path, [str(tmp_path)])
    with pytest.raises(PackageError, match=r"NuGets: 'X \[1.0': bad version range"):
        install_nugets([{"ID": "X", "Version": "[1.0"}], tmp_path, [str(tmp_path)])
