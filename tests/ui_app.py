"""Helpers of the web app's browser tests: a workspace whose database has users, and running a
tests/ui/*.mjs script (playwright-core with the system's Chromium) that prints JSON."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import REPO

CHROMIUM = os.environ.get("COFLOWS_CHROMIUM", "/usr/bin/chromium")
PASSWORD = "correct horse battery"


def browser_or_skip() -> None:
    missing = [what for what, ok in [
        (CHROMIUM, Path(CHROMIUM).exists()), ("node", shutil.which("node") is not None),
        ("node_modules/playwright-core (npm ci)", (REPO / "node_modules" / "playwright-core").is_dir())] if not ok]
    if missing:
        if os.environ.get("CI"):  # CI installs them: a missing one is a broken setup, not a reason to skip
            pytest.fail(f"browser test needs {', '.join(missing)}: run bin/setup.sh --test")
        pytest.skip("browser tests need: " + ", ".join(missing) + " (bin/setup.sh --test installs them)")


def add_users(ws, users: dict[str, dict]) -> dict[str, str]:
    """Create users in the workspace's database before its server starts: {email: {"admin": bool,
    "grants": {group: level}}}. Returns {email: API key}."""
    from coflows.auth.store import UserStore
    from coflows.config import load_config
    from coflows.store import Database, database_url

    config = load_config(str(ws.config_path))
    db = Database(database_url(config.database.type, config.database.connection, config.base_dir))
    try:
        store = UserStore(db)
        keys = {}
        for email, spec in users.items():
            store.add_user(email, spec.get("name", email.split("@")[0].title()), password=PASSWORD,
                           admin=spec.get("admin", False))
            for group, level in spec.get("grants", {}).items():
                store.grant(group, email, level)
            keys[email] = store.new_key(email)[1]
        return keys
    finally:
        db.dispose()


def run_ui(name: str, args: dict, timeout: float = 120) -> dict:
    """Run tests/ui/<name> with `args` as JSON; return its last line as JSON (fails on {"error"})."""
    proc = subprocess.run(["node", str(REPO / "tests" / "ui" / name), json.dumps(args)], capture_output=True,
                          text=True, timeout=timeout, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "error" not in out, out["error"] + "\n" + proc.stderr
    return out
