#!/usr/bin/env bash
# make bench-api: wrk against POST /call and GET /executions/{id}, pgbench's one-row INSERT and a
# civetweb hello-world, all in one run on one fresh local stack. See bench.py.
set -euo pipefail
cd "$(dirname "$0")/../../.."
exec python3 tests/bench/api/bench.py "$@"
