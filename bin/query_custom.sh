#!/usr/bin/env bash
# CoFlows' query with another config: bin/query_custom.sh CONFIG local|cloud QUERY_ID FUNCTION [P0 P1 …]
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ $# -lt 4 ]]; then echo "usage: bin/query_custom.sh CONFIG local|cloud QUERY_ID FUNCTION [P0 P1 …]" >&2; exit 2; fi
config=$1; shift
bin/setup.sh
exec .venv/bin/coflows query "$1" "$2" "$3" --config "$config" "${@:4}"
