"""Reading calls back in integration suites: an execution's status (and waiting for one), its API
object, its transcript turns, and what the carrier fake's party heard (transcribed with the
pipeline's own local recogniser, build/bin/parley-transcribe)."""
import os
import subprocess

import harness

TRANSCRIBE = os.path.join(harness.ROOT, "build", "bin", "parley-transcribe")


def status(ctx, eid):
    return ctx.sql("SELECT status FROM executions WHERE id = :'p1'", eid)[0][0]


def wait_status(ctx, eid, accept, timeout=60):
    """Waits until the execution's status is one of `accept` (a set of names); returns it."""
    return harness.eventually(lambda: (s := status(ctx, eid)) in accept and s, timeout=timeout,
                              interval=0.2)


def execution(ctx, eid, key=None):
    """GET /executions/{eid} with the suite's key (ctx.key) unless another is given."""
    r = ctx.http("GET", f"/executions/{eid}", key=key or ctx.key)
    assert r.status == 200, r
    return r.json


def turns(ctx, eid, interrupted=False):
    """The transcript turns in order: (role, content), or (role, content, interrupted)."""
    rows = ctx.sql("SELECT role, content, interrupted FROM transcript_turns WHERE execution_id ="
                   " :'p1' ORDER BY seq", eid)
    if interrupted:
        return [(r[0], r[1], r[2] == "t") for r in rows]
    return [(r[0], r[1]) for r in rows]


def heard(record_dir, call_id):
    """What the fake's callee or caller of call_id heard, as text (its recording transcribed)."""
    path = harness.eventually(lambda: next(
        (os.path.join(record_dir, f) for f in os.listdir(record_dir) if f.startswith(call_id)),
        None), timeout=10)
    out = subprocess.run([TRANSCRIBE, path], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()
