#!/usr/bin/env bash
# make stop: see deploy/local/local.py
set -euo pipefail
exec python3 "$(dirname "$0")/local.py" down
