#!/usr/bin/env bash
# CoFlows' build: bin/build.sh local|cloud [CONFIG] [--force]
# local: scans Base/ Agents/ Queries/ Files/ Bins/ into package.json, installs packages, compiles everything.
# cloud: the same scan, then packs the workspace and deploys it to the server in the config's Cloud section,
#        which checks, installs and hot-reloads it (docs/cloud.md); --force deploys sources that do not compile.
set -euo pipefail
cd "$(dirname "$0")/.."
bin/setup.sh
mode=${1:-local}
case "$mode" in
  local) exec .venv/bin/coflows build local ${2:+"$2"} ;;
  cloud) shift; exec .venv/bin/coflows build cloud "$@" ;;
  *) echo "usage: bin/build.sh local|cloud [CONFIG]" >&2; exit 2 ;;
esac
