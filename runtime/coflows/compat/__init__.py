"""CoFlows' names, so that code written for CoFlows runs unchanged.

- `QuantApp.Kernel` (`kernel`) and `QuantApp.Engine` (`engine`): importable from Python as
  `import QuantApp.Kernel as qak` (the top-level `QuantApp` package re-exports these), and
  resolvable from every language through the object core: `objects.resolve("QuantApp.Kernel.User")`
  (the "quantapp" resolver, process-wide), which is what Java's `CLRRuntime.GetClass(...)`, C#'s
  bridge and JavaScript's `importNamespace('QuantApp.Kernel')` use.
- `Base.*` Python modules importable by name for the running workflow (`base_modules`).
- Proxies that give .NET objects imported from Python CoFlows' conversions (`clr_proxy`).

Importing this package installs the resolver and the `Base` finder (once, idempotent).
"""

from __future__ import annotations

from typing import Any

from coflows import objects
from coflows.compat import base_modules, engine, kernel

_ROOTS = {"QuantApp.Kernel": kernel, "QuantApp.Engine": engine}


def resolve_quantapp(name: str) -> Any:
    """`"QuantApp.Kernel.User"` → `kernel.User`, `"QuantApp.Engine.FPKG"` → `engine.FPKG`,
    `"QuantApp.Kernel.JVM.Runtime"` → nested; None for anything else (namespaces included, so
    `importNamespace('QuantApp.Kernel')` stays a namespace whose members resolve here)."""
    if not name.startswith("QuantApp."):
        return None
    parts = name.split(".")
    if len(parts) < 3:
        return None
    root = _ROOTS.get(".".join(parts[:2]))
    if root is None or parts[2] not in root.__all__:
        return None
    obj: Any = getattr(root, parts[2])
    for part in parts[3:]:  # nested: QuantApp.Kernel.JVM.Runtime, QuantApp.Kernel.AccessType.Write
        if part.startswith("_"):
            return None
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj


def install() -> None:
    objects.register(None, "quantapp", resolve_quantapp, first=True)
    base_modules.install()


install()
