#!/usr/bin/env bash
# CoFlows' build: bin/build.sh local [CONFIG]
# Scans Base/ Agents/ Queries/ Files/ Bins/ into package.json, installs packages, compiles everything.
set -euo pipefail
cd "$(dirname "$0")/.."
bin/setup.sh
mode=${1:-local}
case "$mode" in
  local) exec .venv/bin/coflows build local ${2:+"$2"} ;;
  *) echo "usage: bin/build.sh local [CONFIG]" >&2; exit 2 ;;
esac
