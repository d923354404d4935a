"""M: persistent, observable sets of JSON entries, one per topic.

    from coflows.m import m, M
    orders = m("orders")                  # or M.Base("orders") in CoFlows style
    oid = orders.add({"item": "tea", "qty": 2})
    orders.exchange(oid, {"item": "tea", "qty": 3})
    orders.query(lambda o: o["qty"] > 1)

See docs/m.md. The package itself is callable: `import coflows.m; coflows.m("orders")`.
"""

from __future__ import annotations

import sys
import types

from coflows.m.api import M, MSet, m
from coflows.m.store import ADD, EXCHANGE, REMOVE, Change, ConflictError, MStore, canonical

__all__ = ["ADD", "EXCHANGE", "REMOVE", "Change", "ConflictError", "M", "MSet", "MStore", "canonical", "m"]


class _CallableModule(types.ModuleType):
    def __call__(self, topic: str, database=None) -> MSet:  # noqa: ANN001
        return m(topic, database)


sys.modules[__name__].__class__ = _CallableModule
