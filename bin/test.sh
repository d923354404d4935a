#!/usr/bin/env bash
# Set everything up (first run only) and run the tests: bin/test.sh [pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."
bin/setup.sh --test
exec .venv/bin/python -m pytest "$@"
