#!/usr/bin/env python3
"""Webhook benchmark (issue 5): a fresh Postgres (fsync on) and Redis, the real
webhook-dispatcher, and build/bench/webhooks/load, which runs 10 HTTP receivers on loopback and
drives status changes through common/state.c (load.c says how). Prints

  * status change committed -> webhook received, p50/p90/p99/max, at a steady rate of status
    changes (each call's statuses spaced calls/rate seconds apart, as real calls are);
  * deliveries per second on a backlog committed at once;
  * CPU seconds spent by the dispatcher, Postgres and the load process (receivers + generator),
    and the machine's load average before and after, since the 2 cores are shared;

against the targets p99 <= 20 ms and >= 2,000 deliveries/s.

Usage: bench.py [calls, default 1000] [rate per second, default 1000] [backlog, default 20000]
Environment for the dispatcher may be added as PL_WEBHOOK_* variables (e.g. to compare
PL_WEBHOOK_ASYNC_COMMIT=0); BENCH_THREADS sets the generator's connections (default 16).
"""
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))
import harness  # noqa: E402

CALLS = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
RATE = float(sys.argv[2]) if len(sys.argv) > 2 else 1000.0
BACKLOG = int(sys.argv[3]) if len(sys.argv) > 3 else 20000
TICK = os.sysconf("SC_CLK_TCK")


def cpu_of(pids):
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime + stime
        except OSError:
            pass
    return total / TICK


def postgres_pids(pg):
    with open(os.path.join(pg.root, "data", "postmaster.pid")) as f:
        master = int(f.readline())
    pids = [master]
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == master:
                        pids.append(int(d))
            except OSError:
                pass
    return pids


def uptime():
    return subprocess.run(["uptime"], stdout=subprocess.PIPE, text=True).stdout.strip()


def main():
    print(f"before: {uptime()}", flush=True)
    ctx = harness.Suite("bench-webhooks", fsync=True)
    try:
        account, _ = ctx.new_account("bench", concurrency=100000)
        env = dict(PL_LOG_LEVEL="warn", PL_WEBHOOK_ALLOW_PRIVATE=1)
        env.update({k: v for k, v in os.environ.items() if k.startswith("PL_WEBHOOK_")})
        port = harness.stack.free_port()
        env["PL_WEBHOOK_PORT"] = port
        disp = harness.Service("webhook-dispatcher", ctx.env(**env), port, ctx.workdir,
                               binary="webhook-dispatcher").start()
        ctx.services["webhook-dispatcher"] = disp
        ports = ",".join(str(harness.stack.free_port()) for _ in range(10))
        pg = postgres_pids(ctx.pg)
        cpu0 = (cpu_of([disp.proc.pid]), cpu_of(pg))
        t0 = time.time()
        load = subprocess.Popen(
            [os.path.join(ROOT, "build", "bench", "webhooks", "load"), "--db", ctx.pg.url,
             "--redis", ctx.redis.url, "--account", account, "--ports", ports,
             "--executions", str(CALLS), "--rate", str(RATE), "--backlog", str(BACKLOG),
             "--threads", os.environ.get("BENCH_THREADS", "16")],
            cwd=ROOT, stdout=subprocess.PIPE, text=True)
        marks = {}
        for line in load.stdout:  # CPU at the phase boundaries, as load.c reports them
            print(line, end="", flush=True)
            for key, prefix in (("p1", "phase 1:"), ("p1end", "  status change committed"),
                                ("p2", "phase 2:"), ("p2end", "  received ")):
                if line.startswith(prefix) and key not in marks and \
                        (key != "p2end" or "p2" in marks):
                    marks[key] = (cpu_of([disp.proc.pid]), cpu_of(postgres_pids(ctx.pg)))
        _, status, usage = os.wait4(load.pid, 0)
        for a, b, n, what in (("p1", "p1end", CALLS * 6, "phase 1"),
                              ("p2", "p2end", BACKLOG, "phase 2")):
            if a in marks and b in marks and n:
                d = (marks[b][0] - marks[a][0]) / n * 1e6
                p = (marks[b][1] - marks[a][1]) / n * 1e6
                print(f"CPU per delivery, {what}: dispatcher {d:.0f} us, postgres {p:.0f} us"
                      + (" (includes the generator's status changes)" if a == "p1" else ""))
        wall = time.time() - t0
        pg = postgres_pids(ctx.pg)
        d_cpu, p_cpu = cpu_of([disp.proc.pid]) - cpu0[0], cpu_of(pg) - cpu0[1]
        print(f"CPU seconds over {wall:.1f} s: dispatcher {d_cpu:.2f}, postgres {p_cpu:.2f}, "
              f"load (receivers + generator) {usage.ru_utime + usage.ru_stime:.2f}")
        metrics = ctx.http("GET", "/metrics", port=port).text
        for line in metrics.splitlines():
            if line.startswith(("pl_webhook_attempts_total", "pl_webhook_db_errors_total",
                                "pl_webhook_db_seconds_sum", "pl_webhook_db_seconds_count",
                                "pl_webhook_attempt_seconds_sum",
                                "pl_webhook_attempt_seconds_count")):
                print("  " + line)
        if os.WEXITSTATUS(status) != 0:
            sys.exit(f"load exited with {os.WEXITSTATUS(status)}")
    finally:
        ctx.close()
        print(f"after:  {uptime()}", flush=True)


if __name__ == "__main__":
    main()
