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

from coflows.packages.download import ChecksumMismatch, Digest, DownloadError, Downloader, NotFound, Unreachable
from coflows.packages.maven import DEFAULT_REPOSITORIES, JarResult, jars_dir, resolve_jars
from coflows.packages.nuget import DEFAULT_FEEDS, NuGetPackage, NuGetResult, install_nugets, nugets_dir
from coflows.packages.pip import IndexOptions, PipResult, install_pips, pip_path, runtime_pins
from coflows.packages.progress import NullProgress, Progress, RecordingProgress, RichProgress
from coflows.packages.summary import InstallItem, InstallSummary, PackageError, Status

__all__ = [
    "ChecksumMismatch", "DEFAULT_FEEDS", "DEFAULT_REPOSITORIES", "Digest", "DownloadError", "Downloader",
    "IndexOptions", "InstallItem", "InstallSummary", "JarResult", "NotFound", "NuGetPackage", "NuGetResult",
    "NullProgress", "PackageError", "PipResult", "Progress", "RecordingProgress", "RichProgress", "Status",
    "Unreachable", "install_nugets", "install_pips", "jars_dir", "nugets_dir", "pip_path", "resolve_jars",
    "runtime_pins",
]
