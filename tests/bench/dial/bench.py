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
import selectors
import socket
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))
import harness  # noqa: E402
from dialing import Dialing  # noqa: E402

FSYNC = "--fsync" in sys.argv[1:]
ARGS = [a for a in sys.argv[1:] if a != "--fsync"]
CALLS = int(ARGS[0]) if len(ARGS) > 0 else 1000
RATE = float(ARGS[1]) if len(ARGS) > 1 else 200.0
WARMUP = int(ARGS[2]) if len(ARGS) > 2 else 0
CONNECTIONS = 64  # enough that a slow answer never holds back the next send


def pct(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(len(v) * p))] if v else float("nan")


class _Conn:
    """One keep-alive connection to the api with at most one request in flight."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.setblocking(False)
        self.buf = b""
        self.number = None  # the call whose answer is awaited

    def response(self):
        """The status of the complete response in buf (consumed), or None while incomplete."""
        head_end = self.buf.find(b"\r\n\r\n")
        if head_end < 0:
            return None
        head = self.buf[:head_end].decode("latin-1").split("\r\n")
        length = 0
        for line in head[1:]:
            k, _, v = line.partition(":")
            if k.strip().lower() == "content-length":
                length = int(v)
            elif k.strip().lower() == "transfer-encoding":
                raise RuntimeError("chunked answers are not expected from POST /call")
        if len(self.buf) < head_end + 4 + length:
            return None
        self.buf = self.buf[head_end + 4 + length:]
        return int(head[0].split()[1])


def schedule(warmup, calls):
    """Send times (seconds from the start) of the warm-up calls, at a rate rising evenly from 0 to
    RATE (over 2 * warmup / RATE seconds: a cold stack is not hit at full rate at once), then of
    the measured calls at RATE."""
    ramp = 2 * warmup / RATE
    at = [math.sqrt(2 * i * ramp / RATE) for i in range(warmup)]
    return at + [ramp + i / RATE for i in range(calls)]


def send_calls(port, key, aid, numbers, t0, due):
    """POSTs /call for numbers[i] at t0 + due[i] from one thread over CONNECTIONS keep-alive
    connections (each with one request in flight, as the api serves them), so the load generator
    costs little CPU and no thread hand-offs of its own. Returns ({number: send time}, [error
    statuses], [ms each send left after its due time])."""
    conns = [_Conn(port) for _ in range(CONNECTIONS)]
    idle = list(conns)
    sel = selectors.DefaultSelector()
    for c in conns:
        sel.register(c.sock, selectors.EVENT_READ, c)
    sent, errors, late = {}, [], []
    auth = f"Authorization: Bearer {key}\r\n".encode()
    i = 0
    busy = 0
    while i < len(numbers) or busy:
        now = time.time()
        if i < len(numbers) and idle and now >= t0 + due[i]:
            c = idle.pop(0)  # the longest idle: every connection stays in use
            body = json.dumps({"agent_id": aid, "recipient_phone_number": numbers[i]}).encode()
            req = (b"POST /call HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n" % port + auth +
                   b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)
                   + body)
            c.number = numbers[i]
            start = time.time()
            c.sock.sendall(req)
            sent[numbers[i]] = start
            late.append((start - (t0 + due[i])) * 1000)
            i += 1
            busy += 1
            continue
        timeout = None
        if i < len(numbers) and idle:
            timeout = max(0.0, t0 + due[i] - time.time())
        for k, _ in sel.select(timeout):
            c = k.data
            data = c.sock.recv(65536)
            if not data and c.number is None:  # idle past PL_API_KEEPALIVE_MS: open another
                sel.unregister(c.sock)
                c.sock.close()
                idle.remove(c)
                conns.remove(c)
                c = _Conn(port)
                conns.append(c)
                idle.append(c)
                sel.register(c.sock, selectors.EVENT_READ, c)
                continue
            if not data:
                raise RuntimeError("the api closed a connection with a request in flight")
            c.buf += data
            st = c.response()
            if st is not None:
                if st != 200:
                    errors.append(st)
                c.number = None
                idle.append(c)
                busy -= 1
    for c in conns:
        sel.unregister(c.sock)
        c.sock.close()
    return sent, errors, late


def cpu_seconds(ctx):
    """CPU seconds (user + system) used so far by each process of the stack: Postgres (the
    postmaster, the backends it has reaped, the live ones), Redis, every service, this load
    generator."""
    hz = os.sysconf("SC_CLK_TCK")

    def stat(pid):
        try:
            with open(f"/proc/{pid}/stat") as f:
                return f.read().rsplit(")", 1)[1].split()
        except OSError:
            return None

    out = {}
    with open(os.path.join(ctx.pg.root, "data", "postmaster.pid")) as f:
        pm = f.readline().strip()
    pg = 0
    for pid in os.listdir("/proc"):
        st = stat(pid) if pid.isdigit() else None
        if st is not None and (pid == pm or st[1] == pm):
            pg += int(st[11]) + int(st[12]) + (int(st[13]) + int(st[14]) if pid == pm else 0)
    out["postgres"] = pg / hz
    procs = [("redis", ctx.redis.proc.pid), ("load generator", os.getpid())]
    procs += [(name, svc.proc.pid) for name, svc in ctx.services.items() if svc.proc]
    for name, pid in procs:
        st = stat(pid)
        if st is not None:
            out[name] = out.get(name, 0) + (int(st[11]) + int(st[12])) / hz
    return out


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
