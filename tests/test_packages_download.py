"""The shared fetcher: retries, verified cache, atomic writes, progress; version helpers."""

from __future__ import annotations

import hashlib
import io
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from coflows.packages import InstallItem, InstallSummary, RichProgress
from coflows.packages.download import ChecksumMismatch, Digest, Downloader, NotFound, Unreachable
from coflows.packages.maven_version import MavenVersion, VersionRange
from coflows.packages.nuget_tfm import best, normalize
from coflows.packages.nuget_version import NuGetRange, NuGetVersion
from coflows.packages.progress import RecordingProgress

BODY = b"coflows" * 10000


class Flaky:
    """/ok, /flaky (503 twice), /drop (connection cut mid-body once), /missing (404), /down (always 503)."""

    def __init__(self) -> None:
        self.hits: dict[str, int] = {}
        state = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                n = state.hits[self.path] = state.hits.get(self.path, 0) + 1
                if self.path == "/missing":
                    self.send_error(404)
                elif self.path == "/down" or (self.path == "/flaky" and n <= 2):
                    self.send_error(503)
                else:
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(BODY)))
                    self.end_headers()
                    if self.path == "/drop" and n == 1:
                        self.wfile.write(BODY[:1000])
                        self.wfile.flush()
                        self.connection.close()
                        return
                    self.wfile.write(BODY)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture
def server():
    s = Flaky()
    yield s
    s.httpd.shutdown()
    s.httpd.server_close()


def sha1(data: bytes) -> Digest:
    return Digest("sha1", hashlib.sha1(data).digest())


def test_download_verify_and_cache(server: Flaky, tmp_path: Path) -> None:
    progress = RecordingProgress()
    dl = Downloader(progress=progress)
    dest = tmp_path / "a" / "file.jar"
    first = dl.fetch(f"{server.url}/ok", dest, sha1(BODY))
    assert first.status == "installed" and dest.read_bytes() == BODY
    assert first.sha256 == hashlib.sha256(BODY).hexdigest()
    assert ("start", "file.jar", len(BODY)) in progress.events
    assert sum(n for kind, _, n in progress.events if kind == "advance") == len(BODY)
    # cached: the note written beside it is enough, the lazy digest is not even asked for
    second = dl.fetch(f"{server.url}/ok", dest, lambda: pytest.fail("digest fetched for a cached file"))
    assert second.status == "cached" and server.hits["/ok"] == 1
    # a file that no longer matches is downloaded again
    dest.write_bytes(b"changed")
    assert dl.fetch(f"{server.url}/ok", dest, sha1(BODY)).status == "installed"
    assert sorted(p.name for p in dest.parent.iterdir()) == ["file.jar", "file.jar.verified"]  # no temp files left


def test_checksum_mismatch_leaves_nothing(server: Flaky, tmp_path: Path) -> None:
    dest = tmp_path / "file.jar"
    with pytest.raises(ChecksumMismatch, match="expected sha1"):
        Downloader().fetch(f"{server.url}/ok", dest, sha1(b"other"))
    assert list(tmp_path.iterdir()) == []


def test_retries_transient_errors(server: Flaky, tmp_path: Path) -> None:
    dl = Downloader(backoff=0.01)
    assert dl.fetch(f"{server.url}/flaky", tmp_path / "f", sha1(BODY)).status == "installed"
    assert server.hits["/flaky"] == 3
    assert dl.fetch(f"{server.url}/drop", tmp_path / "d", sha1(BODY)).status == "installed"
    assert server.hits["/drop"] == 2
    with pytest.raises(Unreachable, match="HTTP 503.*after 3 attempts"):
        Downloader(retries=2, backoff=0.01).get_bytes(f"{server.url}/down")
    with pytest.raises(NotFound):
        dl.get_bytes(f"{server.url}/missing")
    assert server.hits["/missing"] == 1  # 404 is not retried
    assert dl.get_optional(f"{server.url}/missing") is None


def test_local_files(tmp_path: Path) -> None:
    src = tmp_path / "src.bin"
    src.write_bytes(b"local")
    fetched = Downloader().fetch(src.as_uri(), tmp_path / "out" / "copy.bin", sha1(b"local"))
    assert fetched.status == "installed" and (tmp_path / "out" / "copy.bin").read_bytes() == b"local"
    with pytest.raises(NotFound):
        Downloader().fetch(str(tmp_path / "nope"), tmp_path / "x")


def test_digest_parsing() -> None:
    d = Digest.from_hex("SHA1", "da39a3ee5e6b4b0d3255bfef95601890afd80709  empty.jar\n")
    assert d.algorithm == "sha1" and Digest.parse(str(d)) == d
    assert Digest.from_base64("sha512", d.b64).value == d.value


def test_rich_progress_and_summary() -> None:
    from rich.console import Console

    out = io.StringIO()
    with RichProgress(Console(file=out, force_terminal=False, width=100)) as p:
        p.start("gson 2.10.1", 100)
        p.advance("gson 2.10.1", 100)
        p.done("gson 2.10.1", "installed")
        p.start("bad 1.0", None)
        p.done("bad 1.0", "failed")
    assert "bad 1.0" in out.getvalue()
    summary = InstallSummary([InstallItem("jar", "g:a", "1", "cached"), InstallItem("pip", "six", "1.16.0", "failed",
                                                                                  error="boom")])
    assert not summary.ok and summary.count("cached") == 1
    assert list(summary.rows())[1] == ("pip", "six", "1.16.0", "failed", "boom")


def test_maven_versions() -> None:
    assert MavenVersion("1.0") == MavenVersion("1.0.0") and MavenVersion("1.0-rc1") < MavenVersion("1.0")
    assert MavenVersion("1.0-SNAPSHOT") < MavenVersion("1.0") < MavenVersion("1.0-sp1") < MavenVersion("1.0.1")
    assert MavenVersion("2.10.1") > MavenVersion("2.9")
    assert VersionRange("[1.0,2.0),[3.0,)").highest(["1.1", "1.9", "2.5", "3.1"]) == "3.1"
    assert VersionRange("(,1.0]").highest(["0.9", "1.0", "1.1"]) == "1.0"


def test_nuget_versions_and_frameworks() -> None:
    assert NuGetVersion("1.0") == NuGetVersion("1.0.0.0") and str(NuGetVersion("1.0")) == "1.0.0"
    assert NuGetVersion("1.0.0-alpha.2") < NuGetVersion("1.0.0-alpha.10") < NuGetVersion("1.0.0")
    vs = [NuGetVersion(v) for v in ("0.9", "1.0", "1.1", "2.0", "2.1-beta")]
    assert str(NuGetRange.parse("1.0").lowest(vs)) == "1.0.0"
    assert str(NuGetRange.parse("(1.0,)").lowest(vs)) == "1.1.0"
    assert NuGetRange.parse("[3.0]").lowest(vs) is None
    assert str(NuGetRange.parse("[2.1-alpha,)").lowest(vs)) == "2.1.0-beta"
    assert normalize(".NETFramework4.5") == "net45" and normalize("net40-client") == "net40"
    assert normalize("net6.0") is None and normalize("netcoreapp3.1") is None
    assert best(["netstandard2.0", "net45", "net6.0"]) == "net45"
    assert best(["netstandard1.3", "netstandard2.0"]) == "netstandard2.0"
    assert best(["net461", "net48", "net472"]) == "net48"
