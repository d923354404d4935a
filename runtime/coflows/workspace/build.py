"""`coflows build local`, the manifest part: check, then scan every configured workspace and write it back.

Checks come before any write: a build that fails on a mistake in the config or a
manifest (a missing database folder, a duplicate query ID) leaves the disk as it
found it. The server runs the same `check_workspaces` before it opens anything.
"""

from __future__ import annotations

from pathlib import Path

from coflows.config import Config
from coflows.store.db import check_database_dir, database_url
from coflows.workspace.manifest import Manifest, check_manifest, load_manifest, save_manifest
from coflows.workspace.scan import ScanResult, scan_workspace


def check_workspaces(config: Config) -> list[tuple[Path, Manifest]]:
    """The database's folder exists and every manifest is valid (duplicate IDs included); nothing written.

    Raises ConfigError / ManifestError naming the file and the field.
    """
    url = database_url(config.database.type, config.database.connection, config.base_dir)
    check_database_dir(url, f"{config.source}: Database.Connection")
    return [(path, load_manifest(path)) for path in config.workflow_paths]


def build_workspaces(config: Config) -> list[tuple[Path, ScanResult]]:
    scanned = []
    for path, manifest in check_workspaces(config):
        scan = scan_workspace(manifest, path.parent)
        check_manifest(manifest, str(path))  # an added file may clash with an ID already listed
        scanned.append((path, manifest, scan))
    for path, manifest, scan in scanned:  # written only once every manifest is good
        if scan.changed:
            save_manifest(path, manifest)
    return [(path, scan) for path, _, scan in scanned]
