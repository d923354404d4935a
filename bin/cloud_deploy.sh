#!/usr/bin/env bash
# CoFlows' cloud deploy: bin/cloud_deploy.sh [CONFIG] [--force]
# Packs the workspace and deploys it to the server in the config's Cloud section (docs/cloud.md);
# the same as bin/build.sh cloud [CONFIG].
set -euo pipefail
cd "$(dirname "$0")/.."
bin/setup.sh
exec .venv/bin/coflows build cloud "$@"
