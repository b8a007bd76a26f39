#!/usr/bin/env bash
# make bench-dial: see bench.py
set -euo pipefail
cd "$(dirname "$0")/../../.."
exec python3 tests/bench/dial/bench.py "$@"
