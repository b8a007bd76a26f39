"""End to end through the carrier fake: api → scheduler → telephony-gateway → fake Twilio,
Plivo and Exotel → signed callbacks → execution statuses. No media-pipeline runs here, so an
answered call ends `error` with "no media-pipeline capacity" (the gateway's documented answer)."""
import copy
import importlib.util
import itertools
import os
import signal
import time
import urllib.parse

import harness
from calls import status
from dialing import FAKE, Dialing

CARRIERS = ("twilio", "plivo", "exotel")
FINAL = {"completed", "no-answer", "busy", "failed", "canceled", "stopped", "error",
         "balance-low", "call-disconnected"}


def setup(ctx):
    ctx.start_api()
    ctx.dialing = Dialing(ctx).start()
    ctx.account, ctx.key = ctx.new_account("dialing", concurrency=200)
    ctx.agents = {c: agent(ctx, ctx.key, c) for c in CARRIERS}
    spec = importlib.util.spec_from_file_location("carrier_fake", FAKE)
    ctx.fake = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ctx.fake)


def agent(ctx, key, carrier):
    body = copy.deepcopy(harness.AGENT_FOR_TESTS)
    tools = body["agent_config"]["tasks"][0]["tools_config"]
    tools["input"]["provider"] = tools["output"]["provider"] = carrier
    r = ctx.http("POST", "/v2/agent", body, key=key)
    assert r.status == 200, r
    return r.json["agent_id"]


def call(ctx, carrier, number, key=None, agent_id=None, **extra):
    body = {"agent_id": agent_id or ctx.agents[carrier], "recipient_phone_number": number}
    body.update(extra)
    r = ctx.http("POST", "/call", body, key=key or ctx.key)
    assert r.status == 200, r
    return r.json["execution_id"]


def execution(ctx, eid, key=None):
    return ctx.sql("SELECT execution_json(e) FROM executions e WHERE id = :'p1'", eid)[0][0]


def telephony(ctx, eid):
    import json
    return json.loads(ctx.sql("SELECT telephony_data FROM executions WHERE id = :'p1'", eid)[0][0])


def history(ctx, eid):
    return [r[0] for r in ctx.sql("SELECT status FROM execution_events WHERE execution_id ="
                                  " :'p1' ORDER BY id", eid)]


def settle(ctx, eid, timeout=15):
    return harness.eventually(lambda: (status(ctx, eid) in FINAL) and status(ctx, eid),
                              timeout=timeout)


def dials_to(ctx, number):
    """Dial requests for a number. Plivo takes numbers without '+' (its documented format);
    Exotel's `from` is the callee."""
    want = number.lstrip("+")
    return [d for d in ctx.dialing.dials() if (d.get("to") or "").lstrip("+") == want]


_SEQ = itertools.count(int(time.time()) % 100000)


def unique(carrier_index, suffix, n=0):
    """A fresh number per call, so the fake's dial counts are per call; the last four digits
    choose the callee (docs/dialing.md). n is unused but keeps call sites readable."""
    return f"+14{carrier_index}{next(_SEQ) % 1000000:06d}{suffix}"


def test_answered_call_without_pipeline_ends_with_a_clear_reason(ctx):
    for i, carrier in enumerate(CARRIERS):
        number = unique(i, "0006")
        eid = call(ctx, carrier, number)
        assert settle(ctx, eid) == "error", (carrier, history(ctx, eid))
        h = history(ctx, eid)
        assert h[:2] == ["queued", "initiated"] and "in-progress" in h and h[-1] == "error", h
        e = ctx.http("GET", f"/executions/{eid}", key=ctx.key).json
        assert e["error_message"] == "no media-pipeline capacity", e
        t = e["telephony_data"]
        assert t["provider"] == carrier and t["provider_call_id"], t
        assert t["hangup_reason"] == "no media-pipeline capacity" and t["hangup_by"] == "Error"
        assert len(dials_to(ctx, number)) == 1, (carrier, dials_to(ctx, number))


def test_busy_no_answer_invalid_and_carrier_failure(ctx):
    for i, carrier in enumerate(CARRIERS):
        cases = {"0001": "busy", "0002": "no-answer", "0003": "failed", "0008": "failed"}
        ids = {s: (call(ctx, carrier, unique(i, s, k)), unique(i, s, k))
               for k, s in enumerate(cases)}
        for suffix, want in cases.items():
            eid, _ = ids[suffix]
            got = settle(ctx, eid, timeout=20)
            assert got == want, (carrier, suffix, got, history(ctx, eid), telephony(ctx, eid))
            t = telephony(ctx, eid)
            assert t.get("hangup_reason"), (carrier, suffix, t)
            if suffix == "0003":
                assert t.get("hangup_by") == "Carrier", t
        assert "in-progress" not in history(ctx, ids["0002"][0])


def test_retry_until_attempts_run_out(ctx):
    for i, carrier in enumerate(CARRIERS):
        number = unique(i, "0001", 7)
        eid = call(ctx, carrier, number, retry_config={
            "enabled": True, "max_retries": 2, "retry_on_statuses": ["busy"],
            "retry_intervals_minutes": [1, 1]})
        assert settle(ctx, eid, timeout=30) == "busy" or status(ctx, eid) == "rescheduled"
        harness.eventually(lambda: status(ctx, eid) == "busy" and
                           len(dials_to(ctx, number)) == 3, timeout=30)
        h = history(ctx, eid)
        assert h.count("rescheduled") == 2 and h.count("initiated") == 3, h
        attempts = ctx.sql("SELECT attempt, outcome FROM call_attempts WHERE execution_id ="
                           " :'p1' ORDER BY attempt", eid)
        assert [a[0] for a in attempts] == ["0", "1", "2"], attempts


def post_form(ctx, url, params, headers):
    u = urllib.parse.urlsplit(url)
    body = urllib.parse.urlencode(params).encode()
    h = {"Content-Type": "application/x-www-form-urlencoded"}
    h.update(headers)
    return ctx.http("POST", u.path + (("?" + u.query) if u.query else ""), raw=body, headers=h,
                    port=u.port)


def test_forged_and_late_callbacks_change_nothing(ctx):
    d = ctx.dialing
    number = unique(0, "0001", 9)
    eid = call(ctx, "twilio", number)
    assert settle(ctx, eid) == "busy"
    dial = dials_to(ctx, number)[0]
    cb = dial.get("status_callback") or dial.get("urls", {}).get("status_callback")
    assert cb, dial
    before = history(ctx, eid)
    params = {"CallSid": telephony(ctx, eid)["provider_call_id"], "CallStatus": "ringing",
              "AccountSid": "AC00000000000000000000000000000000", "From": "+15005550006",
              "To": number, "Direction": "outbound-api", "SequenceNumber": "1"}
    # forged: wrong signature, and no signature at all
    r = post_form(ctx, cb, params, {"X-Twilio-Signature": "AAAAAAAAAAAAAAAAAAAAAAAAAAA="})
    assert r.status == 403, r
    assert post_form(ctx, cb, params, {}).status == 403
    # late but genuine: a correctly signed "ringing" after the call ended moves nothing
    sig = ctx.fake.twilio_signature("twilio-fake-token", cb, params)
    r = post_form(ctx, cb, params, {"X-Twilio-Signature": sig})
    assert r.status == 200, r
    params["CallStatus"] = "in-progress"
    r = post_form(ctx, cb, params, {"X-Twilio-Signature": ctx.fake.twilio_signature(
        "twilio-fake-token", cb, params)})
    assert r.status == 200
    assert history(ctx, eid) == before and status(ctx, eid) == "busy"


def test_concurrency_cap_with_real_calls(ctx):
    acc, key = ctx.new_account("cap2", concurrency=2)
    agent_id = agent(ctx, key, "twilio")
    ids = [call(ctx, "twilio", unique(0, "0004", 20 + k), key=key, agent_id=agent_id)
           for k in range(6)]
    peak = 0
    deadline = time.time() + 40
    while time.time() < deadline:
        live = int(ctx.sql("SELECT count(*) FROM executions WHERE account_id = :'p1' AND status"
                           " IN ('initiated', 'ringing', 'in-progress')", acc)[0][0])
        peak = max(peak, live)
        if all(status(ctx, e) in FINAL for e in ids):
            break
        time.sleep(0.05)
    assert all(status(ctx, e) in FINAL for e in ids), [status(ctx, e) for e in ids]
    assert peak <= 2, peak
    assert peak == 2


def test_crash_of_scheduler_then_gateway_dials_nobody_twice(ctx):
    acc, key = ctx.new_account("crash", concurrency=500)
    agent_id = agent(ctx, key, "twilio")
    numbers = [unique(0, "0001", 40 + k) for k in range(40)]
    ids = [call(ctx, "twilio", n, key=key, agent_id=agent_id) for n in numbers[:20]]
    time.sleep(0.1)
    d = ctx.dialing
    os.kill(d.scheduler.proc.pid, signal.SIGKILL)
    d.scheduler.proc.wait()
    ids += [call(ctx, "twilio", n, key=key, agent_id=agent_id) for n in numbers[20:]]
    d.start_scheduler("scheduler-2")
    time.sleep(0.3)
    os.kill(d.gateway.proc.pid, signal.SIGKILL)
    d.gateway.proc.wait()
    time.sleep(0.5)
    d.start_gateway("telephony-gateway-2")
    for e in ids:
        settle(ctx, e, timeout=60)
    for n in numbers:
        assert len(dials_to(ctx, n)) == 1, (n, dials_to(ctx, n))
    assert all(status(ctx, e) == "busy" for e in ids), [status(ctx, e) for e in ids]
