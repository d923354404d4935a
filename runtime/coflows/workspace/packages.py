"""Install a workflow's Pips, Jars and NuGets and hand the results to its engines.

Runs at `coflows build local` (with progress bars) and at server start. When
an install fails, the error names the package.json entry and the workflow
keeps the previous good set: the pip folder is only ever swapped whole, and
jars/NuGets fall back to what their last lock lists.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from coflows.config import PackagesConfig
from coflows.engines.base import WorkflowContext
from coflows.workspace.manifest import Manifest

log = logging.getLogger("coflows.packages")


@dataclass
class PackageReport:
    rows: list[tuple[str, str, str, str, str]] = field(default_factory=list)  # kind, name, version, status, detail
    errors: list[str] = field(default_factory=list)


def _entries(items: list[Any]) -> list[dict[str, Any]]:
    return [item.model_dump(mode="json", exclude_none=True) for item in items]


def _previous_jars(root: Path) -> list[Path]:
    from coflows.packages.download import read_lock
    from coflows.packages.maven import LOCK_FORMAT, LOCK_NAME

    lock = read_lock(root / "jars" / LOCK_NAME, LOCK_FORMAT) or {}
    paths = []
    for row in lock.get("artifacts", []):
        rel = row.get("path") if isinstance(row, dict) else None
        if rel and (root / "jars" / rel).is_file():
            paths.append(root / "jars" / rel)
    return paths


def _previous_nugets(root: Path) -> list[Path]:
    from coflows.packages.download import read_lock
    from coflows.packages.nuget import LOCK_FORMAT, LOCK_NAME

    lock = read_lock(root / "nugets" / LOCK_NAME, LOCK_FORMAT) or {}
    return [root / "nugets" / a for row in lock.get("packages", []) for a in row.get("assemblies", [])
            if (root / "nugets" / a).is_file()]


def install_packages(ctx: WorkflowContext, manifest: Manifest, settings: PackagesConfig,
                     progress: Any = None) -> PackageReport:
    """Install what the manifest lists; set `ctx.pip_path`, `ctx.jar_paths`, `ctx.nuget_assemblies`."""
    if manifest.Pips or manifest.Jars or manifest.NuGets:  # the installers (and httpx) only when used
        from coflows.packages import IndexOptions, PackageError, install_nugets, install_pips, resolve_jars

    report = PackageReport()
    root = ctx.root

    def record(summary: Any) -> None:
        if summary is not None:
            report.rows += [tuple(str(c or "") for c in row) for row in summary.rows()]

    if manifest.Pips:
        try:
            index = IndexOptions(index_url=settings.pip_index_url or None)
            result = install_pips(_entries(manifest.Pips), root, progress, index=index)
            record(result.summary)
            ctx.pip_path = result.path
        except PackageError as e:
            report.errors.append(str(e))
            record(e.summary)
    if ctx.pip_path is None and (root / "pip").is_dir():
        ctx.pip_path = root / "pip"  # the previous good set
    if manifest.Jars:
        try:
            jars = resolve_jars(_entries(manifest.Jars), root, settings.maven_repositories, progress)
            record(jars.summary)
            ctx.jar_paths = list(jars.jars)
        except PackageError as e:
            report.errors.append(str(e))
            record(e.summary)
            ctx.jar_paths = _previous_jars(root)
    if manifest.NuGets:
        try:
            nugets = install_nugets(_entries(manifest.NuGets), root, settings.nuget_feeds, progress)
            record(nugets.summary)
            ctx.nuget_assemblies = list(nugets.assemblies)
            ctx.state["nuget_framework_assemblies"] = list(nugets.framework_assemblies)
        except PackageError as e:
            report.errors.append(str(e))
            record(e.summary)
            ctx.nuget_assemblies = _previous_nugets(root)
    ctx.bin_paths = [(root / b.Content).resolve() for b in manifest.Bins if (root / b.Content).is_file()]
    for err in report.errors:
        log.error("%s: %s", ctx.name, err)
    return report
