#!/usr/bin/env bash
# CoFlows' cloud log: bin/cloud_log.sh [CONFIG] [--lines N]
# Prints the workflow's recent log lines on the server in the config's Cloud section (docs/cloud.md).
set -euo pipefail
cd "$(dirname "$0")/.."
bin/setup.sh
exec .venv/bin/coflows cloud log "$@"
