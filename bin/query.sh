#!/usr/bin/env bash
# CoFlows' query: bin/query.sh local|cloud QUERY_ID FUNCTION [P0 P1 …]
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ $# -lt 3 ]]; then echo "usage: bin/query.sh local|cloud QUERY_ID FUNCTION [P0 P1 …]" >&2; exit 2; fi
bin/setup.sh
exec .venv/bin/coflows query "$@"
