#!/usr/bin/env bash
# Offline validation of the deployment files; no Docker engine or Kubernetes API server needed.
#   (a) docker-compose.yml with Debian's docker-compose 1.29 (`config -q`), which also rejects
#       Compose-v2-only keys;
#   (b) yamllint (relaxed rules; only errors fail, warnings are counted) on compose and k8s files;
#   (c) every document of deploy/k8s/*.yaml against the Kubernetes schema (validate-k8s.mjs).
# Prints one line per file and check, then `ok`; exits non-zero on any problem.
# Tools come from the project: `bash deploy/local/install.sh` (Debian packages and .tools/ npm).
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 2

fail=0
note_fail() { # name output
  fail=1
  echo "FAIL  $1"
  if [ -n "$2" ]; then
    printf '%s\n' "$2" | sed '/^[[:space:]]*$/d; s/^/        /'
  fi
}

for tool in docker-compose yamllint node; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "validate: $tool not found; run: bash deploy/local/install.sh" >&2
    exit 2
  fi
done

shopt -s nullglob
k8s_files=(deploy/k8s/*.yaml deploy/k8s/*.yml)
shopt -u nullglob
[ -f docker-compose.yml ] || note_fail "docker-compose.yml" "missing"
[ ${#k8s_files[@]} -gt 0 ] || note_fail "deploy/k8s/*.yaml" "no manifests found"

# (a) Compose. A local .env file or the caller's environment could hide a broken default, so
# validate with neither: an empty --env-file and the file's variables unset.
if [ -f docker-compose.yml ]; then
  empty_env=$(mktemp)
  trap 'rm -f "$empty_env"' EXIT
  if out=$(env -u POSTGRES_PASSWORD -u PL_LOG_LEVEL -u PARLEY_TAG \
             docker-compose --env-file "$empty_env" -f docker-compose.yml config -q 2>&1); then
    echo "ok    docker-compose.yml (docker-compose config)"
    [ -n "$out" ] && printf '%s\n' "$out" | sed 's/^/        /'
  else
    note_fail "docker-compose.yml (docker-compose config)" "$out"
  fi
fi

# (b) yamllint: exit status 1 means errors; warnings alone exit 0 (no --strict). Warnings (mostly
# relaxed's 80-column line-length; these files use 100 like the C code) are only counted when the
# file passes, and listed in full with the errors when it does not.
for f in docker-compose.yml "${k8s_files[@]}"; do
  [ -f "$f" ] || continue
  if out=$(yamllint -d relaxed -f parsable "$f" 2>&1); then
    warnings=$(printf '%s' "$out" | grep -c '\[warning\]')
    echo "ok    $f (yamllint, $warnings warnings)"
  else
    note_fail "$f (yamllint)" "$out"
  fi
done

# (c) Kubernetes schema: the script prints one line per file (its own final `ok` is dropped here;
# its error count is kept).
if [ ${#k8s_files[@]} -gt 0 ]; then
  out=$(node tests/deploy/validate-k8s.mjs "${k8s_files[@]}" 2>&1)
  rc=$?
  printf '%s\n' "$out" | sed '${/^ok$/d}'
  [ "$rc" -eq 0 ] || fail=1
fi

if [ "$fail" -ne 0 ]; then
  echo "deploy files: FAILED"
  exit 1
fi
echo "ok"
