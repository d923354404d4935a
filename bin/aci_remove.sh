#!/usr/bin/env bash
# CoFlows' ACI remove: bin/aci_remove.sh [CONFIG] [--resource-group RG] [--name NAME]
# Deletes the container group (not the resource group, which may hold the workspace's storage account).
set -euo pipefail
cd "$(dirname "$0")/.."
bin/setup.sh
exec .venv/bin/coflows aci remove "$@"
