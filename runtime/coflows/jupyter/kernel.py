"""The `coflows` Jupyter kernel: IPython with the server's workspace loaded, running each cell as
the user who sent it.

At start it opens the server's config (`COFLOWS_JUPYTER_CONFIG`, or `$coflows_config` inherited
from the server) and loads the workspace as `coflows query local` does: nothing up front, each
query (and its language's engine) on first use, so `coflows.call("Calc.py/Add", 1, 2)` starts
only Python and a C#/Java/JS call starts that engine then. M reads and writes go to the server's
database; on SQLite the kernel announces its writes to the server (coflows.jupyter.relay) so the
server's agents see them at once.

Each cell runs inside a call context whose principal is the user named by the identity stamp the
server's proxy put into the message (coflows.jupyter.identity): `coflows.user()` is whoever ran
the cell; a message without a valid stamp runs as anonymous. `print` goes to the notebook, also
inside functions the cell calls.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

from ipykernel.ipkernel import IPythonKernel

from coflows.jupyter.identity import SECRET_ENV, STAMP_FIELD, verify
from coflows.jupyter.process import CONFIG_ENV, RELAY_ENV

log = logging.getLogger("coflows.jupyter.kernel")


class CoflowsKernel(IPythonKernel):
    implementation = "coflows"
    banner = "coflows: the server's workspace is loaded; coflows.call(\"Query.py/Function\", …), coflows.m(topic)"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._secret = os.environ.pop(SECRET_ENV, "")  # not visible to cells' os.environ
        self.runtime: Any = None
        self.workflow: Any = None
        self._relay: Any = None
        self._principal_of: Any = None
        try:
            self._load()
        except Exception as e:  # noqa: BLE001 - the kernel still starts; calls then say why
            print(f"coflows: the workspace did not load: {e}", file=sys.stderr)

    def _load(self) -> None:
        import coflows.engines.python as python_engine
        from coflows import permissions
        from coflows.auth.identity import Identities
        from coflows.auth.store import UserStore
        from coflows.config import load_config
        from coflows.local import open_on_demand
        from coflows.runtime import Runtime

        # print inside a call goes to the cell's output, not to the server's log
        python_engine.install_output_capture = lambda: None  # type: ignore[attr-defined]
        config = load_config(os.environ.get(CONFIG_ENV) or None)
        config.packages.install_on_start = False  # the server installed them
        runtime = Runtime(config)
        runtime.load(open_on_demand)
        self.runtime = runtime
        self.workflow = runtime.registry.default_workflow()
        if runtime.database is not None:
            identities = Identities(UserStore(runtime.database), ttl=config.auth.cache_seconds)
            permissions.set_id_lookup(identities.by_id)
            relay = os.environ.get(RELAY_ENV)
            if relay and self._secret:
                from coflows.jupyter.relay import RelayClient
                from coflows.m.store import MStore

                store = MStore.for_database(runtime.database)
                if not store.is_postgres:  # Postgres NOTIFYs other processes itself
                    self._relay = RelayClient(relay, self._secret, store)

    def _principal(self) -> Any:
        from coflows import permissions

        parent = self.get_parent() or {}
        metadata = parent.get("metadata") or {}
        user = verify(self._secret, metadata.get(STAMP_FIELD)) if self._secret else None
        return permissions.principal_from_id(user) if user else permissions.ANONYMOUS

    async def do_execute(self, code: str, silent: bool, store_history: bool = True,  # type: ignore[override]
                         user_expressions: Any = None, allow_stdin: bool = False, *, cell_meta: Any = None,
                         cell_id: Any = None) -> Any:
        from coflows.context import CallContext, call_context

        wf = self.workflow
        ctx = CallContext(wf.id if wf is not None else "", "notebook", str(cell_id or "cell"), self._principal(),
                          wf.name if wf is not None else "")
        with call_context(ctx):
            return await super().do_execute(code, silent, store_history, user_expressions, allow_stdin,
                                            cell_meta=cell_meta, cell_id=cell_id)

    def do_shutdown(self, restart: bool) -> Any:  # type: ignore[override]
        if self._relay is not None:
            self._relay.unsubscribe()
        if self.runtime is not None:
            try:
                self.runtime.close()
            except Exception:  # noqa: BLE001 - going away anyway
                pass
        return super().do_shutdown(restart)


def main() -> None:
    from ipykernel.kernelapp import IPKernelApp

    IPKernelApp.launch_instance(kernel_class=CoflowsKernel)


if __name__ == "__main__":
    main()
