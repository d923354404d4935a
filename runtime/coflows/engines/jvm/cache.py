"""Successful Java compilations kept between starts, keyed by everything that went into them.

The first `javax.tools` compilation in a fresh JVM is slow (the compiler's own classes load and
run interpreted): the example workspace's Base took ~0.7 s of a 3 s start. A start whose sources
did not change reads the classes back instead and never loads the compiler.

The key is a hash of the JDK version, the engine's host classes (their folder is named by their
own hash), each class-path entry with its size and modification time, the javac options, every
source's name and text, and, for a query, the key of the Base it was compiled against. Only
successful compilations are kept (a failure compiles again, to report its errors). Entries live
in the engine's cache folder, which must belong to this user and be writable by nobody else
(compiled code is trusted when read back); the oldest are removed past MAX_ENTRIES.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
from collections.abc import Iterable
from pathlib import Path

from coflows.atomic import atomic_write_bytes

log = logging.getLogger("coflows.engines.jvm")

MAX_ENTRIES = 500
PRUNE_EVERY = 50  # puts between two prunings (and the first put prunes)
SUFFIX = ".cfj"


def compile_key(parts: Iterable[str], classpath: Iterable[str], sources: Iterable[tuple[str, str]]) -> str:
    """The hash of one compilation's inputs (`parts`: versions, options, the Base's key)."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(b"p\0" + part.encode() + b"\0")
    for entry in classpath:
        try:
            st = os.stat(entry)
            stamp = f"{st.st_size}:{st.st_mtime_ns}"
        except OSError:
            stamp = "missing"
        digest.update(b"c\0" + entry.encode() + b"\0" + stamp.encode() + b"\0")
    for name, text in sources:
        digest.update(b"s\0" + name.encode() + b"\0" + text.encode() + b"\0")
    return digest.hexdigest()


def private_dir(path: Path) -> bool:
    """True when `path` is a folder of this user that no one else can write (else nothing is cached)."""
    try:
        st = os.stat(path)
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid() and not st.st_mode & 0o022


class CompileCache:
    """`get`/`put` of compiled results (bytes) by key, in `root` (None: caching is off)."""

    def __init__(self, root: Path | None) -> None:
        self.root = root if root is not None and private_dir(root) else None
        self.hits = self.misses = 0
        self._puts = 0
        if root is not None and self.root is None:
            log.info("%s is not a private folder of this user: Java compilations are not cached", root)

    def get(self, key: str) -> bytes | None:
        if self.root is None:
            return None
        path = self.root / (key + SUFFIX)
        try:
            data = path.read_bytes()
            os.utime(path)  # recently used: pruned last
        except OSError:
            self.misses += 1
            return None
        self.hits += 1
        return data

    def put(self, key: str, data: bytes) -> None:
        if self.root is None:
            return
        try:
            atomic_write_bytes(self.root / (key + SUFFIX), data)
            self._puts += 1
            if self._puts % PRUNE_EVERY == 1:  # not a listing of the folder per compilation
                self._prune()
        except OSError as e:  # a full disk: the next start compiles again
            log.info("cannot cache a Java compilation in %s: %s", self.root, e)

    def reject(self, key: str) -> None:
        """What `get` gave for `key` could not be read back: drop it (it counts as a miss)."""
        self.hits -= 1
        self.misses += 1
        if self.root is not None:
            (self.root / (key + SUFFIX)).unlink(missing_ok=True)

    def _prune(self) -> None:
        assert self.root is not None
        entries = sorted(self.root.glob("*" + SUFFIX), key=lambda p: p.stat().st_mtime)
        for old in entries[:-MAX_ENTRIES]:
            old.unlink(missing_ok=True)
