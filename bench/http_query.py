"""HTTP throughput of a no-op query through coflows against a bare Starlette route, in one run.

Both servers run under the same uvicorn settings (one process, uvloop/httptools
when installed, no access log), side by side, and are loaded by the same wrk
command in alternating rounds (bare, coflows, bare, coflows, …); the median
round of each is reported, so a burst of load from elsewhere on a shared
machine does not land on one side only. The baseline route is `async def` (the common bare Starlette
route); the figure for a sync route (Starlette runs it in a thread, like
coflows runs user code) is printed too, for reference.

The same run also calls the no-op with the admin key and with a user's API key (a real user made
in the workspace's database before the server starts, with Read on the workflow through its
workflow-ID group), alternating with the others, and prints the ratio user key / admin key: a
user's key is looked up in the database once per `Auth.CacheSeconds` and then cached, so the
target is >= 0.95.

    .venv/bin/python bench/http_query.py [--seconds 10] [--connections 32] [--languages python,csharp,java,javascript]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import PY, REPO, free_port, python_env, stop, wait_ready, write_workspace, wrk  # noqa: E402

ADMIN_KEY = "bench"  # write_workspace's Server.SecretKey
USER = "bench-user@example.com"

ADMIN_LINE, USER_LINE = "coflows no-op, admin key", "coflows no-op, user API key"
NOOPS = {
    "python": ("Noop.py", "def Noop(x: int):\n    return x\n"),
    "csharp": ("Noop.cs", "public class Noop {\n    public static int Run(int x) { return x; }\n}\n"),
    "java": ("Noop.java", "public class Noop {\n    public static int Run(int x) { return x; }\n}\n"),
    "javascript": ("Noop.js", "/** @param {number} x */\nfunction Run(x) { return x; }\n"),
}
FUNCTION = {"python": "Noop", "csharp": "Run", "java": "Run", "javascript": "Run"}


def make_workspace(root: Path, languages: list[str], connections: int) -> Path:
    # The workflow's bulkhead admits every connection: this measures calls, not 503s (non-2xx is printed).
    return write_workspace(root, "Bench", {NOOPS[lang][0]: NOOPS[lang][1] for lang in languages},
                           WorkflowConcurrency=connections)


def make_user(config: Path) -> str:
    """A user with Read on the bench workflow (its workflow-ID group) in the workspace's database; its API key."""
    sys.path.insert(0, str(REPO / "runtime"))
    from coflows.auth.store import UserStore
    from coflows.config import load_config
    from coflows.store import Database, database_url

    cfg = load_config(str(config))
    database = Database(database_url(cfg.database.type, cfg.database.connection, cfg.base_dir))
    try:
        store = UserStore(database)
        store.add_user(USER, name="Bench User")
        wid = json.loads((config.parent / "mnt" / "package.json").read_text())["ID"]
        store.grant(wid, USER, "read")
        return store.new_key(USER, "bench")[1]
    finally:
        database.dispose()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--languages", default="python")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    languages = [lang for lang in args.languages.split(",") if lang]

    rounds: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        bare_port, port = free_port(), free_port()
        config = make_workspace(Path(tmp), languages, args.connections)
        user_key = make_user(config)
        bare = subprocess.Popen([PY, str(Path(__file__).parent / "bare_app.py"), str(bare_port)], env=python_env())
        server = subprocess.Popen([PY, "-m", "coflows", "server", str(config), "--port", str(port), "--log-level", "warning"],
                                  cwd=tmp, env=python_env())
        try:
            targets = {
                "bare starlette (async route)": f"http://127.0.0.1:{bare_port}/noop?p[0]=1",
                "bare starlette (sync route)": f"http://127.0.0.1:{bare_port}/noop_sync?p[0]=1",
            }
            for lang in languages:
                targets[f"coflows {lang} no-op"] = (
                    f"http://127.0.0.1:{port}/flow/query/Bench/{NOOPS[lang][0]}/{FUNCTION[lang]}?p[0]=1")
            keyed = languages[0]  # the user-key line: the first language's no-op, with each key
            url = targets[f"coflows {keyed} no-op"]
            targets[ADMIN_LINE] = url
            targets[USER_LINE] = url
            keys = {ADMIN_LINE: {"x-api-key": ADMIN_KEY}, USER_LINE: {"x-api-key": user_key}}
            wait_ready(targets["bare starlette (async route)"], bare)
            for name, url in targets.items():
                wait_ready(url, server if name.startswith("coflows") else bare)
                r = wrk(url, 2, args.connections, headers=keys.get(name))  # warm-up (JIT, caches)
                if r["non_2xx"]:
                    raise SystemExit(f"{name}: {r['non_2xx']} answers were not 2xx (is the key refused?)")
            for i in range(args.rounds):
                names = list(targets)
                if i % 2:  # the two keys take turns going first: neither always follows the other's load
                    a, b = names.index(ADMIN_LINE), names.index(USER_LINE)
                    names[a], names[b] = names[b], names[a]
                for name in names:
                    rounds.setdefault(name, []).append(wrk(targets[name], args.seconds, args.connections,
                                                           headers=keys.get(name)))
        finally:
            stop(bare)
            stop(server)
    results = {name: sorted(rs, key=lambda r: r["rps"])[len(rs) // 2] for name, rs in rounds.items()}

    base = results["bare starlette (async route)"]["rps"]
    print(f"\nwrk -t1 -c{args.connections} -d{args.seconds}s x {args.rounds} alternating rounds (median shown), "
          "loopback, one uvicorn process each\n")
    print(f"{'target':34} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8} {'ratio':>6}")
    for name, r in results.items():
        print(f"{name:34} {r['rps']:9.0f} {r['p50_ms']:8.2f} {r['p99_ms']:8.2f} {r['non_2xx']:8d} {r['rps'] / base:6.2f}")
    print("\nratio = req/s / bare async route in the same run. Targets (issue 21): python >= 0.85, csharp >= 0.75, "
          "java >= 0.8, javascript >= 0.5")
    admin, user = results[ADMIN_LINE], results[USER_LINE]
    # each round's pair ran back to back: the median of the rounds' ratios is robust to load that drifts
    pairs = sorted(u["rps"] / a["rps"] for u, a in zip(rounds[USER_LINE], rounds[ADMIN_LINE]))
    print(f"\nuser API key vs admin key ({keyed} no-op, same run): {user['rps']:.0f} vs {admin['rps']:.0f} req/s "
          f"(medians), p50 {user['p50_ms']:.2f} vs {admin['p50_ms']:.2f} ms; ratio of the rounds "
          f"{' '.join(f'{r:.3f}' for r in pairs)}, median {pairs[len(pairs) // 2]:.3f} "
          "(target >= 0.95: keys' lookups are cached)")


if __name__ == "__main__":
    main()
