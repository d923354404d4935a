#!/usr/bin/env bash
# Set everything up (first run only) and serve the workspace: bin/server.sh [CONFIG]
# The server runs under a supervisor that restarts it when it dies (coflows server --no-supervisor: one process).
# CONFIG defaults to $config_file or coflows_config.json (the example workspace in mnt/).
set -euo pipefail
cd "$(dirname "$0")/.."
bin/setup.sh
exec .venv/bin/coflows server ${1:+"$1"}
