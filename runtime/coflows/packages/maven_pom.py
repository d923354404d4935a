"""POM files to effective dependency lists: parents, properties, dependencyManagement, BOMs.

Only what decides a runtime classpath is modelled. The order of Maven's model
building is kept because it changes results: a child inherits its parent's
(uninterpolated) properties, dependencies and dependencyManagement, then
everything is interpolated with the child's values, then BOM imports add the
managed entries that are not declared explicitly. Profiles are not evaluated.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field, replace
from typing import Callable

from coflows.errors import CoflowsError


class PomError(CoflowsError):
    """A POM is malformed, has a parent cycle or leaves a required value unresolved."""


@dataclass(frozen=True)
class Coords:
    group: str
    artifact: str
    version: str

    def __str__(self) -> str:
        return f"{self.group}:{self.artifact}" + (f":{self.version}" if self.version else "")


@dataclass
class Dep:
    """A ``<dependency>`` as written (strings may still hold ``${...}``)."""

    group: str
    artifact: str
    version: str | None = None
    scope: str | None = None
    type: str = "jar"
    classifier: str | None = None
    optional: bool = False
    exclusions: list[tuple[str, str]] = field(default_factory=list)

    @property
    def key(self) -> tuple[str, str, str, str | None]:
        """The management / mediation key: groupId:artifactId:type:classifier."""
        return (self.group, self.artifact, self.type, self.classifier)

    def __str__(self) -> str:
        text = f"{self.group}:{self.artifact}"
        if self.type != "jar" or self.classifier:
            text += f":{self.type}" + (f":{self.classifier}" if self.classifier else "")
        return text + (f":{self.version}" if self.version else "")


@dataclass
class Pom:
    """One POM: as written (`PomResolver.raw`), or with its parents' entries merged in, not yet interpolated."""

    group: str | None
    artifact: str
    version: str | None
    packaging: str
    parent: Coords | None
    properties: dict[str, str]
    dependencies: list[Dep]
    managed: list[Dep]
    relocation: dict[str, str] | None


@dataclass
class Effective:
    """A POM after inheritance, interpolation and BOM import."""

    coords: Coords
    packaging: str
    dependencies: list[Dep]  # versions/scopes filled from dependencyManagement where missing
    managed: dict[tuple[str, str, str, str | None], Dep]
    relocation: Coords | None


def _strip_ns(root: ET.Element) -> ET.Element:
    for el in root.iter():
        if isinstance(el.tag, str) and "}" in el.tag:
            el.tag = el.tag.split("}", 1)[1]
    return root


def _text(el: ET.Element | None, name: str) -> str | None:
    if el is None:
        return None
    child = el.find(name)
    if child is None or child.text is None:
        return None
    return child.text.strip() or None


def _deps(parent: ET.Element | None) -> list[Dep]:
    out: list[Dep] = []
    if parent is None:
        return out
    for d in parent.findall("dependency"):
        exclusions = [
            (_text(e, "groupId") or "*", _text(e, "artifactId") or "*")
            for e in d.findall("exclusions/exclusion")
        ]
        out.append(Dep(
            group=_text(d, "groupId") or "",
            artifact=_text(d, "artifactId") or "",
            version=_text(d, "version"),
            scope=_text(d, "scope"),
            type=_text(d, "type") or "jar",
            classifier=_text(d, "classifier"),
            optional=(_text(d, "optional") or "false").lower() == "true",
            exclusions=exclusions,
        ))
    return out


def parse_pom(data: bytes, where: str = "POM") -> Pom:
    """Parse POM XML; `where` names the file in errors."""
    try:
        root = _strip_ns(ET.fromstring(data))
    except ET.ParseError as e:
        raise PomError(f"{where}: invalid XML: {e}") from None
    if root.tag != "project":
        raise PomError(f"{where}: not a POM (root element <{root.tag}>)")
    parent_el = root.find("parent")
    parent = None
    if parent_el is not None:
        pg, pa, pv = _text(parent_el, "groupId"), _text(parent_el, "artifactId"), _text(parent_el, "version")
        if not (pg and pa and pv):
            raise PomError(f"{where}: <parent> needs groupId, artifactId and version")
        parent = Coords(pg, pa, pv)
    props_el = root.find("properties")
    properties = {}
    if props_el is not None:
        properties = {child.tag: (child.text or "").strip() for child in props_el if isinstance(child.tag, str)}
    reloc_el = root.find("distributionManagement/relocation")
    relocation = None
    if reloc_el is not None:
        relocation = {k: v for k in ("groupId", "artifactId", "version") if (v := _text(reloc_el, k))}
    artifact = _text(root, "artifactId")
    if not artifact:
        raise PomError(f"{where}: no <artifactId>")
    return Pom(
        group=_text(root, "groupId"),
        artifact=artifact,
        version=_text(root, "version"),
        packaging=_text(root, "packaging") or "jar",
        parent=parent,
        properties=properties,
        dependencies=_deps(root.find("dependencies")),
        managed=_deps(root.find("dependencyManagement/dependencies")),
        relocation=relocation,
    )


_PROP = re.compile(r"\$\{([^}]+)\}")


def interpolate(text: str | None, props: Callable[[str], str | None]) -> str | None:
    """Replace ``${name}`` recursively; unknown names stay as they are."""
    if text is None or "${" not in text:
        return text

    def one(m: re.Match[str]) -> str:
        value = props(m.group(1))
        return value if value is not None else m.group(0)

    for _ in range(20):  # bounded: a self-referencing property must not loop forever
        new = _PROP.sub(one, text)
        if new == text:
            break
        text = new
    return text


class PomResolver:
    """Builds effective POMs; `load(coords)` returns a POM's bytes (raising if missing)."""

    def __init__(self, load: Callable[[Coords], bytes]) -> None:
        self._load = load
        self._raw: dict[Coords, Pom] = {}
        self._merged: dict[Coords, Pom] = {}  # with its parents' entries, not yet interpolated
        self._effective: dict[Coords, Effective] = {}

    def raw(self, coords: Coords) -> Pom:
        if coords not in self._raw:
            self._raw[coords] = parse_pom(self._load(coords), f"POM of {coords}")
        return self._raw[coords]

    def _merge(self, coords: Coords, chain: tuple[Coords, ...] = ()) -> Pom:
        if coords in self._merged:
            return self._merged[coords]
        if coords in chain:
            raise PomError(f"parent cycle: {' > '.join(map(str, chain + (coords,)))}")
        pom = self.raw(coords)
        if pom.parent is None:
            merged = Pom(pom.group, pom.artifact, pom.version, pom.packaging, None, dict(pom.properties),
                             list(pom.dependencies), list(pom.managed), pom.relocation)
        else:
            parent = self._merge(pom.parent, chain + (coords,))
            # Child wins by key; inherited entries keep their raw `${...}` so they are
            # interpolated with the child's properties.
            merged = Pom(
                group=pom.group or pom.parent.group,
                artifact=pom.artifact,
                version=pom.version or pom.parent.version,
                packaging=pom.packaging,
                parent=pom.parent,
                properties={**parent.properties, **pom.properties},
                dependencies=_merge_deps(parent.dependencies, pom.dependencies),
                managed=_merge_deps(parent.managed, pom.managed),
                relocation=pom.relocation,
            )
        self._merged[coords] = merged
        return merged

    def effective(self, coords: Coords, _importing: tuple[Coords, ...] = ()) -> Effective:
        if coords in self._effective:
            return self._effective[coords]
        m = self._merge(coords)
        group = m.group or coords.group
        version = m.version or coords.version
        builtins = {
            "groupId": group, "artifactId": m.artifact, "version": version, "packaging": m.packaging,
        }
        if m.parent:
            builtins.update({"parent.groupId": m.parent.group, "parent.artifactId": m.parent.artifact,
                             "parent.version": m.parent.version})

        def lookup(name: str) -> str | None:
            for prefix in ("project.", "pom."):
                if name.startswith(prefix) and name[len(prefix):] in builtins:
                    return builtins[name[len(prefix):]]
            if name in m.properties:
                return m.properties[name]
            return builtins.get(name)  # legacy ${version}, ${groupId}

        def interp(d: Dep) -> Dep:
            return replace(
                d,
                group=interpolate(d.group, lookup) or "",
                artifact=interpolate(d.artifact, lookup) or "",
                version=interpolate(d.version, lookup),
                scope=interpolate(d.scope, lookup),
                type=interpolate(d.type, lookup) or "jar",
                classifier=interpolate(d.classifier, lookup),
                exclusions=[(interpolate(g, lookup) or "*", interpolate(a, lookup) or "*") for g, a in d.exclusions],
            )

        managed: dict[tuple[str, str, str, str | None], Dep] = {}
        imports: list[Dep] = []
        for d in map(interp, m.managed):
            if d.scope == "import" and d.type == "pom":
                imports.append(d)
            else:
                managed.setdefault(d.key, d)
        for bom in imports:
            if not bom.version or "${" in bom.version:
                raise PomError(f"POM of {coords}: BOM import {bom} has no resolvable version")
            bom_coords = Coords(bom.group, bom.artifact, bom.version)
            if bom_coords in _importing:
                raise PomError(f"BOM import cycle at {bom_coords}")
            for key, d in self.effective(bom_coords, _importing + (coords,)).managed.items():
                managed.setdefault(key, d)

        deps = []
        for d in map(interp, m.dependencies):
            mgmt = managed.get(d.key)
            if mgmt is not None:
                d = replace(
                    d,
                    version=d.version or mgmt.version,
                    scope=d.scope or mgmt.scope,
                    exclusions=d.exclusions + [e for e in mgmt.exclusions if e not in d.exclusions],
                )
            deps.append(d)

        relocation = None
        if m.relocation:
            r = {k: interpolate(v, lookup) or v for k, v in m.relocation.items()}
            relocation = Coords(r.get("groupId", group), r.get("artifactId", m.artifact), r.get("version", version))
            if relocation == Coords(group, m.artifact, version):
                relocation = None
        result = Effective(Coords(group, m.artifact, version), m.packaging, deps, managed, relocation)
        self._effective[coords] = result
        return result


def _merge_deps(inherited: list[Dep], own: list[Dep]) -> list[Dep]:
    """Inherited entries first; an own entry with the same (raw) key replaces it in place."""
    out = {d.key: d for d in inherited}
    for d in own:
        out[d.key] = d
    return list(out.values())
