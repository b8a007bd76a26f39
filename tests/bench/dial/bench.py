#!/usr/bin/env python3
"""Dial benchmark (issue 3): 1,000 calls at 200 calls/s to instant-answer/instant-hangup numbers
(suffix 0007) through the real api, scheduler, telephony-gateway and carrier fake.

Prints p50/p99 of
  * POST /call sent → the fake receiving the carrier's create-call request (api commit, Redis,
    scheduler, lease, state change, gateway claim, carrier REST), and
  * a carrier status callback sent → our 200 reply, which the gateway sends only after the status
    change is committed (the fake times each callback's round trip),
against the target p99 ≤ 20 ms each.

Usage: bench.py [calls, default 1000] [rate per second, default 200]
"""
import http.client
import json
import os
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))
import harness  # noqa: E402
from dialing import Dialing  # noqa: E402

CALLS = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
RATE = float(sys.argv[2]) if len(sys.argv) > 2 else 200.0
WORKERS = 16


def pct(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(len(v) * p))] if v else float("nan")


def main():
    ctx = harness.Suite("bench-dial")
    try:
        ctx.start_api(PL_LOG_LEVEL="warn")
        d = Dialing(ctx, gateway_env={"PL_LOG_LEVEL": "warn", "PL_GATEWAY_WORKERS": 16},
                    scheduler_env={"PL_LOG_LEVEL": "warn"}).start()
        _, key = ctx.new_account("bench", concurrency=100000)
        aid = ctx.http("POST", "/v2/agent", harness.AGENT_FOR_TESTS, key=key).json["agent_id"]
        numbers = [f"+1499{i:06d}0007" for i in range(CALLS)]
        sent = {}
        errors = []
        t0 = time.time() + 0.5
        lock = threading.Lock()
        next_i = [0]

        def worker():
            conn = http.client.HTTPConnection("127.0.0.1", ctx.api_port, timeout=30)
            while True:
                with lock:
                    i = next_i[0]
                    next_i[0] += 1
                if i >= CALLS:
                    break
                due = t0 + i / RATE
                delay = due - time.time()
                if delay > 0:
                    time.sleep(delay)
                body = json.dumps({"agent_id": aid, "recipient_phone_number": numbers[i]})
                start = time.time()
                conn.request("POST", "/call", body, {"Authorization": f"Bearer {key}",
                                                     "Content-Type": "application/json"})
                r = conn.getresponse()
                r.read()
                if r.status != 200:
                    errors.append(r.status)
                sent[numbers[i]] = start
            conn.close()

        threads = [threading.Thread(target=worker) for _ in range(WORKERS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.time() - t0
        print(f"sent {CALLS} calls in {elapsed:.1f} s ({CALLS / elapsed:.0f}/s), "
              f"{len(errors)} errors")

        def dialled():
            return {x["to"]: x for x in d.dials() if x.get("to") in sent}
        got = harness.eventually(lambda: (lambda m: len(m) == CALLS and m)(dialled()),
                                 timeout=120)
        dial_ms = [(got[n]["epoch"] - sent[n]) * 1000 for n in sent]
        # callback round trips: sample the calls' records from the fake
        cb_ms = []
        for n in list(sent)[:: max(1, CALLS // 200)]:
            rec = harness.eventually(lambda: (lambda r: r.json if r.json.get("settled") else None)(
                d.fake_get(f"/_fake/calls/{got[n]['sid']}")), timeout=60)
            cb_ms += [c["ms"] for c in rec["callbacks"]
                      if c["kind"].startswith("status:") and c["http_status"] == 200]
        # where the time goes, from Postgres timestamps (transaction start times)
        stages = ctx.sql(
            "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY s1), percentile_cont(0.99)"
            " WITHIN GROUP (ORDER BY s1), percentile_cont(0.5) WITHIN GROUP (ORDER BY s2),"
            " percentile_cont(0.99) WITHIN GROUP (ORDER BY s2) FROM (SELECT"
            " extract(epoch FROM i.created_at - q.created_at) * 1000 AS s1,"
            " extract(epoch FROM a.dial_requested_at - i.created_at) * 1000 AS s2"
            " FROM execution_events q JOIN execution_events i ON i.execution_id = q.execution_id"
            " AND i.status = 'initiated' JOIN call_attempts a ON a.execution_id = q.execution_id"
            " WHERE q.status = 'queued') x")[0]
        print(f"queued -> initiated (scheduler)   p50 {float(stages[0]):6.1f} ms"
              f"  p99 {float(stages[1]):6.1f} ms")
        print(f"initiated -> attempt claimed (gw) p50 {float(stages[2]):6.1f} ms"
              f"  p99 {float(stages[3]):6.1f} ms")
        claimed = dict(ctx.sql("SELECT e.to_number, extract(epoch FROM a.dial_requested_at)"
                               " FROM call_attempts a JOIN executions e ON e.id = a.execution_id"))
        rest_ms = [(got[n]["epoch"] - float(claimed[n])) * 1000 for n in sent if n in claimed]
        print(f"attempt claimed -> fake receives  p50 {pct(rest_ms, 0.5):6.1f} ms"
              f"  p99 {pct(rest_ms, 0.99):6.1f} ms")
        final = ctx.sql("SELECT status, count(*) FROM executions GROUP BY status ORDER BY 1")
        print(f"final statuses: {final}")
        dup = sum(1 for n in sent if len([x for x in d.dials() if x.get("to") == n]) > 1)
        print(f"numbers dialled more than once: {dup}")
        rows = [("POST /call -> carrier receives the dial", dial_ms),
                ("carrier callback -> status committed (200)", cb_ms)]
        print()
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
