"""Pack a workspace for `coflows build cloud` and unpack an uploaded one safely on the server.

What travels: `package.json`, the files under `Base/ Queries/ Agents/ Files/ Bins/` and the
README that package.json names (or README.md). Never hidden files or folders (`.coflows/` holds
the admin secret), the package caches (`pip/ jars/ nugets/`), databases, build output or editors'
scratch files (`scan.skipped_file`), nor the server's config.

Why the server checks again what the client already left out: the archive comes over the
network from any caller with Write. Unpacking refuses (`ArchiveError`, 400; `ArchiveTooLarge`,
413) absolute paths, `..`, backslashes and drive letters, links of any kind, devices, duplicate
names, entries outside the allowed set, more than `max_files` entries and more than
`max_bytes` unpacked (counted while writing, so a header that lies about a size does not help).
Files are created with O_EXCL|O_NOFOLLOW inside a fresh folder, with fresh mtimes (a reload sees
every deployed file as changed).
"""

from __future__ import annotations

import gzip
import io
import os
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

from coflows.errors import CoflowsError
from coflows.workspace.scan import SKIPPED_NAMES, skipped_file

FOLDERS = ("Base", "Queries", "Agents", "Files", "Bins")
CACHES = ("pip", "jars", "nugets")
DATABASE_SUFFIXES = (".db", ".sqlite", ".sqlite3", ".db-wal", ".db-shm", ".db-journal")
MAX_FILES = 10_000
CHUNK = 1 << 16


class ArchiveError(CoflowsError):
    """An archive that is not a workspace or holds an entry that may not be unpacked."""

    http_status = 400


class ArchiveTooLarge(CoflowsError):
    """An archive (or what it unpacks to) past a size or count limit."""

    http_status = 413


@dataclass
class Packed:
    data: bytes
    files: list[str]
    unpacked_bytes: int


def _root_file_allowed(name: str) -> bool:
    """At the top level only package.json and README-like text travel (never a config or database)."""
    low = name.lower()
    return name == "package.json" or low.startswith("readme") or low.endswith((".md", ".txt"))


def allowed(rel: PurePosixPath) -> bool:
    """Whether an archive member path may be part of a deployed workspace."""
    parts = rel.parts
    if not parts or any(p.startswith(".") or p in SKIPPED_NAMES for p in parts):
        return False
    if skipped_file(parts[-1]) or parts[-1].lower().endswith(DATABASE_SUFFIXES):
        return False
    if len(parts) == 1:
        return _root_file_allowed(parts[0])
    return parts[0] in FOLDERS


def workspace_files(root: Path, readme: str | None = None) -> list[str]:
    """The relative paths `build cloud` packs from the workspace folder `root`, sorted."""
    out: set[str] = set()
    if (root / "package.json").is_file():
        out.add("package.json")
    for name in filter(None, (readme, "README.md")):
        p = PurePosixPath(name)
        if len(p.parts) == 1 and (root / name).is_file() and allowed(p):
            out.add(name)
    for folder in FOLDERS:
        base = root / folder
        if not base.is_dir() or base.is_symlink():
            continue
        for dirpath, dirnames, filenames in os.walk(base):  # never follows links
            rel_dir = Path(dirpath).relative_to(root)
            dirnames[:] = [d for d in dirnames if not d.startswith(".") and d not in SKIPPED_NAMES
                           and not (Path(dirpath) / d).is_symlink()]
            for f in filenames:
                full = Path(dirpath) / f
                rel = PurePosixPath((rel_dir / f).as_posix())
                if full.is_symlink() or not full.is_file() or not allowed(rel):
                    continue
                out.add(str(rel))
    return sorted(out)


def pack(root: Path, max_bytes: int, readme: str | None = None) -> Packed:
    """The workspace as a tar.gz in memory; `ArchiveTooLarge` once it passes `max_bytes` (compressed)."""
    files = workspace_files(root, readme)
    if "package.json" not in files:
        raise ArchiveError(f"{root / 'package.json'}: not found (is this a workspace folder?)")
    buf = io.BytesIO()
    total = 0
    with tarfile.open(fileobj=buf, mode="w:gz", format=tarfile.PAX_FORMAT) as tar:
        for rel in files:
            path = root / rel
            info = tarfile.TarInfo(rel)
            info.size = path.stat().st_size
            info.mode = 0o644
            info.mtime = int(path.stat().st_mtime)
            total += info.size
            with open(path, "rb") as f:
                tar.addfile(info, f)
            if buf.tell() > max_bytes:
                raise ArchiveTooLarge(f"{root}: the workspace packs to more than {max_bytes} bytes "
                                      f"(stopped at {rel}); the server takes at most Server.MaxDeployBytes")
    data = buf.getvalue()
    if len(data) > max_bytes:
        raise ArchiveTooLarge(f"{root}: the workspace packs to {len(data)} bytes, more than {max_bytes} "
                              "(Server.MaxDeployBytes)")
    return Packed(data, files, total)


# -- unpacking ----------------------------------------------------------------------------------

@dataclass
class _Member:
    name: str
    size: int  # declared
    kind: str  # "file", "dir", or what it really is (refused)
    open: object  # () -> IO[bytes]


def _check_name(raw: str) -> PurePosixPath | None:
    """The safe relative path of a member, None for a directory-only entry; ArchiveError otherwise."""
    if "\x00" in raw or "\\" in raw:
        raise ArchiveError(f"archive entry {raw[:200]!r}: backslash or NUL in the name")
    if raw.startswith("/") or (len(raw) > 1 and raw[1] == ":"):
        raise ArchiveError(f"archive entry {raw[:200]!r}: absolute path")
    parts = [p for p in raw.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise ArchiveError(f"archive entry {raw[:200]!r}: '..' in the path")
    if len(raw) > 1024 or any(len(p) > 255 for p in parts):
        raise ArchiveError(f"archive entry {raw[:200]!r}: name too long")
    return PurePosixPath(*parts) if parts else None


def _zip_members(zf: zipfile.ZipFile) -> Iterator[_Member]:
    for info in zf.infolist():
        ftype = stat.S_IFMT(info.external_attr >> 16)  # 0 when the zip says nothing (permissions only)
        if info.is_dir():
            kind = "dir"
        elif ftype and ftype != stat.S_IFREG:
            kind = "symlink" if ftype == stat.S_IFLNK else "special file"
        else:
            kind = "file"
        yield _Member(info.filename, info.file_size, kind, lambda info=info: zf.open(info))


def _tar_members(tf: tarfile.TarFile) -> Iterator[_Member]:
    for info in tf:
        if info.isdir():
            kind = "dir"
        elif info.isreg():
            kind = "file"
        elif info.issym():
            kind = "symlink"
        elif info.islnk():
            kind = "hard link"
        else:
            kind = "device or special file"
        yield _Member(info.name, info.size, kind, lambda info=info: tf.extractfile(info))


def unpack(archive: Path, dest: Path, *, max_files: int = MAX_FILES, max_bytes: int) -> list[str]:
    """Unpack a zip or tar(.gz) `archive` into the empty folder `dest`; return the files written.

    Raises ArchiveError (400) or ArchiveTooLarge (413) naming the entry and the limit; `dest`
    may then hold part of the archive (the caller removes it).
    """
    with open(archive, "rb") as f:
        head = f.read(4)
    if head.startswith(b"PK"):
        entries = _zip_entry_count(archive)
        if entries is not None and entries > max_files:
            raise ArchiveTooLarge(f"archive: more than {max_files} entries (the limit of a deployed workspace)")
        try:
            with zipfile.ZipFile(archive) as zf:
                return _extract(_zip_members(zf), dest, max_files, max_bytes)
        except zipfile.BadZipFile as e:
            raise ArchiveError(f"archive: not a valid zip file ({e})") from None
    try:
        with tarfile.open(archive, mode="r:*") as tf:
            return _extract(_tar_members(tf), dest, max_files, max_bytes)
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as e:
        raise ArchiveError(f"archive: not a zip, tar or tar.gz file ({e})") from None


def _zip_entry_count(archive: Path) -> int | None:
    """The entry count a zip's end record declares, read before `zipfile` parses (and holds) its directory."""
    size = archive.stat().st_size
    with open(archive, "rb") as f:
        f.seek(max(0, size - 65_557))  # the end record (22 bytes) and a comment of at most 65,535
        tail = f.read()
        at = tail.rfind(b"PK\x05\x06")
        if at < 0 or len(tail) < at + 22:
            return None  # zipfile will say what is wrong
        count = int.from_bytes(tail[at + 10:at + 12], "little")
        if count != 0xFFFF or at < 20 or tail[at - 20:at - 16] != b"PK\x06\x07":
            return count
        f.seek(int.from_bytes(tail[at - 12:at - 4], "little"))  # the zip64 end record
        record = f.read(56)
        if record[:4] != b"PK\x06\x06" or len(record) < 40:
            return None
        return int.from_bytes(record[32:40], "little")


def _extract(members: Iterator[_Member], dest: Path, max_files: int, max_bytes: int) -> list[str]:
    dest = dest.resolve()
    written: list[str] = []
    seen: set[str] = set()
    total = 0
    count = 0
    for m in members:
        count += 1
        if count > max_files:
            raise ArchiveTooLarge(f"archive: more than {max_files} entries (the limit of a deployed workspace)")
        rel = _check_name(m.name)
        if m.kind not in ("file", "dir"):
            raise ArchiveError(f"archive entry {m.name[:200]!r}: a {m.kind}; only files and folders are deployed")
        if m.kind == "dir" and m.size > 0:  # data that would be decompressed and skipped, uncounted
            raise ArchiveError(f"archive entry {m.name[:200]!r}: a folder with {m.size} bytes of data")
        if rel is None or m.kind == "dir":
            continue
        if not allowed(rel):
            raise ArchiveError(f"archive entry {m.name[:200]!r}: not part of a workspace (only package.json, a "
                               f"README and files under {', '.join(FOLDERS)}; nothing hidden, no cache or database)")
        key = rel.as_posix()
        if key.lower() in seen:
            raise ArchiveError(f"archive entry {m.name[:200]!r}: appears twice")
        seen.add(key.lower())
        if total + max(m.size, 0) > max_bytes:
            raise ArchiveTooLarge(f"archive entry {m.name[:200]!r}: the archive unpacks to more than {max_bytes} "
                                  "bytes (4 × Server.MaxDeployBytes)")
        target = dest.joinpath(*rel.parts)
        if dest not in target.parents:
            raise ArchiveError(f"archive entry {m.name[:200]!r}: outside the workspace")
        _mkdirs(dest, target.parent)
        total = _write(m, target, total, max_bytes)
        written.append(key)
    return written


def _mkdirs(dest: Path, folder: Path) -> None:
    """Create `folder` under `dest`, refusing to pass through anything that is not a real folder."""
    current = dest
    for part in folder.relative_to(dest).parts:
        current = current / part
        try:
            os.mkdir(current, 0o755)
        except FileExistsError:
            st = os.lstat(current)
            if not stat.S_ISDIR(st.st_mode):
                raise ArchiveError(f"archive: '{current.relative_to(dest)}' is both a file and a folder") from None


def _write(m: _Member, target: Path, total: int, max_bytes: int) -> int:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(target, flags, 0o644)
    except FileExistsError:
        raise ArchiveError(f"archive entry {m.name[:200]!r}: appears twice") from None
    with os.fdopen(fd, "wb") as out:
        src: IO[bytes] = m.open()  # type: ignore[operator]
        try:
            while chunk := src.read(CHUNK):
                total += len(chunk)
                if total > max_bytes:
                    raise ArchiveTooLarge(f"archive entry {m.name[:200]!r}: the archive unpacks to more than "
                                          f"{max_bytes} bytes (4 × Server.MaxDeployBytes)")
                out.write(chunk)
        except (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as e:
            raise ArchiveError(f"archive entry {m.name[:200]!r}: cannot be read ({e})") from None
        finally:
            src.close()
    return total
