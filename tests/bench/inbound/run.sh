#!/usr/bin/env bash
# make bench-inbound: see bench.py
set -euo pipefail
cd "$(dirname "$0")/../../.."
exec python3 tests/bench/inbound/bench.py "$@"
