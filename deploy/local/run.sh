#!/usr/bin/env bash
# make run: see deploy/local/local.py
set -euo pipefail
exec python3 "$(dirname "$0")/local.py" up
