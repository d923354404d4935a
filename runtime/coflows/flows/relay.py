"""Flow events across replicas: NOTIFY with each stored change set, LISTEN on every replica.

Why: a run is driven by one replica, and its events (`FlowEngine.subscribe`) used to reach only
that replica's listeners, so a browser behind a load balancer, whose event stream landed on
another replica, saw nothing move. On PostgreSQL each change set's events now go out with
``NOTIFY coflows_flows`` in the same transaction (delivered only on commit, so nothing is
announced before it is stored, as locally), and every engine's `Relay` hands the events of
*other* engines to its own listeners.

A NOTIFY payload is at most 8000 bytes: events are packed into as few payloads as fit, and an
event too large alone is slimmed to its identifying fields (type, run, node, state, time, attempt;
long `nodes`, `hints`, `error` dropped) — a client reads the rest from `GET /flows/runs/{id}`, as
the web app does when a run ends. Events lost while a listener was disconnected are not replayed:
the web app re-reads the run when its stream reconnects.

The same channel carries cancel requests (`{"o": origin, "cancel": run_id}`): a replica asked to
cancel a run another one drives sends one, and the owner cancels it (`FlowEngine.cancel`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from coflows.store.listen import PgListener


CHANNEL = "coflows_flows"
MAX_PAYLOAD = 7900  # bytes; PostgreSQL's limit is 8000
_KEEP = ("type", "run_id", "node", "state", "time", "workflow", "name", "attempt", "reason", "generation")


def _slim(event: dict[str, Any]) -> dict[str, Any]:
    out = {k: event[k] for k in _KEEP if k in event}
    out["slim"] = True
    return out


def payloads(origin: str, events: list[dict[str, Any]]) -> list[str]:
    """The events as NOTIFY payloads `{"o": origin, "e": [...]}`, each under MAX_PAYLOAD bytes."""
    head = json.dumps({"o": origin, "e": []}, separators=(",", ":"))
    budget = MAX_PAYLOAD - len(head.encode())
    out: list[str] = []
    batch: list[str] = []
    size = 0
    for event in events:
        text = json.dumps(event, separators=(",", ":"), default=str)
        if len(text.encode()) > budget:
            text = json.dumps(_slim(event), separators=(",", ":"), default=str)
        n = len(text.encode()) + 1
        if batch and size + n > budget:
            out.append(head[:-2] + ",".join(batch) + "]}")
            batch, size = [], 0
        batch.append(text)
        size += n
    if batch:
        out.append(head[:-2] + ",".join(batch) + "]}")
    return out


def request_cancel(engine: sa.Engine, origin: str, run_id: str) -> None:
    """Ask the engine that drives `run_id` (wherever it is) to cancel it."""
    payload = json.dumps({"o": origin, "cancel": run_id}, separators=(",", ":"))
    with engine.begin() as conn:
        conn.execute(sa.select(sa.func.pg_notify(CHANNEL, payload)))


def notify(conn: sa.Connection, origin: str, events: list[dict[str, Any]]) -> None:
    """Queue the events' NOTIFYs in this transaction (sent by PostgreSQL on commit)."""
    for payload in payloads(origin, events):
        conn.execute(sa.select(sa.func.pg_notify(CHANNEL, payload)))


class Relay(PgListener):
    """LISTEN coflows_flows; other engines' events go to `deliver`, cancel requests to `cancel`."""

    def __init__(self, engine: sa.Engine, origin: str, deliver: Callable[[list[dict[str, Any]]], None],
                 cancel: Callable[[str], None]) -> None:
        super().__init__(engine, CHANNEL, "coflows-flow-relay")
        self.origin = origin
        self.deliver = deliver
        self.cancel = cancel

    def note(self, payload: str) -> None:
        try:
            data = json.loads(payload)
        except ValueError:
            return
        if not isinstance(data, dict) or data.get("o") == self.origin:
            return
        if isinstance(data.get("cancel"), str):
            self.cancel(data["cancel"])
            return
        if not isinstance(data.get("e"), list):
            return
        events = [e for e in data["e"] if isinstance(e, dict)]
        if events:
            self.deliver(events)
