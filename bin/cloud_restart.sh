#!/usr/bin/env bash
# CoFlows' cloud restart: bin/cloud_restart.sh [CONFIG] [--grace SECONDS]
# Restarts the server process behind the config's Cloud section (admin key; docs/cloud.md).
# (CoFlows' own script ran 'cloud remove' by mistake; this one restarts.)
set -euo pipefail
cd "$(dirname "$0")/.."
bin/setup.sh
exec .venv/bin/coflows cloud restart "$@"
