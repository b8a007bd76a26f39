"""The telephony-gateway end to end: real Postgres, Redis, api and gateway binaries, and the
carrier fake (tests/fakes/carrier/carrier.py) standing in for Twilio, Plivo and Exotel.

Executions are driven the way the scheduler will drive them (it is written concurrently): POST
/call through the api, then `initiated` and a concurrency lease set here, then a `dial` job
XADDed to the `telephony` stream. Callbacks the tests forge or reorder are signed here with the
carriers' documented algorithms (the fake's own helpers, which follow providers.md)."""
import base64
import importlib.util
import json
import os
import random
import signal
import subprocess
import time

import harness
from calls import status
from harness import eventually

ROOT = harness.ROOT
FAKE_PATH = os.path.join(ROOT, "tests", "fakes", "carrier", "carrier.py")
_spec = importlib.util.spec_from_file_location("carrier_fake", FAKE_PATH)
fake = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fake)

TWILIO_TOKEN = "twilio-fake-token"
PLIVO_TOKEN = "plivo-fake-token"
LIVE = ("initiated", "ringing", "in-progress")


class FakeCarrier:
    """The carrier fake as a process of the suite (stopped with the others by ctx.close())."""

    def __init__(self, workdir, port):
        self.name = "carrier-fake"
        self.port = port
        self.log_path = os.path.join(workdir, "carrier-fake.log")
        self.proc = None

    def start(self):
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            ["python3", FAKE_PATH, "--port", str(self.port), "--ring-ms", "100",
             "--answer-ms", "100", "--callee-hangup-ms", "1000", "--max-call-seconds", "10"],
            stdout=log, stderr=log, cwd=ROOT, start_new_session=True)
        harness.stack.wait_port(self.port, timeout=20, proc=self.proc)
        return self

    def stop(self, kill=False):
        if self.proc and self.proc.poll() is None:
            self.proc.kill() if kill else self.proc.terminate()
            self.proc.wait(10)

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")


def start_gateway(ctx, **extra):
    port, mport = harness.stack.free_port(), harness.stack.free_port()
    env = ctx.env(
        PL_GATEWAY_PORT=port, PL_GATEWAY_MEDIA_PORT=mport,
        PL_GATEWAY_PUBLIC_URL=f"http://127.0.0.1:{port}",
        PL_GATEWAY_MEDIA_URL=f"ws://127.0.0.1:{mport}",
        PL_GATEWAY_RELAY_LISTEN="tcp://127.0.0.1:0",
        PL_TWILIO_BASE_URL=ctx.fake_url, PL_PLIVO_BASE_URL=ctx.fake_url,
        PL_EXOTEL_BASE_URL=ctx.fake_url, PL_RING_TIMEOUT_S=2, PL_RETRY_MINUTE_MS=100,
        PL_LEASE_RENEW_MS=300, PL_GATEWAY_WORKERS=4, PL_GATEWAY_CLAIM_IDLE_MS=2000,
        PL_LOG_LEVEL="debug", **extra)
    svc = harness.Service("telephony-gateway", env, port, ctx.workdir).start()
    ctx.services["telephony-gateway"] = svc
    ctx.gw_port, ctx.media_port = port, mport
    return svc


def setup(ctx):
    ctx.start_api()
    ctx.account, ctx.key = ctx.new_account("gw", concurrency=50)
    ctx.agents = {}
    for carrier in ("twilio", "plivo", "exotel"):
        body = json.loads(json.dumps(harness.AGENT_FOR_TESTS))
        tools = body["agent_config"]["tasks"][0]["tools_config"]
        tools["input"]["provider"] = carrier
        tools["output"]["provider"] = carrier
        r = ctx.http("POST", "/v2/agent", body, key=ctx.key)
        assert r.status == 200, r
        ctx.agents[carrier] = r.json["agent_id"]
    fport = harness.stack.free_port()
    ctx.fake_url = f"http://127.0.0.1:{fport}"
    ctx.services["carrier-fake"] = FakeCarrier(ctx.workdir, fport).start()
    start_gateway(ctx)


# ---- helpers ----------------------------------------------------------------------------------

def number(suffix):
    """A number unique to this run whose last four digits choose the fake callee."""
    return "+1" + "".join(random.choice("23456789") for _ in range(6)) + suffix


def fake_get(ctx, path):
    r = ctx.http("GET", path, port=int(ctx.fake_url.rsplit(":", 1)[1]))
    assert r.status == 200, r
    return r.json


def gw(ctx, method, path, raw=None, headers=None):
    return ctx.http(method, path, raw=raw, headers=headers, port=ctx.gw_port)


def telephony(ctx, eid):
    return json.loads(ctx.sql("SELECT telephony_data FROM executions WHERE id = :'p1'", eid)[0][0])


def execution(ctx, eid):
    r = ctx.http("GET", f"/executions/{eid}", key=ctx.key)
    assert r.status == 200, r
    return r.json


def events(ctx, eid):
    return [row[0] for row in ctx.sql(
        "SELECT status FROM execution_events WHERE execution_id = :'p1' ORDER BY id", eid)]


def lease(ctx, eid):
    return ctx.redis.cli("ZSCORE", f"parley:lease:{ctx.account}", eid)


def new_call(ctx, carrier, to, retry_config=None):
    """An execution as the scheduler leaves it: initiated, holding a lease."""
    body = {"agent_id": ctx.agents[carrier], "recipient_phone_number": to}
    if retry_config:
        body["retry_config"] = retry_config
    r = ctx.http("POST", "/call", body, key=ctx.key)
    assert r.status == 200, r
    eid = r.json["execution_id"]
    ctx.sql("UPDATE executions SET status = 'initiated' WHERE id = :'p1'", eid)
    ctx.redis.cli("ZADD", f"parley:lease:{ctx.account}", int(time.time() * 1000) + 60000, eid)
    return eid


def dial(ctx, eid, attempt=0):
    ctx.redis.cli("XADD", "parley:telephony", "*", "action", "dial", "execution_id", eid,
                  "attempt", str(attempt))


def job(ctx, action, eid):
    ctx.redis.cli("XADD", "parley:telephony", "*", "action", action, "execution_id", eid)


def wait_status(ctx, eid, want, timeout=15):
    want = (want,) if isinstance(want, str) else want
    return eventually(lambda: status(ctx, eid) in want and status(ctx, eid), timeout=timeout,
                      interval=0.05)


def dials_to(ctx, to):
    """Create-call requests to a number (Plivo's are digits without the '+')."""
    return [d for d in fake_get(ctx, "/_fake/dials") if (d["to"] or "").lstrip("+") ==
            to.lstrip("+")]


def fake_call(ctx, to):
    d = eventually(lambda: [x for x in dials_to(ctx, to) if x["sid"]], timeout=10)[0]
    return fake_get(ctx, f"/_fake/calls/{d['sid']}")


def metric(ctx, name_and_labels):
    text = gw(ctx, "GET", "/metrics").text
    for line in text.splitlines():
        if line.startswith(name_and_labels + " "):
            return float(line.split()[-1])
    return 0.0


class Worker:
    """A live media-pipeline worker in the registry for the duration of a `with` block."""

    def __init__(self, ctx):
        self.ctx = ctx

    def __enter__(self):
        w = {"addr": "tcp://127.0.0.1:1", "load": 0, "capacity": 10,
             "expires": int(time.time() * 1000) + 600000}
        self.ctx.redis.cli("HSET", "parley:pipeline:workers", "test-worker", json.dumps(w))
        return self

    def __exit__(self, *exc):
        self.ctx.redis.cli("DEL", "parley:pipeline:workers")


def manual_attempt(ctx, carrier, to="+14155550100"):
    """An execution with a claimed attempt whose callbacks the test sends itself."""
    eid = new_call(ctx, carrier, to)
    ctx.sql("INSERT INTO call_attempts (execution_id, attempt, provider, provider_call_id,"
            " media_token, callback_token) VALUES (:'p1', 0, :'p2', :'p3', :'p4', :'p5')",
            eid, carrier, "CA" + eid.replace("-", ""), f"{eid}.0.{os.urandom(16).hex()}",
            "cbtoken" + os.urandom(8).hex())
    return eid


def twilio_post(ctx, eid, kind, params, signature=True, token=TWILIO_TOKEN, n=0):
    path = f"/twilio/{kind}/{eid}/{n}"
    url = f"http://127.0.0.1:{ctx.gw_port}{path}"
    body = fake.urlencode(params).encode()
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if signature:
        headers["X-Twilio-Signature"] = fake.twilio_signature(token, url, params)
    return gw(ctx, "POST", path, raw=body, headers=headers)


def twilio_status(ctx, eid, call_status, signature=True, **extra):
    p = {"CallSid": "CA" + eid.replace("-", ""), "CallStatus": call_status,
         "AccountSid": "AC00000000000000000000000000000001", "To": "+14155550100"}
    p.update({k: str(v) for k, v in extra.items()})
    return twilio_post(ctx, eid, "status", p, signature)


def plivo_post(ctx, eid, kind, params, token=PLIVO_TOKEN, nonce="12345678901234567890"):
    path = f"/plivo/{kind}/{eid}/0"
    url = f"http://127.0.0.1:{ctx.gw_port}{path}"
    headers = {"Content-Type": "application/x-www-form-urlencoded",
               "X-Plivo-Signature-V3-Nonce": nonce,
               "X-Plivo-Signature-V3": fake.plivo_signature_v3(token, url, params, nonce)}
    return gw(ctx, "POST", path, raw=fake.urlencode(params).encode(), headers=headers)


# ---- ops --------------------------------------------------------------------------------------

def test_health_and_readiness(ctx):
    assert gw(ctx, "GET", "/healthz").status == 200
    r = gw(ctx, "GET", "/readyz")
    assert r.status == 200 and r.json["status"] == "ready", r
    assert "pl_gateway_dials_total{carrier=\"plivo\",result=\"ok\"}" in gw(ctx, "GET",
                                                                          "/metrics").text


# ---- no pipeline worker: the answered call ends cleanly ---------------------------------------

def check_no_capacity(ctx, carrier, hung_up_by):
    to = number("0006")
    eid = new_call(ctx, carrier, to)
    dial(ctx, eid)
    wait_status(ctx, eid, "error")
    e = execution(ctx, eid)
    assert e["error_message"] == "no media-pipeline capacity", e
    td = e["telephony_data"]
    assert td["hangup_by"] == "Error" and td["hangup_reason"] == "no media-pipeline capacity", td
    assert td["provider"] == carrier and td["provider_call_id"], td
    assert td["to_number"] == to
    assert events(ctx, eid)[-2:] == ["in-progress", "error"], events(ctx, eid)
    assert lease(ctx, eid) == "", "the lease must be released"
    # The carrier was asked to end the call (REST for Twilio/Plivo; socket close for Exotel).
    call = eventually(lambda: (lambda c: not c["live"] and c)(fake_call(ctx, to)), timeout=10)
    assert call["hangup_by"] == hung_up_by, (call["hangup_by"], call["hangup_reason"])
    assert call["media"]["connected"], call["media"]
    # The carrier's final callback arrives after and changes nothing.
    time.sleep(0.5)
    assert status(ctx, eid) == "error"
    row = ctx.sql("SELECT outcome, ended_at IS NOT NULL FROM call_attempts"
                  " WHERE execution_id = :'p1'", eid)[0]
    assert row == ["error", "t"], row
    return call


def test_twilio_answered_without_pipeline_is_error_and_hung_up(ctx):
    call = check_no_capacity(ctx, "twilio", "api")
    assert call["media"]["custom_parameters"].get("token"), call["media"]


def test_plivo_answered_without_pipeline_is_error_and_hung_up(ctx):
    call = check_no_capacity(ctx, "plivo", "api")
    assert call["media"]["content_type"] == "audio/x-l16;rate=16000", call["media"]


def test_exotel_answered_without_pipeline_closes_the_socket(ctx):
    check_no_capacity(ctx, "exotel", "server")


# ---- answered calls with a worker: media frames, call-disconnected ----------------------------

def check_callee_hangup(ctx, carrier):
    to = number("0004")
    eid = new_call(ctx, carrier, to)
    frames = metric(ctx, f'pl_gateway_media_frames_total{{carrier="{carrier}"}}')
    with Worker(ctx):
        dial(ctx, eid)
        wait_status(ctx, eid, "in-progress")
        eventually(lambda: lease(ctx, eid) != "", timeout=2)
        wait_status(ctx, eid, "call-disconnected")
    td = execution(ctx, eid)["telephony_data"]
    assert td["hangup_by"] == "Callee", td
    assert int(td["duration"]) >= 1, td
    assert td["ring_duration"] is not None and td["ring_duration"] >= 0, td
    assert td["provider"] == carrier and td["provider_call_id"], td
    # (initiated was set by SQL here, so it has no event; Exotel sends no ringing callback)
    want = ["queued", "ringing", "in-progress", "call-disconnected"]
    if carrier == "exotel":
        want.remove("ringing")
    assert events(ctx, eid) == want, events(ctx, eid)
    assert lease(ctx, eid) == ""
    # 16 kHz for Plivo/Exotel, 8 kHz mu-law for Twilio: about 50 frames a second either way.
    assert metric(ctx, f'pl_gateway_media_frames_total{{carrier="{carrier}"}}') - frames >= 20
    row = ctx.sql("SELECT outcome, status, answered_at IS NOT NULL, ended_at IS NOT NULL"
                  " FROM call_attempts WHERE execution_id = :'p1'", eid)[0]
    assert row[0] == "call-disconnected" and row[2:] == ["t", "t"], row


def test_twilio_answered_call_streams_and_disconnects(ctx):
    check_callee_hangup(ctx, "twilio")


def test_plivo_answered_call_streams_and_disconnects(ctx):
    check_callee_hangup(ctx, "plivo")


def test_exotel_answered_call_streams_and_disconnects(ctx):
    check_callee_hangup(ctx, "exotel")


def test_hangup_job_ends_a_live_call(ctx):
    to = number("0006")
    eid = new_call(ctx, "twilio", to)
    with Worker(ctx):
        dial(ctx, eid)
        wait_status(ctx, eid, "in-progress")
        job(ctx, "hangup", eid)
        wait_status(ctx, eid, "call-disconnected")
    td = telephony(ctx, eid)
    assert td["hangup_by"] == "API Request", td
    assert fake_call(ctx, to)["hangup_by"] == "api"


# ---- dial outcomes ----------------------------------------------------------------------------

def test_repeated_dial_job_dials_once(ctx):
    to = number("0001")
    eid = new_call(ctx, "twilio", to)
    for _ in range(3):
        dial(ctx, eid)
    wait_status(ctx, eid, "busy")
    time.sleep(0.5)
    assert len(dials_to(ctx, to)) == 1, dials_to(ctx, to)
    assert ctx.sql("SELECT count(*) FROM call_attempts WHERE execution_id = :'p1'", eid) == [["1"]]
    # A dial job for an execution that is no longer initiated is dropped without dialling.
    dial(ctx, eid, attempt=1)
    time.sleep(0.5)
    assert len(dials_to(ctx, to)) == 1


def test_invalid_number_fails_with_carrier_code(ctx):
    retry = {"enabled": True, "max_retries": 2, "retry_intervals_minutes": [1]}
    for carrier, code in (("twilio", 21211), ("plivo", 400), ("exotel", 400)):
        eid = new_call(ctx, carrier, number("0003"), retry_config=retry)
        dial(ctx, eid)
        wait_status(ctx, eid, "failed")
        td = execution(ctx, eid)["telephony_data"]
        assert td["hangup_by"] == "Carrier", td
        assert td["hangup_provider_code"] == code, (carrier, td)
        assert td["hangup_reason"], td
        assert lease(ctx, eid) == ""
        # A refused request is permanent: no retry even with retry_config.
        assert ctx.redis.cli("ZSCORE", "parley:delayed", delayed_member(eid, 1)) == ""
    assert metric(ctx, 'pl_gateway_dials_total{carrier="twilio",result="rejected"}') >= 1


def delayed_member(eid, attempt):
    return json.dumps({"s": "dial", "f": ["execution_id", eid, "attempt", str(attempt)]},
                      separators=(",", ":"))


def check_final(ctx, carrier, suffix, final):
    retry = {"enabled": True, "max_retries": 2, "retry_intervals_minutes": [1, 2]}
    eid = new_call(ctx, carrier, number(suffix), retry_config=retry)
    t0 = time.time() * 1000
    dial(ctx, eid)
    wait_status(ctx, eid, "rescheduled")
    row = ctx.sql("SELECT outcome, status FROM call_attempts WHERE execution_id = :'p1'", eid)[0]
    assert row[0] == final, row
    score = ctx.redis.cli("ZSCORE", "parley:delayed", delayed_member(eid, 1))
    assert score != "", "a delayed dial job for attempt 1 must exist"
    assert t0 + 100 - 50 <= float(score) <= time.time() * 1000 + 100 + 50, (t0, score)
    assert lease(ctx, eid) == ""
    # Without retry_config the same callee ends the execution in the terminal status.
    eid2 = new_call(ctx, carrier, number(suffix))
    dial(ctx, eid2)
    wait_status(ctx, eid2, final)
    assert ctx.redis.cli("ZSCORE", "parley:delayed", delayed_member(eid2, 1)) == ""
    assert lease(ctx, eid2) == ""
    return eid, eid2


def test_busy_reschedules_with_retry_config(ctx):
    _, eid = check_final(ctx, "twilio", "0001", "busy")
    assert telephony(ctx, eid)["hangup_provider_code"] == 486
    check_final(ctx, "plivo", "0001", "busy")
    check_final(ctx, "exotel", "0001", "busy")


def test_no_answer_reschedules_with_retry_config(ctx):
    for carrier in ("twilio", "plivo", "exotel"):
        check_final(ctx, carrier, "0002", "no-answer")


def test_failed_reschedules_with_retry_config(ctx):
    for carrier in ("twilio", "plivo", "exotel"):
        check_final(ctx, carrier, "0008", "failed")


def test_retry_attempt_dials_again_with_fresh_tokens(ctx):
    retry = {"enabled": True, "max_retries": 1, "retry_intervals_minutes": [1]}
    to = number("0001")
    eid = new_call(ctx, "twilio", to, retry_config=retry)
    dial(ctx, eid)
    wait_status(ctx, eid, "rescheduled")
    # What the scheduler does with the delayed job: rescheduled -> queued -> initiated, dial 1.
    ctx.sql("UPDATE executions SET status = 'initiated' WHERE id = :'p1'", eid)
    dial(ctx, eid, attempt=1)
    wait_status(ctx, eid, "busy")  # max_retries 1: the second busy is final
    assert len(dials_to(ctx, to)) == 2
    rows = ctx.sql("SELECT attempt, outcome, media_token FROM call_attempts"
                   " WHERE execution_id = :'p1' ORDER BY attempt", eid)
    assert [r[:2] for r in rows] == [["0", "busy"], ["1", "busy"]], rows
    assert rows[0][2] != rows[1][2]
    assert ctx.sql("SELECT attempt FROM executions WHERE id = :'p1'", eid) == [["1"]]


# ---- callbacks: authenticity and order --------------------------------------------------------

def test_forged_callbacks_are_403_and_change_nothing(ctx):
    eid = manual_attempt(ctx, "twilio")
    before = events(ctx, eid)
    forged = metric(ctx, 'pl_gateway_callbacks_total{carrier="twilio",result="forged"}')
    assert twilio_status(ctx, eid, "in-progress", signature=False).status == 403
    r = twilio_post(ctx, eid, "status", {"CallSid": "CA1", "CallStatus": "completed",
                                         "CallDuration": "9"}, token="wrong-token")
    assert r.status == 403, r
    # A valid signature over other parameters does not cover these.
    params = {"CallSid": "CA1", "CallStatus": "ringing"}
    url = f"http://127.0.0.1:{ctx.gw_port}/twilio/status/{eid}/0"
    sig = fake.twilio_signature(TWILIO_TOKEN, url, params)
    r = gw(ctx, "POST", f"/twilio/status/{eid}/0",
           raw=fake.urlencode({"CallSid": "CA1", "CallStatus": "busy"}).encode(),
           headers={"X-Twilio-Signature": sig,
                    "Content-Type": "application/x-www-form-urlencoded"})
    assert r.status == 403, r
    # The answer URL is guarded the same way and hands out no media token.
    r = twilio_post(ctx, eid, "answer", {"CallSid": "CA1", "CallStatus": "in-progress"},
                    token="wrong-token")
    assert r.status == 403 and "token" not in r.text, r
    assert metric(ctx, 'pl_gateway_callbacks_total{carrier="twilio",result="forged"}') == \
        forged + 4
    # Plivo: wrong token, missing nonce.
    pe = manual_attempt(ctx, "plivo")
    assert plivo_post(ctx, pe, "hangup", {"CallUUID": "u", "CallStatus": "busy"},
                      token="nope").status == 403
    r = gw(ctx, "POST", f"/plivo/ring/{pe}/0", raw=b"CallUUID=u&CallStatus=ringing",
           headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status == 403, r
    # Exotel: the path token must be the attempt's.
    ee = manual_attempt(ctx, "exotel")
    r = gw(ctx, "POST", f"/exotel/status/{ee}/0/not-the-token",
           raw=b"CallSid=x&Status=busy", headers={"Content-Type":
                                                  "application/x-www-form-urlencoded"})
    assert r.status == 403, r
    for e in (eid, pe, ee):
        assert status(ctx, e) == "initiated"
    assert events(ctx, eid) == before
    assert ctx.sql("SELECT count(*) FROM call_attempts WHERE execution_id IN (:'p1', :'p2',"
                   " :'p3') AND status IS NOT NULL", eid, pe, ee) == [["0"]]
    log = ctx.services["telephony-gateway"].log()
    assert "X-Twilio-Signature does not match" in log and "no X-Twilio-Signature" in log
    assert "callback token does not match" in log


def test_exotel_token_callback_is_applied(ctx):
    ee = manual_attempt(ctx, "exotel")
    cb = ctx.sql("SELECT callback_token FROM call_attempts WHERE execution_id = :'p1'", ee)[0][0]
    r = gw(ctx, "POST", f"/exotel/status/{ee}/0/{cb}", raw=b"CallSid=x&Status=busy",
           headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status == 200, r
    assert status(ctx, ee) == "busy"


def test_unknown_attempt_is_404_but_signed(ctx):
    eid = manual_attempt(ctx, "twilio")
    r = twilio_post(ctx, eid, "status", {"CallSid": "CA1", "CallStatus": "ringing"}, n=7)
    assert r.status == 404, r
    assert status(ctx, eid) == "initiated"


def test_out_of_order_and_duplicate_callbacks_never_go_backwards(ctx):
    eid = manual_attempt(ctx, "twilio")
    assert twilio_status(ctx, eid, "initiated").status == 200
    assert status(ctx, eid) == "initiated"
    assert twilio_status(ctx, eid, "ringing").status == 200
    assert status(ctx, eid) == "ringing"
    assert twilio_status(ctx, eid, "in-progress").status == 200
    assert twilio_status(ctx, eid, "in-progress").status == 200  # duplicate
    assert twilio_status(ctx, eid, "ringing").status == 200  # late
    assert status(ctx, eid) == "in-progress"
    assert twilio_status(ctx, eid, "completed", CallDuration=7, SipResponseCode=200).status == 200
    for late in ("in-progress", "ringing", "busy", "completed", "no-answer"):
        assert twilio_status(ctx, eid, late, CallDuration=1).status == 200
    assert status(ctx, eid) == "call-disconnected"
    assert events(ctx, eid) == ["queued", "ringing", "in-progress", "call-disconnected"], \
        events(ctx, eid)
    td = telephony(ctx, eid)
    assert td["duration"] == 7 and td["hangup_provider_code"] == 200, td
    assert td["provider_call_id"] == "CA" + eid.replace("-", ""), td
    row = ctx.sql("SELECT status, outcome FROM call_attempts WHERE execution_id = :'p1'", eid)
    assert row == [["completed", "call-disconnected"]], row
    assert metric(ctx, 'pl_gateway_callbacks_total{carrier="twilio",result="unchanged"}') >= 7


def test_completed_before_answered_takes_both_steps(ctx):
    """The answered callback is lost or late: completed with a duration still means answered."""
    eid = manual_attempt(ctx, "twilio")
    assert twilio_status(ctx, eid, "ringing").status == 200
    assert twilio_status(ctx, eid, "completed", CallDuration=4).status == 200
    assert events(ctx, eid)[-3:] == ["ringing", "in-progress", "call-disconnected"]
    assert twilio_status(ctx, eid, "in-progress").status == 200
    assert status(ctx, eid) == "call-disconnected"


def test_completed_without_answer_is_no_answer(ctx):
    eid = manual_attempt(ctx, "twilio")
    assert twilio_status(ctx, eid, "ringing").status == 200
    assert twilio_status(ctx, eid, "completed", CallDuration=0).status == 200
    assert status(ctx, eid) == "no-answer"


def test_plivo_signed_callbacks_and_answer_document(ctx):
    pe = manual_attempt(ctx, "plivo")
    tok = ctx.sql("SELECT media_token FROM call_attempts WHERE execution_id = :'p1'", pe)[0][0]
    assert plivo_post(ctx, pe, "ring", {"CallUUID": "uuid-1", "CallStatus": "ringing"}).status \
        == 200
    assert status(ctx, pe) == "ringing"
    r = plivo_post(ctx, pe, "answer", {"CallUUID": "uuid-1", "CallStatus": "in-progress"})
    assert r.status == 200 and r.headers["Content-Type"] == "application/xml", r
    assert f"/media/plivo/{tok}</Stream>" in r.text and 'keepCallAlive="true"' in r.text, r
    assert status(ctx, pe) == "in-progress"
    r = plivo_post(ctx, pe, "hangup", {"CallUUID": "uuid-1", "CallStatus": "completed",
                                       "Duration": "12", "HangupCause": "NORMAL_CLEARING",
                                       "HangupSource": "Callee"})
    assert r.status == 200, r
    td = telephony(ctx, pe)
    assert status(ctx, pe) == "call-disconnected"
    assert td["duration"] == 12 and td["hangup_by"] == "Callee", td
    assert td["hangup_reason"] == "NORMAL_CLEARING" and td["provider_call_id"] == "uuid-1", td
    # An answer URL fetched for a call that is over hangs up instead of streaming.
    r = plivo_post(ctx, pe, "answer", {"CallUUID": "uuid-1", "CallStatus": "in-progress"})
    assert r.status == 200 and "<Hangup/>" in r.text and tok not in r.text, r


def test_twilio_answer_twiml_names_the_media_token(ctx):
    eid = manual_attempt(ctx, "twilio")
    tok = ctx.sql("SELECT media_token FROM call_attempts WHERE execution_id = :'p1'", eid)[0][0]
    r = twilio_post(ctx, eid, "answer", {"CallSid": "CA1", "CallStatus": "in-progress"})
    assert r.status == 200, r
    assert f'<Stream url="ws://127.0.0.1:{ctx.media_port}/media/twilio">' in r.text, r
    assert f'<Parameter name="token" value="{tok}"/>' in r.text, r
    assert status(ctx, eid) == "in-progress"


# ---- media WebSocket tokens -------------------------------------------------------------------

def ws(ctx, path):
    return fake.WSClient(f"ws://127.0.0.1:{ctx.media_port}{path}", timeout=3)


def test_media_socket_needs_a_known_unused_token(ctx):
    refused = metric(ctx, 'pl_gateway_media_sessions_total{carrier="plivo",result="rejected"}')
    # Unknown tokens are refused before the handshake completes.
    for path in ("/media/plivo/nope", "/media/plivo/" + "0" * 36 + ".0.abc",
                 "/media/exotel?token=nope", "/media/exotel"):
        c = ws(ctx, path)
        try:
            c.connect()
            raise AssertionError(f"{path} accepted")
        except (OSError, fake.WSError):
            pass
    # A real token works once; the second socket with it is refused.
    pe = manual_attempt(ctx, "plivo")
    tok = ctx.sql("SELECT media_token FROM call_attempts WHERE execution_id = :'p1'", pe)[0][0]
    with Worker(ctx):
        first = ws(ctx, f"/media/plivo/{tok}")
        first.connect()
        first.send_text(json.dumps({"event": "start", "sequenceNumber": 1, "start": {
            "callId": "uuid-2", "streamId": "s1",
            "mediaFormat": {"encoding": "audio/x-l16", "sampleRate": 16000}}}))
        pcm = b"\x01\x00" * 1600  # 100 ms at 16 kHz: five frames
        first.send_text(json.dumps({"event": "media", "sequenceNumber": "2", "streamId": "s1",
                                    "media": {"payload": base64.b64encode(pcm).decode(),
                                              "chunk": 1, "timestamp": "1"}}))
        wait_status(ctx, pe, "in-progress")
        second = ws(ctx, f"/media/plivo/{tok}")
        try:
            second.connect()
            raise AssertionError("a used media token was accepted again")
        except (OSError, fake.WSError):
            pass
        first.close()
    assert metric(ctx, 'pl_gateway_media_sessions_total{carrier="plivo",result="rejected"}') >= \
        refused + 3
    # Twilio carries the token in start; a bad one closes the socket and changes nothing.
    te = manual_attempt(ctx, "twilio")
    c = ws(ctx, "/media/twilio")
    c.connect()
    c.send_text(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
    c.send_text(json.dumps({"event": "start", "sequenceNumber": "1", "streamSid": "MZ1", "start": {
        "callSid": "CA1", "customParameters": {"token": "forged"},
        "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}}))
    assert eventually(lambda: recv_close(c), timeout=3)
    assert status(ctx, te) == "initiated"


def recv_close(c):
    c.sock.settimeout(3)
    try:
        while True:
            kind = c.recv_message()[0]
            if kind == "close":
                return True
    except (OSError, EOFError, fake.WSError):
        return True


# ---- reconcile --------------------------------------------------------------------------------

def test_reconcile_applies_the_carriers_view_or_errors(ctx):
    # No call id at all: the dial never completed.
    eid = new_call(ctx, "twilio", number("0006"))
    ctx.sql("INSERT INTO call_attempts (execution_id, attempt, provider, media_token,"
            " callback_token) VALUES (:'p1', 0, 'twilio', 'm', 'c')", eid)
    job(ctx, "reconcile", eid)
    wait_status(ctx, eid, "error")
    assert "no call id" in telephony(ctx, eid)["hangup_reason"]
    assert lease(ctx, eid) == ""
    # A call id the carrier does not know.
    eid = manual_attempt(ctx, "twilio")
    job(ctx, "reconcile", eid)
    wait_status(ctx, eid, "error")
    assert "does not know call" in execution(ctx, eid)["error_message"]
    # No attempt recorded at all.
    eid = new_call(ctx, "plivo", number("0006"))
    job(ctx, "reconcile", eid)
    wait_status(ctx, eid, "error")
    # A real call that ended busy while its callbacks were lost: the carrier's word is applied.
    to = number("0001")
    eid = new_call(ctx, "twilio", to)
    dial(ctx, eid)
    wait_status(ctx, eid, "busy")
    sid = dials_to(ctx, to)[0]["sid"]
    eid2 = new_call(ctx, "twilio", number("0006"))
    ctx.sql("INSERT INTO call_attempts (execution_id, attempt, provider, provider_call_id,"
            " media_token, callback_token) VALUES (:'p1', 0, 'twilio', :'p2', 'm2', 'c2')",
            eid2, sid)
    job(ctx, "reconcile", eid2)
    wait_status(ctx, eid2, "busy")


# ---- leases -----------------------------------------------------------------------------------

def test_live_call_lease_is_renewed(ctx):
    to = number("0006")
    eid = new_call(ctx, "twilio", to)
    ctx.redis.cli("ZADD", f"parley:lease:{ctx.account}", int(time.time() * 1000) + 1000, eid)
    with Worker(ctx):
        dial(ctx, eid)
        wait_status(ctx, eid, "in-progress")
        # PL_LEASE_RENEW_MS is 300 and the TTL 30 s: the score moves well past the 1 s we set.
        eventually(lambda: lease(ctx, eid) and
                   float(lease(ctx, eid)) > time.time() * 1000 + 20000, timeout=3)
        job(ctx, "hangup", eid)
        wait_status(ctx, eid, "call-disconnected")
    time.sleep(0.8)  # a renew pass after the end must not bring the lease back
    assert lease(ctx, eid) == ""


# ---- drain ------------------------------------------------------------------------------------

def test_zz_sigterm_drains_and_exits(ctx):
    svc = ctx.services["telephony-gateway"]
    to = number("0001")
    eid = new_call(ctx, "twilio", to)
    dial(ctx, eid)
    eventually(lambda: dials_to(ctx, to), timeout=5)
    os.kill(svc.proc.pid, signal.SIGTERM)
    assert svc.proc.wait(15) == 0
    assert "telephony-gateway stopped" in svc.log()
    # The dial in flight was recorded before the exit.
    assert ctx.sql("SELECT provider_call_id IS NOT NULL FROM call_attempts"
                   " WHERE execution_id = :'p1'", eid) == [["t"]]
    start_gateway(ctx)
