"""Workspaces: a folder with a CoFlows `package.json` and its sources."""

from coflows.workspace.manifest import Manifest, load_manifest, save_manifest

__all__ = ["Manifest", "load_manifest", "save_manifest"]
