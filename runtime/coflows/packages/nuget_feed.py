"""NuGet feeds: a v3 HTTP feed (service index) or a local folder of packages.

Both answer the three questions the installer asks: which versions of a
package exist, where its ``.nupkg`` is, and which SHA-512 the feed publishes for
it (v3: the catalog entry's ``packageHash`` reached through the registration;
folder: the ``.nupkg.sha512`` file next to the package, when there is one).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Protocol

from coflows.errors import CoflowsError
from coflows.packages.download import Digest, DownloadError, Downloader, NotFound, local_path
from coflows.packages.nuget_version import NuGetVersion


class FeedError(CoflowsError):
    """A feed is unreachable or not a NuGet feed; the message names the feed."""


class Feed(Protocol):
    source: str

    def versions(self, package_id: str) -> list[NuGetVersion]:
        """All versions of a package ([] when the feed does not have it)."""
        ...

    def nupkg_url(self, package_id: str, version: NuGetVersion) -> str: ...

    def published_hash(self, package_id: str, version: NuGetVersion) -> Digest | None: ...


def open_feed(source: str, downloader: Downloader) -> Feed:
    """A v3 feed for an http(s) URL, a folder feed for a path or ``file://`` URL."""
    path = local_path(source)
    if path is None:
        return V3Feed(source, downloader)
    return FolderFeed(path)


class V3Feed:
    """``index.json`` → PackageBaseAddress/3.0.0 (flat container) and RegistrationsBaseUrl."""

    def __init__(self, index_url: str, downloader: Downloader) -> None:
        self.source = index_url
        self.dl = downloader
        self._resources: list[dict[str, Any]] | None = None
        self._lock = threading.Lock()

    def _resource(self, *types: str) -> str | None:
        with self._lock:
            if self._resources is None:
                try:
                    index = self.dl.get_json(self.source)
                except DownloadError as e:
                    raise FeedError(f"NuGet feed {self.source} is unreachable: {e}") from None
                resources = index.get("resources") if isinstance(index, dict) else None
                if not isinstance(resources, list):
                    raise FeedError(f"{self.source} is not a NuGet v3 service index (no 'resources')")
                self._resources = [r for r in resources if isinstance(r, dict)]
        for wanted in types:
            for r in self._resources:
                kinds = r.get("@type")
                if wanted in (kinds if isinstance(kinds, list) else [kinds]) and r.get("@id"):
                    return str(r["@id"]).rstrip("/")
        return None

    def _base(self) -> str:
        base = self._resource("PackageBaseAddress/3.0.0")
        if base is None:
            raise FeedError(f"NuGet feed {self.source} has no PackageBaseAddress/3.0.0 resource")
        return base

    def versions(self, package_id: str) -> list[NuGetVersion]:
        url = f"{self._base()}/{package_id.lower()}/index.json"
        try:
            data = self.dl.get_json(url)
        except NotFound:
            return []
        except DownloadError as e:
            raise FeedError(f"NuGet feed {self.source}: {e}") from None
        return [v for text in data.get("versions", []) if (v := NuGetVersion.parse(str(text)))]

    def nupkg_url(self, package_id: str, version: NuGetVersion) -> str:
        lid, ver = package_id.lower(), version.normalized.lower()
        return f"{self._base()}/{lid}/{ver}/{lid}.{ver}.nupkg"

    def published_hash(self, package_id: str, version: NuGetVersion) -> Digest | None:
        reg = self._resource("RegistrationsBaseUrl/3.6.0", "RegistrationsBaseUrl/3.4.0", "RegistrationsBaseUrl")
        if reg is None:
            return None
        try:
            index = self.dl.get_json(f"{reg}/{package_id.lower()}/index.json")
            for page in index.get("items", []):
                low, high = NuGetVersion.parse(page.get("lower", "")), NuGetVersion.parse(page.get("upper", ""))
                if (low and version < low) or (high and version > high):
                    continue
                leaves = page.get("items")
                if leaves is None:  # large registrations keep pages apart
                    leaves = self.dl.get_json(page["@id"]).get("items", [])
                for leaf in leaves:
                    entry = leaf.get("catalogEntry")
                    text = entry.get("version", "") if isinstance(entry, dict) else ""
                    if NuGetVersion.parse(text) == version:
                        return self._hash_of(entry)
        except NotFound:
            return None
        except DownloadError as e:
            raise FeedError(f"NuGet feed {self.source}: {e}") from None
        return None

    def _hash_of(self, entry: dict[str, Any]) -> Digest | None:
        if "packageHash" not in entry:  # registration leaves usually link to the catalog item
            entry = self.dl.get_json(str(entry["@id"]))
        value = entry.get("packageHash")
        if not value:
            return None
        return Digest.from_base64(str(entry.get("packageHashAlgorithm") or "SHA512").lower(), str(value))


class FolderFeed:
    """A directory of ``.nupkg`` files, flat or laid out as ``{id}/{version}/``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.source = str(root)

    def _packages(self, package_id: str) -> dict[NuGetVersion, Path]:
        if not self.root.is_dir():
            raise FeedError(f"NuGet folder feed {self.root} does not exist")
        lid = package_id.lower()
        found: dict[NuGetVersion, Path] = {}
        for child in self.root.iterdir():
            if child.is_dir() and child.name.lower() == lid:  # hierarchical: {id}/{version}/{id}.{version}.nupkg
                for vdir in child.iterdir():
                    v = NuGetVersion.parse(vdir.name)
                    nupkgs = sorted(vdir.glob("*.nupkg")) if v and vdir.is_dir() else []
                    if nupkgs:
                        found.setdefault(v, nupkgs[0])  # type: ignore[arg-type]
            elif child.suffix.lower() == ".nupkg" and child.name.lower().startswith(lid + "."):
                v = NuGetVersion.parse(child.name[len(lid) + 1:-len(".nupkg")])
                if v is not None:
                    found.setdefault(v, child)
        return found

    def versions(self, package_id: str) -> list[NuGetVersion]:
        return sorted(self._packages(package_id))

    def nupkg_url(self, package_id: str, version: NuGetVersion) -> str:
        path = self._packages(package_id).get(version)
        if path is None:
            raise FeedError(f"{package_id} {version} is not in folder feed {self.root}")
        return str(path)

    def published_hash(self, package_id: str, version: NuGetVersion) -> Digest | None:
        path = Path(self.nupkg_url(package_id, version))
        note = path.with_name(path.name + ".sha512")
        return Digest.from_base64("sha512", note.read_text()) if note.is_file() else None
