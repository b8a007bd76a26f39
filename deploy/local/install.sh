#!/usr/bin/env bash
# Installs the Debian packages Parley builds, runs and tests with, and the pinned npm tools, once.
# Idempotent: a second run installs nothing and takes well under a second.
set -euo pipefail
cd "$(dirname "$0")/../.."

PKGS=(
  build-essential pkg-config clang-format python3 curl ca-certificates
  libnng-dev libcivetweb-dev libcurl4-openssl-dev libcjson-dev libhiredis-dev libpq-dev
  uuid-dev libssl-dev libwebsockets-dev
  postgresql postgresql-contrib redis-server redis-tools
  flite flite1-dev libpocketsphinx-dev libsphinxbase-dev pocketsphinx-en-us libspeexdsp-dev
  libwebrtc-audio-processing-dev espeak-ng libespeak-ng-dev
  wrk yamllint docker-compose
)
# Node.js and npm: any installed copy will do (some machines carry NodeSource's nodejs, which
# bundles npm and conflicts with Debian's npm package).
command -v node >/dev/null 2>&1 || PKGS+=(nodejs)
command -v npm >/dev/null 2>&1 || PKGS+=(npm)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install: apt-get install ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# The Debian postgresql package starts a system cluster on 5432; Parley runs its own under .run/.
# Leave the system one alone: we never rely on it.

# npm tools pinned in tools/package.json, installed into .tools/ (not global).
if [ ! -x .tools/node_modules/.bin/redocly ]; then
  mkdir -p .tools
  cp tools/package.json .tools/package.json
  (cd .tools && npm install --no-audit --no-fund --loglevel=error >/dev/null)
fi
