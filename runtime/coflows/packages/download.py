"""Download once, verify, keep: the shared fetcher behind jars and NuGets.

A file is written to a temp file next to its destination and renamed into place
only after its digest checked out, so a crash or a bad mirror never leaves a
half or wrong file behind. Next to each file a small ``<name>.verified`` note
records the digests it was checked against; a later `fetch` of a file whose
note and contents still agree does no network I/O at all.

Transient failures (connection errors, timeouts, 429 and 5xx) are retried with
backoff; 404 is `NotFound` at once. `url` may also be a local path or a
``file://`` URL (local NuGet feeds), which is copied the same way.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Literal, TypeVar
from urllib.parse import unquote, urlparse

import httpx

from coflows.atomic import atomic_write_bytes, atomic_write_text  # noqa: F401 - the installers import them from here
from coflows.errors import CoflowsError
from coflows.packages.progress import NULL_PROGRESS, Progress, or_null

_T = TypeVar("_T")
USER_AGENT = "coflows-packages/0.1 (+httpx)"
_CHUNK = 64 * 1024
_TRANSIENT_STATUS = {408, 425, 429, 500, 502, 503, 504}


class DownloadError(CoflowsError):
    """A file could not be fetched; `url` says which. Callers add the package.json entry."""

    def __init__(self, message: str, url: str):
        self.url = url
        super().__init__(message)


class NotFound(DownloadError):
    """The server answered 404 (or the local file does not exist)."""


class Unreachable(DownloadError):
    """The server could not be reached or kept failing after retries."""


class ChecksumMismatch(DownloadError):
    """The bytes received do not match the digest the repository publishes."""


@dataclass(frozen=True)
class Digest:
    """A digest by hashlib algorithm name (``sha1``, ``sha256``, ``sha512``)."""

    algorithm: str
    value: bytes

    @classmethod
    def from_hex(cls, algorithm: str, text: str) -> "Digest":
        """Reads Maven-style checksum files too: ``"<hex>"`` or ``"<hex>  file.jar"``."""
        token = text.strip().split()[0] if text.strip() else ""
        try:
            return cls(algorithm.lower(), bytes.fromhex(token))
        except ValueError:
            raise ValueError(f"not a {algorithm} hex digest: {text[:80]!r}") from None

    @classmethod
    def from_base64(cls, algorithm: str, text: str) -> "Digest":
        return cls(algorithm.lower(), base64.b64decode(text.strip()))

    @classmethod
    def parse(cls, text: str) -> "Digest":
        """Inverse of `str()`: ``"sha256:<hex>"``."""
        algorithm, _, hexdigest = text.strip().partition(":")
        return cls.from_hex(algorithm, hexdigest)

    @property
    def hex(self) -> str:
        return self.value.hex()

    @property
    def b64(self) -> str:
        return base64.b64encode(self.value).decode("ascii")

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hex}"


ExpectedDigest = Digest | Callable[[], Digest | None] | None


@dataclass
class Fetched:
    """A file in the cache: `status` is ``installed`` (downloaded now) or ``cached``."""

    path: Path
    status: Literal["installed", "cached"]
    sha256: str
    size: int
    verified_with: Digest | None  # None: the source published no digest to check


def hash_file(path: Path, *algorithms: str) -> dict[str, bytes]:
    """Digests of a file, one read for all algorithms."""
    hashers = {a: hashlib.new(a) for a in {"sha256", *algorithms}}
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1024 * 1024), b""):
            for h in hashers.values():
                h.update(chunk)
    return {a: h.digest() for a, h in hashers.items()}


def _note_path(dest: Path) -> Path:
    return dest.with_name(dest.name + ".verified")


def _read_note(dest: Path) -> list[Digest]:
    try:
        lines = _note_path(dest).read_text().split()
    except OSError:
        return []
    try:
        return [Digest.parse(line) for line in lines if ":" in line]
    except ValueError:
        return []


def read_lock(path: Path, lock_format: int) -> dict[str, Any] | None:
    """A lock file written by an installer, or None when missing, unreadable or of another format."""
    try:
        lock = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return lock if isinstance(lock, dict) and lock.get("format") == lock_format else None


def local_path(url: str) -> Path | None:
    """The filesystem path for a ``file://`` URL or a plain path, else None."""
    parsed = urlparse(url)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    if parsed.scheme in ("http", "https"):
        return None
    return Path(url)


class Downloader:
    """An httpx client with retries, a verified file cache and progress reports.

    Thread-safe: `fetch` may be called from a pool. `requests` counts the HTTP
    requests made, which tests use to prove that a warm build stays offline.
    """

    def __init__(
        self,
        client: httpx.Client | None = None,
        *,
        retries: int = 3,
        backoff: float = 0.5,
        timeout: float = 30.0,
        progress: Progress | None = None,
    ) -> None:
        self._own_client = client is None
        self.client = client or httpx.Client(
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            follow_redirects=True,
            headers={"User-Agent": USER_AGENT},
        )
        self.retries = retries
        self.backoff = backoff
        self.progress = or_null(progress)
        self.requests = 0  # HTTP requests made, retries included
        self._count_lock = threading.Lock()

    def __enter__(self) -> "Downloader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._own_client:
            self.client.close()

    # -- small documents -------------------------------------------------------------

    def get_bytes(self, url: str) -> bytes:
        """A whole (small) document: POM, checksum file, JSON index. 404 → `NotFound`."""
        path = local_path(url)
        if path is not None:
            try:
                return path.read_bytes()
            except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
                raise NotFound(f"not found: {path}", url) from None
            except OSError as e:
                raise Unreachable(f"cannot read {path}: {e}", url) from None
        return self._with_retries(url, lambda response: response.read())

    def get_optional(self, url: str) -> bytes | None:
        """Like `get_bytes`, but a missing document is None (e.g. an unpublished ``.sha1``)."""
        try:
            return self.get_bytes(url)
        except NotFound:
            return None

    def get_json(self, url: str) -> Any:
        data = self.get_bytes(url)
        try:
            return json.loads(data)
        except ValueError as e:
            raise DownloadError(f"invalid JSON from {url}: {e}", url) from None

    # -- files into the cache --------------------------------------------------------

    def fetch(self, url: str, dest: Path, expected: ExpectedDigest = None, *, label: str | None = None,
              report: bool = True) -> Fetched:
        """Make `dest` hold the verified contents of `url`, downloading only if needed.

        `expected` is the digest the source publishes, or a callable that fetches it
        (called only when a download is needed), or None when there is none to check.
        A cached file counts when it matches `expected` (a concrete digest) or the
        digests noted when it was downloaded.
        """
        label = label or dest.name
        progress = self.progress if report else NULL_PROGRESS
        cached = self._cached(dest, expected)
        if cached is not None:
            progress.start(label, cached.size)
            progress.done(label, "cached")
            return cached
        try:
            digest = expected() if callable(expected) else expected
            fetched = self._download(url, dest, digest, label, progress)
        except BaseException:
            progress.done(label, "failed")
            raise
        progress.done(label, "installed")
        return fetched

    def _cached(self, dest: Path, expected: ExpectedDigest) -> Fetched | None:
        if not dest.is_file():
            return None
        checks = [expected] if isinstance(expected, Digest) else _read_note(dest)
        if not checks:
            return None
        actual = hash_file(dest, *(d.algorithm for d in checks))
        if any(actual[d.algorithm] != d.value for d in checks):
            return None
        return Fetched(dest, "cached", actual["sha256"].hex(), dest.stat().st_size, checks[0])

    def _download(self, url: str, dest: Path, digest: Digest | None, label: str, progress: Progress) -> Fetched:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out:
                algorithms = {"sha256"} | ({digest.algorithm} if digest else set())
                hashers = self._write(url, out, algorithms, label, progress)
            actual = {a: h.digest() for a, h in hashers.items()}
            if digest is not None and actual[digest.algorithm] != digest.value:
                raise ChecksumMismatch(
                    f"checksum mismatch for {url}: expected {digest.algorithm} {digest.hex}, "
                    f"got {actual[digest.algorithm].hex()}",
                    url,
                )
            size = tmp.stat().st_size
            os.replace(tmp, dest)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        sha256 = Digest("sha256", actual["sha256"])
        notes = [str(d) for d in (digest, sha256) if d is not None]
        atomic_write_text(_note_path(dest), "\n".join(dict.fromkeys(notes)) + "\n")
        return Fetched(dest, "installed", sha256.hex, size, digest)

    def _write(self, url: str, out: Any, algorithms: set[str], label: str, progress: Progress) -> dict[str, Any]:
        """Copy `url` into `out`, hashing as it goes; a retried transfer starts over."""
        path = local_path(url)
        if path is not None:
            if not path.is_file():
                raise NotFound(f"not found: {path}", url)
            with open(path, "rb") as src:
                return self._copy(iter(lambda: src.read(_CHUNK), b""), out, algorithms, label, path.stat().st_size,
                                  progress)

        def body(response: httpx.Response) -> dict[str, Any]:
            length = response.headers.get("content-length", "")
            total = int(length) if length.isdigit() and not response.headers.get("content-encoding") else None
            out.seek(0)
            out.truncate()
            hashers = self._copy(response.iter_bytes(_CHUNK), out, algorithms, label, total, progress)
            if total is not None and out.tell() != total:
                raise httpx.ReadError(f"short read: got {out.tell()} of {total} bytes")
            return hashers

        return self._with_retries(url, body)

    @staticmethod
    def _copy(chunks: Iterator[bytes], out: Any, algorithms: set[str], label: str, total: int | None,
              progress: Progress) -> dict[str, Any]:
        hashers = {a: hashlib.new(a) for a in algorithms}
        progress.start(label, total)
        for chunk in chunks:
            out.write(chunk)
            for h in hashers.values():
                h.update(chunk)
            progress.advance(label, len(chunk))
        return hashers

    # -- retries ---------------------------------------------------------------------

    def _with_retries(self, url: str, body: Callable[[httpx.Response], _T]) -> _T:
        """GET `url` and hand the response to `body`; transient failures start over.

        A transport error raised inside `body` (a connection dropped mid-file) is
        transient too. 404/410 → `NotFound`; other 4xx → `DownloadError` at once.
        """
        last = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff * (2 ** (attempt - 1)))
            with self._count_lock:
                self.requests += 1
            try:
                with self.client.stream("GET", url) as response:
                    status = response.status_code
                    if status in (404, 410):
                        raise NotFound(f"not found (HTTP {status}): {url}", url)
                    if status in _TRANSIENT_STATUS:
                        last = f"HTTP {status}"
                        continue
                    if status >= 400:
                        raise DownloadError(f"HTTP {status} for {url}", url)
                    return body(response)
            except httpx.TransportError as e:
                last = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
        raise Unreachable(f"cannot download {url}: {last} (after {self.retries + 1} attempts)", url)


def replace_dir(new: Path, dest: Path) -> None:
    """Swap a fully built directory into place; the old one is removed afterwards."""
    old = None
    if dest.exists():
        old = dest.with_name(f".{dest.name}.old-{os.getpid()}-{time.monotonic_ns()}")
        os.replace(dest, old)
    os.replace(new, dest)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
