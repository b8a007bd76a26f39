"""Inbound calls end to end (docs/inbound.md): the api registers and links numbers; the carrier
fake rings our inbound URL as Twilio, Plivo and Exotel do (signed webhook, then the media
WebSocket); the telephony-gateway answers by the number's agent and rules; the media-pipeline
converses; the postprocessor completes. Everything is real except the carrier: Postgres, Redis,
nng, HTTP and WebSockets."""
import base64
import copy
import hashlib
import hmac
import http.server
import itertools
import json
import threading
import time
import urllib.parse

import harness
from calls import execution, heard, status, turns, wait_status
from dialing import Dialing

TWILIO_TOKEN = "twilio-fake-token"  # the fake's default, which signs as Twilio
BUSY = "Sorry, all our lines are busy right now."
FINAL = {"completed", "error", "failed", "call-disconnected"}
KEYWORDS = ["what is the price", "goodbye", "hello"]
RULES = [
    {"keywords": ["price"], "reply": "It costs ten dollars. Anything else?"},
    {"keywords": ["goodbye"], "reply": "Goodbye!", "hangup": True},
]
_SEQ = itertools.count(int(time.time() * 10) % 100000)


class Crm:
    """The agent's ingest source: GET ?contact_number= with a Bearer token → the caller's data."""

    def __init__(self, known):
        crm = self
        self.known, self.requests, self.delay = known, [], 0.0

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                q = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query)
                crm.requests.append((q.get("contact_number", [""])[0],
                                     self.headers.get("Authorization")))
                time.sleep(crm.delay)
                data = crm.known.get(q.get("contact_number", [""])[0])
                ok = self.headers.get("Authorization") == "Bearer crm-token" and data
                body = json.dumps(data if ok else {"error": "unknown"}).encode()
                self.send_response(200 if ok else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    self.wfile.write(body)
                except BrokenPipeError:  # the gateway gave up waiting (the slow case)
                    pass

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/crm"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def setup(ctx):
    ctx.dialing = Dialing(ctx, fake_args=["--voice-cmd", "espeak-ng -s 150 --stdout {text}",
                                          "--max-call-seconds", "60"],
                          gateway_env={"PL_INBOUND_BUSY_MESSAGE": BUSY,
                                       "PL_INBOUND_INGEST_ALLOW_PRIVATE": 1,
                                       "PL_INBOUND_INGEST_MAX": 1,
                                       # named credential sets (docs/inbound.md): the fake's
                                       # own account, and one with a token it does not sign with
                                       "PL_TWILIO_CREDENTIALS_ACME":
                                           f"AC00000000000000000000000000000001:{TWILIO_TOKEN}",
                                       "PL_PLIVO_CREDENTIALS_STALE":
                                           "MAFAKEAUTHID0000000:an-old-token"},
                          # live inbound calls are checked with their carrier every 2 s
                          scheduler_env={"PL_SCHEDULER_INBOUND_CHECK_S": 2})
    d = ctx.dialing
    ctx.start_api(avoid=(d.fake_port, d.gw_port, d.media_port, d.sched_port),
                  PL_INBOUND_BASE_URL=f"http://127.0.0.1:{d.gw_port}")
    d.start()
    d.start_pipeline()
    port = harness.stack.free_port()
    pp = harness.Service("postprocessor", ctx.env(PL_POSTPROCESS_PORT=port,
                                                  PL_POSTPROCESS_MEDIA_WAIT_MS=3000,
                                                  PL_POSTPROCESS_SWEEP_MS=500),
                         port, ctx.workdir, binary="postprocessor").start()
    ctx.services["postprocessor"] = pp
    ctx.account, ctx.key = ctx.new_account("inbound", concurrency=20)
    ctx.crm = Crm({})


# ---------------------------------------------------------------- helpers

def fresh_number(country="1"):
    n = next(_SEQ)
    return f"+{country}55{n:06d}{n % 97:02d}" if country == "1" else f"+{country}80{n:08d}"


def agent(ctx, welcome="Hello! How can I help you today?", webhook=None, ingest=None,
          **task_config):
    body = copy.deepcopy(harness.AGENT_FOR_TESTS)
    cfg = body["agent_config"]
    cfg["agent_welcome_message"] = welcome
    task = cfg["tasks"][0]
    task["tools_config"]["transcriber"]["keywords"] = KEYWORDS
    task["tools_config"]["llm_agent"]["llm_config"] = {
        "provider": "scripted", "model": "parley-scripted",
        "scripted": {"rules": RULES, "fallback": "Sorry, I did not get that."}}
    task["task_config"] = dict({"hangup_after_silence": 8, "call_terminate": 60}, **task_config)
    if ingest is not None:
        cfg["ingest_source_config"] = ingest
    if webhook is not None:
        cfg["webhook_url"] = webhook
    r = ctx.http("POST", "/v2/agent", body, key=ctx.key)
    assert r.status == 200, r
    return r.json["agent_id"]


def linked_number(ctx, provider, agent_id, key=None, number=None, credentials_ref=None):
    """Registers a number with the carrier and links it: (number, id, inbound URL)."""
    number = number or fresh_number("91" if provider == "exotel" else "1")
    body = {"phone_number": number, "telephony_provider": provider}
    if credentials_ref is not None:
        body["credentials_ref"] = credentials_ref
    r = ctx.http("POST", "/phone-numbers", body, key=key or ctx.key)
    assert r.status == 201, r
    nid = r.json["id"]
    r = ctx.http("POST", "/inbound/setup", {"agent_id": agent_id, "phone_number_id": nid},
                 key=key or ctx.key)
    assert r.status == 200, r
    assert r.json["phone_number"] == number and r.json["id"] == nid, r.json
    return number, nid, r.json["url"]


def ring(ctx, provider, url, to, caller, script=None, **extra):
    """The fake carrier rings our URL: returns its call id."""
    body = dict({"provider": provider, "url": url, "from": caller, "to": to}, **extra)
    if script is not None:
        body["script"] = script
    r = ctx.http("POST", "/_fake/inbound", body, port=ctx.dialing.fake_port)
    assert r.status == 201, r
    return r.json["call_id"]


def fake_call(ctx, call_id):
    r = ctx.http("GET", f"/_fake/calls/{call_id}", port=ctx.dialing.fake_port)
    assert r.status == 200, r
    return r.json


def settled(ctx, call_id, timeout=60):
    return harness.eventually(lambda: (c := fake_call(ctx, call_id))["settled"] and c,
                              timeout=timeout, interval=0.2)


def execution_of(ctx, call_id, timeout=10):
    """The execution the gateway created for the fake's call id."""
    rows = harness.eventually(lambda: ctx.sql(
        "SELECT execution_id FROM call_attempts WHERE provider_call_id = :'p1'", call_id),
        timeout=timeout)
    return rows[0][0]


def executions_from(ctx, caller):
    return ctx.sql("SELECT id FROM executions WHERE from_number = :'p1'", caller)


def final(ctx, eid, want="completed", timeout=90):
    return wait_status(ctx, eid, {want}, timeout)


def heard_by_caller(ctx, call_id):
    return heard(ctx.dialing.record_dir, call_id).lower()


def twilio_signature(url, params, token=TWILIO_TOKEN):
    data = url + "".join(k + v for k, v in sorted(params.items()))
    return base64.b64encode(hmac.new(token.encode(), data.encode(), hashlib.sha1).digest()).decode()


def post_twilio(ctx, url, params, signature):
    """A webhook sent by the test itself (as Twilio would, or as a forger would)."""
    path = urllib.parse.urlparse(url).path
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if signature is not None:
        headers["X-Twilio-Signature"] = signature
    return ctx.http("POST", path, raw=urllib.parse.urlencode(params).encode(), headers=headers,
                    port=ctx.dialing.gw_port)


def quick_call(ctx, provider, url, to, caller, hangup_ms=1500, **extra):
    """A short inbound call (the caller hangs up after hangup_ms); returns the fake's record."""
    cid = ring(ctx, provider, url, to, caller, script=[{"silence_ms": 200}],
               hangup_after_ms=hangup_ms, **extra)
    return settled(ctx, cid)


# ---------------------------------------------------------------- tests

def test_inbound_call_converses_on_each_carrier(ctx):
    """Twilio, Plivo and Exotel each ring the agent's number; the caller hears the welcome, asks
    the price, hears the answer, says goodbye; the agent hangs up; the execution is an inbound
    one through post-processing, with its outbox events and webhook deliveries in order."""
    calls = {}
    for provider in ("twilio", "plivo", "exotel"):
        aid = agent(ctx, webhook="http://127.0.0.1:9/hook")
        to, nid, url = linked_number(ctx, provider, aid)
        base = f"http://127.0.0.1:{ctx.dialing.gw_port}/inbound/{provider}/{nid}"
        assert url == base or url.startswith(base + "/"), url
        caller = fresh_number("91" if provider == "exotel" else "1")
        script = [{"silence_ms": 4500}, {"text": "what is the price"}, {"silence_ms": 3500},
                  {"text": "goodbye"}, {"silence_ms": 8000}]
        calls[provider] = (ring(ctx, provider, url, to, caller, script=script), to, caller, aid)
    for provider, (cid, to, caller, aid) in calls.items():
        rec = settled(ctx, cid, timeout=90)
        assert rec["inbound"]["outcome"] == "streamed", (provider, rec["inbound"])
        eid = execution_of(ctx, cid)
        final(ctx, eid)
        ex = execution(ctx, eid)
        t = ex["telephony_data"]
        assert (t["call_type"], t["provider"], t["provider_call_id"]) == \
            ("inbound", provider, cid), (provider, t)
        assert (t["from_number"], t["to_number"]) == (caller, to), (provider, t)
        assert (t["hangup_by"], t["hangup_reason"]) == ("Callee", "llm_prompted_hangup"), t
        assert ex["agent_id"] == aid and ex["user_data"]["from_number"] == caller, ex
        said = [c for r, c in turns(ctx, eid) if r == "assistant"]
        assert said[0] == "Hello! How can I help you today?", said
        assert "It costs ten dollars. Anything else?" in said and said[-1] == "Goodbye!", said
        assert "ten dollars" in ex["transcript"], ex["transcript"]
        events = [r[0] for r in ctx.sql("SELECT status FROM execution_events WHERE execution_id"
                                        " = :'p1' ORDER BY id", eid)]
        assert events == ["in-progress", "call-disconnected", "completed"], (provider, events)
        hooks = [r[0] for r in ctx.sql("SELECT status FROM webhook_deliveries WHERE"
                                       " execution_id = :'p1' ORDER BY event_id", eid)]
        assert hooks == events, (provider, hooks)
        text = heard_by_caller(ctx, cid)
        assert "help" in text and "dollars" in text, (provider, text)
        for kind, want in (("inbound", [eid]), ("outbound", [])):
            r = ctx.http("GET", f"/v2/agent/{aid}/executions?call_type={kind}", key=ctx.key)
            assert r.status == 200 and [e["id"] for e in r.json["data"]] == want, (kind, r)


def test_unknown_unlinked_and_misrouted_numbers_are_rejected(ctx):
    """The carrier's reject answer, no execution: an id that names no number, a number whose
    agent was unlinked, a number called through another carrier's URL, a call for another
    number, and an Exotel URL with a wrong secret."""
    aid = agent(ctx)
    gw = f"http://127.0.0.1:{ctx.dialing.gw_port}"
    to, nid, url = linked_number(ctx, "twilio", aid)
    caller = fresh_number()
    rec = quick_call(ctx, "twilio", f"{gw}/inbound/twilio/{'0' * 32}", to, caller)
    assert rec["inbound"]["outcome"] == "rejected", rec["inbound"]
    assert "<Reject" in rec["inbound"]["webhook"]["response"], rec["inbound"]
    rec = quick_call(ctx, "twilio", url, fresh_number(), caller)  # To is not our number
    assert rec["inbound"]["outcome"] == "rejected", rec["inbound"]
    r = ctx.http("POST", "/inbound/unlink", {"phone_number_id": nid}, key=ctx.key)
    assert r.status == 200 and r.json["url"] is None, r
    rec = quick_call(ctx, "twilio", url, to, caller)
    assert rec["inbound"]["outcome"] == "rejected", rec["inbound"]
    pto, pid, purl = linked_number(ctx, "plivo", aid)
    rec = quick_call(ctx, "twilio", f"{gw}/inbound/twilio/{pid}", pto, caller)
    assert rec["inbound"]["outcome"] == "rejected", rec["inbound"]
    rec = quick_call(ctx, "plivo", purl, pto, caller)
    assert "<Hangup" not in rec["inbound"]["webhook"]["response"], rec["inbound"]
    eto, eid_, eurl = linked_number(ctx, "exotel", aid)
    rec = quick_call(ctx, "exotel", eurl[:-4] + "beef", eto, caller)
    assert rec["inbound"]["webhook"]["http_status"] == 403, rec["inbound"]
    assert rec["inbound"]["outcome"] in ("rejected", "refused"), rec["inbound"]
    # Only the plivo call through its own, linked URL got an execution.
    assert len(executions_from(ctx, caller)) == 1, executions_from(ctx, caller)
    log = ctx.services["telephony-gateway"].log()
    assert "rejected (unknown_number)" in log and "rejected (not_linked)" in log


def test_forged_inbound_webhooks_are_refused(ctx):
    """Unsigned or wrongly signed webhooks get 403 and create nothing; the genuine one works,
    and the carrier repeating it gets the same execution back."""
    aid = agent(ctx)
    to, nid, url = linked_number(ctx, "twilio", aid)
    pto, pid, purl = linked_number(ctx, "plivo", aid)
    caller = fresh_number()
    for provider, u, n in (("twilio", url, to), ("plivo", purl, pto)):
        for sig in ("none", "bad"):
            rec = quick_call(ctx, provider, u, n, caller, signature=sig)
            assert rec["inbound"]["webhook"]["http_status"] == 403, (provider, sig, rec["inbound"])
    params = {"CallSid": "CA" + "ab" * 16, "AccountSid": "AC00000000000000000000000000000001",
              "From": caller, "To": to, "CallStatus": "ringing", "Direction": "inbound"}
    assert post_twilio(ctx, url, params, None).status == 403
    assert post_twilio(ctx, url, params, twilio_signature(url, params, "wrong")).status == 403
    forged = dict(params, From=fresh_number())  # signed over other parameters
    assert post_twilio(ctx, url, forged, twilio_signature(url, params)).status == 403
    assert executions_from(ctx, caller) == []
    first = post_twilio(ctx, url, params, twilio_signature(url, params))
    again = post_twilio(ctx, url, params, twilio_signature(url, params))
    assert first.status == 200 and "<Stream" in first.text, first
    assert again.text == first.text, (first.text, again.text)
    rows = executions_from(ctx, caller)
    assert len(rows) == 1, rows
    # Nobody opens the stream of this hand-made call: end it as the carrier would.
    ctx.sql("UPDATE executions SET status = 'error' WHERE id = :'p1'", rows[0][0])


def test_inbound_limit_and_whitelist(ctx):
    """inbound_limit 1: a caller's second call is rejected; a whitelisted caller is not
    limited; another agent's limit is its own."""
    white = fresh_number()
    aid = agent(ctx, inbound_limit=1, whitelist_phone_numbers=[white])
    to, nid, url = linked_number(ctx, "twilio", aid)
    caller = fresh_number()
    assert quick_call(ctx, "twilio", url, to, caller)["inbound"]["outcome"] == "streamed"
    rec = quick_call(ctx, "twilio", url, to, caller)
    assert rec["inbound"]["outcome"] == "rejected", rec["inbound"]
    for _ in range(2):
        assert quick_call(ctx, "twilio", url, to, white)["inbound"]["outcome"] == "streamed"
    other = agent(ctx, inbound_limit=1)
    oto, _, ourl = linked_number(ctx, "twilio", other)
    assert quick_call(ctx, "twilio", ourl, oto, caller)["inbound"]["outcome"] == "streamed"
    assert len(executions_from(ctx, caller)) == 2 and len(executions_from(ctx, white)) == 2
    assert "rejected (inbound_limit)" in ctx.services["telephony-gateway"].log()
    for (eid,) in executions_from(ctx, caller) + executions_from(ctx, white):
        final(ctx, eid)
        assert execution(ctx, eid)["telephony_data"]["hangup_by"] == "Caller"


def test_ingest_source_and_unknown_callers(ctx):
    """The ingest source's data become the call's variables (used in the welcome); with
    disallow_unknown_numbers an unknown caller is rejected; a slow source (over 2 s) or a dead
    one is skipped when unknown callers are allowed."""
    known = fresh_number()
    ctx.crm.known[known] = {"name": "Ada", "plan": "gold"}
    ingest = {"source_type": "api", "source_url": ctx.crm.url, "source_auth_token": "crm-token"}
    strict = agent(ctx, welcome="Hello {name}, welcome back.", ingest=ingest,
                   disallow_unknown_numbers=True)
    to, _, url = linked_number(ctx, "plivo", strict)
    rec = quick_call(ctx, "plivo", url, to, known, hangup_ms=5000)  # the welcome is heard
    assert rec["inbound"]["outcome"] == "streamed", rec["inbound"]
    assert (known, "Bearer crm-token") in ctx.crm.requests, ctx.crm.requests
    (eid,), = executions_from(ctx, known)
    ex = execution(ctx, eid)
    assert ex["user_data"]["name"] == "Ada" and ex["user_data"]["plan"] == "gold", ex
    assert ex["user_data"]["from_number"] == known and ex["user_data"]["to_number"] == to, ex
    assert turns(ctx, eid)[0][1] == "Hello Ada, welcome back.", turns(ctx, eid)
    stranger = fresh_number()
    assert quick_call(ctx, "plivo", url, to, stranger)["inbound"]["outcome"] == "rejected"
    assert executions_from(ctx, stranger) == []
    assert "rejected (unknown_caller)" in ctx.services["telephony-gateway"].log()

    lenient = agent(ctx, welcome="Hello {name}.", ingest=ingest)
    lto, _, lurl = linked_number(ctx, "twilio", lenient)
    ctx.crm.delay = 3.0
    try:
        t0 = time.time()
        rec = quick_call(ctx, "twilio", lurl, lto, known)
        webhook_ms = rec["inbound"]["webhook"]["ms"]
    finally:
        ctx.crm.delay = 0.0
    assert rec["inbound"]["outcome"] == "streamed", rec["inbound"]
    assert 1900 <= webhook_ms < 2900, webhook_ms  # the 2 s deadline, then on without data
    assert time.time() - t0 < 20
    eids = [r[0] for r in executions_from(ctx, known)]
    assert len(eids) == 2
    late = [execution(ctx, e) for e in eids if e != eid][0]
    assert "name" not in late["user_data"] and late["user_data"]["caller_number"] == known


def test_concurrency_cap_says_busy(ctx):
    """An account with concurrency 1: while one inbound call is live, a second caller hears the
    busy message and the call ends with reason concurrency_limit; once the first call ended the
    next call is served normally."""
    account, key = ctx.new_account("inbound-cap", concurrency=1)
    body = copy.deepcopy(harness.AGENT_FOR_TESTS)
    body["agent_config"]["agent_welcome_message"] = "Hello from the capped agent."
    r = ctx.http("POST", "/v2/agent", body, key=key)
    assert r.status == 200, r
    aid = r.json["agent_id"]
    to, _, url = linked_number(ctx, "exotel", aid, key=key)
    first = ring(ctx, "exotel", url, to, fresh_number("91"), script=[{"silence_ms": 200}],
                 hangup_after_ms=12000)
    harness.eventually(lambda: fake_call(ctx, first)["inbound"]["outcome"] == "streamed",
                       timeout=10)
    second = ring(ctx, "exotel", url, to, fresh_number("91"), script=[{"silence_ms": 200}])
    rec = settled(ctx, second, timeout=30)
    assert rec["inbound"]["outcome"] == "streamed", rec["inbound"]
    eid = execution_of(ctx, second)
    final(ctx, eid, timeout=30)
    t = ctx.sql("SELECT telephony_data->>'hangup_by', telephony_data->>'hangup_reason'"
                " FROM executions WHERE id = :'p1'", eid)[0]
    assert tuple(t) == ("Callee", "concurrency_limit"), t
    assert [c for r, c in turns(ctx, eid)] == [BUSY], turns(ctx, eid)
    assert "busy" in heard_by_caller(ctx, second), heard_by_caller(ctx, second)
    assert fake_call(ctx, first)["live"], "the first call must still be live"
    settled(ctx, first, timeout=30)
    final(ctx, execution_of(ctx, first))
    third = ring(ctx, "exotel", url, to, fresh_number("91"), script=[{"silence_ms": 200}],
                 hangup_after_ms=4000)
    settled(ctx, third, timeout=30)
    eid3 = execution_of(ctx, third)
    final(ctx, eid3)
    said = [c for r, c in turns(ctx, eid3) if r == "assistant"]
    assert said and said[0] == "Hello from the capped agent.", said


def test_gateway_killed_mid_call_still_settles(ctx):
    """SIGKILL the gateway while inbound calls stream (their end is then never seen); after a
    restart the scheduler's sweep has each checked with its carrier, which says it is over: the
    executions still end call-disconnected, then completed. Long calls the carrier still holds
    are left alone meanwhile (the checks of the first test's calls ran every 2 s)."""
    aid = agent(ctx)
    calls = []
    for provider in ("twilio", "plivo", "exotel"):
        to, _, url = linked_number(ctx, provider, aid)
        cid = ring(ctx, provider, url, to, fresh_number("91" if provider == "exotel" else "1"),
                   script=[{"silence_ms": 200}])
        calls.append(cid)
    for cid in calls:
        harness.eventually(lambda: fake_call(ctx, cid)["inbound"]["outcome"] == "streamed",
                           timeout=15)
    eids = [execution_of(ctx, cid) for cid in calls]
    gw = ctx.services["telephony-gateway"]
    gw.stop(kill=True)
    for cid in calls:  # the carrier sees its stream drop and ends the call
        settled(ctx, cid, timeout=30)
    assert all(status(ctx, e) == "in-progress" for e in eids)
    ctx.dialing.start_gateway()
    for eid in eids:
        final(ctx, eid, timeout=60)
        t = execution(ctx, eid)["telephony_data"]
        assert t["call_type"] == "inbound" and t["hangup_by"], t


def test_named_credential_sets(ctx):
    """A number's credentials_ref picks the gateway's credential set: the set's token verifies
    the webhook and its account hangs up the call over REST; a set whose token the carrier does
    not sign with refuses the webhook (403); a set that is not configured rejects the call."""
    aid = agent(ctx)
    to, _, url = linked_number(ctx, "twilio", aid, credentials_ref="acme")
    cid = ring(ctx, "twilio", url, to, fresh_number(),
               script=[{"silence_ms": 3500}, {"text": "goodbye"}, {"silence_ms": 15000}])
    rec = settled(ctx, cid, timeout=40)
    assert rec["inbound"]["outcome"] == "streamed", rec["inbound"]
    assert rec["hangup_by"] == "api", rec  # our REST hang-up, made with the set's account
    eid = execution_of(ctx, cid)
    final(ctx, eid)
    t = execution(ctx, eid)["telephony_data"]
    assert (t["hangup_by"], t["hangup_reason"]) == ("Callee", "llm_prompted_hangup"), t
    pto, _, purl = linked_number(ctx, "plivo", aid, credentials_ref="stale")
    rec = quick_call(ctx, "plivo", purl, pto, fresh_number())
    assert rec["inbound"]["webhook"]["http_status"] == 403, rec["inbound"]
    nto, _, nurl = linked_number(ctx, "twilio", aid, credentials_ref="nosuch")
    rec = quick_call(ctx, "twilio", nurl, nto, fresh_number())
    assert rec["inbound"]["outcome"] == "rejected", rec["inbound"]
    assert "rejected (no_credentials)" in ctx.services["telephony-gateway"].log()


def test_exhausted_wallet_rejects(ctx):
    """As the scheduler refuses to dial for an account whose wallet is exhausted, an inbound call
    to its number is rejected (the carrier's reject answer), with nothing created."""
    out = ctx.admin("create-account", "--name", "broke", "--email", "broke@example.com",
                    "--wallet", "0")
    key = out["API_KEY"]
    body = copy.deepcopy(harness.AGENT_FOR_TESTS)
    r = ctx.http("POST", "/v2/agent", body, key=key)
    assert r.status == 200, r
    to, _, url = linked_number(ctx, "twilio", r.json["agent_id"], key=key)
    caller = fresh_number()
    rec = quick_call(ctx, "twilio", url, to, caller)
    assert rec["inbound"]["outcome"] == "rejected", rec["inbound"]
    assert executions_from(ctx, caller) == []
    assert "rejected (balance_low)" in ctx.services["telephony-gateway"].log()


def test_ingest_requests_in_flight_are_capped(ctx):
    """PL_INBOUND_INGEST_MAX=1 here: while one call waits for a slow ingest source, a second
    call is answered at once without caller data instead of holding another HTTP worker."""
    caller_a, caller_b = fresh_number(), fresh_number()
    ctx.crm.known[caller_a] = ctx.crm.known[caller_b] = {"name": "Ada"}
    ingest = {"source_type": "api", "source_url": ctx.crm.url, "source_auth_token": "crm-token"}
    aid = agent(ctx, welcome="Hello {name}.", ingest=ingest)
    to, _, url = linked_number(ctx, "twilio", aid)
    ctx.crm.delay = 3.0
    try:
        first = ring(ctx, "twilio", url, to, caller_a, script=[{"silence_ms": 200}],
                     hangup_after_ms=1500)
        harness.eventually(lambda: any(c == caller_a for c, _ in ctx.crm.requests), timeout=5)
        second = ring(ctx, "twilio", url, to, caller_b, script=[{"silence_ms": 200}],
                      hangup_after_ms=1500)
        a, b = settled(ctx, first), settled(ctx, second)
    finally:
        ctx.crm.delay = 0.0
    assert a["inbound"]["outcome"] == b["inbound"]["outcome"] == "streamed", (a, b)
    assert a["inbound"]["webhook"]["ms"] >= 1900, a["inbound"]["webhook"]
    assert b["inbound"]["webhook"]["ms"] < 1000, b["inbound"]["webhook"]
    assert not any(c == caller_b for c, _ in ctx.crm.requests), ctx.crm.requests
    (eid_b,), = executions_from(ctx, caller_b)
    assert "name" not in execution(ctx, eid_b)["user_data"]
    assert "requests already in flight" in ctx.services["telephony-gateway"].log()
