"""`coflows build local`, the manifest part: scan every configured workspace and write it back."""

from __future__ import annotations

from pathlib import Path

from coflows.config import Config
from coflows.workspace.manifest import load_manifest, save_manifest
from coflows.workspace.scan import ScanResult, scan_workspace


def build_workspaces(config: Config) -> list[tuple[Path, ScanResult]]:
    results = []
    for path in config.workflow_paths:
        manifest = load_manifest(path)
        scan = scan_workspace(manifest, path.parent)
        if scan.changed:
            save_manifest(path, manifest)
        results.append((path, scan))
    return results
