"""The scheduler over real Postgres, Redis and the api: when executions dial, caps, calling
hours, balance, scheduled and retried calls, sweeps and crash safety. The gateway is not running
here: what the scheduler hands over is read from the `telephony` stream."""
import copy
import datetime
import os
import signal
import time

import harness
from calls import status


def setup(ctx):
    ctx.start_api()
    ctx.sched_env = dict(PL_SCHEDULER_PORT=harness.stack.free_port(), PL_SCHEDULER_SWEEP_MS=300,
                         PL_SCHEDULER_STUCK_QUEUED_S=2, PL_SCHEDULER_CAP_RETRY_MS=100,
                         PL_SCHEDULER_CLAIM_IDLE_MS=1000, PL_LEASE_TTL_MS=3000)
    ctx.sched = start_scheduler(ctx)
    ctx.account, ctx.key = ctx.new_account("sched", concurrency=50)
    ctx.agent = new_agent(ctx, ctx.key)


def start_scheduler(ctx, name="scheduler"):
    svc = harness.Service(name, ctx.env(**ctx.sched_env), ctx.sched_env["PL_SCHEDULER_PORT"],
                          ctx.workdir, binary="scheduler").start()
    ctx.services[name] = svc
    return svc


def new_agent(ctx, key, guardrails=None):
    body = copy.deepcopy(harness.AGENT_FOR_TESTS)
    if guardrails:
        body["agent_config"]["calling_guardrails"] = guardrails
    return ctx.http("POST", "/v2/agent", body, key=key).json["agent_id"]


def call(ctx, key=None, agent=None, **body):
    body.setdefault("agent_id", agent or ctx.agent)
    body.setdefault("recipient_phone_number", "+14155550100")
    r = ctx.http("POST", "/call", body, key=key or ctx.key)
    assert r.status == 200, r
    return r.json["execution_id"]


def telephony_jobs(ctx):
    """{execution_id: [attempt, ...]} of every dial job handed to the gateway."""
    out = {}
    raw = ctx.redis.cli("XRANGE", "parley:telephony", "-", "+").split("\n")
    i = 0
    while i < len(raw):
        if raw[i] == "action":
            fields = dict(zip(raw[i:i + 6:2], raw[i + 1:i + 6:2]))
            out.setdefault(fields["execution_id"], []).append(int(fields["attempt"]))
            i += 6
        else:
            i += 1
    return out


def test_queued_call_is_handed_to_the_gateway(ctx):
    eid = call(ctx)
    harness.eventually(lambda: status(ctx, eid) == "initiated", timeout=5)
    harness.eventually(lambda: eid in telephony_jobs(ctx), timeout=2)
    assert telephony_jobs(ctx)[eid] == [0]
    assert ctx.sql("SELECT status, from_status FROM execution_events WHERE execution_id = :'p1'"
                   " ORDER BY id", eid) == [["queued", ""], ["initiated", "queued"]]
    # the lease is held for the live call
    assert ctx.redis.cli("ZSCORE", f"parley:lease:{ctx.account}", eid) != ""


def test_concurrency_cap(ctx):
    acc, key = ctx.new_account("capped", concurrency=2)
    agent = new_agent(ctx, key)
    ids = [call(ctx, key=key, agent=agent) for _ in range(5)]
    harness.eventually(lambda: sum(status(ctx, e) == "initiated" for e in ids) == 2, timeout=5)
    # stand in for the gateway, which renews the leases of live calls
    for e in ids:
        if status(ctx, e) == "initiated":
            ctx.redis.cli("ZADD", f"parley:lease:{acc}", int(time.time() * 1000) + 60000, e)
    time.sleep(1.0)  # the others keep waiting while the two slots are held
    assert sum(status(ctx, e) == "initiated" for e in ids) == 2
    assert sum(status(ctx, e) == "queued" for e in ids) == 3
    me = ctx.http("GET", "/user/me", key=key).json
    assert me["concurrency"] == {"max": 2, "current": 2}
    # a slot frees (the gateway releases it when a call ends): the next call starts
    first = next(e for e in ids if status(ctx, e) == "initiated")
    ctx.redis.cli("ZREM", f"parley:lease:{acc}", first)
    ctx.sql("UPDATE executions SET status = 'completed' WHERE id = :'p1'", first)
    harness.eventually(lambda: sum(status(ctx, e) == "initiated" for e in ids) == 2 and
                       sum(status(ctx, e) == "queued" for e in ids) == 2, timeout=5)


def test_expired_lease_frees_its_slot(ctx):
    """A holder that crashed stops renewing: its slot frees itself after PL_LEASE_TTL_MS."""
    acc, key = ctx.new_account("expiry", concurrency=1)
    agent = new_agent(ctx, key)
    a = call(ctx, key=key, agent=agent)
    harness.eventually(lambda: status(ctx, a) == "initiated", timeout=5)
    b = call(ctx, key=key, agent=agent)
    time.sleep(1.0)
    assert status(ctx, b) == "queued"
    harness.eventually(lambda: status(ctx, b) == "initiated", timeout=6)


def test_scheduled_call_dials_when_due_and_not_before(ctx):
    when = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=2)
    eid = call(ctx, scheduled_at=when.isoformat())
    time.sleep(1.0)
    assert status(ctx, eid) == "scheduled"
    harness.eventually(lambda: status(ctx, eid) == "initiated", timeout=5)
    events = [r[0] for r in ctx.sql("SELECT status FROM execution_events WHERE execution_id ="
                                    " :'p1' ORDER BY id", eid)]
    assert events == ["scheduled", "queued", "initiated"]


def test_stopped_call_never_dials(ctx):
    when = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=1)
    eid = call(ctx, scheduled_at=when.isoformat())
    assert ctx.http("POST", f"/call/{eid}/stop", key=ctx.key).status == 200
    time.sleep(2.0)
    assert status(ctx, eid) == "stopped"
    assert eid not in telephony_jobs(ctx)


def test_balance_low(ctx):
    acc, key = ctx.new_account("broke")
    ctx.sql("UPDATE accounts SET wallet = 0 WHERE id = :'p1'", acc)
    eid = call(ctx, key=key, agent=new_agent(ctx, key))
    harness.eventually(lambda: status(ctx, eid) == "balance-low", timeout=5)
    e = ctx.http("GET", f"/executions/{eid}", key=key).json
    assert e["error_message"] == "the account's wallet is exhausted"
    assert eid not in telephony_jobs(ctx)


def test_calling_hours(ctx):
    """India is UTC+05:30: choose a one-hour window that is closed there right now."""
    now = datetime.datetime.now(datetime.timezone(datetime.timedelta(hours=5, minutes=30)))
    start = (now.hour + 3) % 24
    agent = new_agent(ctx, ctx.key, {"call_start_hour": start, "call_end_hour": (start + 1) % 24})
    held = call(ctx, agent=agent, recipient_phone_number="+919876543210")
    bypass = call(ctx, agent=agent, recipient_phone_number="+919876543211",
                  bypass_call_guardrails=True)
    harness.eventually(lambda: status(ctx, bypass) == "initiated", timeout=5)
    time.sleep(0.5)
    assert status(ctx, held) == "queued"
    member = '{"s":"dial","f":["execution_id","%s","attempt","0"]}' % held
    due = float(ctx.redis.cli("ZSCORE", "parley:delayed", member)) / 1000
    opens = now.replace(minute=0, second=0, microsecond=0) + datetime.timedelta(hours=3)
    assert abs(due - opens.timestamp()) < 2, (due, opens)


def test_retry_attempt_dials_again(ctx):
    """The gateway marks a failed attempt `rescheduled` and adds attempt n+1 to the delayed set;
    the scheduler dials it as a new attempt."""
    eid = call(ctx)
    harness.eventually(lambda: status(ctx, eid) == "initiated", timeout=5)
    ctx.sql("UPDATE executions SET status = 'rescheduled' WHERE id = :'p1'", eid)
    ctx.redis.cli("ZADD", "parley:delayed", int(time.time() * 1000),
                  '{"s":"dial","f":["execution_id","%s","attempt","1"]}' % eid)
    harness.eventually(lambda: status(ctx, eid) == "initiated", timeout=5)
    harness.eventually(lambda: telephony_jobs(ctx).get(eid) == [0, 1], timeout=2)
    assert ctx.sql("SELECT attempt FROM executions WHERE id = :'p1'", eid) == [["1"]]
    # a stale job of attempt 0 arriving late is dropped
    ctx.redis.cli("XADD", "parley:dial", "*", "execution_id", eid, "attempt", "0")
    time.sleep(0.5)
    assert telephony_jobs(ctx)[eid] == [0, 1]


def test_sweep_recovers_a_lost_job(ctx):
    """The api died between its commit and its XADD: the execution is queued with no job."""
    eid = ctx.sql("INSERT INTO executions (account_id, agent_id, status, to_number, provider)"
                  " VALUES (:'p1', :'p2', 'queued', '+14155550100', 'twilio') RETURNING id",
                  ctx.account, ctx.agent)[0][0]
    harness.eventually(lambda: status(ctx, eid) == "initiated", timeout=8)


def test_stuck_dialing_is_reconciled(ctx):
    eid = call(ctx)
    harness.eventually(lambda: status(ctx, eid) == "initiated", timeout=5)
    ctx.sql("UPDATE executions SET updated_at = now() - interval '10 minutes' WHERE id = :'p1'",
            eid)

    def reconcile_job():
        raw = ctx.redis.cli("XRANGE", "parley:telephony", "-", "+")
        return f"reconcile\nexecution_id\n{eid}" in raw
    harness.eventually(reconcile_job, timeout=5)


def test_sigkill_mid_batch_loses_nothing(ctx):
    acc, key = ctx.new_account("crash", concurrency=1000)
    agent = new_agent(ctx, key)
    ids = [call(ctx, key=key, agent=agent, recipient_phone_number=f"+1415555{i:04d}")
           for i in range(60)]
    time.sleep(0.05)
    os.kill(ctx.sched.proc.pid, signal.SIGKILL)
    ctx.sched.proc.wait()
    ids += [call(ctx, key=key, agent=agent, recipient_phone_number=f"+1415556{i:04d}")
            for i in range(40)]
    ctx.sched = start_scheduler(ctx, "scheduler-2")
    harness.eventually(lambda: all(status(ctx, e) == "initiated" for e in ids), timeout=20)
    jobs = telephony_jobs(ctx)
    assert all(jobs.get(e) and set(jobs[e]) == {0} for e in ids)
    # every execution went queued -> initiated exactly once
    dup = ctx.sql("SELECT count(*) FROM execution_events WHERE status = 'initiated'"
                  " AND account_id = :'p1' GROUP BY execution_id HAVING count(*) > 1", acc)
    assert dup == []
