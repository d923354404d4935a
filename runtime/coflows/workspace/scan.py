"""What `coflows build` does to a manifest, as CoFlows' `UpdatePackageFile` did.

Generate an ID when it is empty, scan `Base/ Agents/ Queries/ Files/ Bins/`
and append entries for new files, named as CoFlows names them: a query's
`Name` and `ID` and an agent's `Name` are its path under its folder (`Exe`
"pkg"); a Base file's `Name` is its path under `Base/`, except Python Base
files, named by their whole path (`Base/pyBase/pybase.py`). Existing entries are
never deleted (a missing file named in the manifest is reported at load time
instead; CoFlows re-listed Files and Bins from the folders, dropping gone ones).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path

from coflows.workspace.manifest import AgentEntry, Manifest, QueryEntry, SourceEntry

SKIPPED_SUFFIXES = {".pyc", ".pyo", ".class", ".tmp", ".swp"}
SKIPPED_NAMES = {".DS_Store", "__pycache__", "bin", "obj", "node_modules", ".ipynb_checkpoints"}


def skipped_file(name: str) -> bool:
    """Build output and editors' scratch files (`x.py~`, `#x.py#`, `.#x.py`), never sources."""
    return (Path(name).suffix in SKIPPED_SUFFIXES or name.endswith("~") or name.startswith(("#", "."))
            or name in SKIPPED_NAMES)


@dataclass
class ScanResult:
    generated_id: bool = False
    added: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return self.generated_id or bool(self.added)


def _files(root: Path, folder: str) -> list[Path]:
    base = root / folder
    if not base.is_dir():
        return []
    out = []
    for p in sorted(base.rglob("*")):
        rel = p.relative_to(base)
        if any(part in SKIPPED_NAMES or part.startswith(".") for part in rel.parts):
            continue
        if p.is_file() and not skipped_file(p.name):
            out.append(p)
    return out


def scan_workspace(manifest: Manifest, root: Path) -> ScanResult:
    """Append entries for files not yet listed; mutate `manifest` in place."""
    result = ScanResult()
    if not manifest.ID:
        manifest.ID = str(uuid.uuid4())
        result.generated_id = True

    def listed(entries: list) -> set[str]:
        return {Path(e.Content).as_posix() for e in entries}

    for folder, entries in (("Base", manifest.Base), ("Agents", manifest.Agents),
                            ("Queries", manifest.Queries), ("Files", manifest.Files),
                            ("Bins", manifest.Bins)):
        known = listed(entries)
        for path in _files(root, folder):
            content = path.relative_to(root).as_posix()
            if content in known:
                continue
            under = path.relative_to(root / folder).as_posix()
            if folder == "Queries":
                entries.append(QueryEntry(Name=under, Content=content, ID=under))
            elif folder == "Agents":
                entries.append(AgentEntry(Name=under, Content=content, Exe="pkg"))
            elif folder == "Base" and content.endswith(".py"):
                entries.append(SourceEntry(Name=content, Content=content))  # CoFlows names Python Base by path
            else:
                entries.append(SourceEntry(Name=under, Content=content))
            result.added.append(content)
    for q in manifest.Queries:
        if not q.ID:
            q.ID = Path(q.Content).name if not q.Content.startswith("Queries/") else q.Content[len("Queries/"):]
    return result
