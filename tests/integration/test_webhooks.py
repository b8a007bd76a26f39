"""The webhook-dispatcher over real HTTP, Postgres, Redis and nng (docs/webhooks.md): every status
of an execution reaches the agent's webhook_url, in order, signed, exactly once after dedup by
X-Parley-Event-Id, through receiver outages, errors, timeouts, garbage and a SIGKILL of the
dispatcher; the delivery log and redelivery API; dead letters; the SSRF guard.

Statuses are moved with common/state.c's own statement (the same outbox rows the services
write), except in the first test, which runs the real dialing stack."""
import hashlib
import hmac
import json
import os
import sys
import time

import harness

RECEIVER = os.path.join(harness.ROOT, "tests", "fakes", "receiver", "receiver.py")
LIFECYCLE = ["queued", "initiated", "ringing", "in-progress", "call-disconnected", "completed"]

# Test timings: a short request timeout and backoff so retries happen within a second.
DISPATCHER_ENV = dict(PL_WEBHOOK_ALLOW_PRIVATE=1, PL_WEBHOOK_TIMEOUT_MS=500,
                      PL_WEBHOOK_BACKOFF_BASE_MS=100, PL_WEBHOOK_BACKOFF_CAP_MS=400,
                      PL_WEBHOOK_MAX_ATTEMPTS=40, PL_WEBHOOK_POLL_MS=100,
                      PL_WEBHOOK_DRAIN_MS=3000)

# common/state.c's transition statement, values inlined (test-controlled literals only).
MOVE_SQL = """WITH cur AS (
  SELECT id, status AS old FROM executions WHERE id = '{id}'::uuid FOR UPDATE),
 upd AS (
  UPDATE executions e SET status = '{to}', updated_at = now(),
    telephony_data = e.telephony_data || COALESCE(NULL::jsonb, '{{}}'::jsonb),
    error_message = COALESCE(NULL, e.error_message)
  FROM cur WHERE e.id = cur.id AND cur.old = ANY('{{{frm}}}'::text[])
  RETURNING e.id, e.account_id, e.agent_id, cur.old),
 ev AS (
  INSERT INTO execution_events (execution_id, account_id, status, from_status)
  SELECT id, account_id, '{to}', old FROM upd RETURNING id)
 SELECT upd.account_id, upd.agent_id, upd.old, ev.id FROM upd, ev;
"""


# ---------------------------------------------------------------- helpers

class Receiver:
    """tests/fakes/receiver on a port of its own; it may be started late (a receiver that is
    down) or stopped and started again on the same port."""

    def __init__(self, ctx, name, secret=None):
        self.ctx = ctx
        self.name = name
        self.port = harness.stack.free_port()
        self.secret = secret
        self.svc = None

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self, **mode):
        args = [sys.executable, RECEIVER, "--port", str(self.port)]
        if mode:
            args += ["--mode", json.dumps(mode)]
        if self.secret:
            args += ["--secret", self.secret]
        self.svc = harness.Service(self.name, dict(os.environ), self.port, self.ctx.workdir)
        self.svc.start_cmd(args)
        self.ctx.services[self.name] = self.svc
        return self

    def stop(self):
        if self.svc:
            self.svc.stop()

    def mode(self, **m):
        r = self.ctx.http("POST", "/_fake/mode", body=m, port=self.port)
        assert r.status == 200, r

    def received(self, eid=None):
        got = self.ctx.http("GET", "/_fake/received", port=self.port).json
        for g in got:
            g["json"] = json.loads(g["body"]) if g["body"] else None
            g["event_id"] = int(g["headers"].get("X-Parley-Event-Id", "0"))
        if eid is not None:
            got = [g for g in got if g["json"] and g["json"]["id"] == eid]
        return got


def start_dispatcher(ctx, name="webhook-dispatcher", **env):
    e = dict(DISPATCHER_ENV)
    e.update(env)
    e["PL_WEBHOOK_PORT"] = harness.stack.free_port()
    svc = harness.Service(name, ctx.env(**e), e["PL_WEBHOOK_PORT"], ctx.workdir,
                          binary="webhook-dispatcher").start()  # .port: its health port
    ctx.services[name] = svc
    return svc


def restart_dispatcher(ctx, **env):
    ctx.services["webhook-dispatcher"].stop()
    return start_dispatcher(ctx, **env)


def new_agent(ctx, url, key=None):
    body = json.loads(json.dumps(harness.AGENT_FOR_TESTS))
    body["agent_config"]["webhook_url"] = url
    r = ctx.http("POST", "/v2/agent", body, key=key or ctx.key)
    assert r.status == 200, r
    return r.json["agent_id"]


def new_call(ctx, agent_id, number="+14155550100", key=None):
    r = ctx.http("POST", "/call", {"agent_id": agent_id, "recipient_phone_number": number},
                 key=key or ctx.key)
    assert r.status == 200, r
    return r.json["execution_id"]


def move(ctx, eid, statuses, start="queued"):
    """Moves the execution along `statuses` (from `start`), one transaction per change."""
    script, frm = "", start
    for to in statuses:
        script += MOVE_SQL.format(id=eid, to=to, frm=frm)
        frm = to
    rows = ctx.sql(script)
    assert len(rows) == len(statuses), f"a transition was refused: {rows}"


def run_lifecycle(ctx, agent_id):
    eid = new_call(ctx, agent_id)
    move(ctx, eid, LIFECYCLE[1:])
    return eid


def log(ctx, eid, key=None):
    r = ctx.http("GET", f"/executions/{eid}/webhooks", key=key or ctx.key)
    assert r.status == 200, r
    return r.json["data"]


def events(ctx, eid):
    """[(event_id, status)] of the execution's outbox, in order."""
    return [(int(i), s) for i, s in ctx.sql(
        "SELECT id, status FROM execution_events WHERE execution_id = :'p1' ORDER BY id", eid)]


def all_delivered(ctx, eid, n):
    entries = log(ctx, eid)
    return len(entries) == n and all(e["state"] == "delivered" for e in entries) and entries


def accepted_once(requests):
    """The requests a receiver answered 2xx, deduplicated by X-Parley-Event-Id (first kept)."""
    seen, out = set(), []
    for g in requests:
        if isinstance(g["answered"], int) and 200 <= g["answered"] < 300 \
                and g["event_id"] not in seen:
            seen.add(g["event_id"])
            out.append(g)
    return out


def assert_in_order(requests):
    """Within one execution, no request for an event arrives after one for a later event."""
    ids = [g["event_id"] for g in requests]
    assert ids == sorted(ids), f"out of order: {ids}"


def verify_signature(secret, header, body, tolerance_s=300):
    """docs/webhooks.md's receiver check, written out independently of the fake receiver."""
    fields = dict(part.split("=", 1) for part in header.split(","))
    t = int(fields["t"])
    expected = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return abs(time.time() - t) <= tolerance_s and hmac.compare_digest(expected, fields["v1"])


# ---------------------------------------------------------------- suite

def setup(ctx):
    ctx.start_api()
    ctx.account, ctx.key = ctx.new_account("hooks", concurrency=50)
    ctx.other_account, ctx.other_key = ctx.new_account("other")
    ctx.secret = ctx.sql("SELECT webhook_secret FROM accounts WHERE id = :'p1'", ctx.account)[0][0]
    ctx.receiver = Receiver(ctx, "receiver", secret=ctx.secret).start()
    start_dispatcher(ctx)


def test_every_status_in_order_with_the_dialing_stack(ctx):
    """The real api, scheduler, gateway and carrier fake move the calls and publish on the bus;
    with a 5 s poll, only the bus wake-up makes every delivery arrive within a second."""
    from dialing import Dialing
    d = Dialing(ctx).start()
    try:
        dialing_stack_calls(ctx)
    finally:  # the other tests move their executions themselves: nothing else may dial
        for svc in (d.scheduler, d.gateway, d.fake):
            svc.stop()
        restart_dispatcher(ctx)


def dialing_stack_calls(ctx):
    restart_dispatcher(ctx, PL_WEBHOOK_POLL_MS=5000)
    time.sleep(1.5)  # bus discovery: the dispatcher dials every registered publisher
    agent = new_agent(ctx, ctx.receiver.url)
    answered = new_call(ctx, agent, "+14155550007")  # answers and hangs up at once
    busy = new_call(ctx, agent, "+14155550001")
    for eid, final in ((answered, ("call-disconnected", "completed", "error")),
                       (busy, ("busy",))):
        harness.eventually(lambda: ctx.http("GET", f"/executions/{eid}", key=ctx.key)
                           .json["status"] in final, timeout=20)
        outbox = events(ctx, eid)
        harness.eventually(lambda: all_delivered(ctx, eid, len(outbox)), timeout=10)
        got = ctx.receiver.received(eid)
        assert [(g["event_id"], g["json"]["status"]) for g in got] == outbox, (got, outbox)
        assert outbox[0][1] == "queued" and outbox[-1][1] in final, outbox
        created = dict((int(i), float(t)) for i, t in ctx.sql(
            "SELECT id, extract(epoch FROM created_at) FROM execution_events"
            " WHERE execution_id = :'p1'", eid))
        lags = [g["t"] - created[g["event_id"]] for g in got]
        assert max(lags) < 1.0, f"deliveries took {lags} s after their status change"


def test_every_status_in_order_signed_and_as_get_shows_it(ctx):
    agent = new_agent(ctx, ctx.receiver.url)
    eids = [run_lifecycle(ctx, agent) for _ in range(4)]
    for eid in eids:
        harness.eventually(lambda: all_delivered(ctx, eid, 6), timeout=10)
        got = ctx.receiver.received(eid)
        assert [g["json"]["status"] for g in got] == LIFECYCLE, got
        assert [g["event_id"] for g in got] == [i for i, _ in events(ctx, eid)]
        final = ctx.http("GET", f"/executions/{eid}", key=ctx.key).json
        for g in got:
            h = g["headers"]
            assert h["Content-Type"] == "application/json" and h["X-Parley-Attempt"] == "1", h
            assert g["signature_ok"] is True, h
            assert verify_signature(ctx.secret, h["X-Parley-Signature"], g["body"].encode())
            # the execution object, with the fields GET shows, as it was at that status
            assert set(g["json"]) == set(final), set(g["json"]) ^ set(final)
            assert g["json"]["id"] == eid and g["json"]["agent_id"] == agent
        assert got[-1]["json"] == final, (got[-1]["json"], final)
        stamps = [g["json"]["updated_at"] for g in got]
        assert stamps == sorted(stamps), stamps


def test_signature_is_refused_when_anything_differs(ctx):
    agent = new_agent(ctx, ctx.receiver.url)
    eid = new_call(ctx, agent)
    harness.eventually(lambda: all_delivered(ctx, eid, 1), timeout=10)
    g = ctx.receiver.received(eid)[0]
    header, body = g["headers"]["X-Parley-Signature"], g["body"].encode()
    assert verify_signature(ctx.secret, header, body)
    assert not verify_signature(ctx.secret, header, body.replace(b"queued", b"complet"))
    assert not verify_signature(ctx.secret + "x", header, body)
    t = int(header.split(",")[0][2:])
    forged = header.replace(f"t={t}", f"t={t + 1}")
    assert not verify_signature(ctx.secret, forged, body)
    # the secret is the account's: another account's secret does not verify
    other = ctx.sql("SELECT webhook_secret FROM accounts WHERE id = :'p1'", ctx.other_account)
    assert not verify_signature(other[0][0], header, body)


def test_receiver_down_then_500_then_timeout_then_garbage_then_recovers(ctx):
    rcv = Receiver(ctx, "flaky")  # not started: connections are refused
    agent = new_agent(ctx, rcv.url)
    eid = run_lifecycle(ctx, agent)

    def head():
        return log(ctx, eid)[0]

    harness.eventually(lambda: head()["attempts"] >= 2, timeout=10)
    first = head()
    assert first["state"] == "pending" and first["last_status_code"] is None, first
    assert "onnect" in first["last_error"], first  # "Failed to connect ... Connection refused"
    assert all(e["state"] == "blocked" for e in log(ctx, eid)[1:]), log(ctx, eid)

    def stage(mode, check, **extra):
        before = head()["attempts"]
        if rcv.svc is None:
            rcv.start(mode=mode, **extra)  # it comes up answering this way
        else:
            rcv.mode(mode=mode, **extra)
        entry = harness.eventually(lambda: head()["attempts"] > before + 1 and check(head())
                                   and head(), timeout=15)
        assert entry["state"] in ("pending", "in_flight"), entry
        return entry

    stage("status", lambda e: e["last_status_code"] == 500 and
          e["last_error"] == "HTTP 500: receiver says no", status=500)
    stage("delay", lambda e: (e["last_error"] or "").startswith("timed out after 500 ms"),
          delay_ms=1500)
    stage("garbage", lambda e: "HTTP/0.9" in (e["last_error"] or ""))  # curl's words for it
    stage("redirect", lambda e: e["last_status_code"] == 302 and
          "redirects are not followed (Location: http://10.0.0.1/steal)" in e["last_error"],
          location="http://10.0.0.1/steal")
    stage("close", lambda e: "Empty reply" in (e["last_error"] or ""))
    rcv.mode(mode="big", bytes=1 << 20)  # a 2xx with a 1 MiB body: accepted, body dropped
    entries = harness.eventually(lambda: all_delivered(ctx, eid, 6), timeout=15)
    assert entries[0]["attempts"] >= 12 and all(e["attempts"] == 1 for e in entries[1:]), entries

    got = rcv.received(eid)
    assert_in_order(got)
    once = accepted_once(got)
    assert [g["json"]["status"] for g in once] == LIFECYCLE, [g["json"]["status"] for g in once]
    # every attempt of the first event: one event id, attempt numbers counting up (the first
    # ones, while the receiver was down, never arrived; libcurl resends a request once on a
    # fresh connection when a kept-alive one closes without an answer, as in "close" mode)
    retries = [g for g in got if g["event_id"] == once[0]["event_id"]]
    numbers = [int(g["headers"]["X-Parley-Attempt"]) for g in retries]
    assert numbers[0] > first["attempts"] and numbers == sorted(numbers) and \
        sorted(set(numbers)) == list(range(numbers[0], numbers[-1] + 1)), numbers
    assert len({g["body"] for g in retries}) == 1  # the same bytes every time
    rcv.stop()


def test_delivery_log_redelivery_and_isolation(ctx):
    agent = new_agent(ctx, ctx.receiver.url)
    eid = run_lifecycle(ctx, agent)
    entries = harness.eventually(lambda: all_delivered(ctx, eid, 6), timeout=10)
    for e, (event_id, status) in zip(entries, events(ctx, eid)):
        assert e["event_id"] == event_id and e["status"] == status, (e, status)
        assert e["url"] == ctx.receiver.url and e["attempts"] == 1 and e["dead"] is False
        assert e["last_status_code"] == 200 and e["last_error"] is None, e
        assert e["delivered_at"] and e["next_attempt_at"] is None and e["redeliveries"] == 0
    target = entries[2]
    r = ctx.http("POST", f"/executions/{eid}/webhooks/{target['event_id']}/redeliver",
                 key=ctx.key)
    assert r.status == 202 and r.json["message"] == "scheduled", r
    assert r.json["delivery"]["redeliveries"] == 1 and r.json["delivery"]["attempts"] == 0, r
    harness.eventually(lambda: log(ctx, eid)[2]["state"] == "delivered", timeout=10)
    copies = [g for g in ctx.receiver.received(eid) if g["event_id"] == target["event_id"]]
    assert len(copies) == 2 and copies[0]["body"] == copies[1]["body"], copies
    assert copies[1]["headers"]["X-Parley-Attempt"] == "1"
    after = log(ctx, eid)[2]
    assert after["redeliveries"] == 1 and after["attempts"] == 1, after
    # another account sees nothing: 404 for the log and for redelivery
    r = ctx.http("GET", f"/executions/{eid}/webhooks", key=ctx.other_key)
    assert r.status == 404 and r.json["error"] == 404, r
    r = ctx.http("POST", f"/executions/{eid}/webhooks/{target['event_id']}/redeliver",
                 key=ctx.other_key)
    assert r.status == 404, r
    r = ctx.http("POST", f"/executions/{eid}/webhooks/1x/redeliver", key=ctx.key)
    assert r.status == 422 and r.json["message"].startswith("event_id"), r
    # an agent without a webhook_url: no deliveries at all
    plain = new_call(ctx, new_agent(ctx, None))
    move(ctx, plain, ["initiated"])
    assert log(ctx, plain) == []
    # the agent's webhook_url removed: redelivery refuses with a reason
    ctx.http("PATCH", f"/v2/agent/{agent}", {"agent_config": {"webhook_url": ""}}, key=ctx.key)
    r = ctx.http("POST", f"/executions/{eid}/webhooks/{target['event_id']}/redeliver",
                 key=ctx.key)
    assert r.status == 409 and "webhook_url" in r.json["message"], r


def test_dead_letters_are_kept_and_redeliverable(ctx):
    restart_dispatcher(ctx, PL_WEBHOOK_MAX_ATTEMPTS=3)
    rcv = Receiver(ctx, "refusing").start()
    rcv.mode(mode="status", status=503)
    agent = new_agent(ctx, rcv.url)
    eid = new_call(ctx, agent)
    move(ctx, eid, ["initiated"])
    # the first is dead after 3 attempts; dead unblocks the next, which dies as well
    entries = harness.eventually(
        lambda: (lambda es: len(es) == 2 and all(e["state"] == "dead" for e in es) and es)(
            log(ctx, eid)), timeout=15)
    for e in entries:
        assert e["attempts"] == 3 and e["dead"] is True and e["next_attempt_at"] is None, e
        assert e["last_status_code"] == 503 and e["last_error"].startswith("HTTP 503"), e
    rcv.mode(mode="ok")
    for e in entries:
        r = ctx.http("POST", f"/executions/{eid}/webhooks/{e['event_id']}/redeliver",
                     key=ctx.key)
        assert r.status == 202, r
    harness.eventually(lambda: all_delivered(ctx, eid, 2), timeout=10)
    once = accepted_once(rcv.received(eid))
    assert [g["json"]["status"] for g in once] == ["queued", "initiated"], once
    rcv.stop()
    restart_dispatcher(ctx)


def test_sigkill_mid_work_then_restart_loses_nothing(ctx):
    rcv = Receiver(ctx, "slow").start()
    rcv.mode(mode="delay", delay_ms=150)
    agent = new_agent(ctx, rcv.url)
    eids = [run_lifecycle(ctx, agent) for _ in range(12)]
    total = 6 * len(eids)
    harness.eventually(lambda: len(rcv.received()) >= 15, timeout=20)
    ctx.services["webhook-dispatcher"].stop(kill=True)
    got_at_kill = len(rcv.received())
    assert got_at_kill < total, "the dispatcher finished before it could be killed"
    time.sleep(0.5)
    start_dispatcher(ctx)  # in-flight leases run out (timeout + 5 s), then those are resent
    for eid in eids:
        harness.eventually(lambda: all_delivered(ctx, eid, 6), timeout=30)
    for eid in eids:
        got = rcv.received(eid)
        assert_in_order(got)
        assert [g["json"]["status"] for g in accepted_once(got)] == LIFECYCLE, eid
    assert len(accepted_once(rcv.received())) == total
    rcv.stop()


def test_two_replicas_share_the_work_without_duplicates(ctx):
    restart_dispatcher(ctx)  # counters from zero
    second = start_dispatcher(ctx, name="webhook-dispatcher-2")
    rcv = Receiver(ctx, "shared").start(mode="delay", delay_ms=20)
    agent = new_agent(ctx, rcv.url)
    eids = [run_lifecycle(ctx, agent) for _ in range(15)]
    for eid in eids:
        harness.eventually(lambda: all_delivered(ctx, eid, 6), timeout=30)
    got = rcv.received()
    ids = [g["event_id"] for g in got]
    assert len(ids) == len(set(ids)) == 6 * len(eids), "an event was delivered twice"
    for eid in eids:
        assert [g["json"]["status"] for g in rcv.received(eid)] == LIFECYCLE, eid
    delivered = []
    for name in ("webhook-dispatcher", "webhook-dispatcher-2"):
        text = ctx.http("GET", "/metrics", port=ctx.services[name].port).text
        line = [x for x in text.splitlines()
                if x.startswith('pl_webhook_attempts_total{outcome="delivered"}')][0]
        delivered.append(int(line.split()[-1]))
    assert sum(delivered) == 6 * len(eids) and min(delivered) > 0, delivered
    second.stop()
    rcv.stop()


def test_a_slow_receiver_does_not_hold_back_the_others(ctx):
    restart_dispatcher(ctx, PL_WEBHOOK_TIMEOUT_MS=10000, PL_WEBHOOK_CONCURRENCY=8,
                       PL_WEBHOOK_URL_CONCURRENCY=3)
    slow = Receiver(ctx, "slow-receiver").start(mode="delay", delay_ms=3000)
    fast = Receiver(ctx, "fast-receiver").start()
    slow_agent, fast_agent = new_agent(ctx, slow.url), new_agent(ctx, fast.url)
    for _ in range(10):  # more than every slot: the slow URL may take only 3 of the 8
        new_call(ctx, slow_agent)
    harness.eventually(lambda: len(slow.received()) >= 3, timeout=10)
    t0 = time.time()
    quick = [run_lifecycle(ctx, fast_agent) for _ in range(3)]
    for eid in quick:
        harness.eventually(lambda: all_delivered(ctx, eid, 6), timeout=10)
    took = time.time() - t0
    assert took < 3.0, f"the fast receiver waited {took:.1f} s behind the slow one"
    assert len(slow.received()) <= 6, "the slow URL took more than its share of slots"
    slow.stop()
    fast.stop()
    restart_dispatcher(ctx)


def test_sigterm_finishes_the_delivery_in_flight(ctx):
    restart_dispatcher(ctx, PL_WEBHOOK_TIMEOUT_MS=5000, PL_WEBHOOK_DRAIN_MS=8000)
    rcv = Receiver(ctx, "patient").start()
    rcv.mode(mode="delay", delay_ms=1500)
    eid = new_call(ctx, new_agent(ctx, rcv.url))
    harness.eventually(lambda: rcv.received(eid), timeout=10)
    svc = ctx.services["webhook-dispatcher"]
    svc.proc.terminate()
    assert svc.proc.wait(10) == 0
    entry = log(ctx, eid)[0]
    assert entry["state"] == "delivered" and entry["attempts"] == 1, entry
    assert len(rcv.received(eid)) == 1
    rcv.stop()
    start_dispatcher(ctx)


def test_ssrf_guard_refuses_private_targets_when_not_allowed(ctx):
    restart_dispatcher(ctx, PL_WEBHOOK_ALLOW_PRIVATE=0)
    rcv = Receiver(ctx, "internal").start()
    cases = {
        rcv.url: "refused to connect to 127.0.0.1: loopback address "
                 "(PL_WEBHOOK_ALLOW_PRIVATE=1 allows it)",
        f"http://localhost:{rcv.port}/hook": "loopback address",  # by name, after resolution
        "http://10.255.255.1/hook": "refused to connect to 10.255.255.1: private address",
        "http://169.254.169.254/latest/meta-data/": "cloud metadata address",
        "http://[::ffff:127.0.0.1]:9/": "refused to connect to ::ffff:127.0.0.1: loopback",
    }
    eids = {}
    for url in cases:
        eids[url] = new_call(ctx, new_agent(ctx, url))
    for url, reason in cases.items():
        entry = harness.eventually(lambda: (lambda e: e["dead"] and e)(log(ctx, eids[url])[0]),
                                   timeout=10)
        assert entry["attempts"] == 1 and entry["last_status_code"] is None, entry
        assert entry["last_error"].startswith("SSRF guard: ") and reason in entry["last_error"], \
            (url, entry["last_error"])
    assert rcv.received() == []
    # a malformed URL that passed the api's syntax check is a dead letter with the reason
    bad = new_call(ctx, new_agent(ctx, "http://127.0.0.1:99999/hook"))
    entry = harness.eventually(lambda: (lambda e: e["dead"] and e)(log(ctx, bad)[0]), timeout=10)
    assert entry["last_error"].startswith("invalid webhook_url"), entry
    metrics = ctx.http("GET", "/metrics", port=ctx.services["webhook-dispatcher"].port).text
    refused = [int(x.split()[-1]) for x in metrics.splitlines()
               if x.startswith("pl_webhook_ssrf_refused_total ")]
    # (earlier tests' leftovers to 127.0.0.1, still pending, are refused as well)
    assert refused and refused[0] >= len(cases), metrics
    rcv.stop()
    restart_dispatcher(ctx)


def test_health_endpoints(ctx):
    port = ctx.services["webhook-dispatcher"].port
    assert ctx.http("GET", "/healthz", port=port).status == 200
    assert ctx.http("GET", "/readyz", port=port).status == 200
    text = ctx.http("GET", "/metrics", port=port).text
    for name in ("pl_webhook_attempts_total", "pl_webhook_inflight",
                 "pl_webhook_delivery_lag_seconds"):
        assert name in text, name
