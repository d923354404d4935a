#!/usr/bin/env bash
# Create bench/peers/.venv with Prefect 3, the peer that bench/flows.py compares against.
# Kept apart from the project venv so Prefect's dependencies never touch coflows'.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
python="${PYTHON:-python3}"
if [ ! -x "$here/.venv/bin/python" ]; then
    "$python" -m venv "$here/.venv"
fi
py="$here/.venv/bin/python"
"$py" -m pip install --quiet --upgrade pip
"$py" -m pip install --quiet "prefect>=3,<4"
# Prefect 3.8's server still passes `min_items=` to fastapi.Body, which FastAPI ≥ 0.141 rejects:
# keep a FastAPI that accepts it if the newest one does not.
if ! "$py" -c "from fastapi import Body; Body(..., min_items=1)" 2>/dev/null; then
    "$py" -m pip install --quiet "fastapi>=0.139,<0.141"
fi
"$py" -c "import prefect.server.api.server, prefect; print('prefect', prefect.__version__, 'ready in', '$here/.venv')"
