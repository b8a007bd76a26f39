#!/usr/bin/env python3
"""API benchmark (issue 2): prints requests/s, p99 and the ratios against the targets.

  POST /call          vs pgbench single-row INSERT transactions/s  (target ratio >= 0.50)
  GET /executions/id  vs civetweb hello-world requests/s           (target ratio >= 0.50)
  p99 of both api runs                                             (target <= 25 ms)

Everything runs on this machine in one go: a fresh Postgres (fsync on, as in production) and
Redis, the real api binary, wrk with 64 connections, pgbench with 64 clients. The load tools
share the cores with the servers, as they would in any single-box measurement.

Usage: bench.py [seconds per run, default 10]
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))
import harness  # noqa: E402

SECONDS = int(sys.argv[1]) if len(sys.argv) > 1 else 10
CONNS = 64


def wrk(url, script=None):
    args = ["wrk", "-t", "2", "-c", str(CONNS), "-d", f"{SECONDS}s", "--latency", url]
    if script:
        args[1:1] = ["-s", script]
    out = subprocess.run(args, stdout=subprocess.PIPE, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", out)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return rps, float(p99.group(1)) * scale, int(non2xx.group(1)) if non2xx else 0, \
        errors.group(1) if errors else ""


def pgbench(pg):
    subprocess.run(["psql", pg.url, "-qc",
                    "CREATE TABLE IF NOT EXISTS bench_insert (id bigserial PRIMARY KEY, v text)"],
                   check=True)
    script = tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False)
    script.write("INSERT INTO bench_insert (v) VALUES ('x');\n")
    script.close()
    logdir = tempfile.mkdtemp(prefix="pgbench-log-")
    out = subprocess.run(["pgbench", "-n", "-c", str(CONNS), "-j", "2", "-T", str(SECONDS), "-f",
                          script.name, "-l", "--log-prefix", os.path.join(logdir, "tx"), pg.url],
                         stdout=subprocess.PIPE, text=True, check=True).stdout
    os.unlink(script.name)
    # per-transaction log: "client tx latency_us script epoch us" per line
    lat = []
    for name in os.listdir(logdir):
        with open(os.path.join(logdir, name)) as f:
            lat += [int(line.split()[2]) for line in f if line.strip()]
    shutil.rmtree(logdir)
    lat.sort()
    p99 = lat[int(len(lat) * 0.99)] / 1000 if lat else float("nan")
    return float(re.search(r"tps = ([\d.]+)", out).group(1)), p99


def main():
    for tool in ("wrk", "pgbench"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is missing: run `make install`")
    ctx = harness.Suite("bench-api", fsync=True)
    hello = None
    try:
        ctx.start_api(PL_API_THREADS=128, PL_LOG_LEVEL="warn", PL_API_RATE_LIMIT=0)
        _, key = ctx.new_account("bench", concurrency=100000)
        agent = harness.AGENT_FOR_TESTS
        aid = ctx.http("POST", "/v2/agent", agent, key=key).json["agent_id"]
        eid = ctx.http("POST", "/call", {"agent_id": aid, "recipient_phone_number": "+14155550100"},
                       key=key).json["execution_id"]
        lua = os.path.join(ctx.workdir, "post_call.lua")
        with open(lua, "w") as f:
            f.write('wrk.method = "POST"\n'
                    f'wrk.headers["Authorization"] = "Bearer {key}"\n'
                    'wrk.headers["Content-Type"] = "application/json"\n'
                    f'wrk.body = \'{{"agent_id": "{aid}", "recipient_phone_number": '
                    '"+14155550100", "user_data": {"name": "Ada"}}\'\n')
        get_lua = os.path.join(ctx.workdir, "get.lua")
        with open(get_lua, "w") as f:
            f.write(f'wrk.headers["Authorization"] = "Bearer {key}"\n')

        hello_port = harness.stack.free_port()
        hello = subprocess.Popen([os.path.join(ROOT, "build", "bench", "api", "hello"),
                                  str(hello_port), "128"])
        harness.stack.wait_port(hello_port)

        api = f"http://127.0.0.1:{ctx.api_port}"
        print(f"each run: {SECONDS} s, {CONNS} connections, 2 cores shared with the load tool")
        tps, pg_p99 = pgbench(ctx.pg)
        print(f"pgbench one-row INSERT      {tps:10.0f} tx/s   p99 {pg_p99:6.2f} ms")
        post_rps, post_p99, post_bad, post_err = wrk(api + "/call", lua)
        print(f"POST /call                  {post_rps:10.0f} req/s  p99 {post_p99:6.2f} ms"
              f"  non-2xx {post_bad} {post_err}")
        hello_rps, hello_p99, _, _ = wrk(f"http://127.0.0.1:{hello_port}/")
        print(f"civetweb hello-world        {hello_rps:10.0f} req/s  p99 {hello_p99:6.2f} ms")
        get_rps, get_p99, get_bad, get_err = wrk(f"{api}/executions/{eid}", get_lua)
        print(f"GET /executions/{{id}}        {get_rps:10.0f} req/s  p99 {get_p99:6.2f} ms"
              f"  non-2xx {get_bad} {get_err}")
        written = int(ctx.sql("SELECT count(*) FROM executions")[0][0])
        queued = int(ctx.redis.cli("XLEN", "parley:dial"))
        print(f"executions written {written}, dial jobs queued {queued}")

        checks = [
            ("POST /call / pgbench insert", post_rps / tps, ">= 0.50", post_rps / tps >= 0.5),
            ("GET / hello-world", get_rps / hello_rps, ">= 0.50", get_rps / hello_rps >= 0.5),
            ("POST /call p99 ms", post_p99, "<= 25", post_p99 <= 25),
            ("GET p99 ms", get_p99, "<= 25", get_p99 <= 25),
        ]
        print()
        for name, value, target, ok in checks:
            print(f"{name:<30} {value:8.2f}   target {target:<8} {'PASS' if ok else 'MISS'}")
        if post_bad or get_bad or written != queued:
            print("errors during the run: see above")
            sys.exit(1)
    finally:
        if hello:
            hello.terminate()
            hello.wait()
        ctx.close()


if __name__ == "__main__":
    main()
