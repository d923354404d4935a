#!/usr/bin/env bash
# CoFlows' cloud remove: bin/cloud_remove.sh [CONFIG] [--purge]
# Unloads the workflow from the server in the config's Cloud section (admin key); its files stay unless --purge.
set -euo pipefail
cd "$(dirname "$0")/.."
bin/setup.sh
exec .venv/bin/coflows cloud remove "$@"
