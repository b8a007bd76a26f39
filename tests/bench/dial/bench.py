#!/usr/bin/env python3
"""Dial benchmark (issue 3): 1,000 calls at 200 calls/s to instant-answer/instant-hangup numbers
(suffix 0007) through the real api, scheduler, telephony-gateway and carrier fake.

Prints p50/p99 of
  * POST /call sent → the fake receiving the carrier's create-call request (api commit, Redis,
    scheduler, lease, state change, gateway claim, carrier REST), and
  * a carrier status callback sent → our 200 reply, which the gateway sends only after the status
    change is committed (the fake times each callback's round trip),
against the target p99 ≤ 20 ms each.

Every call counts, from a cold start at full rate. Optionally, warm-up calls go first (their rate
rising evenly from 0 to RATE over two seconds), reported on their own line and left out of the
percentiles.

Postgres runs with fsync off unless --fsync is given: the test harness's setting, so these figures
do not include the cost of durable commits (see README, "Dialing").

Usage: bench.py [calls, default 1000] [rate per second, default 200] [warm-up calls, default 0]
                [--fsync]
"""
import json
import math
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))
import harness  # noqa: E402
from dialing import Dialing  # noqa: E402
import loadgen  # noqa: E402
from loadgen import cpu_seconds, pct  # noqa: E402

FSYNC = "--fsync" in sys.argv[1:]
ARGS = [a for a in sys.argv[1:] if a != "--fsync"]
CALLS = int(ARGS[0]) if len(ARGS) > 0 else 1000
RATE = float(ARGS[1]) if len(ARGS) > 1 else 200.0
WARMUP = int(ARGS[2]) if len(ARGS) > 2 else 0
CONNECTIONS = 64  # enough that a slow answer never holds back the next send


def schedule(warmup, calls):
    """Send times (seconds from the start) of the warm-up calls, at a rate rising evenly from 0 to
    RATE (over 2 * warmup / RATE seconds: a cold stack is not hit at full rate at once), then of
    the measured calls at RATE."""
    ramp = 2 * warmup / RATE
    at = [math.sqrt(2 * i * ramp / RATE) for i in range(warmup)]
    return at + [ramp + i / RATE for i in range(calls)]


def send_calls(port, key, aid, numbers, t0, due):
    """POSTs /call for numbers[i] at t0 + due[i] (loadgen.run, CONNECTIONS connections).
    Returns ({number: send time}, [error statuses], [ms each send left after its due time])."""
    auth = f"Authorization: Bearer {key}\r\n".encode()
    reqs = []
    for n in numbers:
        body = json.dumps({"agent_id": aid, "recipient_phone_number": n}).encode()
        reqs.append(b"POST /call HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n" % port + auth +
                    b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)
                    + body)
    sent, _, answers, late = loadgen.run(port, reqs, t0, due, CONNECTIONS)
    errors = [st for st, _ in answers if st != 200]
    return dict(zip(numbers, sent)), errors, late


def main():
    with open("/proc/loadavg") as f:
        load0 = " ".join(f.read().split()[:3])  # other work on the machine skews the figures
    ctx = harness.Suite("bench-dial", fsync=FSYNC)
    try:
        ctx.start_api(PL_LOG_LEVEL="warn")
        d = Dialing(ctx, gateway_env={"PL_LOG_LEVEL": "warn", "PL_GATEWAY_WORKERS": 16},
                    scheduler_env={"PL_LOG_LEVEL": "warn"}).start()
        _, key = ctx.new_account("bench", concurrency=100000)
        aid = ctx.http("POST", "/v2/agent", harness.AGENT_FOR_TESTS, key=key).json["agent_id"]
        # Warm-up calls (prefix +1498) run first, their rate rising to RATE, straight into the
        # measured ones (+1499) at RATE: the percentiles describe the stack at the rate, not its
        # start (new connections, statements prepared on first use, threads started).
        warm = [f"+1498{i:06d}0007" for i in range(WARMUP)]
        numbers = [f"+1499{i:06d}0007" for i in range(CALLS)]
        xacts0 = ctx.sql("SELECT xact_commit + xact_rollback FROM pg_stat_database"
                         " WHERE datname = current_database()")[0][0]
        t0 = time.time() + 0.5
        cpu0 = cpu_seconds(ctx)
        sent_all, errors, late = send_calls(ctx.api_port, key, aid, warm + numbers, t0,
                                            schedule(WARMUP, CALLS))
        total = WARMUP + CALLS
        span = sent_all[numbers[-1]] - sent_all[numbers[0]]
        print(f"sent {WARMUP} warm-up calls, then {CALLS} measured calls in {span:.1f} s "
              f"({(CALLS - 1) / span if span > 0 else 0:.0f}/s); {len(errors)} errors; sends "
              f"behind schedule: p99 {pct(late, 0.99):.1f} ms, max {max(late):.1f} ms")
        sent = {n: sent_all[n] for n in numbers}

        # Wait until every call is over (its final callback committed), then fetch the dial list
        # once: rendering the whole list while the last calls still run would delay their
        # callbacks in the fake.
        harness.eventually(lambda: d.fake_get("/_fake/health").json["dials"] >= total,
                           timeout=120, interval=0.1)
        harness.eventually(lambda: ctx.sql(
            "SELECT count(*) FROM executions WHERE status NOT IN"
            " ('queued', 'initiated', 'ringing', 'in-progress')")[0][0] == str(total),
            timeout=120, interval=0.2)
        cpu1 = cpu_seconds(ctx)
        busy = ctx.sql("SELECT extract(epoch FROM max(updated_at)) FROM executions")[0][0]
        busy_s = float(busy) - t0
        time.sleep(0.2)
        all_dials = harness.eventually(
            lambda: (lambda ds: len({x["to"] for x in ds if x.get("to") in sent_all}) == total
                     and ds)(d.dials()), timeout=60, interval=0.5)
        got = {x["to"]: x for x in all_dials if x.get("to") in sent_all}
        dial_ms = [(got[n]["epoch"] - sent[n]) * 1000 for n in sent]
        if WARMUP:
            w = [(got[n]["epoch"] - sent_all[n]) * 1000 for n in warm]
            print(f"warm-up calls (not in the figures below): POST /call -> dial p50 "
                  f"{pct(w, 0.5):.1f} ms, p99 {pct(w, 0.99):.1f} ms, max {max(w):.1f} ms")
        # callback round trips: sample the calls' records from the fake
        cb_ms = []
        cb_rec = []
        for n in list(sent)[:: max(1, CALLS // 200)]:
            rec = harness.eventually(lambda: (lambda r: r.json if r.json.get("settled") else None)(
                d.fake_get(f"/_fake/calls/{got[n]['sid']}")), timeout=60)
            cb_ms += [c["ms"] for c in rec["callbacks"]
                      if c["kind"].startswith("status:") and c["http_status"] == 200]
            cb_rec += [{"to": n, "kind": c["kind"], "at": got[n]["epoch"] + c["t"], "ms": c["ms"]}
                       for c in rec["callbacks"]]
        # where the time goes, from Postgres timestamps (transaction start times)
        stages = ctx.sql(
            "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY s1), percentile_cont(0.99)"
            " WITHIN GROUP (ORDER BY s1), percentile_cont(0.5) WITHIN GROUP (ORDER BY s2),"
            " percentile_cont(0.99) WITHIN GROUP (ORDER BY s2) FROM (SELECT"
            " extract(epoch FROM i.created_at - q.created_at) * 1000 AS s1,"
            " extract(epoch FROM a.dial_requested_at - i.created_at) * 1000 AS s2"
            " FROM execution_events q JOIN execution_events i ON i.execution_id = q.execution_id"
            " AND i.status = 'initiated' JOIN call_attempts a ON a.execution_id = q.execution_id"
            " JOIN executions e ON e.id = q.execution_id"
            " WHERE q.status = 'queued' AND e.to_number LIKE '+1499%') x")[0]
        print(f"queued -> initiated (scheduler)   p50 {float(stages[0]):6.1f} ms"
              f"  p99 {float(stages[1]):6.1f} ms")
        print(f"initiated -> attempt claimed (gw) p50 {float(stages[2]):6.1f} ms"
              f"  p99 {float(stages[3]):6.1f} ms")
        claimed = dict(ctx.sql("SELECT e.to_number, extract(epoch FROM a.dial_requested_at)"
                               " FROM call_attempts a JOIN executions e ON e.id = a.execution_id"))
        rest_ms = [(got[n]["epoch"] - float(claimed[n])) * 1000 for n in sent if n in claimed]
        print(f"attempt claimed -> fake receives  p50 {pct(rest_ms, 0.5):6.1f} ms"
              f"  p99 {pct(rest_ms, 0.99):6.1f} ms")
        xacts = ctx.sql("SELECT xact_commit + xact_rollback FROM pg_stat_database"
                        " WHERE datname = current_database()")[0][0]
        print(f"Postgres transactions: {(int(xacts) - int(xacts0)) / total:.1f} per call "
              f"(statements outside a transaction block, all services)")
        used = sorted(((k, v - cpu0.get(k, 0)) for k, v in cpu1.items()), key=lambda x: -x[1])
        total_cpu = sum(v for _, v in used)
        print(f"CPU from the first POST /call until every call ended ({busy_s:.1f} s): "
              f"{total_cpu * 1000 / total:.1f} ms per call, {total_cpu / busy_s:.2f} of "
              f"{os.cpu_count()} cores; " + ", ".join(f"{k} {v:.2f} s" for k, v in used))
        final = ctx.sql("SELECT status, count(*) FROM executions GROUP BY status ORDER BY 1")
        print(f"final statuses: {final}")
        per_number = {}
        for x in d.dials():
            if x.get("to") in sent_all:
                per_number[x["to"]] = per_number.get(x["to"], 0) + 1
        dup = sum(1 for c in per_number.values() if c > 1)
        print(f"numbers dialled more than once: {dup}")
        # every call's timeline (Unix seconds) for a closer look: build/test-runs/bench-dial/
        rows = ctx.sql("SELECT e.to_number, extract(epoch FROM q.created_at),"
                       " extract(epoch FROM i.created_at), extract(epoch FROM a.dial_requested_at)"
                       " FROM executions e JOIN execution_events q ON q.execution_id = e.id"
                       " AND q.status = 'queued' JOIN execution_events i ON i.execution_id = e.id"
                       " AND i.status = 'initiated' JOIN call_attempts a ON a.execution_id = e.id")
        timeline = [{"to": r[0], "sent": sent_all.get(r[0]), "queued": float(r[1]),
                     "initiated": float(r[2]), "claimed": float(r[3]),
                     "dialled": got[r[0]]["epoch"] if r[0] in got else None} for r in rows]
        with open(os.path.join(ctx.workdir, "timeline.json"), "w") as f:
            json.dump({"calls": timeline, "callbacks": cb_rec}, f)
        rows = [("POST /call -> carrier receives the dial", dial_ms),
                ("carrier callback -> status committed (200)", cb_ms)]
        fsync = "on" if FSYNC else "off (commits are not durable; --fsync turns it on)"
        print(f"\nPostgres fsync {fsync}; load average before the run {load0}")
        for name, v in rows:
            p99 = pct(v, 0.99)
            print(f"{name:<44} n={len(v):5d}  p50 {pct(v, 0.5):6.1f} ms  p99 {p99:6.1f} ms"
                  f"  target p99 <= 20 ms {'PASS' if p99 <= 20 else 'MISS'}")
        if errors or dup:
            sys.exit(1)
    finally:
        ctx.close()


if __name__ == "__main__":
    main()
