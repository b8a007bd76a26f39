#!/usr/bin/env bash
# media-pipeline capacity benchmark (see bench.py). Usage: run.sh [calls ...]
set -euo pipefail
cd "$(dirname "$0")/../../.."
exec python3 tests/bench/pipeline/bench.py "$@"
