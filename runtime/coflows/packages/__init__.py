"""Reproducible dependency installs per workspace: Pips, Jars and NuGets.

Each installer takes the package.json entries as plain mappings and the
workspace directory, pins what it resolved in a lock kept in the workspace, and
returns an `InstallSummary` (one row per package) next to what the engines need:

- `install_pips` → ``<workspace>/pip`` for ``sys.path`` (lock: ``requirements.lock``)
- `resolve_jars` → the classpath (``<workspace>/jars``, lock: ``jars/jars.lock.json``)
- `install_nugets` → assemblies to reference and load (``<workspace>/nugets``,
  lock: ``nugets/nugets.lock.json``)

Failures raise `PackageError` naming the package.json entry; progress goes to a
`Progress` (no-op by default, `RichProgress` for the CLI).
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

# Names are imported on first use (PEP 562): `coflows.packages.progress`, which the CLI imports at
# start, must not pull in the downloader (httpx) and the installers on every `coflows server`.
_HOME = {
    "download": ("ChecksumMismatch", "Digest", "DownloadError", "Downloader", "NotFound", "Unreachable"),
    "maven": ("DEFAULT_REPOSITORIES", "JarResult", "jars_dir", "resolve_jars"),
    "nuget": ("DEFAULT_FEEDS", "NuGetPackage", "NuGetResult", "install_nugets", "nugets_dir"),
    "pip": ("IndexOptions", "PipResult", "install_pips", "pip_path", "runtime_pins"),
    "progress": ("NullProgress", "Progress", "RecordingProgress", "RichProgress"),
    "summary": ("InstallItem", "InstallSummary", "PackageError", "Status"),
}
_MODULE_OF = {name: module for module, names in _HOME.items() for name in names}


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'coflows.packages' has no attribute {name!r}")
    value = getattr(import_module(f"coflows.packages.{module}"), name)
    globals()[name] = value
    return value


__all__ = [
    "ChecksumMismatch", "DEFAULT_FEEDS", "DEFAULT_REPOSITORIES", "Digest", "DownloadError", "Downloader",
    "IndexOptions", "InstallItem", "InstallSummary", "JarResult", "NotFound", "NuGetPackage", "NuGetResult",
    "NullProgress", "PackageError", "PipResult", "Progress", "RecordingProgress", "RichProgress", "Status",
    "Unreachable", "install_nugets", "install_pips", "jars_dir", "nugets_dir", "pip_path", "resolve_jars",
    "runtime_pins",
]
