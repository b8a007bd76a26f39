#!/usr/bin/env python3
"""Runs every test of `make test` and ends with the line "N passed, N failed".

  * checks: clang-format drift, OpenAPI lint, deployment files (offline);
  * unit:   each build/tests/test_* binary, with its own fresh Postgres and Redis in its env
            (PL_TEST_DATABASE_URL, PL_TEST_REDIS_URL); each prints "N passed, N failed";
  * integration: each tests/integration/test_*.py module on its own fresh stack.

Usage: tests/run.py [filter]  (runs only suites whose name contains filter)
"""
import glob
import importlib.util
import os
import re
import subprocess
import sys
import time
import traceback

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))
import harness  # noqa: E402

passed = 0
failed = 0
failures = []


def record(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"  ok    {name}", flush=True)
    else:
        failed += 1
        failures.append(name)
        print(f"  FAIL  {name}\n{detail}", flush=True)


def run_check(name, cmd):
    r = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       shell=isinstance(cmd, str))
    record(name, r.returncode == 0, r.stdout[-4000:])


def run_unit(path):
    """Runs one unit binary; servers are started only for tests whose source asks for them."""
    name = os.path.basename(path)
    service, _, test = name.rpartition("-")  # build/tests/<service>-test_x for service modules
    source = open(os.path.join(ROOT, "tests", "unit", service, test + ".c")).read()
    pg = redis = None
    env = dict(os.environ, PL_MIGRATIONS_DIR=os.path.join(ROOT, "proto", "sql"),
               PL_LOG_LEVEL="warn")
    try:
        if "PL_TEST_DATABASE_URL" in source or '#include "check_db.h"' in source:
            pg = harness.stack.Postgres().start()
            env["PL_TEST_DATABASE_URL"] = pg.url
        if "PL_TEST_REDIS_URL" in source:
            redis = harness.stack.Redis(os.path.join(ROOT, "build", "test-runs", name)).start()
            env["PL_TEST_REDIS_URL"] = redis.url
        r = subprocess.run([path], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=300)
    finally:
        if redis:
            redis.stop()
        if pg:
            pg.stop(remove=True)
    m = re.search(r"(\d+) passed, (\d+) failed\s*$", r.stdout)
    for line in r.stdout.splitlines():
        if line.startswith("FAIL") or line.startswith("ok"):
            print(f"  {line}")
    if m is None or r.returncode != 0:
        record(f"{name} (exit {r.returncode})", False, r.stdout[-4000:])
        return
    global passed, failed
    passed += int(m.group(1))
    failed += int(m.group(2))
    if int(m.group(2)):
        failures.append(name)
        print(r.stdout[-4000:])


def run_suite(path, only):
    modname = os.path.splitext(os.path.basename(path))[0]
    spec = importlib.util.spec_from_file_location(modname, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    tests = [(n, f) for n, f in vars(mod).items() if n.startswith("test_") and callable(f)]
    t0 = time.time()
    ctx = harness.Suite(modname)
    try:
        if hasattr(mod, "setup"):
            mod.setup(ctx)
        for n, f in tests:
            if only and only not in f"{modname}.{n}":
                continue
            try:
                f(ctx)
                record(f"{modname}.{n}", True)
            except Exception:
                logs = "".join(f"--- {s.name} log tail ---\n{s.log()[-2000:]}\n"
                               for s in ctx.services.values())
                record(f"{modname}.{n}", False, traceback.format_exc() + logs)
    finally:
        ctx.close()
    print(f"  ({modname}: {time.time() - t0:.1f}s)")


def main():
    only = sys.argv[1] if len(sys.argv) > 1 else ""
    print("== checks")
    if not only:
        files = subprocess.run(["git", "ls-files", "*.c", "*.h"], cwd=ROOT, stdout=subprocess.PIPE,
                               text=True).stdout.split()
        run_check("clang-format (no drift from .clang-format)",
                  ["clang-format", "--dry-run", "--Werror"] + files)
        if os.path.exists(os.path.join(ROOT, "proto", "openapi.yaml")):
            run_check("openapi lint (redocly 2.77.0)",
                      [os.path.join(ROOT, ".tools", "node_modules", ".bin", "redocly"), "lint",
                       "--config", os.path.join(ROOT, "proto", "redocly.yaml"),
                       os.path.join(ROOT, "proto", "openapi.yaml")])
        if os.path.exists(os.path.join(ROOT, "tests", "deploy", "validate.sh")):
            run_check("deploy files validate offline", ["bash", "tests/deploy/validate.sh"])
    print("== unit")
    for path in sorted(glob.glob(os.path.join(ROOT, "build", "tests", "*test_*"))):
        if only in os.path.basename(path):
            run_unit(path)
    print("== integration")
    for path in sorted(glob.glob(os.path.join(ROOT, "tests", "integration", "test_*.py"))):
        if not only or only in path or only in open(path).read():
            run_suite(path, only)
    if failures:
        print("failed: " + ", ".join(failures))
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
