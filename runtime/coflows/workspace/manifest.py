"""The CoFlows `package.json` schema (the F# record `PKG`), read and written losslessly.

Field names are CoFlows' own (PascalCase) so that existing workspaces load
unchanged; unknown keys are kept and written back, so a manifest that passes
through `coflows build` loses nothing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_serializer

from coflows.errors import ManifestError


class _Item(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class SourceEntry(_Item):
    """A Base, Bins or Files entry: `Content` is a path relative to the manifest's folder."""

    Name: str
    Content: str


class AgentEntry(SourceEntry):
    Exe: str = "pkg"


class QueryEntry(SourceEntry):
    ID: str = ""


class PermissionEntry(_Item):
    """A fixed permission: `ID` is a user (login/email) or a group (`Public`); -1 denied … 2 write."""

    ID: str
    Permission: int = Field(ge=-1, le=2)


class PipEntry(_Item):
    ID: str


class JarEntry(_Item):
    """A jar by URL (CoFlows) or by Maven coordinates (`ID` = group:artifact, `Version`)."""

    Url: str | None = None
    ID: str | None = None
    Version: str | None = None

    @model_serializer(mode="wrap")
    def _drop_unset(self, handler):  # noqa: ANN001, ANN202 - write back only the keys the entry uses
        return {k: v for k, v in handler(self).items() if v is not None}


class NuGetEntry(_Item):
    ID: str
    Version: str = ""


class FlowEntry(_Item):
    """A named DAG flow (beyond CoFlows): a graph string, or a path to a YAML/JSON spec."""

    Name: str
    Spec: Any = None
    Content: str | None = None
    Aliases: dict[str, Any] = Field(default_factory=dict)


class Resources(_Item):
    Cpu: str = ""
    Mem: str = ""


class ContainerSpec(_Item):
    Type: str = ""
    Request: Resources = Resources()
    Limit: Resources = Resources()
    VolumeMounts: list[Any] | None = None
    Storage: Any = None


class Manifest(_Item):
    """A workspace's package.json."""

    ID: str = ""
    Name: str = ""
    Base: list[SourceEntry] = Field(default_factory=list)
    Agents: list[AgentEntry] = Field(default_factory=list)
    Queries: list[QueryEntry] = Field(default_factory=list)
    Permissions: list[PermissionEntry] = Field(default_factory=list)
    NuGets: list[NuGetEntry] = Field(default_factory=list)
    Pips: list[PipEntry] = Field(default_factory=list)
    Jars: list[JarEntry] = Field(default_factory=list)
    Bins: list[SourceEntry] = Field(default_factory=list)
    Files: list[SourceEntry] = Field(default_factory=list)
    Flows: list[FlowEntry] = Field(default_factory=list)
    ReadMe: str | None = None
    Publisher: str | None = None
    PublishTimestamp: str | None = "0001-01-01T00:00:00"
    AutoDeploy: bool = False
    Container: ContainerSpec = ContainerSpec()

    @field_validator("Base", "Agents", "Queries", "Permissions", "NuGets", "Pips", "Jars", "Bins", "Files", "Flows", mode="before")
    @classmethod
    def _null_is_empty(cls, v: Any) -> Any:
        return [] if v is None else v

    def to_json(self) -> str:
        data = self.model_dump(mode="json", exclude_none=False)
        for key in BEYOND_COFLOWS:  # a key CoFlows never writes appears only when the workspace uses it
            if key not in self.model_fields_set and not data.get(key):
                data.pop(key, None)
        return json.dumps(data, indent=2) + "\n"


# Manifest keys of ours that CoFlows' `PKG` record does not have: `coflows build` must not add them to a
# CoFlows manifest (CoFlows ignores unknown keys, but a diff of its package.json should show only new files).
BEYOND_COFLOWS = ("Flows",)


def _json_path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (("." if out else "") + str(part))
    return out or "<root>"


def duplicate_errors(manifest: Manifest, source: str) -> list[str]:
    """Two queries with one ID (or two agents with one Name): the second would silently replace the first.

    A query's ID is its `ID`, else its `Name` (as the workflow loader reads it).
    """
    errors = []
    seen: dict[str, int] = {}
    for i, q in enumerate(manifest.Queries):
        qid, field = (q.ID, "ID") if q.ID else (q.Name, "Name")
        if qid in seen:
            errors.append(f"{source}: Queries[{i}].{field}: duplicate query ID '{qid}' (also Queries[{seen[qid]}])")
        else:
            seen[qid] = i
    names: dict[str, int] = {}
    for i, a in enumerate(manifest.Agents):
        if a.Name in names:
            errors.append(f"{source}: Agents[{i}].Name: duplicate agent name '{a.Name}' (also Agents[{names[a.Name]}])")
        else:
            names[a.Name] = i
    return errors


def check_manifest(manifest: Manifest, source: str) -> None:
    """Raise ManifestError for what validates field by field but not as a whole (duplicate IDs)."""
    errors = duplicate_errors(manifest, source)
    if errors:
        raise ManifestError("\n".join(errors))


def parse_manifest(data: Any, source: str) -> Manifest:
    if not isinstance(data, dict):
        raise ManifestError(f"{source}: <root>: expected a JSON object")
    try:
        manifest = Manifest.model_validate(data)
    except ValidationError as e:
        raise ManifestError(
            "\n".join(f"{source}: {_json_path(err['loc'])}: {err['msg']}" for err in e.errors())
        ) from None
    check_manifest(manifest, source)
    return manifest


def load_manifest(path: Path) -> Manifest:
    """Read and validate a package.json; errors name the file, JSON path and reason."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ManifestError(f"{path}: workspace manifest not found") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ManifestError(f"{path}:{e.lineno}:{e.colno}: invalid JSON: {e.msg}") from None
    return parse_manifest(data, str(path))


def save_manifest(path: Path, manifest: Manifest) -> None:
    """Write back with indentation, atomically (a crash never leaves half a manifest)."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(manifest.to_json(), encoding="utf-8")
    tmp.replace(path)
