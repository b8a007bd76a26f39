#!/usr/bin/env bash
# Webhook benchmark (issue 5): see bench.py. Usage: run.sh [calls] [rate/s] [backlog]
set -euo pipefail
cd "$(dirname "$0")/../../.."
exec python3 tests/bench/webhooks/bench.py "$@"
