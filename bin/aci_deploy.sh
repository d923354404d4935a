#!/usr/bin/env bash
# CoFlows' ACI deploy: bin/aci_deploy.sh [CONFIG] [--dry-run] [--image IMAGE] [--resource-group RG] [--name NAME]
# Creates the container group from the config's AzureContainerInstance block (docs/azure.md).
# --dry-run prints the container group the Azure SDK would send (secrets as ***) and checks it, offline.
set -euo pipefail
cd "$(dirname "$0")/.."
bin/setup.sh
exec .venv/bin/coflows aci deploy "$@"
