"""Jars: URL and coordinate entries, POM resolution against a loopback Maven repository."""

from __future__ import annotations

import hashlib
import io
import json
import sys
import zipfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "fixtures" / "packages"))
from pkgserver import CountingServer  # noqa: E402

from coflows.packages.download import Downloader
from coflows.packages.maven import resolve_jars
from coflows.packages.progress import RecordingProgress
from coflows.packages.summary import PackageError


def _jar(name: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\n")
        z.writestr(f"{name}.txt", name)
    return buf.getvalue()


def _dep(coords: str, scope: str | None = None, optional: bool = False, exclusions: list[str] = (),
         type_: str | None = None) -> str:
    g, a, *v = coords.split(":")
    out = f"<dependency><groupId>{g}</groupId><artifactId>{a}</artifactId>"
    if v:
        out += f"<version>{v[0]}</version>"
    if type_:
        out += f"<type>{type_}</type>"
    if scope:
        out += f"<scope>{scope}</scope>"
    if optional:
        out += "<optional>true</optional>"
    if exclusions:
        out += "<exclusions>" + "".join(
            f"<exclusion><groupId>{e.split(':')[0]}</groupId><artifactId>{e.split(':')[1]}</artifactId></exclusion>"
            for e in exclusions) + "</exclusions>"
    return out + "</dependency>"


def publish(repo: Path, coords: str, body: str = "", *, packaging: str = "jar", parent: str | None = None,
            jar: bool = True, bad_sha1: bool = False) -> None:
    g, a, v = coords.split(":")
    d = repo.joinpath(*g.split("."), a, v)
    d.mkdir(parents=True, exist_ok=True)
    head = ""
    if parent:
        pg, pa, pv = parent.split(":")
        head = f"<parent><groupId>{pg}</groupId><artifactId>{pa}</artifactId><version>{pv}</version></parent>"
        ident = f"<artifactId>{a}</artifactId>"  # groupId and version inherited
    else:
        ident = f"<groupId>{g}</groupId><artifactId>{a}</artifactId><version>{v}</version>"
    pom = (f'<?xml version="1.0"?><project xmlns="http://maven.apache.org/POM/4.0.0">'
           f"<modelVersion>4.0.0</modelVersion>{head}{ident}<packaging>{packaging}</packaging>{body}</project>")
    files = {f"{a}-{v}.pom": pom.encode()}
    if jar:
        files[f"{a}-{v}.jar"] = _jar(a)
    for name, data in files.items():
        (d / name).write_bytes(data)
        digest = hashlib.sha1(b"wrong" if bad_sha1 and name.endswith(".jar") else data).hexdigest()
        (d / f"{name}.sha1").write_text(digest)


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("m2")
    publish(root, "com.ex:bom:1.0", "<dependencyManagement><dependencies>" + _dep("com.ex:e:3.0")
            + "</dependencies></dependencyManagement>", packaging="pom", jar=False)
    publish(root, "com.ex:parent:1.0",
            "<properties><c.version>1.2</c.version></properties>"
            "<dependencyManagement><dependencies>" + _dep("com.ex:c:${c.version}")
            + _dep("com.ex:bom:1.0", scope="import", type_="pom") + "</dependencies></dependencyManagement>",
            packaging="pom", jar=False)
    publish(root, "com.ex:a:1.0", "<dependencies>"
            + _dep("com.ex:b:${project.version}")
            + _dep("com.ex:junitish:1.0", scope="test")  # never published: must not be fetched
            + _dep("com.ex:opt:1.0", optional=True)  # never published either
            + _dep("com.ex:e")  # version from the BOM the parent imports
            + "</dependencies>", parent="com.ex:parent:1.0")
    publish(root, "com.ex:b:1.0", "<dependencies>"
            + _dep("com.ex:c")  # version from parent's dependencyManagement via ${c.version}
            + _dep("com.ex:x:1.0", exclusions=["com.ex:y"])
            + _dep("com.ex:prov:1.0", scope="provided")
            + "</dependencies>", parent="com.ex:parent:1.0")
    for coords in ("com.ex:c:1.1", "com.ex:c:1.2", "com.ex:e:3.0", "com.ex:y:1.0", "com.ex:z:1.0"):
        publish(root, coords)
    publish(root, "com.ex:x:1.0", "<dependencies>" + _dep("com.ex:y:1.0") + _dep("com.ex:z:1.0") + "</dependencies>")
    publish(root, "com.ex:bad:1.0", bad_sha1=True)
    publish(root, "com.ex:broken:1.0", "<dependencies>" + _dep("com.ex:ghost:1.0") + "</dependencies>")
    with CountingServer(root) as server:
        yield server


def names(result) -> list[str]:
    return [f"{i.name}:{i.version}" for i in result.summary.items]


def test_transitive_parent_bom_property_exclusion_and_scopes(repo: CountingServer, tmp_path: Path) -> None:
    progress = RecordingProgress()
    result = resolve_jars([{"ID": "com.ex:a", "Version": "1.0"}], tmp_path, [repo.url], progress=progress)
    # preorder of the tree a → (b → (c, x → z), e); y excluded; test/optional/provided skipped
    assert names(result) == ["com.ex:a:1.0", "com.ex:b:1.0", "com.ex:c:1.2", "com.ex:x:1.0", "com.ex:z:1.0",
                             "com.ex:e:3.0"]
    assert [p.name for p in result.jars] == ["a-1.0.jar", "b-1.0.jar", "c-1.2.jar", "x-1.0.jar", "z-1.0.jar",
                                             "e-3.0.jar"]
    assert all(p.is_file() and zipfile.is_zipfile(p) for p in result.jars)
    assert result.entry_status == {"Jars: 'com.ex:a:1.0'": "installed"}
    assert not any(x in r for r in repo.requests for x in ("junitish", "opt", "prov", "/y/"))
    assert progress.statuses()["com.ex:a 1.0"] == "installed"
    item = result.summary.items[4]
    assert item.detail == "via com.ex:a:1.0 > com.ex:b:1.0 > com.ex:x:1.0"


def test_second_build_downloads_nothing(repo: CountingServer, tmp_path: Path) -> None:
    entries = [{"ID": "com.ex:a:1.0"}, {"Url": f"{repo.url}/com/ex/z/1.0/z-1.0.jar"}]
    first = resolve_jars(entries, tmp_path, [repo.url])
    assert first.resolved and (tmp_path / "jars" / "jars.lock.json").is_file()
    repo.reset()
    dl = Downloader()
    second = resolve_jars(entries, tmp_path, [repo.url], downloader=dl)
    assert repo.requests == [] and dl.requests == 0
    assert not second.resolved
    assert second.jars == first.jars
    assert {i.status for i in second.summary.items} == {"cached"}
    assert set(second.entry_status.values()) == {"cached"}

    # a lost jar is fetched again (and checked against the lock), nothing else
    first.jars[2].unlink()
    third = resolve_jars(entries, tmp_path, [repo.url])
    assert repo.requests == ["/com/ex/c/1.2/c-1.2.jar"]
    assert [i.status for i in third.summary.items].count("installed") == 1


def test_url_entry_verified_by_published_sha1(repo: CountingServer, tmp_path: Path) -> None:
    url = f"{repo.url}/com/ex/c/1.1/c-1.1.jar"
    result = resolve_jars([{"Url": url}], tmp_path, [repo.url])
    assert result.jars == [tmp_path / "jars" / "urls" / f"127.0.0.1_{repo.port}" / "com/ex/c/1.1/c-1.1.jar"]
    assert "/com/ex/c/1.1/c-1.1.jar.sha1" in repo.requests
    bad = f"{repo.url}/com/ex/bad/1.0/bad-1.0.jar"
    with pytest.raises(PackageError, match=f"Jars: '{bad}'.*checksum mismatch"):
        resolve_jars([{"Url": bad}], tmp_path, [repo.url])


def test_nearest_wins(repo: CountingServer, tmp_path: Path) -> None:
    result = resolve_jars([{"ID": "com.ex:a:1.0"}, {"ID": "com.ex:c:1.1"}], tmp_path, [repo.url])
    assert "com.ex:c:1.1" in names(result) and "com.ex:c:1.2" not in names(result)
    assert names(result)[-1] == "com.ex:c:1.1"


def test_checksum_mismatch_names_entry(repo: CountingServer, tmp_path: Path) -> None:
    with pytest.raises(PackageError) as info:
        resolve_jars([{"ID": "com.ex:c:1.2"}, {"ID": "com.ex:bad", "Version": "1.0"}], tmp_path, [repo.url])
    message = str(info.value)
    assert message.startswith("Jars: 'com.ex:bad:1.0': ") and "checksum mismatch" in message
    assert "com.ex:c" not in message
    assert not (tmp_path / "jars" / "maven/com/ex/bad/1.0/bad-1.0.jar").exists()  # never kept
    assert not (tmp_path / "jars" / "jars.lock.json").exists()
    statuses = {i.name: i.status for i in info.value.summary.items}
    assert statuses == {"com.ex:c": "installed", "com.ex:bad": "failed"}


def test_missing_artifact_names_entry(repo: CountingServer, tmp_path: Path) -> None:
    with pytest.raises(PackageError, match=r"Jars: 'com\.ex:nothere:1\.0': .*not found"):
        resolve_jars([{"ID": "com.ex:nothere:1.0"}], tmp_path, [repo.url])
    with pytest.raises(PackageError) as info:
        resolve_jars([{"ID": "com.ex:broken:1.0"}], tmp_path, [repo.url])
    assert str(info.value).startswith("Jars: 'com.ex:broken:1.0': com.ex:ghost:1.0 (via com.ex:broken:1.0)")


def test_version_range_and_latest(repo: CountingServer, tmp_path: Path) -> None:
    meta = repo.root / "com/ex/c/maven-metadata.xml"
    meta.write_text("<metadata><versioning><versions><version>1.1</version><version>1.2</version>"
                    "</versions></versioning></metadata>")
    try:
        ranged = resolve_jars([{"ID": "com.ex:c", "Version": "[1.0,1.2)"}], tmp_path, [repo.url])
        assert names(ranged) == ["com.ex:c:1.1"]
        assert names(resolve_jars([{"ID": "com.ex:c"}], tmp_path, [repo.url])) == ["com.ex:c:1.2"]
    finally:
        meta.unlink()


def test_bad_entries(tmp_path: Path) -> None:
    with pytest.raises(PackageError, match="Jars: 'gson'"):
        resolve_jars([{"ID": "gson"}], tmp_path, ["http://127.0.0.1:9"])
    with pytest.raises(PackageError, match=r'^Jars\[0\] \{"Version": "1"\}: needs \'Url\' or \'ID\''):
        resolve_jars([{"Version": "1"}], tmp_path, ["http://127.0.0.1:9"])


@pytest.mark.network
def test_maven_central_gson(tmp_path: Path) -> None:
    entries = [{"ID": "com.google.code.gson:gson", "Version": "2.10.1"}]
    result = resolve_jars(entries, tmp_path)
    assert [p.name for p in result.jars] == ["gson-2.10.1.jar"]
    assert hashlib.sha256(result.jars[0].read_bytes()).hexdigest() == json.loads(
        (tmp_path / "jars" / "jars.lock.json").read_text())["artifacts"][0]["sha256"]
    dl = Downloader()
    assert resolve_jars(entries, tmp_path, downloader=dl).entry_status == {
        "Jars: 'com.google.code.gson:gson:2.10.1'": "cached"}
    assert dl.requests == 0
